//! The README's first command: `vigil demo` shows alerts firing and
//! resolving within a minute, on the console, at the webhook sink and on
//! the status page.

use std::process::Stdio;
use std::time::Duration;

use vigil_tests::{TempDir, eventually, free_port, install_plugins, vigil_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fires_and_resolves_within_a_minute() {
    let dir = TempDir::new("demo");
    let plugins = dir.path().join("plugins");
    install_plugins(
        &plugins,
        &[
            "check-threshold",
            "check-ewma",
            "check-anomaly",
            "check-absent",
            "notify-webhook",
        ],
    );
    let port = free_port();
    let log = dir.path().join("demo.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = tokio::process::Command::new(vigil_bin())
        .args(["demo", "--plugin-dir"])
        .arg(&plugins)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    // The error spike starts 8 s in and lasts 15 s; `for` is 3 s.
    eventually(
        Duration::from_secs(40),
        "the spike to fire at the sink",
        || async {
            text()
                .lines()
                .any(|l| {
                    l.contains("webhook sink received [FIRING] ModelErrorRateHigh:")
                        && l.contains("of requests to densenet_onnx fail")
                })
                .then_some(())
        },
    )
    .await;
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("ModelErrorRateHigh") && page.contains("firing"),
        "{page}"
    );
    assert!(
        text().contains("[FIRING] {alertname=\"ModelErrorRateHigh\""),
        "console receiver"
    );
    eventually(
        Duration::from_secs(40),
        "the spike to resolve at the sink",
        || async {
            text()
                .contains("webhook sink received [RESOLVED] ModelErrorRateHigh")
                .then_some(())
        },
    )
    .await;
    // The latency climb (31 s to 51 s into the cycle) leaves the `ewma`
    // band: the API gives the band the check expected, below the value,
    // and the status page draws it.
    let api = format!("http://127.0.0.1:{port}/api/v1/alerts");
    let home = format!("http://127.0.0.1:{port}/");
    let (value, upper) = eventually(
        Duration::from_secs(45),
        "the ewma latency alert with its band, in the API and on the page",
        || async {
            let v: serde_json::Value = reqwest::get(&api).await.ok()?.json().await.ok()?;
            let page = reqwest::get(&home).await.ok()?.text().await.ok()?;
            let found = v["data"]["alerts"].as_array()?.iter().find_map(|a| {
                (a["labels"]["alertname"] == "ModelLatencyAnomalous" && a["state"] == "firing")
                    .then(|| Some((a["value"].as_f64()?, a["band"]["upper"].as_f64()?)))
                    .flatten()
            })?;
            page.contains("<svg class=band").then_some(found)
        },
    )
    .await;
    assert!(
        value > upper,
        "the value {value} is above the band's upper {upper}"
    );
    let _ = child.kill().await;
}
