//! Plugins as a user handles them: dropped into the directory, replaced,
//! removed, listed; configs checked and reloaded.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_tests::{
    Target, TempDir, Vigil, Webhook, eventually, example_wasm, free_port, install_plugins,
    vigil_bin, wasm,
};

/// Replaces a file the way a deploy should: write aside, then rename.
fn put(dir: &Path, name: &str, from: &Path) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

fn config(port: u16, target: &Target, hook: &Webhook, extra_rules: &str) -> String {
    format!(
        r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[[targets]]
job = "t"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"

[[rules]]
name = "High"
query = "model_error_ratio"
every = "200ms"
check = "threshold"
params = {{ above = 0.5 }}
{extra_rules}

{receiver}
"#,
        target = target.addr,
        receiver = hook.receiver_toml("hook")
    )
}

async fn plugin_version(v: &Vigil, name: &str) -> Option<String> {
    let p = v.get_json("/api/v1/plugins").await;
    p["data"]["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["version"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_added_replaced_and_removed_without_a_restart() {
    let dir = TempDir::new("hot");
    let plugins = dir.path().join("plugins");
    install_plugins(&plugins, &["check-threshold", "notify-webhook"]);
    let target = Target::start(1.0).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, config(port, &target, &hook, "")).unwrap();
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().unwrap(),
        &dir.path().join("log"),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the first firing notification",
        || async { (hook.alerts("firing").len() == 1).then_some(()) },
    )
    .await;
    let alert_before = v.get_json("/api/v1/alerts").await["data"]["alerts"][0].clone();

    // Replace threshold 0.1.0 with 0.2.0.
    let t = Instant::now();
    put(
        &plugins,
        "check_threshold.wasm",
        &wasm("fixture-threshold-v2"),
    );
    eventually(
        Duration::from_secs(5),
        "threshold 0.2.0 to be loaded",
        || async {
            (plugin_version(&v, "threshold").await.as_deref() == Some("0.2.0")).then_some(())
        },
    )
    .await;
    let took = t.elapsed();
    eventually(
        Duration::from_secs(5),
        "the rule to swap in the new version",
        || async {
            v.log_text()
                .contains("check plugin swapped in")
                .then_some(())
        },
    )
    .await;
    assert!(took < Duration::from_secs(3), "replacement took {took:?}");
    let evaluations = v.rule("High").await["evaluations"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rule = v.rule("High").await;
    assert!(
        rule["evaluations"].as_u64().unwrap() > evaluations,
        "the rule keeps evaluating: {rule}"
    );
    assert!(rule["last_error"].is_null(), "{rule}");
    let alert_after = v.get_json("/api/v1/alerts").await["data"]["alerts"][0].clone();
    assert_eq!(
        alert_after["active_at_ms"], alert_before["active_at_ms"],
        "the alert survived the swap"
    );
    assert_eq!(alert_after["state"], "firing");
    assert_eq!(
        hook.alerts("firing").len(),
        1,
        "no second notification for the same alert"
    );

    // Remove it: the rule pauses with a clear error, its alert is held.
    std::fs::remove_file(plugins.join("check_threshold.wasm")).unwrap();
    let err = eventually(
        Duration::from_secs(5),
        "the missing-plugin error",
        || async {
            v.rule("High").await["last_error"]
                .as_str()
                .map(str::to_string)
        },
    )
    .await;
    assert!(err.contains("\"threshold\" is not loaded"), "{err}");
    assert_eq!(
        v.get_json("/api/v1/alerts").await["data"]["alerts"][0]["state"],
        "firing"
    );

    // Put 0.1.0 back: the rule resumes.
    put(&plugins, "check_threshold.wasm", &wasm("check-threshold"));
    eventually(Duration::from_secs(5), "the rule to recover", || async {
        v.rule("High").await["last_error"].is_null().then_some(())
    })
    .await;

    // Drop in the out-of-tree example plugin, then reference it from the config.
    put(&plugins, "plugin_example.wasm", &example_wasm());
    eventually(
        Duration::from_secs(5),
        "the example plugin to be listed",
        || async { plugin_version(&v, "stuck").await },
    )
    .await;
    let frozen = r#"
[[rules]]
name = "Frozen"
query = "model_up"
every = "200ms"
check = "stuck"
params = { points = 3 }
"#;
    std::fs::write(&cfg, config(port, &target, &hook, frozen)).unwrap();
    let a = eventually(
        Duration::from_secs(10),
        "the stuck plugin's alert",
        || async {
            hook.alerts("firing")
                .into_iter()
                .find(|a| a["labels"]["alertname"] == "Frozen")
        },
    )
    .await;
    assert_eq!(a["labels"]["model"], "resnet");
    assert_eq!(
        v.get_json("/api/v1/alerts").await["data"]["alerts"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    v.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_reload_keeps_the_running_config() {
    let dir = TempDir::new("reload");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.0).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, config(port, &target, &hook, "")).unwrap();
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().unwrap(),
        &dir.path().join("log"),
    )
    .await;

    let broken = config(
        port,
        &target,
        &hook,
        "\n[[rules]]\nname = \"Bad\"\nquery = \"x\"\nevery = \"soon\"\ncheck = \"threshold\"\n",
    );
    std::fs::write(&cfg, &broken).unwrap();
    let log = eventually(Duration::from_secs(5), "the reload error", || async {
        let log = v.log_text();
        log.contains("configuration reload failed").then_some(log)
    })
    .await;
    let line = broken.lines().position(|l| l.contains("soon")).unwrap() + 1;
    assert!(
        log.contains(&format!(
            "vigil.toml:{line}:9: `every`: invalid duration \"soon\""
        )),
        "{log}"
    );
    let before = v.rule("High").await["evaluations"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rules = v.get_json("/api/v1/rules").await;
    assert_eq!(
        rules["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{rules}"
    );
    assert!(
        v.rule("High").await["evaluations"].as_u64().unwrap() > before,
        "old config keeps running"
    );
    let metrics = v.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"vigil_config_reloads_total{result="error"} 1"#),
        "{metrics}"
    );

    // A good edit applies, and a rule whose plugin params are bad does not.
    let good = config(
        port,
        &target,
        &hook,
        "\n[[rules]]\nname = \"Low\"\nquery = \"model_error_ratio\"\nevery = \"200ms\"\ncheck = \"threshold\"\nparams = { below = 0.5 }\n",
    );
    std::fs::write(&cfg, &good).unwrap();
    eventually(Duration::from_secs(10), "the new rule's alert", || async {
        hook.alerts("firing")
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "Low")
    })
    .await;
    v.stop().await;
}

#[test]
fn vigil_plugins_lists_plugins_and_explains_broken_files() {
    let dir = TempDir::new("list");
    install_plugins(
        dir.path(),
        &[
            "check-threshold",
            "check-ewma",
            "notify-webhook",
            "fixture-cli",
        ],
    );
    std::fs::write(dir.path().join("junk.wasm"), b"this is not wasm").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"not a plugin").unwrap();
    let out = Command::new(vigil_bin())
        .args(["plugins", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "broken files make the exit code 1:\n{text}"
    );
    assert!(
        text.contains("threshold 0.1.0 (check) [check_threshold.wasm]"),
        "{text}"
    );
    assert!(
        text.contains("ewma 0.1.0 (check) [check_ewma.wasm]"),
        "{text}"
    );
    assert!(
        text.contains("webhook 0.1.0 (notifier) [notify_webhook.wasm]"),
        "{text}"
    );
    assert!(
        text.contains("- above: Option<Levels>  Fire when"),
        "parameters are documented:\n{text}"
    );
    assert!(
        text.contains("BROKEN [junk.wasm]: not a valid WebAssembly component"),
        "{text}"
    );
    assert!(
        text.contains("BROKEN [fixture-cli.wasm]: wrong world"),
        "{text}"
    );
    assert!(!text.contains("README"), "{text}");
}

#[test]
fn vigil_check_reports_every_error_with_its_location() {
    let dir = TempDir::new("check");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        r#"plugin_dir = "plugins"
data_dir = "data"

[[rules]]
name = "A"
query = "histogram_count(rate(x[5m]))"
check = "threshold"
params = { above = 1 }

[[rules]]
name = "B"
query = "up"
check = "treshold"

[[rules]]
name = "C"
query = "up"
check = "threshold"
params = { abov = 1 }
annotations = { summary = "{{ $value | humanise }}" }
"#,
    )
    .unwrap();
    let out = Command::new(vigil_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let expect = [
        "vigil.toml:6:9: rule \"A\": invalid query: the function `histogram_count`",
        "vigil.toml:13:9: no check plugin named \"treshold\"",
        "(available: threshold)",
        "vigil.toml:19:12: rule \"C\": check plugin \"threshold\" rejected its parameters: invalid params: unknown field `abov`, expected one of `above`, `below`, `clear_above`, `clear_below`, `compare`, `quantile`, `min_points`\n",
        "vigil.toml:20:40: rule \"C\": annotation \"summary\": unknown function `humanise`",
        "did you mean `humanize`?",
        "4 error(s)",
    ];
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn vigil_check_points_at_the_parameter_a_check_rejects() {
    let dir = TempDir::new("check-params");
    install_plugins(&dir.path().join("plugins"), &["check-threshold"]);
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        r#"plugin_dir = "plugins"
data_dir = "data"

[[rules]]
name = "Type"
query = "up"
check = "threshold"
params = { below = 1, above = "x" }

[[rules]]
name = "Nested"
query = "up"
check = "threshold"

[rules.params]
compare = "max"
above = { warning = 0.5, critical = "high" }

[[rules]]
name = "Checked"
query = "up"
check = "threshold"
params = { above = 1, compare = "quantile", quantile = 2 }

[[rules]]
name = "Unknown"
query = "up"
check = "threshold"

[rules.params]
above = 1
min_point = 3

[[rules]]
name = "Unnamed"
query = "up"
check = "threshold"
params = { min_points = 3 }
"#,
    )
    .unwrap();
    let out = Command::new(vigil_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let rejected = "check plugin \"threshold\" rejected its parameters: invalid params:";
    let expect = [
        // A value of the wrong type: at the value.
        format!("vigil.toml:8:31: rule \"Type\": {rejected} `above`: invalid type: string \"x\""),
        // In a nested table, written under a header.
        format!("vigil.toml:17:37: rule \"Nested\": {rejected} `above.critical`: invalid type"),
        // Found by the plugin's own validation.
        format!("vigil.toml:23:56: rule \"Checked\": {rejected} `quantile` must be in [0, 1]"),
        // An unknown parameter: at its key.
        format!("vigil.toml:32:1: rule \"Unknown\": {rejected} unknown field `min_point`"),
        // No parameter to point at: the `params` table.
        format!("vigil.toml:38:10: rule \"Unnamed\": {rejected} set `above`, `below` or both"),
        "5 error(s)".to_string(),
    ];
    for e in expect {
        assert!(err.contains(&e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn the_example_config_checks_clean() {
    let dir = TempDir::new("example");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "check-ewma", "notify-webhook"],
    );
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vigil.toml"),
    )
    .unwrap();
    let text = example
        .replace(
            "plugin_dir = \"../target/plugins\"",
            "plugin_dir = \"plugins\"",
        )
        .replace(
            "data_dir = \"../target/vigil-example-data\"",
            "data_dir = \"data\"",
        );
    assert_ne!(
        text, example,
        "the example's plugin_dir and data_dir lines changed; update this test"
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(vigil_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 targets, 2 rules, 1 receivers)"));
}
