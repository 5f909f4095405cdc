// The real npm ConvexHttpClient against a crux server:
// node client.mjs <url> <admin key> <user JWT>.
// Exits non-zero with the failed assertion; prints "ok <n> checks" on success.
import assert from "node:assert/strict";
import { ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { makeFunctionReference } from "convex/server";

const [url, adminKey, userToken] = process.argv.slice(2);
const client = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true });
const ref = (name) => makeFunctionReference(name);
let checks = 0;

// A query: i64 (bigint) and bytes (ArrayBuffer) intact both ways.
const bytes = new Uint8Array([0, 255, 7, 9, 128]).buffer;
const n = -(2n ** 63n) + 1n;
const echoed = await client.query(ref("values:echo"), { n, b: bytes, f: 0.25 });
assert.equal(typeof echoed.n, "bigint");
assert.equal(echoed.n, n);
assert.ok(echoed.b instanceof ArrayBuffer);
assert.deepEqual([...new Uint8Array(echoed.b)], [0, 255, 7, 9, 128]);
assert.equal(echoed.f, 0.25);
checks++;

// A mutation: a Rust usize comes back as an int64.
const count = await client.mutation(ref("notes:add"), { text: "from npm" });
assert.equal(count, 1n);
checks++;

// An action.
const where = await client.action(ref("work:where"), {});
assert.match(where.runId, /^run_[0-9a-f]{24}$/);
checks++;

// A failing function: ConvexError with its data.
await assert.rejects(client.action(ref("work:fail"), {}), (err) => {
  assert.ok(err instanceof ConvexError, `not a ConvexError: ${err}`);
  assert.equal(err.data.code, "ALREADY_REFUNDED");
  assert.equal(err.data.amount, 42n);
  return true;
});
checks++;

// An internal function: refused without the admin key, served with it.
await assert.rejects(client.query(ref("secret:get"), {}), (err) => {
  assert.ok(!(err instanceof ConvexError));
  assert.match(err.message, /Could not find public function for 'secret:get'/);
  return true;
});
const admin = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true });
admin.setAdminAuth(adminKey);
assert.equal(await admin.query(ref("secret:get"), {}), "internal value");
checks++;

// Argument validation: Convex's error text naming the field.
await assert.rejects(
  client.query(ref("values:echo"), { n: "seven", b: bytes, f: 1 }),
  /ArgumentValidationError/,
);
checks++;

// A user's JWT (setAuth): the handler's ctx.auth identity; none without it.
const user = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true });
user.setAuth(userToken);
const me = await user.query(ref("auth:whoami"), {});
assert.equal(me.subject, "user-npm");
assert.equal(me.issuer, "https://npm.crux.test");
assert.equal(me.tokenIdentifier, "https://npm.crux.test|user-npm");
assert.equal(me.name, "Npm User");
assert.equal(await client.query(ref("auth:whoami"), {}), null);
checks++;

// logLines: the client prints each line through its logger, with the function's name.
const printed = [];
const collect = (...parts) => printed.push(parts.filter((p) => !String(p).startsWith("color:")).join(" "));
const logger = { log: collect, warn: collect, error: collect, logVerbose: () => {} };
const chatty = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger });
assert.equal(await chatty.action(ref("log:chatty"), { lines: 1n }), 1n);
assert.deepEqual(printed, [
  "%c[CONVEX A(log:chatty)] [INFO] starting",
  "%c[CONVEX A(log:chatty)] [WARN] from the child query",
  "%c[CONVEX A(log:chatty)] [LOG] line 0",
]);
checks++;

console.log(`ok ${checks} checks`);
