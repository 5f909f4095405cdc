// The `__crux` envelope exactly as the TypeScript Crux wrappers (`@use-crux/convex/server`)
// build it, for fixtures that call crux functions as a wrapped Convex action would:
// `openRun` is a standalone action's run (`observe.openRun`), `runActionEnvelope` what
// `ctx.crux.runAction(label, ref, args)` adds to the callee's arguments after opening its
// boundary span (reference: shared/reference/crux-ts-semantics.md §1.1, §2.3, §3.1, §6.1).

/** `n` random bytes as lowercase hex, never all zeros (W3C ids must not be). */
export function randomHex(bytes) {
  for (;;) {
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
    if (/[^0]/.test(hex)) return hex;
  }
}

/** A standalone run's captured context: `run_`/`seg_` + 24 hex, a 32-hex trace id. */
export function openRun() {
  const runId = `run_${randomHex(12)}`;
  return {
    runId,
    operationId: runId,
    traceId: randomHex(16),
    segmentId: `seg_${randomHex(12)}`,
    startedAtMs: Date.now(),
    spanStack: [],
  };
}

/** The boundary lease: now + 11 minutes, as ISO-8601 UTC. */
const BOUNDARY_LEASE_MS = 11 * 60_000;

/**
 * What `ctx.crux.runAction(label, ref)` sends: the boundary span opened under the current
 * stack, the context captured inside it, and the boundary. Returns the span id too.
 */
export function runActionEnvelope(context, label, ref) {
  const spanId = randomHex(8);
  const spanStack = [...context.spanStack, spanId];
  const observability = { ...context, spanStack, currentSpanId: spanId };
  const boundary = {
    id: spanId,
    spanId,
    kind: "action",
    label,
    ref: String(ref),
    parentSpanStack: [...spanStack],
    leaseExpiresAt: new Date(Date.now() + BOUNDARY_LEASE_MS).toISOString(),
  };
  return { spanId, envelope: { v: 1, observability, boundary } };
}
