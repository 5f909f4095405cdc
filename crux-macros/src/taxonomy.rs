//! The canonical primitives of the Crux taxonomy (v5 plus the later additions), which
//! `root = "..."` must name. A proc-macro crate cannot share items with the runtime, so the
//! runtime keeps the same list in `crux-runtime/src/taxonomy.rs`.

/// Every canonical primitive, sorted.
pub const PRIMITIVES: &[&str] = &[
    "agent.run",
    "cache.lookup",
    "citation.check",
    "compaction.run",
    "composition.branch",
    "composition.consensus",
    "composition.join",
    "composition.parallel",
    "composition.pipeline",
    "composition.swarm",
    "composition.vote",
    "constraint.check",
    "constraint.retry",
    "context.cache",
    "context.predicate",
    "context.resolve",
    "corpus.sync",
    "cost.record",
    "custom.operation",
    "defer.run",
    "defer.scheduled",
    "delegate.invoke",
    "embedding.call",
    "eval.case",
    "eval.run",
    "evidence.record",
    "feedback.record",
    "flow.run",
    "flow.step",
    "flow.suspension",
    "generation.call",
    "generation.stream",
    "generation.stream.attempt",
    "guardrail.run",
    "handoff.prepare",
    "indexing.pipeline",
    "ingest.parse",
    "mcp.connect",
    "mcp.discover",
    "media.describe",
    "media.generate_image",
    "media.generate_speech",
    "media.transcribe",
    "memory.capture",
    "memory.read",
    "memory.write",
    "plan.operation",
    "prompt.budget",
    "prompt.resolve",
    "retrieval.pipeline",
    "retrieval.query",
    "retrieval.recipe",
    "retrieval.retrieve",
    "retrieval.stage",
    "retrieval.step",
    "routing.cascade",
    "routing.fallback",
    "routing.retry",
    "routing.router",
    "routing.split",
    "run",
    "runtime.convex.action",
    "runtime.convex.flush",
    "runtime.convex.mutation",
    "runtime.convex.query",
    "runtime.convex.resume",
    "runtime.convex.schedule",
    "scoring.judge",
    "security.warning",
    "skill.load",
    "task.operation",
    "tool.approval",
    "tool.call",
    "workspace.operation",
];

/// Primitives added after the v5 fixture (crux-ts-semantics.md §7.4).
#[cfg(test)]
const LATER_ADDITIONS: &[&str] = &[
    "evidence.record",
    "generation.stream.attempt",
    "memory.capture",
];

/// Whether `name` is a canonical primitive.
pub fn is_primitive(name: &str) -> bool {
    PRIMITIVES.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn primitives_are_sorted_and_unique() {
        assert!(PRIMITIVES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_primitive("agent.run"));
        assert!(is_primitive("generation.stream.attempt"));
        assert!(!is_primitive("agent"));
    }

    #[test]
    fn primitives_match_the_runtime_taxonomy() {
        // A proc-macro crate cannot share items with the runtime, so the list is kept twice;
        // the compile-time check and the records must never disagree.
        let runtime: Vec<&str> = crux_runtime::taxonomy::PRIMITIVES
            .iter()
            .map(|(primitive, _)| *primitive)
            .collect();
        assert_eq!(PRIMITIVES, runtime.as_slice());
    }

    #[test]
    fn primitives_match_the_shared_fixture_plus_later_additions() {
        // The shared references sit beside the checkout (`../shared` from the workspace).
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("shared/reference/fixtures/taxonomy.json"))
            .find(|path| path.is_file());
        let Some(fixture) = fixture else {
            eprintln!("skipped: shared/reference/fixtures/taxonomy.json not found");
            return;
        };
        let text = std::fs::read_to_string(&fixture).expect("taxonomy.json is readable");
        let json: serde_json::Value = serde_json::from_str(&text).expect("taxonomy.json parses");
        let families = json["primitiveFamilies"]
            .as_object()
            .expect("taxonomy.json has primitiveFamilies");
        let mut expected: BTreeSet<&str> = families.keys().map(String::as_str).collect();
        expected.extend(LATER_ADDITIONS);
        let ours: BTreeSet<&str> = PRIMITIVES.iter().copied().collect();
        assert_eq!(ours, expected);
    }
}
