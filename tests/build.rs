//! Builds every Wasm guest the tests use: the bundled plugins, the hostile
//! fixtures and the out-of-tree example plugin, for `wasm32-wasip2`.
//!
//! Each build uses its own target directory under `target/`, so the nested
//! cargo never waits on the lock the outer build holds, and `cargo xtask
//! build-plugins` reuses the same artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn crates_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn cargo(target_dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
    ]);
    cmd
}

fn run(mut cmd: Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for the Wasm guests: {e}"));
    assert!(
        status.success(),
        "building the Wasm guests failed ({cmd:?}). Is the target installed? `rustup target add wasm32-wasip2` (`cargo xtask test` does it)"
    );
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    let wasm_dir = root.join("target/wasm");
    let mut cmd = cargo(&wasm_dir);
    cmd.current_dir(&root);
    for name in crates_in(&root.join("plugins"))
        .iter()
        .chain(&crates_in(&manifest.join("fixtures")))
    {
        cmd.args(["-p", name]);
    }
    run(cmd);

    let example_dir = root.join("target/example");
    let mut cmd = cargo(&example_dir);
    cmd.current_dir(root.join("examples/plugin-example"));
    run(cmd);

    println!(
        "cargo:rustc-env=VIGIL_WASM_DIR={}",
        wasm_dir.join("wasm32-wasip2/release").display()
    );
    println!(
        "cargo:rustc-env=VIGIL_EXAMPLE_WASM_DIR={}",
        example_dir.join("wasm32-wasip2/release").display()
    );
    println!(
        "cargo:rustc-env=VIGIL_FIXTURE_CRATES={}",
        crates_in(&manifest.join("fixtures")).join(",")
    );
    for dir in [
        "plugin-sdk",
        "plugins",
        "tests/fixtures",
        "examples/plugin-example/src",
        "examples/plugin-example/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
}
