//! Compile-time guarantees of the local deployment's contexts.

#[test]
fn contexts_enforce_convex_rules_by_type() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/local/*.rs");
}
