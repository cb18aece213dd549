//! Golden tests for configuration errors.
//!
//! Each `tests/golden/config/NAME.toml` is parsed as if it were a file named
//! `NAME.toml`; the `Display` of its errors must equal `NAME.err`, and an
//! empty `NAME.err` means the file is valid. Run with `VIGIL_BLESS=1` to
//! rewrite the `.err` files from the current output.

use std::fs;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The test crate lives in `tests/`; from any other crate of the
    // workspace, look in the workspace's `tests/`.
    ["golden/config", "../tests/golden/config"]
        .iter()
        .map(|dir| manifest.join(dir))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("golden/config"))
}

fn render(name: &str, text: &str) -> String {
    match vigil::config::parse(Path::new(name), text) {
        Ok(_) => String::new(),
        Err(errors) => format!("{errors}\n"),
    }
}

#[test]
fn config_errors_match_golden_files() {
    let dir = golden_dir();
    let bless = std::env::var("VIGIL_BLESS").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());

    let mut failures = Vec::new();
    for toml_path in &cases {
        let name = toml_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(toml_path).unwrap();
        let actual = render(&name, &text);
        let err_path = toml_path.with_extension("err");
        if bless {
            fs::write(&err_path, &actual).unwrap();
            continue;
        }
        match fs::read_to_string(&err_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}:\n--- expected ({})\n{expected}--- actual\n{actual}",
                err_path.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: missing {} (run with VIGIL_BLESS=1 to create it); actual:\n{actual}",
                err_path.display()
            )),
        }
    }

    // Every expected output has its input.
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "err") && !path.with_extension("toml").exists()
        {
            failures.push(format!("{}: no matching .toml", path.display()));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {} golden config cases differ (VIGIL_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The valid example parses to the values it spells out, so the golden
/// `valid.toml` stays a real, complete configuration.
#[test]
fn the_valid_golden_config_is_complete() {
    let path = golden_dir().join("valid.toml");
    let text = fs::read_to_string(&path).unwrap();
    let config = vigil::config::parse(Path::new("valid.toml"), &text).unwrap();
    assert!(!config.targets.is_empty());
    assert!(!config.rules.is_empty());
    assert!(!config.receivers.is_empty());
    assert!(!config.route.routes.is_empty());
}
