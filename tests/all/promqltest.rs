//! Acceptance: Prometheus' own PromQL test files through Vigil's evaluator.
//!
//! Reads every `*.test` in `$VIGIL_PROMQLTEST_DIR` (default: the shared
//! Prometheus 2.42 files beside the repository), prints evals passed and
//! failed per file, and fails if any eval fails. The files are a sample of
//! PromQL, not a list of cases: nothing here knows their expressions.

use std::path::PathBuf;

use vigil_tests::promqltest;

fn test_dir() -> PathBuf {
    match std::env::var_os("VIGIL_PROMQLTEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/promqltest"
        )),
    }
}

#[test]
fn prometheus_promql_test_files_pass() {
    let dir = test_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: {} not found", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test files in {}", dir.display());
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut problems = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let cmds = match promqltest::parse(&text) {
            Ok(c) => c,
            Err(e) => {
                println!("{name}: cannot parse: {e}");
                failed += 1;
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let report = promqltest::run(&cmds);
        println!(
            "{name}: {} evals passed, {} failed",
            report.passed,
            report.failed.len()
        );
        for (line, why) in &report.failed {
            println!("  {name}:{line}: {why}");
            problems.push(format!("{name}:{line}: {why}"));
        }
        passed += report.passed;
        failed += report.failed.len();
    }
    println!("total: {passed} evals passed, {failed} failed");
    assert!(
        problems.is_empty(),
        "{failed} evals failed:\n{}",
        problems.join("\n")
    );
}
