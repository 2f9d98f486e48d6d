//! Compile-time checks: each file in `tests/ui` makes one mistake (or, for
//! `three_mistakes.rs`, three) and its `.stderr` is the exact diagnostic. Regenerate
//! with `TRYBUILD=overwrite` on the pinned toolchain, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    // Cases that must compile (and run) cleanly.
    t.pass("pass/*.rs");
    // The expansion inputs and their checked-in expansions both compile (and run).
    t.pass("expand/*.rs");
}
