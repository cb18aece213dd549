//! Compile-fail tests of the plugin macros: a wrong signature is a spanned
//! error, never a panic. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p vigil-plugin-sdk --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
