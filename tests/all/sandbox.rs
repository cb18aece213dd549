//! Hostile plugins: each is contained, reported with a clear reason, and
//! never delays a healthy rule beyond its deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use vigil::sandbox::{Batch, CheckInstance, Limits, PluginError, Sandbox, SeriesState, Status};
use vigil_tests::{TempDir, Vigil, eventually, fixture_crates, free_port, install_plugins, wasm};

const LIMITS: Limits = Limits {
    timeout: Duration::from_millis(200),
    memory_bytes: 32 * 1024 * 1024,
};

fn batch() -> (Batch, SeriesState) {
    (
        Batch {
            series: vec![1, 2],
            offsets: vec![0, 2, 3],
            timestamps: vec![1_000, 2_000, 1_000],
            values: vec![1.0, 2.0, 3.0],
        },
        SeriesState::empty(2),
    )
}

fn instance(sandbox: &Sandbox, crate_name: &str, params: serde_json::Value) -> CheckInstance {
    let plugin = sandbox
        .load_file(&wasm(crate_name))
        .unwrap_or_else(|e| panic!("{crate_name} should load: {e}"));
    CheckInstance::new(sandbox, plugin, &params, LIMITS)
        .unwrap_or_else(|e| panic!("{crate_name} should configure: {e}"))
}

/// Runs one evaluation and returns its error (or the verdict message).
fn eval(inst: &mut CheckInstance) -> (Duration, Result<Option<String>, PluginError>) {
    let (b, s) = batch();
    let started = Instant::now();
    let (_, _, r) = inst.evaluate(5_000, b, s);
    (started.elapsed(), r.map(|o| o.verdicts[0].message.clone()))
}

#[test]
fn every_fixture_has_a_test() {
    let tested = [
        "fixture-cli",
        "fixture-env",
        "fixture-fs",
        "fixture-loop",
        "fixture-membomb",
        "fixture-net",
        "fixture-panic",
        "fixture-recurse",
        "fixture-threshold-v2", // tests/all/plugins.rs
        "fixture-check-v0-1",   // tests/all/checks.rs
    ];
    for f in fixture_crates() {
        assert!(
            tested.contains(&f),
            "fixture {f} has no test in tests/all/sandbox.rs"
        );
    }
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline_and_the_instance_is_rebuilt() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-loop", serde_json::json!({}));
    for _ in 0..2 {
        let (took, r) = eval(&mut inst);
        assert!(matches!(r, Err(PluginError::Timeout(_))), "{r:?}");
        assert!(took < Duration::from_millis(600), "stopped after {took:?}");
        assert!(
            took >= Duration::from_millis(150),
            "stopped too early: {took:?}"
        );
    }
}

#[test]
fn memory_bomb_hits_the_cap() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-membomb", serde_json::json!({}));
    let (_, r) = eval(&mut inst);
    assert!(matches!(r, Err(PluginError::OutOfMemory(_))), "{r:?}");
    assert_eq!(
        r.unwrap_err().to_string(),
        "exceeded its memory limit of 32 MiB"
    );
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-recurse", serde_json::json!({}));
    let (_, r) = eval(&mut inst);
    assert!(matches!(r, Err(PluginError::StackOverflow)), "{r:?}");
}

#[test]
fn panic_message_reaches_the_host_every_time() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-panic", serde_json::json!({}));
    for _ in 0..2 {
        let (_, r) = eval(&mut inst);
        match r {
            Err(PluginError::Panic(msg)) => {
                assert!(msg.contains("fixture panic: deliberate"), "{msg}")
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    }
}

#[test]
fn files_are_not_there() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-fs", serde_json::json!({}));
    let (_, r) = eval(&mut inst);
    match r {
        Err(PluginError::Failed(msg)) => assert!(msg.starts_with("fs:"), "{msg}"),
        other => panic!("the plugin must not read files, got {other:?}"),
    }
}

#[test]
fn sockets_are_denied_even_to_a_live_loopback_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(
        &sandbox,
        "fixture-net",
        serde_json::json!({ "addr": addr.to_string() }),
    );
    let (_, r) = eval(&mut inst);
    match r {
        Err(PluginError::Failed(msg)) => assert!(msg.starts_with("net:"), "{msg}"),
        other => panic!("the plugin must not open sockets, got {other:?}"),
    }
    assert!(
        listener.accept().is_err(),
        "nothing connected to the live port"
    );
}

#[test]
fn environment_and_arguments_are_empty() {
    // SAFETY: tests in this binary do not read this variable concurrently.
    unsafe { std::env::set_var("VIGIL_TEST_SECRET", "hunter2") };
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let mut inst = instance(&sandbox, "fixture-env", serde_json::json!({}));
    let (_, r) = eval(&mut inst);
    assert_eq!(r.unwrap(), Some("env: empty".to_string()));
}

#[test]
fn wrong_world_and_invalid_bytes_are_rejected_with_reasons() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let err = sandbox.load_file(&wasm("fixture-cli")).unwrap_err();
    assert!(matches!(err, PluginError::WrongWorld(_)), "{err}");
    assert!(err.to_string().contains("vigil:plugin/check"), "{err}");
    let err = sandbox
        .load_bytes(b"\0asm\x01\0\0\0garbage", Path::new("junk.wasm"))
        .unwrap_err();
    assert!(matches!(err, PluginError::Invalid(_)), "{err}");
    let err = sandbox
        .load_bytes(b"not wasm at all", Path::new("junk.wasm"))
        .unwrap_err();
    assert!(matches!(err, PluginError::Invalid(_)), "{err}");
    // A notifier is not a check.
    let notifier = sandbox.load_file(&wasm("notify-webhook")).unwrap();
    let err = CheckInstance::new(&sandbox, notifier, &serde_json::json!({}), LIMITS)
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::KindMismatch { .. }), "{err}");
}

#[test]
fn bad_params_fail_at_configure_with_the_plugins_message() {
    let sandbox = Sandbox::new(None, LIMITS).unwrap();
    let plugin = sandbox.load_file(&wasm("check-threshold")).unwrap();
    let err = CheckInstance::new(
        &sandbox,
        plugin.clone(),
        &serde_json::json!({ "abov": 1.0 }),
        LIMITS,
    )
    .err()
    .unwrap();
    assert!(matches!(err, PluginError::Configure(_)), "{err}");
    assert!(err.to_string().contains("abov"), "{err}");
    let mut ok = CheckInstance::new(
        &sandbox,
        plugin,
        &serde_json::json!({ "above": 1.5 }),
        LIMITS,
    )
    .unwrap();
    let (b, s) = batch();
    let (_, _, out) = ok.evaluate(5_000, b, s);
    let out = out.unwrap();
    assert_eq!(out.verdicts[0].status, Status::Firing);
    assert_eq!(out.verdicts[1].status, Status::Firing);
}

/// Through the real binary: a looping rule beside a healthy one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_rule_never_stalls_a_healthy_one() {
    let dir = TempDir::new("hostile");
    let plugins = dir.path().join("plugins");
    install_plugins(
        &plugins,
        &["check-threshold", "fixture-loop", "fixture-panic"],
    );
    let target = vigil_tests::Target::start(0.5).await;
    let port = free_port();
    let text = format!(
        r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[sandbox]
timeout = "300ms"

[[targets]]
job = "t"
url = "http://{target}/metrics"
interval = "100ms"
timeout = "90ms"

[[rules]]
name = "Healthy"
query = "model_error_ratio"
every = "100ms"
check = "threshold"
params = {{ above = 1.0 }}

[[rules]]
name = "Looping"
query = "model_error_ratio"
every = "100ms"
check = "fixture-loop"

[[rules]]
name = "Panicking"
query = "model_error_ratio"
every = "100ms"
check = "fixture-panic"
"#,
        target = target.addr
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).unwrap();
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().unwrap(),
        &dir.path().join("log"),
    )
    .await;
    let before = v.rule("Healthy").await["evaluations"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let healthy = v.rule("Healthy").await;
    let after = healthy["evaluations"].as_u64().unwrap_or(0);
    // 3 s at 100 ms is 30 evaluations; allow for a loaded machine, but a
    // healthy rule stuck behind a 300 ms loop would manage at most ~10.
    assert!(
        after - before >= 18,
        "healthy rule evaluated {} times in 3 s",
        after - before
    );
    assert!(healthy["last_error"].is_null(), "{healthy}");
    let looping = eventually(
        Duration::from_secs(5),
        "the looping rule's error",
        || async {
            let r = v.rule("Looping").await;
            r["last_error"].as_str().map(str::to_string)
        },
    )
    .await;
    assert!(looping.contains("time limit of 300ms"), "{looping}");
    let panicking = v.rule("Panicking").await;
    assert!(
        panicking["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("fixture panic: deliberate"),
        "{panicking}"
    );
    let metrics = v.get_text("/metrics").await;
    assert!(
        metrics
            .contains(r#"vigil_rule_evaluation_failures_total{rule="Looping",reason="timeout"}"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"vigil_rule_evaluation_failures_total{rule="Panicking",reason="panic"}"#),
        "{metrics}"
    );
    v.stop().await;
}

#[test]
fn compiled_plugins_are_cached_by_content_and_reused_after_a_restart() {
    let dir = TempDir::new("cache");
    let cwasm = |d: &Path| -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for sub in std::fs::read_dir(d).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.path().extension().is_some_and(|e| e == "cwasm") {
                    out.push(f.path());
                }
            }
        }
        out
    };
    let first = Sandbox::new(Some(dir.path()), LIMITS).unwrap();
    let a = first.load_file(&wasm("check-threshold")).unwrap();
    let files = cwasm(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&a.sha256),
        "{name} is keyed by the .wasm hash"
    );
    assert!(
        files[0].parent().unwrap().ends_with("wasmtime-48.0.8"),
        "and by the wasmtime version"
    );
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A new engine (a restart) loads the artifact instead of recompiling.
    std::thread::sleep(Duration::from_millis(20));
    let second = Sandbox::new(Some(dir.path()), LIMITS).unwrap();
    let b = second.load_file(&wasm("check-threshold")).unwrap();
    assert_eq!(a.info, b.info);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        written,
        "not rewritten"
    );
    let mut inst =
        CheckInstance::new(&second, b, &serde_json::json!({ "above": 1.5 }), LIMITS).unwrap();
    let (bt, st) = batch();
    let (_, _, out) = inst.evaluate(5_000, bt, st);
    assert_eq!(out.unwrap().verdicts[0].status, Status::Firing);

    // Other bytes, another entry.
    second.load_file(&wasm("check-ewma")).unwrap();
    assert_eq!(cwasm(dir.path()).len(), 2);
}
