// The npm ConvexHttpClient against the harness (serve.mjs): node check-client.mjs <url>.
// Exits non-zero with the failed assertion; prints "ok <n> checks" on success.
import assert from "node:assert/strict";
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const [url] = process.argv.slice(2);
const client = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true });
const ref = (name) => makeFunctionReference(name);
let checks = 0;

assert.equal(await client.query(ref("peer:hello"), { name: "ada" }), "hello ada");
checks++;

assert.equal(await client.mutation(ref("peer:addNote"), { text: "one" }), 1n);
assert.equal(await client.mutation(ref("peer:addNote"), { text: "two" }), 2n);
checks++;

await assert.rejects(client.action(ref("peer:refuse"), {}), (err) => {
  assert.ok(err instanceof ConvexError, `not a ConvexError: ${err}`);
  assert.equal(err.data.code, "REFUSED");
  assert.equal(err.data.amount, 42n);
  return true;
});
checks++;

await assert.rejects(client.query(ref("peer:hello"), { name: 7 }), /Validator error/);
checks++;

console.log(`ok ${checks} checks`);
