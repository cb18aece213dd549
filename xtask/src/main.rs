//! `cargo xtask`: the project's entry points.
//!
//! - `cargo xtask demo`: build the plugins, then run `vigil demo`.
//! - `cargo xtask test`: install what tests need, build everything, run every test.
//! - `cargo xtask build-plugins`: build the bundled plugins for `wasm32-wasip2`
//!   into `target/plugins/`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The bundled plugins, by crate name.
const PLUGINS: &[&str] = &[
    "check-threshold",
    "check-ewma",
    "check-trend",
    "check-burn-rate",
    "check-anomaly",
    "check-absent",
    "check-drift",
    "notify-webhook",
    "notify-email",
    "notify-slack",
    "notify-msteams",
    "notify-pagerduty",
    "notify-sms",
    "notify-alertmanager",
    "notify-remediation",
];

/// Debian packages the tests use: `prometheus` provides `promtool`, the
/// reference `vigil test` is compared against; `prometheus-alertmanager` is
/// the Alertmanager the notification pipeline is compared against;
/// `python3-aiosmtpd` is the real SMTP server the e-mail tests send to.
const DEBIAN_PACKAGES: &[&str] = &["prometheus", "prometheus-alertmanager", "python3-aiosmtpd"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins().map(|_| ()),
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <demo|test|build-plugins>");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Adds the wasm32-wasip2 target when it is missing.
fn ensure_wasm_target() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup not found ({e}); install the wasm32-wasip2 target by hand"))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Builds the bundled plugins and copies them to `target/plugins/`.
fn build_plugins() -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let root = root();
    let wasm_target = root.join("target/wasm");
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .env("CARGO_TARGET_DIR", &wasm_target)
        .args(["build", "--release", "--target", "wasm32-wasip2"]);
    for p in PLUGINS {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)?;
    let out = root.join("target/plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for p in PLUGINS {
        let file = format!("{}.wasm", p.replace('-', "_"));
        let from = wasm_target.join("wasm32-wasip2/release").join(&file);
        let to = out.join(&file);
        // Copy through a temporary name: the running demo reloads on change
        // and must never see half a file.
        let tmp = out.join(format!(".{file}.tmp"));
        std::fs::copy(&from, &tmp).map_err(|e| format!("copying {}: {e}", from.display()))?;
        std::fs::rename(&tmp, &to).map_err(|e| format!("renaming to {}: {e}", to.display()))?;
    }
    eprintln!("plugins in {}", out.display());
    Ok(out)
}

fn demo(extra: &[String]) -> Result<(), String> {
    let plugins = build_plugins()?;
    let mut cmd = cargo();
    cmd.current_dir(root())
        .args([
            "run",
            "-p",
            "vigil",
            "--bin",
            "vigil",
            "--",
            "demo",
            "--plugin-dir",
        ])
        .arg(plugins)
        .args(extra);
    run(&mut cmd)
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let mut update = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        update.arg("apt-get");
    }
    run(update.args(["update", "-q"]))?;
    let mut install = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        install.arg("apt-get");
    }
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing);
    run(&mut install)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs what tests need, builds the binary, runs every test.
fn test(extra: &[String]) -> Result<(), String> {
    ensure_wasm_target()?;
    apt_install(DEBIAN_PACKAGES)?;
    let root = root();
    run(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
    run(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The end-to-end tests run the real binary.
    run(cargo()
        .current_dir(&root)
        .args(["build", "-p", "vigil", "--bin", "vigil"]))?;
    let nextest = Command::new("cargo-nextest")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        // Doc tests first (nextest does not run them), so the run closes on
        // nextest's summary of every other test.
        run(cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--doc"]))?;
        run(cargo()
            .current_dir(&root)
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(extra))
    } else {
        run(cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(extra))
    }
}
