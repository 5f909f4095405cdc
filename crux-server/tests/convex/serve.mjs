// Serves the Convex functions in ./convex (run by convex-test, offline, in plain Node) over
// Convex's HTTP API, so crux (or the npm ConvexHttpClient) can call them like a deployment:
//
//   node serve.mjs [port]     (port 0 or none: any free port)
//
// prints one line `convex-test serving http://127.0.0.1:<port>` once it listens, then serves
// until killed. Routes: POST /api/query|mutation|action|function {path, args, format} and
// POST /api/run/{dir/file/export} {args, format}; replies {status:"success", value} or
// {status:"error", errorMessage, errorData?} with HTTP 200, as Convex does. A module
// convex/http.js (a default-exported httpRouter) serves every other path through t.fetch.
// Every file under ./convex is a module (`peer.js` exports `peer:<name>`).
import http from "node:http";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { convexTest } from "convex-test";
import { makeFunctionReference } from "convex/server";
import { convexToJson, jsonToConvex } from "convex/values";
import schema from "./convex/schema.js";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Every module under ./convex, keyed as `import.meta.glob` would: `./convex/peer.js`. */
function modules() {
  const root = join(here, "convex");
  const map = {};
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.[cm]?js$/.test(entry.name)) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    const key = `./${relative(here, file).split("\\").join("/")}`;
    map[key] = () => import(pathToFileURL(file).href);
  }
  return map;
}

const t = convexTest(schema, modules());
const hasHttp = readdirSync(join(here, "convex")).includes("http.js");

const kinds = { query: "query", mutation: "mutation", action: "action" };

/** Runs the function at `path` (`file:export`) as `kind` (or whichever kind it is). */
async function run(kind, path, args) {
  const ref = makeFunctionReference(path);
  if (kind === "query") return await t.query(ref, args);
  if (kind === "mutation") return await t.mutation(ref, args);
  if (kind === "action") return await t.action(ref, args);
  return await t.fun({ udfPath: path, componentPath: "" }, args);
}

/** A value as the reply's `format` wants it. */
function encode(value, format) {
  if (format === "convex_encoded_json" || format === "convex_json") return convexToJson(value);
  // Convex's lossy `json`: an int64 becomes a string.
  return JSON.parse(JSON.stringify(value ?? null, (_, v) => (typeof v === "bigint" ? `${v}` : v)));
}

async function api(url, body) {
  const route = url.pathname.slice("/api/".length);
  let kind;
  let path = body.path;
  let format = body.format;
  if (route.startsWith("run/")) {
    const parts = route.slice("run/".length).split("/");
    path = parts.length > 1 ? `${parts.slice(0, -1).join("/")}:${parts.at(-1)}` : parts[0];
    format ??= "json";
  } else if (route in kinds) {
    kind = kinds[route];
  } else if (route !== "function") {
    return [404, { code: "NotFound", message: `no such route: ${url.pathname}` }];
  }
  if (typeof path !== "string") {
    return [400, { code: "BadJsonBody", message: "the request body needs `path`" }];
  }
  let args = body.args ?? {};
  if (Array.isArray(args)) args = args[0] ?? {};
  try {
    if (format === "convex_encoded_json" || format === "convex_json") args = jsonToConvex(args);
    const value = await run(kind, path, args);
    return [200, { status: "success", value: encode(value, format) }];
  } catch (err) {
    const reply = { status: "error", errorMessage: String(err?.message ?? err) };
    if (err?.data !== undefined) reply.errorData = encode(err.data, format);
    return [200, reply];
  }
}

async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const server = http.createServer(async (request, response) => {
  try {
    const url = new URL(request.url, "http://127.0.0.1");
    const raw = await readBody(request);
    if (url.pathname.startsWith("/api/")) {
      let body;
      try {
        body = JSON.parse(raw.toString("utf8") || "{}");
      } catch (err) {
        body = undefined;
      }
      const [status, reply] = body
        ? await api(url, body)
        : [400, { code: "BadJsonBody", message: "the request body is not JSON" }];
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(reply));
      return;
    }
    if (!hasHttp) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end(`No HttpAction routed for ${url.pathname}`);
      return;
    }
    const headers = Object.entries(request.headers).flatMap(([k, v]) =>
      Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]],
    );
    const hasBody = !["GET", "HEAD"].includes(request.method);
    const reply = await t.fetch(url.pathname + url.search, {
      method: request.method,
      headers,
      body: hasBody ? raw : undefined,
    });
    response.writeHead(reply.status, Object.fromEntries(reply.headers));
    response.end(Buffer.from(await reply.arrayBuffer()));
  } catch (err) {
    response.writeHead(500, { "content-type": "application/json" });
    response.end(JSON.stringify({ code: "HarnessError", message: String(err?.stack ?? err) }));
  }
});

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`convex-test serving http://127.0.0.1:${server.address().port}`);
});
