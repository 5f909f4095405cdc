//! The canonical Crux primitive taxonomy (schema v5): every primitive a span or a run root
//! may name, with its family (the primitive's prefix), plus the canonical artifact kinds
//! and edge types.
//!
//! ```
//! use crux_runtime::taxonomy::family_of;
//! assert_eq!(family_of("runtime.convex.action"), Some("runtime"));
//! assert_eq!(family_of("agent.ran"), None);
//! ```

use std::cell::Cell;

/// Every canonical primitive with its family, sorted by primitive.
///
/// The TypeScript fixture `taxonomy.json` plus the later additions of reference §7.4
/// (`generation.stream.attempt`, `memory.capture`, `evidence.record`).
pub const PRIMITIVES: &[(&str, &str)] = &[
    ("agent.run", "agent"),
    ("cache.lookup", "cache"),
    ("citation.check", "citation"),
    ("compaction.run", "compaction"),
    ("composition.branch", "composition"),
    ("composition.consensus", "composition"),
    ("composition.join", "composition"),
    ("composition.parallel", "composition"),
    ("composition.pipeline", "composition"),
    ("composition.swarm", "composition"),
    ("composition.vote", "composition"),
    ("constraint.check", "constraint"),
    ("constraint.retry", "constraint"),
    ("context.cache", "context"),
    ("context.predicate", "context"),
    ("context.resolve", "context"),
    ("corpus.sync", "corpus"),
    ("cost.record", "cost"),
    ("custom.operation", "custom"),
    ("defer.run", "defer"),
    ("defer.scheduled", "defer"),
    ("delegate.invoke", "delegate"),
    ("embedding.call", "embedding"),
    ("eval.case", "eval"),
    ("eval.run", "eval"),
    ("evidence.record", "evidence"),
    ("feedback.record", "feedback"),
    ("flow.run", "flow"),
    ("flow.step", "flow"),
    ("flow.suspension", "flow"),
    ("generation.call", "generation"),
    ("generation.stream", "generation"),
    ("generation.stream.attempt", "generation"),
    ("guardrail.run", "guardrail"),
    ("handoff.prepare", "handoff"),
    ("indexing.pipeline", "indexing"),
    ("ingest.parse", "ingest"),
    ("mcp.connect", "mcp"),
    ("mcp.discover", "mcp"),
    ("media.describe", "media"),
    ("media.generate_image", "media"),
    ("media.generate_speech", "media"),
    ("media.transcribe", "media"),
    ("memory.capture", "memory"),
    ("memory.read", "memory"),
    ("memory.write", "memory"),
    ("plan.operation", "plan"),
    ("prompt.budget", "prompt"),
    ("prompt.resolve", "prompt"),
    ("retrieval.pipeline", "retrieval"),
    ("retrieval.query", "retrieval"),
    ("retrieval.recipe", "retrieval"),
    ("retrieval.retrieve", "retrieval"),
    ("retrieval.stage", "retrieval"),
    ("retrieval.step", "retrieval"),
    ("routing.cascade", "routing"),
    ("routing.fallback", "routing"),
    ("routing.retry", "routing"),
    ("routing.router", "routing"),
    ("routing.split", "routing"),
    ("run", "run"),
    ("runtime.convex.action", "runtime"),
    ("runtime.convex.flush", "runtime"),
    ("runtime.convex.mutation", "runtime"),
    ("runtime.convex.query", "runtime"),
    ("runtime.convex.resume", "runtime"),
    ("runtime.convex.schedule", "runtime"),
    ("scoring.judge", "scoring"),
    ("security.warning", "security"),
    ("skill.load", "skill"),
    ("task.operation", "task"),
    ("tool.approval", "tool"),
    ("tool.call", "tool"),
    ("workspace.operation", "workspace"),
];

/// Canonical artifact kinds (`custom.*` is accepted as well).
pub const ARTIFACT_KINDS: &[&str] = &[
    "approval.request",
    "baseline.promotion",
    "cache.report",
    "citation.report",
    "compaction.report",
    "comparison.report",
    "composition.report",
    "constraint.report",
    "context",
    "context.contribution",
    "corpus.report",
    "delegate.report",
    "embedding.report",
    "error.raw",
    "error.stack",
    "guardrail.report",
    "handoff.payload",
    "indexing.report",
    "ingest.report",
    "input",
    "media.report",
    "memory.diff",
    "memory.recall",
    "memory.snapshot",
    "memory.write",
    "messages",
    "output",
    "prompt",
    "prompt.budget",
    "retrieval.hits",
    "routing.report",
    "score.report",
    "security.report",
    "stream.timeline",
    "system",
    "tool.args",
    "tool.request",
    "tool.result",
    "validation.feedback",
];

/// Canonical edge types (`custom.*` is accepted as well).
pub const EDGE_TYPES: &[&str] = &[
    "called",
    "caused",
    "citation.used",
    "comparison.baseline",
    "comparison.candidate",
    "constraint.retry",
    "consumed",
    "delegate.invoked",
    "derived.from",
    "eval.case_of",
    "explains",
    "fallback.attempt",
    "feedback.for",
    "guardrail.blocked",
    "handoff.payload",
    "memory.read",
    "memory.write",
    "produced",
    "replay.of",
    "retrieval.returned",
    "triggered",
];

/// The family of a canonical primitive, or `None` if `primitive` is not canonical.
#[inline]
pub fn family_of(primitive: &str) -> Option<&'static str> {
    PRIMITIVES
        .binary_search_by(|(p, _)| (*p).cmp(primitive))
        .ok()
        .map(|i| PRIMITIVES[i].1)
}

/// The families of the primitives met, remembered by address: a `&'static str` never
/// changes, so the next record naming it is answered with two comparisons instead of a
/// search of the taxonomy (about 700 instructions: records of a program name a handful of
/// primitives, each from one string literal). Delivery checks records with one
/// ([`is_canonical`](Self::is_canonical)); the JSON writer keeps one per thread for each
/// record's `family`.
pub(crate) struct KnownPrimitives {
    /// Direct-mapped by address; `(0, 0, _)` is empty (no string lives at address 0). The
    /// length is part of the key: a prefix of a literal starts at the same address.
    seen: [Cell<(usize, usize, Option<&'static str>)>; 8],
}

impl Default for KnownPrimitives {
    fn default() -> Self {
        Self::new()
    }
}

impl KnownPrimitives {
    pub(crate) const fn new() -> Self {
        Self {
            seen: [const { Cell::new((0, 0, None)) }; 8],
        }
    }

    /// [`family_of`], remembered.
    #[inline]
    pub(crate) fn family_of(&self, primitive: &'static str) -> Option<&'static str> {
        let (at, len) = (primitive.as_ptr() as usize, primitive.len());
        let slot = &self.seen[(at >> 3) & 7];
        match slot.get() {
            (a, l, family) if a == at && l == len => family,
            _ => {
                let family = family_of(primitive);
                slot.set((at, len, family));
                family
            }
        }
    }

    /// Whether `primitive` is canonical ([`family_of`] finds it).
    #[inline]
    pub(crate) fn is_canonical(&self, primitive: &'static str) -> bool {
        self.family_of(primitive).is_some()
    }
}

/// The canonical `&'static` spelling of `primitive`, if it is one.
pub fn canonical_primitive(primitive: &str) -> Option<&'static str> {
    PRIMITIVES
        .binary_search_by(|(p, _)| (*p).cmp(primitive))
        .ok()
        .map(|i| PRIMITIVES[i].0)
}

fn is_custom(name: &str) -> bool {
    name.strip_prefix("custom.").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 120
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    })
}

/// Whether `kind` is a canonical artifact kind or a `custom.*` one.
pub fn is_artifact_kind(kind: &str) -> bool {
    ARTIFACT_KINDS.binary_search(&kind).is_ok() || is_custom(kind)
}

/// Whether `edge_type` is a canonical edge type or a `custom.*` one.
pub fn is_edge_type(edge_type: &str) -> bool {
    EDGE_TYPES.binary_search(&edge_type).is_ok() || is_custom(edge_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_primitives_answer_as_the_taxonomy_does() {
        let known = KnownPrimitives::default();
        let leaked: &'static str = Box::leak(String::from("tool.call").into_boxed_str());
        for _ in 0..2 {
            for (p, _) in PRIMITIVES {
                assert!(known.is_canonical(p), "{p}");
            }
            assert!(
                known.is_canonical(leaked),
                "another copy of a canonical text"
            );
            for p in ["agent.ran", "", "tool", "tool.call ", "custom.x"] {
                assert_eq!(known.is_canonical(p), family_of(p).is_some(), "{p:?}");
            }
        }
        // A non-canonical text is refused whatever was remembered before it (a text at a
        // remembered address cannot change: `&'static str`s never do), and a prefix at
        // the same address is another key.
        let bad: &'static str = Box::leak(String::from("agent.ran").into_boxed_str());
        assert!(!known.is_canonical(bad));
        assert!(
            !known.is_canonical(&leaked[..4]),
            "a prefix at the same address"
        );
    }

    #[test]
    fn tables_are_sorted_and_families_are_prefixes() {
        assert!(PRIMITIVES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ARTIFACT_KINDS.windows(2).all(|w| w[0] < w[1]));
        assert!(EDGE_TYPES.windows(2).all(|w| w[0] < w[1]));
        for (p, f) in PRIMITIVES {
            assert_eq!(p.split('.').next(), Some(*f), "{p}");
        }
    }

    #[test]
    fn later_additions_are_known() {
        assert_eq!(family_of("evidence.record"), Some("evidence"));
        assert_eq!(family_of("generation.stream.attempt"), Some("generation"));
        assert_eq!(family_of("memory.capture"), Some("memory"));
        assert_eq!(family_of("runtime.convex.schedule"), Some("runtime"));
        assert_eq!(family_of(""), None);
        assert_eq!(family_of("Agent.run"), None);
    }

    #[test]
    fn custom_kinds_need_a_name() {
        assert!(is_artifact_kind("error.raw"));
        assert!(is_artifact_kind("custom.notes"));
        assert!(!is_artifact_kind("custom."));
        assert!(!is_artifact_kind("notes"));
        assert!(is_edge_type("triggered"));
        assert!(!is_edge_type("custom.a b"));
    }

    #[test]
    fn matches_the_typescript_fixture() {
        // `shared/` sits beside the checkout (CI: `X/../shared`); a git worktree under
        // `wt/` sits one level deeper.
        let candidates = [
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/reference/fixtures/taxonomy.json"
            ),
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/reference/fixtures/taxonomy.json"
            ),
        ];
        let Some(text) = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            println!(
                "note: taxonomy.json is absent ({candidates:?}); skipping the fixture comparison"
            );
            return;
        };
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        let families = fixture["primitiveFamilies"].as_object().unwrap();
        for (p, f) in families {
            assert_eq!(family_of(p), f.as_str(), "primitive {p}");
        }
        for kind in fixture["artifactKinds"].as_array().unwrap() {
            assert!(is_artifact_kind(kind.as_str().unwrap()), "{kind}");
        }
        for edge in fixture["edgeTypes"].as_array().unwrap() {
            assert!(is_edge_type(edge.as_str().unwrap()), "{edge}");
        }
        // Everything we accept beyond the fixture is a documented later addition.
        let extra: Vec<&str> = PRIMITIVES
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !families.contains_key(*p))
            .collect();
        assert_eq!(
            extra,
            [
                "evidence.record",
                "generation.stream.attempt",
                "memory.capture"
            ]
        );
    }
}
