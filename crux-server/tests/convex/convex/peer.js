// Convex functions that call a crux server, as a TypeScript peer would, and a few plain
// ones for clients of the harness.
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError, v } from "convex/values";
import { action, mutation, query } from "./_generated/server.js";
import { openRun, randomHex, runActionEnvelope } from "./crux.js";

/**
 * In a run of its own: (a) `fetch`es the crux HTTP action at `httpPath` with a W3C
 * `traceparent` in the run's trace, and (b) calls the crux action `actionPath` over
 * Convex's HTTP API (the npm `ConvexHttpClient`) with `__crux` as `ctx.crux.runAction`
 * sends it. Returns the ids it sent and what crux answered.
 */
export const callCrux = action({
  args: { cruxUrl: v.string(), httpPath: v.string(), actionPath: v.string() },
  handler: async (_ctx, { cruxUrl, httpPath, actionPath }) => {
    const run = openRun();
    const parentSpanId = randomHex(8);
    const traceparent = `00-${run.traceId}-${parentSpanId}-01`;
    const reply = await fetch(new URL(httpPath, cruxUrl), {
      method: "POST",
      headers: { traceparent, "content-type": "application/json" },
      body: JSON.stringify({ from: "convex-test" }),
    });
    const httpAction = { status: reply.status, body: await reply.json() };

    const { spanId, envelope } = runActionEnvelope(run, "ask the rust service", actionPath);
    const client = new ConvexHttpClient(cruxUrl, { skipConvexDeploymentUrlCheck: true });
    const value = await client.action(makeFunctionReference(actionPath), { __crux: envelope });
    return {
      sent: {
        runId: run.runId,
        traceId: run.traceId,
        segmentId: run.segmentId,
        traceparentSpanId: parentSpanId,
        boundarySpanId: spanId,
      },
      httpAction,
      action: value,
    };
  },
});

/** A plain query, for clients of the harness to check it serves. */
export const hello = query({
  args: { name: v.string() },
  handler: async (_ctx, { name }) => `hello ${name}`,
});

/** Stores a note; returns how many there are (an int64 on the wire). */
export const addNote = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    await ctx.db.insert("notes", { text });
    return BigInt((await ctx.db.query("notes").collect()).length);
  },
});

/** Fails with data (a ConvexError in the clients). */
export const refuse = action({
  args: {},
  handler: async () => {
    throw new ConvexError({ code: "REFUSED", amount: 42n });
  },
});
