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
        Vigil::start_with_env(config, listen, log, &[]).await
    }

    /// [`Vigil::start`] with extra environment variables for the process.
    pub async fn start_with_env(
        config: &Path,
        listen: SocketAddr,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Vigil {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = tokio::process::Command::new(vigil_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("VIGIL_LOG", "info,vigil=debug")
            .envs(env.iter().copied())
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn vigil");
        let mut v = Vigil {
            child,
            addr: listen,
            log: log.to_path_buf(),
            config: config.to_path_buf(),
        };
        v.wait_ready().await;
        v
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/-/ready", self.addr);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "vigil exited ({status}) before it was ready; log:\n{}",
                    self.log_text()
                );
            }
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

/// One request a [`Webhook`] accepted.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Default)]
struct HookState {
    accepted: Mutex<Vec<Request>>,
    /// Every attempt, accepted or not.
    attempts: AtomicU64,
    /// The status code to answer with; 0 means 200.
    status: std::sync::atomic::AtomicU16,
}

/// A loopback HTTP receiver that records every request it accepts (any
/// path), with arrival time; it can be told to fail.
pub struct Webhook {
    pub addr: SocketAddr,
    state: Arc<HookState>,
    task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        Webhook::start_on(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind webhook"),
        )
        .await
    }

    /// Serves on a listener the caller bound (to reuse an address).
    pub async fn start_on(listener: tokio::net::TcpListener) -> Webhook {
        let state = Arc::new(HookState::default());
        let addr = listener.local_addr().expect("addr");
        async fn handle(
            State(s): State<Arc<HookState>>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> axum::http::StatusCode {
            s.attempts.fetch_add(1, Ordering::SeqCst);
            let code = match s.status.load(Ordering::SeqCst) {
                0 => 200,
                c => c,
            };
            let status =
                axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
            if status.is_success() {
                s.accepted.lock().expect("lock").push(Request {
                    at: Instant::now(),
                    path: uri.path().to_string(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            status
        }
        let app = Router::new()
            .fallback(post(handle))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer every request with this status code from now on.
    pub fn set_status(&self, code: u16) {
        self.state.status.store(code, Ordering::SeqCst);
    }

    /// Requests received so far, accepted or not.
    pub fn attempts(&self) -> u64 {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// Config for a receiver `name` posting here, and a route to it that
    /// notifies each alert on its own, at once.
    pub fn receiver_toml(&self, name: &str) -> String {
        format!(
            "[[receivers]]\nname = \"{name}\"\nnotifier = \"webhook\"\nparams = {{ url = \"{}\" }}\nallow_hosts = [\"{}\"]\n\n[route]\nreceiver = \"{name}\"\ngroup_by = [\"...\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n",
            self.url(),
            self.addr
        )
    }

    /// Accepted requests.
    pub fn requests(&self) -> Vec<Request> {
        self.state.accepted.lock().expect("lock").clone()
    }

    /// Accepted JSON bodies (`null` for others), with arrival time.
    pub fn received(&self) -> Vec<(Instant, serde_json::Value)> {
        self.requests()
            .into_iter()
            .map(|r| {
                (
                    r.at,
                    serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect()
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

// SMTP: a real server on loopback, for e-mail deliveries.

/// How an [`SmtpServer`] behaves; the default accepts every message over a
/// plain connection without authentication.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Offer and require STARTTLS with this certificate and key (PEM files).
    pub starttls: Option<(PathBuf, PathBuf)>,
    /// TLS from the first byte (SMTPS) with this certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require AUTH (PLAIN or LOGIN) with this user name and password.
    pub auth: Option<(String, String)>,
    /// Answer every RCPT with this reply, like `"550 5.1.1 No such user"`.
    pub rcpt_reply: Option<String>,
    /// Answer the first `count` commands of `stage` (`"mail"`, `"rcpt"` or
    /// `"data"`) with `reply`, like `"451 4.3.0 Try again later"`, then
    /// accept.
    pub fail_first: Option<SmtpFailures>,
}

/// Replies an [`SmtpServer`] gives before it starts accepting.
#[derive(Debug, Clone)]
pub struct SmtpFailures {
    pub count: u32,
    pub stage: &'static str,
    pub reply: String,
}

/// One message an [`SmtpServer`] accepted: the envelope, the raw data, and
/// the message as Python's `email` package parsed it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (MAIL FROM).
    pub mail_from: String,
    /// The envelope recipients (RCPT TO), in order.
    pub rcpt_tos: Vec<String>,
    /// The message as sent, headers and MIME parts undecoded.
    pub data: String,
    /// The name the client gave in EHLO.
    pub helo: String,
    /// The user name the client authenticated as.
    pub login: Option<String>,
    /// Whether the session was encrypted (STARTTLS or SMTPS).
    pub tls: bool,
    /// The client's port: two messages from one port shared a connection.
    pub peer_port: u16,
    /// Every header in order, values decoded (RFC 2047 words included).
    pub headers: Vec<(String, String)>,
    /// The `Date` header as seconds since the epoch, if it parsed.
    pub date_epoch: Option<f64>,
    /// The top-level content type, like `multipart/alternative`.
    pub content_type: String,
    /// Each leaf part: its content type and body, decoded, with `\n` line
    /// breaks.
    pub parts: Vec<(String, String)>,
}

impl ReceivedMail {
    fn from_json(v: &serde_json::Value) -> ReceivedMail {
        let s = |key: &str| v[key].as_str().unwrap_or_default().to_string();
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let items = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        let headers = items("headers")
            .iter()
            .map(|h| (text(h.get(0)), text(h.get(1))))
            .collect();
        let parts = items("parts")
            .iter()
            .map(|p| (text(p.get("content_type")), text(p.get("body"))))
            .collect();
        ReceivedMail {
            mail_from: s("mail_from"),
            rcpt_tos: strings(&v["rcpt_tos"]),
            data: s("data"),
            helo: s("helo"),
            login: v["login"].as_str().map(String::from),
            tls: v["tls"].as_bool().unwrap_or(false),
            peer_port: v["peer_port"].as_u64().unwrap_or(0) as u16,
            headers,
            date_epoch: v["date_epoch"].as_f64(),
            content_type: s("content_type"),
            parts,
        }
    }

    /// Every value of a header, case-insensitively.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).first().copied()
    }
}

/// A real SMTP server (aiosmtpd, Debian's `python3-aiosmtpd`) on
/// 127.0.0.1 and a free port, running `tests/smtp/server.py`; killed on
/// drop. Each accepted message lands in its own directory as a JSON file.
pub struct SmtpServer {
    pub port: u16,
    child: std::process::Child,
    /// Holds the server's stdout open: it printed only its port.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    dir: TempDir,
}

impl SmtpServer {
    /// A server that accepts everything.
    pub fn start() -> SmtpServer {
        SmtpServer::with(SmtpOptions::default())
    }

    /// A server that behaves as `options` say.
    pub fn with(options: SmtpOptions) -> SmtpServer {
        use std::io::BufRead;

        let dir = TempDir::new("smtp");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir_all(&mail_dir).expect("mail dir");
        let python = std::env::var_os("VIGIL_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(&script).arg("--dir").arg(&mail_dir);
        if let Some((cert, key)) = &options.starttls {
            cmd.arg("--starttls").arg(cert).arg(key);
        }
        if let Some((cert, key)) = &options.tls {
            cmd.arg("--tls").arg(cert).arg(key);
        }
        if let Some((user, password)) = &options.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if let Some(reply) = &options.rcpt_reply {
            cmd.arg("--rcpt-reply").arg(reply);
        }
        if let Some(f) = &options.fail_first {
            cmd.args(["--fail-first", &f.count.to_string(), "--fail-at", f.stage])
                .arg("--fail-reply")
                .arg(&f.reply);
        }
        let log = dir.path().join("server.log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let started = rx.recv_timeout(Duration::from_secs(20));
        let port = started
            .as_ref()
            .ok()
            .and_then(|(line, _)| line.trim().strip_prefix("PORT ")?.parse::<u16>().ok());
        let (Some(port), Ok((_, reader))) = (port, started) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP test server did not start (needs python3-aiosmtpd: `apt-get install python3-aiosmtpd`, which `cargo xtask test` does); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        SmtpServer {
            port,
            child,
            _stdout: reader,
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The messages accepted so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .map(|v| ReceivedMail::from_json(&v))
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        eventually(
            timeout,
            &format!("{n} e-mail(s) at the SMTP server"),
            || async {
                let got = self.received();
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }

    /// What the server logged (aiosmtpd writes its warnings here).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Benchmarks beside Prometheus: the peer process, process figures, and
// values read from a `/metrics` page.

/// A running Prometheus (Debian's `prometheus` package, 2.42; another
/// binary with `VIGIL_PROMETHEUS`) on a loopback port, killed on drop.
pub struct Prometheus {
    child: std::process::Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` with this config file, storing its TSDB in
    /// `data_dir`, plus `args`; waits until it is ready.
    pub async fn start(config: &Path, data_dir: &Path, log: &Path, args: &[&str]) -> Prometheus {
        let bin = std::env::var_os("VIGIL_PROMETHEUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = std::process::Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data_dir.display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): `apt-get install prometheus`",
                    bin.display()
                )
            });
        let mut p = Prometheus {
            child,
            addr,
            log: log.to_path_buf(),
        };
        let url = format!("http://{addr}/-/ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) before it was ready; log:\n{}",
                    p.log_text()
                );
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready; log:\n{}",
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its own `/metrics` page.
    pub async fn metrics(&self) -> String {
        get_text(&format!("http://{}/metrics", self.addr)).await
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
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET's body, or the empty string when it fails.
pub async fn get_text(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// Resident memory now (`VmRSS`).
    pub rss_bytes: u64,
    /// The most resident memory so far (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User plus system CPU time so far.
    pub cpu_seconds: f64,
}

impl ProcStats {
    /// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`; zeros when the
    /// process is gone.
    pub fn of(pid: u32) -> ProcStats {
        let mut s = ProcStats::default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |k| k * 1024)
        };
        s.rss_bytes = kib("VmRSS:");
        s.peak_rss_bytes = kib("VmHWM:");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields, in clock ticks (USER_HZ, 100 on Linux).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
            s.cpu_seconds = (tick(11) + tick(12)) / 100.0;
        }
        s
    }
}

/// The value of the series `name{labels}` on a `/metrics` page, matching
/// the label part exactly as written (`""` for none), like
/// `metric_value(text, "up", r#"job="x""#)`.
pub fn metric_value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(&series)?;
        let v = rest.strip_prefix(' ')?.split_whitespace().next()?;
        v.parse().ok()
    })
}

/// The sum of every series of `name` on a `/metrics` page whose label part
/// contains `filter` (`""` for all).
pub fn metric_sum(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            if !labels.contains(filter) {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Sorted durations (or any figures) summarised: median, p90, min, max.
pub fn summary(values: &mut [f64]) -> Option<(f64, f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    Some((at(0.5), at(0.9), values[0], values[values.len() - 1]))
}

// Alertmanager: a real one on loopback, the reference for the notification
// pipeline.

/// The Alertmanager binary: `VIGIL_TEST_ALERTMANAGER`, or Debian's
/// `/usr/bin/prometheus-alertmanager`; `None` when it is not installed.
pub fn alertmanager_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("VIGIL_TEST_ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-alertmanager"));
    bin.exists().then_some(bin)
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`, 0.25) on
/// 127.0.0.1 and a free port, with gossip off and its state in a temporary
/// directory; killed on drop.
pub struct Alertmanager {
    pub addr: SocketAddr,
    child: std::process::Child,
    dir: TempDir,
}

impl Alertmanager {
    /// Starts one with `config` (Alertmanager's YAML) and waits until it is
    /// ready. Without the binary, prints a SKIPPED line naming `test` and
    /// returns `None`: the caller returns too (CI installs the package).
    pub async fn start(test: &str, config: &str) -> Option<Alertmanager> {
        let Some(bin) = alertmanager_bin() else {
            eprintln!(
                "SKIPPED {test}: prometheus-alertmanager is not installed (`apt-get install prometheus-alertmanager`, which `cargo xtask test` does)"
            );
            return None;
        };
        let dir = TempDir::new("alertmanager");
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(&cfg, config).expect("write alertmanager.yml");
        // A free port can be taken before Alertmanager binds it: try again
        // on another one.
        let log = dir.path().join("alertmanager.log");
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let mut child = std::process::Command::new(&bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            if alertmanager_ready(&mut child, addr).await {
                return Some(Alertmanager { addr, child, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("address already in use") {
                panic!("Alertmanager did not become ready; its log:\n{text}");
            }
        }
        panic!("Alertmanager found no free port in three tries");
    }

    /// The base URL, like `http://127.0.0.1:9093`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What Alertmanager logged (at debug level).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `POST /api/v2/alerts` with a JSON array of postable alerts, as
    /// Prometheus sends them; panics unless Alertmanager accepts them.
    pub async fn post_alerts(&self, client: &reqwest::Client, alerts: &serde_json::Value) {
        let r = client
            .post(format!("{}/api/v2/alerts", self.url()))
            .json(alerts)
            .send()
            .await
            .expect("POST /api/v2/alerts");
        let status = r.status();
        assert!(
            status.is_success(),
            "Alertmanager refused the alerts: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// `GET /api/v2/alerts`: the alerts that are active, silenced or
    /// inhibited now (resolved ones are left out).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let v: serde_json::Value = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"));
        v.as_array().cloned().unwrap_or_default()
    }

    /// `POST /api/v2/silences` with a silence in API v2's shape; returns
    /// its id.
    pub async fn post_silence(&self, silence: &serde_json::Value) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v2/silences", self.url()))
            .json(silence)
            .send()
            .await
            .expect("POST /api/v2/silences");
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "silence refused: {status} {body}");
        body["silenceID"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for an Alertmanager's `/-/ready`; `false` if it exited first or
/// took longer than 20 s.
async fn alertmanager_ready(child: &mut std::process::Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://{addr}/-/ready");
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// Remote sources: a Prometheus scraping loopback targets (the peer above),
// and an authenticating proxy in front of it.

/// The Prometheus binary [`Prometheus::start`] runs: `VIGIL_PROMETHEUS`, or
/// Debian's `/usr/bin/prometheus`; `None` when it is not there.
pub fn prometheus_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("VIGIL_PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    bin.exists().then_some(bin)
}

impl Prometheus {
    /// Starts one in `dir` scraping `targets` (`/metrics`, job
    /// `model-server`) every `interval`, and waits until it is ready.
    /// Without the binary, prints a SKIPPED line naming `test` and returns
    /// `None`: the caller returns too (CI installs the package).
    pub async fn scraping(
        test: &str,
        dir: &Path,
        targets: &[SocketAddr],
        interval: Duration,
    ) -> Option<Prometheus> {
        if prometheus_bin().is_none() {
            let bin = std::env::var("VIGIL_PROMETHEUS")
                .unwrap_or_else(|_| "/usr/bin/prometheus".to_string());
            eprintln!(
                "SKIPPED {test}: {bin} is not there (`apt-get install prometheus`, which `cargo xtask test` does)"
            );
            return None;
        }
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let ms = interval.as_millis();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {ms}ms\n  scrape_timeout: {ms}ms\nscrape_configs:\n  - job_name: model-server\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("write prometheus.yml");
        Some(
            Prometheus::start(
                &config,
                &dir.join("prometheus-data"),
                &dir.join("prometheus.log"),
                &[],
            )
            .await,
        )
    }

    /// `/api/v1/query` at the current time: the answer's `data.result`.
    pub async fn instant_query(&self, query: &str) -> serde_json::Value {
        self.api("/api/v1/query", &[("query", query)]).await["data"]["result"].clone()
    }

    /// POSTs a form to one of Prometheus' API paths; the whole JSON answer.
    pub async fn api(&self, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
        let url = format!("http://{}{path}", self.addr);
        reqwest::Client::new()
            .post(&url)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: not JSON: {e}"))
    }

    /// Waits until the scalar or single-sample `query` is at least `min`,
    /// like `count_over_time(up[5s])` reaching a number of scrapes.
    pub async fn wait_for_value(&self, query: &str, min: f64, timeout: Duration) {
        eventually(
            timeout,
            &format!("{query} >= {min} in Prometheus"),
            || async {
                let result = self.instant_query(query).await;
                let value = result[0]["value"][1].as_str()?.parse::<f64>().ok()?;
                (value >= min).then_some(())
            },
        )
        .await;
    }
}

struct ProxyState {
    upstream: SocketAddr,
    /// Path prefix and the exact `Authorization` header it requires.
    routes: Vec<(String, String)>,
    seen: Mutex<Vec<Request>>,
    client: reqwest::Client,
}

/// A loopback proxy that requires credentials, the way a gateway in front
/// of a Prometheus-compatible API does: a request under `/<prefix>/` with
/// exactly that route's `Authorization` header is forwarded to the
/// upstream with the prefix removed; any other request gets a 401 and goes
/// nowhere. Records every request.
pub struct AuthProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthProxy {
    /// `routes`: `(prefix, authorization)`, like `("tenant-a", "Bearer
    /// s3cret")`.
    pub async fn start(upstream: SocketAddr, routes: &[(&str, &str)]) -> AuthProxy {
        async fn handle(
            State(s): State<Arc<ProxyState>>,
            method: axum::http::Method,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> (axum::http::StatusCode, String) {
            let recorded = Request {
                at: Instant::now(),
                path: uri.path().to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            s.seen.lock().expect("lock").push(recorded);
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let route = s.routes.iter().find_map(|(prefix, auth)| {
                let rest = uri.path().strip_prefix(&format!("/{prefix}"))?;
                (rest.starts_with('/') && given == auth).then_some(rest)
            });
            let unauthorized = (
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized\n".to_string(),
            );
            let Some(rest) = route else {
                return unauthorized;
            };
            let mut forward = s
                .client
                .request(method, format!("http://{}{rest}", s.upstream))
                .body(body.to_vec());
            if let Some(ct) = headers.get("content-type") {
                forward = forward.header("content-type", ct.as_bytes());
            }
            match forward.send().await {
                Ok(r) => {
                    let status = axum::http::StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
                    (status, r.text().await.unwrap_or_default())
                }
                Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()),
            }
        }
        let state = Arc::new(ProxyState {
            upstream,
            routes: routes
                .iter()
                .map(|(p, a)| (p.to_string(), a.to_string()))
                .collect(),
            seen: Mutex::new(Vec::new()),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AuthProxy { addr, state, task }
    }

    /// Every request so far, authorized or not.
    pub fn requests(&self) -> Vec<Request> {
        self.state.seen.lock().expect("lock").clone()
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// The input series of the PromQL benchmarks: issue 3's burn-rate and vLLM
// latency rules over the same data in Vigil and in Prometheus.

/// One counter series of the PromQL benchmarks: its value at time `t`
/// seconds is `per_second * t`.
#[derive(Debug, Clone)]
pub struct BenchSeries {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub per_second: f64,
}

impl BenchSeries {
    /// `name{a="x",b="y"}`, as exposed.
    pub fn text(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// The bucket bounds vLLM exposes for `e2e_request_latency_seconds`.
pub const VLLM_LATENCY_BUCKETS: [&str; 22] = [
    "0.3", "0.5", "0.8", "1.0", "1.5", "2.0", "2.5", "5.0", "10.0", "15.0", "20.0", "30.0", "40.0",
    "50.0", "60.0", "120.0", "240.0", "480.0", "960.0", "1920.0", "7680.0", "+Inf",
];

/// The burn-rate rule's input, `n` series: `requests_total` and
/// `errors_total{model, replica}`, `n / 2` of each, ten replicas per model,
/// every fourth model failing 2% of requests (over the 1.44% threshold), the
/// others 0.05%.
pub fn burn_rate_series(n: usize) -> Vec<BenchSeries> {
    let mut out = Vec::with_capacity(n);
    for name in ["requests_total", "errors_total"] {
        for k in 0..n / 2 {
            let requests = 10.0 + (k % 7) as f64;
            let ratio = if (k / 10) % 4 == 0 { 0.02 } else { 0.0005 };
            out.push(BenchSeries {
                name,
                labels: vec![
                    ("model", format!("m{}", k / 10)),
                    ("replica", format!("r{}", k % 10)),
                ],
                per_second: if name == "errors_total" {
                    requests * ratio
                } else {
                    requests
                },
            });
        }
    }
    out
}

/// The latency rule's input, `n` series (rounded down to whole
/// histograms): `vllm:e2e_request_latency_seconds_bucket{model_name, pod,
/// le}` with vLLM's 22 buckets, ten pods per model; the share of requests
/// faster than `le` is `le / (le + s)`, with `s` = 200 s for every fifth
/// model (p99 far above 120 s) and 0.5 s for the others (p99 about 50 s).
pub fn latency_series(n: usize) -> Vec<BenchSeries> {
    let mut out = Vec::with_capacity(n);
    for p in 0..n / VLLM_LATENCY_BUCKETS.len() {
        let per_second = 5.0 + (p % 3) as f64;
        let scale = if (p / 10) % 5 == 0 { 200.0 } else { 0.5 };
        for le in VLLM_LATENCY_BUCKETS {
            let share = match le.parse::<f64>() {
                Ok(b) if b.is_finite() => b / (b + scale),
                _ => 1.0,
            };
            out.push(BenchSeries {
                name: "vllm:e2e_request_latency_seconds_bucket",
                labels: vec![
                    ("model_name", format!("m{}", p / 10)),
                    ("pod", format!("p{}", p % 10)),
                    ("le", le.to_string()),
                ],
                per_second: per_second * share,
            });
        }
    }
    out
}
