//! The Wasm sandbox: loads plugins and calls them under time and memory limits.
//!
//! This is the only module that names wasmtime types. Everything it hands
//! out (plugin info, verdicts, deliveries, errors) is plain host data, so the
//! rest of the host neither knows nor cares how a plugin runs.
//!
//! Isolation, per plugin instance:
//! - time: an epoch deadline on every call (a ticker thread advances the epoch);
//! - memory: `StoreLimits` with a cap and `trap_on_grow_failure`;
//! - capabilities: WASI without files, environment, arguments or sockets;
//! - failure: after any trap the instance is dropped and rebuilt on the next
//!   call, since wasmtime never lets a trapped instance be entered again.
//!
//! Every released version of the contract (`plugin-sdk/wit/`) loads side by
//! side: a component's version is read off the types of its exports when it
//! is loaded, and callers always speak the newest (see [`CheckInstance`]).

mod cache;
mod check;
mod notifier;
mod wasi;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder, Trap};

pub use check::{
    Band, Batch, CheckInput, CheckInstance, CheckOutput, LabelCache, LabelColumns, SeriesState,
    Status, Verdict,
};
pub use notifier::{
    Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, NotifierInstance,
};

use cache::ArtifactCache;
use wasi::HostState;

/// How often the epoch advances; deadlines are whole multiples of it.
const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Limits applied to every call into one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call.
    pub timeout: Duration,
    /// Cap on the instance's linear memories and tables, in bytes.
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(250),
            memory_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Check,
    Notifier,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Check => "check",
            PluginKind::Notifier => "notifier",
        })
    }
}

/// The version of the plugin contract (`vigil:plugin@...`) a plugin was
/// built against: the host loads every version it has shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contract {
    /// Windows and per-series state.
    V0_1,
    /// Adds labels, vanished series, severities and the rule's verdict and
    /// state to checks (notifiers are unchanged).
    V0_2,
}

impl Contract {
    /// `"0.1.0"` or `"0.2.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Contract {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One documented parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamDoc {
    pub name: String,
    pub type_name: String,
    pub required: bool,
    pub description: String,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub kind: PluginKind,
    /// The contract version the plugin was built against. A notifier's
    /// world is the same in every version, so notifiers report 0.1.0.
    pub contract: Contract,
    pub params: Vec<ParamDoc>,
}

/// Why a plugin could not be loaded or a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "wrong world: {0} (a Vigil plugin implements vigil:plugin/check or vigil:plugin/notifier, @0.2.0 or @0.1.0)"
    )]
    WrongWorld(String),
    #[error("exceeded its time limit of {}ms", .0.as_millis())]
    Timeout(Duration),
    #[error("exceeded its memory limit of {} MiB", .0 / (1024 * 1024))]
    OutOfMemory(u64),
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("panicked: {0}")]
    Panic(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Failed(String),
    #[error("rejected its parameters: {0}")]
    Configure(String),
    #[error("returned malformed output: {0}")]
    BadOutput(String),
    #[error("is a {found} plugin, not a {expected} plugin")]
    KindMismatch {
        expected: PluginKind,
        found: PluginKind,
    },
}

impl PluginError {
    /// A short stable reason, used as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            PluginError::Io { .. } => "io",
            PluginError::Invalid(_) => "invalid",
            PluginError::WrongWorld(_) => "wrong_world",
            PluginError::Timeout(_) => "timeout",
            PluginError::OutOfMemory(_) => "out_of_memory",
            PluginError::StackOverflow => "stack_overflow",
            PluginError::Panic(_) => "panic",
            PluginError::Trap(_) => "trap",
            PluginError::Failed(_) => "error",
            PluginError::Configure(_) => "configure",
            PluginError::BadOutput(_) => "bad_output",
            PluginError::KindMismatch { .. } => "kind_mismatch",
        }
    }

    /// True when the instance is unusable afterwards and must be rebuilt.
    fn is_trap(&self) -> bool {
        matches!(
            self,
            PluginError::Timeout(_)
                | PluginError::OutOfMemory(_)
                | PluginError::StackOverflow
                | PluginError::Panic(_)
                | PluginError::Trap(_)
        )
    }
}

/// A compiled, type-checked plugin, ready to instantiate.
pub struct Plugin {
    pub info: PluginInfo,
    /// Where it was loaded from.
    pub source: PathBuf,
    /// SHA-256 of the `.wasm` bytes: tells a replaced file from a touched one.
    pub sha256: String,
    pre: Pre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

enum Pre {
    CheckV0_1(check::bindings::v0_1::CheckPre<HostState>),
    CheckV0_2(check::bindings::v0_2::CheckPre<HostState>),
    Notifier(notifier::bindings::NotifierPre<HostState>),
}

/// The plugin runtime: one engine, one linker, one artifact cache.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    /// Limits for loading (the `info` call) and the default for instances.
    default_limits: Limits,
}

impl Sandbox {
    /// Builds the engine; `cache_dir` holds compiled artifacts (none: always compile).
    pub fn new(cache_dir: Option<&Path>, default_limits: Limits) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Invalid(format!("linking WASI: {e:#}")))?;
        start_epoch_ticker(&engine);
        let cache = cache_dir.map(|d| ArtifactCache::new(d, &engine));
        Ok(Sandbox {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                default_limits,
            }),
        })
    }

    pub fn default_limits(&self) -> Limits {
        self.inner.default_limits
    }

    /// Loads a `.wasm` file: compile (or reuse the cached artifact), check
    /// the world, and ask the plugin for its info.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(path).map_err(|e| PluginError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        self.load_bytes(&bytes, path)
    }

    /// Loads a plugin from bytes; `source` is only used in messages.
    pub fn load_bytes(&self, bytes: &[u8], source: &Path) -> Result<Arc<Plugin>, PluginError> {
        let sha256 = cache::sha256_hex(bytes);
        let component = self.compile(bytes, &sha256)?;
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
        let limits = self.inner.default_limits;
        // The version is in the types of the exports: the newest check
        // world first, then the older one, then the notifier world (the
        // same in every version).
        let (pre, info) = match check::bindings::v0_2::CheckPre::new(instance_pre.clone()) {
            Ok(pre) => {
                let info = check::read_info_v0_2(self, &pre, limits)?;
                (Pre::CheckV0_2(pre), info)
            }
            Err(check_err) => match check::bindings::v0_1::CheckPre::new(instance_pre.clone()) {
                Ok(pre) => {
                    let info = check::read_info_v0_1(self, &pre, limits)?;
                    (Pre::CheckV0_1(pre), info)
                }
                Err(_) => match notifier::bindings::NotifierPre::new(instance_pre) {
                    Ok(pre) => {
                        let info = notifier::read_info(self, &pre, limits)?;
                        (Pre::Notifier(pre), info)
                    }
                    Err(_) => return Err(PluginError::WrongWorld(format!("{check_err:#}"))),
                },
            },
        };
        Ok(Arc::new(Plugin {
            info,
            source: source.to_path_buf(),
            sha256,
            pre,
        }))
    }

    fn compile(&self, bytes: &[u8], sha256: &str) -> Result<Component, PluginError> {
        if let Some(c) = self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.inner.engine, sha256))
        {
            return Ok(c);
        }
        let component = Component::new(&self.inner.engine, bytes).map_err(|e| {
            // Keep the first line: wasmparser's context chain is long and
            // its head already says what is wrong and where.
            PluginError::Invalid(format!("{e:#}"))
        })?;
        if let Some(cache) = &self.inner.cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    /// A new store with this plugin's limits.
    fn store(&self, limits: Limits) -> Store<HostState> {
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX))
            .table_elements(100_000)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.inner.engine, HostState::new(store_limits));
        store.limiter(|s| &mut s.limits);
        store
    }
}

/// Advances the engine's epoch until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("vigil-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "could not start the plugin deadline ticker; plugin calls will not time out");
    }
}

/// Arms the store's deadline for one call.
fn arm_deadline(store: &mut Store<HostState>, timeout: Duration) {
    let ticks = timeout.as_nanos() / EPOCH_TICK.as_nanos() + 1;
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.epoch_deadline_trap();
}

/// Turns a wasmtime error from a call into a typed reason.
fn classify(err: &wasmtime::Error, stderr: &str, limits: Limits) -> PluginError {
    let text = format!("{err:#}");
    let trap = err.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) => return PluginError::Timeout(limits.timeout),
        Some(Trap::StackOverflow) => return PluginError::StackOverflow,
        _ => {}
    }
    if text.contains("forcing trap when growing memory")
        || text.contains("forcing a memory growth failure")
        || stderr.contains("memory allocation of")
    {
        return PluginError::OutOfMemory(limits.memory_bytes);
    }
    if let Some(msg) = panic_message(stderr) {
        return PluginError::Panic(msg);
    }
    let backtrace = err.downcast_ref::<wasmtime::WasmBacktrace>();
    // Rust keeps its stack in linear memory: unbounded recursion runs the
    // stack pointer off the bottom of memory and shows up as an
    // out-of-bounds access inside one function calling itself.
    if matches!(trap, Some(Trap::MemoryOutOfBounds)) && backtrace.is_some_and(is_recursion) {
        return PluginError::StackOverflow;
    }
    let top = backtrace
        .and_then(|b| b.frames().first())
        .and_then(|f| f.func_name())
        .map(|n| format!(" in {n}"))
        .unwrap_or_default();
    match trap {
        Some(t) => PluginError::Trap(format!("{t}{top}")),
        // Not a trap: keep the first line, the backtrace is in the log.
        None => PluginError::Trap(text.lines().next().unwrap_or("unknown error").to_string()),
    }
}

/// Whether the innermost frames are one function calling itself.
fn is_recursion(bt: &wasmtime::WasmBacktrace) -> bool {
    let frames = bt.frames();
    frames.len() >= 16
        && frames[..16]
            .iter()
            .all(|f| f.func_index() == frames[0].func_index())
}

/// Extracts the message of a Rust panic from a guest's stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at")?;
    let rest = &stderr[start..];
    // "panicked at src/lib.rs:5:5:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines
        .next()?
        .trim_start_matches("panicked at ")
        .trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

/// Where a call's guest-side stderr goes: the log, attributed to the plugin.
fn forward_stderr(plugin: &str, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::warn!(target: "vigil::plugin", plugin, "{line}");
    }
}

/// A live instance of one world, rebuilt after any trap.
struct Slot<W> {
    plugin: Arc<Plugin>,
    sandbox: Sandbox,
    params_json: String,
    limits: Limits,
    live: Option<(Store<HostState>, W)>,
    _world: std::marker::PhantomData<fn() -> W>,
}

/// What the generic slot needs from a world's bindings.
trait World: Sized {
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
    fn configure(
        &self,
        store: &mut Store<HostState>,
        params: &str,
    ) -> wasmtime::Result<Result<(), String>>;
}

impl<W: World> Slot<W> {
    fn new(
        sandbox: &Sandbox,
        plugin: Arc<Plugin>,
        params: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, PluginError> {
        let mut slot = Slot {
            plugin,
            sandbox: sandbox.clone(),
            params_json: params.to_string(),
            limits,
            live: None,
            _world: std::marker::PhantomData,
        };
        // Instantiate and configure now, so bad parameters fail at load.
        slot.call(|_, _| Ok(()))?;
        Ok(slot)
    }

    /// Runs `f` on the live instance under the deadline; rebuilds the
    /// instance first if the previous call trapped.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.live.is_none() {
            let mut store = self.sandbox.store(self.limits);
            arm_deadline(&mut store, self.limits.timeout);
            let world = match W::instantiate(&self.plugin, &mut store) {
                Ok(w) => w,
                Err(e) => return Err(self.fail(&mut store, &e)),
            };
            arm_deadline(&mut store, self.limits.timeout);
            match world.configure(&mut store, &self.params_json) {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => return Err(PluginError::Configure(msg)),
                Err(e) => return Err(self.fail(&mut store, &e)),
            }
            self.flush_stderr(&store);
            self.live = Some((store, world));
        }
        let Some((store, world)) = self.live.as_mut() else {
            return Err(PluginError::Trap("instance unavailable".into()));
        };
        arm_deadline(store, self.limits.timeout);
        let result = f(world, store);
        let stderr = store.data().stderr.take();
        forward_stderr(&self.plugin.info.name, &stderr);
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let err = classify(&e, &stderr, self.limits);
                if err.is_trap() || !matches!(err, PluginError::Failed(_)) {
                    self.live = None;
                }
                Err(err)
            }
        }
    }

    fn fail(&self, store: &mut Store<HostState>, e: &wasmtime::Error) -> PluginError {
        let stderr = store.data().stderr.take();
        forward_stderr(&self.plugin.info.name, &stderr);
        classify(e, &stderr, self.limits)
    }

    fn flush_stderr(&self, store: &Store<HostState>) {
        forward_stderr(&self.plugin.info.name, &store.data().stderr.take());
    }
}
