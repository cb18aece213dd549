//! Test harness: the real `vigil` binary, real Wasm plugins, and loopback
//! servers the tests start and stop themselves.

pub mod nab;
pub mod promqltest;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};

/// Directory of the Wasm guests built by `build.rs`.
pub fn wasm_dir() -> PathBuf {
    PathBuf::from(env!("VIGIL_WASM_DIR"))
}

/// A built guest by crate name: a library crate's file has underscores
/// (`check_threshold.wasm`), a binary crate's keeps its dashes.
pub fn wasm(crate_name: &str) -> PathBuf {
    let lib = wasm_dir().join(format!("{}.wasm", crate_name.replace('-', "_")));
    if lib.exists() {
        lib
    } else {
        wasm_dir().join(format!("{crate_name}.wasm"))
    }
}

/// The out-of-tree example plugin.
pub fn example_wasm() -> PathBuf {
    PathBuf::from(env!("VIGIL_EXAMPLE_WASM_DIR")).join("plugin_example.wasm")
}

/// The hostile fixture crates, as `build.rs` found them.
pub fn fixture_crates() -> Vec<&'static str> {
    env!("VIGIL_FIXTURE_CRATES")
        .split(',')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `vigil` binary: `VIGIL_BIN`, or `target/debug/vigil` next to the tests.
pub fn vigil_bin() -> PathBuf {
    if let Ok(p) = std::env::var("VIGIL_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let bin = root.join("target/debug/vigil");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p vigil` (`cargo xtask test` does)",
        bin.display()
    );
    bin
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "vigil-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Keep what a failed test left behind when asked to.
        if std::env::var_os("VIGIL_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies built plugins into a plugin directory.
pub fn install_plugins(dir: &Path, crates: &[&str]) {
    std::fs::create_dir_all(dir).expect("plugin dir");
    for c in crates {
        let from = wasm(c);
        let to = dir.join(from.file_name().expect("file name"));
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `vigil run`, killed on drop.
pub struct Vigil {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Vigil {
    /// Starts `vigil run --config <config>` and waits until it is ready.
    pub async fn start(config: &Path, listen: SocketAddr, log: &Path) -> Vigil {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = tokio::process::Command::new(vigil_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("VIGIL_LOG", "info,vigil=debug")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn vigil");
        let v = Vigil {
            child,
            addr: listen,
            log: log.to_path_buf(),
            config: config.to_path_buf(),
        };
        v.wait_ready().await;
        v
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/-/ready", self.addr);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("vigil did not become ready; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("http://{}{path}", self.addr);
        reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    pub async fn get_text(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.addr);
        reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    /// The status of one rule from `/api/v1/rules`.
    pub async fn rule(&self, name: &str) -> serde_json::Value {
        let v = self.get_json("/api/v1/rules").await;
        v["data"]["groups"][0]["rules"]
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Stops the process the hard way (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the process gracefully (SIGTERM) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback `/metrics` target exposing one gauge the test sets.
pub struct Target {
    pub addr: SocketAddr,
    value: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start(initial: f64) -> Target {
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind target");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route(
                "/metrics",
                get(|State(v): State<Arc<AtomicU64>>| async move {
                    let x = f64::from_bits(v.load(Ordering::Relaxed));
                    format!(
                        "# TYPE model_error_ratio gauge\nmodel_error_ratio{{model=\"resnet\"}} {x}\n# TYPE model_up gauge\nmodel_up{{model=\"resnet\"}} 1\n"
                    )
                }),
            )
            .with_state(value.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Target { addr, value, task }
    }

    pub fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bodies a webhook received, with their arrival time.
type Received = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

/// A loopback webhook receiver that records every body, with arrival time.
pub struct Webhook {
    pub addr: SocketAddr,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route(
                "/hook",
                post(|State(r): State<Received>, body: Bytes| async move {
                    let v: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    r.lock().expect("lock").push((Instant::now(), v));
                    "ok"
                }),
            )
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Config for a receiver `name` posting here, and a route to it.
    pub fn receiver_toml(&self, name: &str) -> String {
        format!(
            "[[receivers]]\nname = \"{name}\"\nnotifier = \"webhook\"\nparams = {{ url = \"{}\" }}\nallow_hosts = [\"{}\"]\n\n[route]\nreceiver = \"{name}\"\n",
            self.url(),
            self.addr
        )
    }

    pub fn received(&self) -> Vec<(Instant, serde_json::Value)> {
        self.received.lock().expect("lock").clone()
    }

    /// Alerts received so far with this status, flattened.
    pub fn alerts(&self, status: &str) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .flat_map(|(_, v)| v["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == status)
            .collect()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}
