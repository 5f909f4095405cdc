// A stand-in Convex deployment whose values go through the npm `convex` package's own
// encoding: every POST /api/* decodes `args` with `jsonToConvex`, and answers with
// `convexToJson` of what it saw (described as text), the args it decoded, and the same
// values built natively in JavaScript. Prints "listening <port>"; serves until stdin ends.
import http from "node:http";
import { convexToJson, jsonToConvex } from "convex/values";

const describe = (v) => {
  if (typeof v === "bigint") return `bigint ${v}`;
  if (typeof v === "number") return Object.is(v, -0) ? "number -0" : `number ${v}`;
  if (v instanceof ArrayBuffer) return `bytes ${[...new Uint8Array(v)].join(",")}`;
  return `${typeof v} ${v}`;
};

const native = {
  big: 2n ** 60n + 1n,
  neg: -(2n ** 63n),
  nan: NaN,
  inf: Infinity,
  neg_inf: -Infinity,
  neg_zero: -0,
  half: 0.5,
  bytes: new Uint8Array([0, 255, 7]).buffer,
};

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const request = JSON.parse(body);
    const args = jsonToConvex(request.args[0]);
    const seen = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, describe(v)]));
    const value = convexToJson({ seen, echo: args, native });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "success", value }));
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
