// A Convex action in the middle of a Rust → TypeScript → Rust chain: a crux action calls
// `relay:relay` with `__crux`, and it calls back into a crux service as a Convex action
// wrapped by the TypeScript Crux wrappers would: it continues the received run in a
// segment of its own and calls the next action with the envelope `ctx.crux.runAction`
// derives from that context.
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { v } from "convex/values";
import { action } from "./_generated/server.js";
import { randomHex, runActionEnvelope } from "./crux.js";

const HEX = (n) => new RegExp(`^[0-9a-f]{${n}}$`);

/**
 * Checks that `crux` is a well-formed envelope for a boundary named `ref`, as the
 * TypeScript wrappers' receiving side requires; throws naming what is wrong.
 */
function checkEnvelope(crux, ref) {
  const fail = (what) => {
    throw new Error(`malformed __crux: ${what}: ${JSON.stringify(crux)}`);
  };
  if (crux === null || typeof crux !== "object") fail("not an object");
  if (crux.v !== 1) fail("v is not 1");
  const o = crux.observability;
  const b = crux.boundary;
  if (!o || typeof o !== "object") fail("no observability");
  if (!b || typeof b !== "object") fail("no boundary");
  if (!/^run_[0-9a-z_-]+$/i.test(o.runId ?? "")) fail("runId");
  if (!HEX(32).test(o.traceId ?? "")) fail("traceId");
  if (typeof o.segmentId !== "string" || !o.segmentId) fail("segmentId");
  if (!Array.isArray(o.spanStack) || o.spanStack.length === 0) fail("spanStack");
  if (!o.spanStack.every((id) => HEX(16).test(id))) fail("spanStack ids");
  if (o.currentSpanId !== o.spanStack[o.spanStack.length - 1]) fail("currentSpanId");
  if (b.kind !== "action") fail("boundary.kind");
  if (b.spanId !== o.currentSpanId || b.id !== b.spanId) fail("boundary span");
  if (b.ref !== ref) fail(`boundary.ref is not ${ref}`);
  if (!Array.isArray(b.parentSpanStack)) fail("boundary.parentSpanStack");
  if (Number.isNaN(Date.parse(b.leaseExpiresAt ?? ""))) fail("boundary.leaseExpiresAt");
  return { o, b };
}

/** Continues the caller's run and calls `actionPath` on the crux service at `cruxUrl`. */
export const relay = action({
  args: { cruxUrl: v.string(), actionPath: v.string(), __crux: v.optional(v.any()) },
  handler: async (_ctx, { cruxUrl, actionPath, __crux }) => {
    const { o, b } = checkEnvelope(__crux, "relay:relay");
    // The receiving wrapper's context: the caller's run and stack, a segment of its own.
    const here = {
      runId: o.runId,
      operationId: o.operationId ?? o.runId,
      traceId: o.traceId,
      segmentId: `seg_${randomHex(12)}`,
      startedAtMs: Date.now(),
      spanStack: [...o.spanStack],
    };
    const { spanId, envelope } = runActionEnvelope(here, "back to rust", actionPath);
    const client = new ConvexHttpClient(cruxUrl, { skipConvexDeploymentUrlCheck: true });
    const value = await client.action(makeFunctionReference(actionPath), { __crux: envelope });
    return {
      received: { runId: o.runId, traceId: o.traceId, boundarySpanId: b.spanId },
      sent: { segmentId: here.segmentId, boundarySpanId: spanId },
      value,
    };
  },
});
