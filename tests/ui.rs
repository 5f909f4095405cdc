//! Compile-pass and compile-fail cases for the attribute macros. Bless `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test ui` on the CI machine kind (rustc output drifts).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
