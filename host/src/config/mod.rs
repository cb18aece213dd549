//! Configuration: `vigil.toml`, read in two steps.
//!
//! 1. [`raw`] mirrors the file: serde structs whose doc comments are the user
//!    documentation. The file is decoded section by section and item by item
//!    from a spanned document, so a bad `[[rules]]` item does not hide the
//!    errors in the next one.
//! 2. Validation (pure) turns the raw sections into the types below, which
//!    the engine runs on: durations parsed, defaults applied, paths resolved,
//!    names checked for duplicates, routes resolved, matchers compiled.
//!
//! Both steps report every error they find, each with the file, line and
//! column ([`ConfigErrors`]). Startup and reload take the same path, so a
//! reload that fails keeps the old configuration running.
//!
//! Some fields are checked later by other modules (the query by `query`,
//! plugin names by `sandbox`, annotation templates by `notify`); they keep
//! their [`Location`] so those errors point into the file too.

mod duration;
mod error;
mod matcher;
pub mod raw;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors, Location};
pub use matcher::{MatchOp, Matcher};

use error::Diagnostics;

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the configuration file: {e}")))?;
    parse(path, &text)
}

/// Validates configuration text. `file` names it in errors, and relative
/// paths in it resolve against `file`'s directory.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let mut diag = Diagnostics::new(file, text);
    let config =
        raw::decode(&mut diag).map(|(raw, gaps)| validate::validate(&mut diag, file, raw, &gaps));
    match config {
        Some(config) if !diag.has_errors() => Ok(config),
        _ => Err(diag.finish()),
    }
}

/// A validated configuration. The raw file's fields are documented in
/// [`raw`]; here they have their defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from.
    pub file: PathBuf,
    /// Resolved against the file's directory.
    pub data_dir: PathBuf,
    /// Resolved against the file's directory.
    pub plugin_dir: PathBuf,
    /// Address of the HTTP server (API, `/metrics`, status page).
    pub listen: SocketAddr,
    /// Base URL for links in notifications, without a trailing `/`.
    pub external_url: String,
    /// Limits for every plugin call.
    pub sandbox: SandboxConfig,
    /// Endpoints to scrape, in file order.
    pub targets: Vec<TargetConfig>,
    /// Alerting rules, in file order.
    pub rules: Vec<RuleConfig>,
    /// Notification destinations, in file order.
    pub receivers: Vec<ReceiverConfig>,
    /// The root of the routing tree.
    pub route: RouteConfig,
}

/// Limits for every plugin call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// How long one plugin call may run; a rule may override it.
    pub timeout: Duration,
    /// The most linear memory one plugin instance may use.
    pub memory_limit_bytes: u64,
}

/// One endpoint to scrape, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// The `job` label of every series scraped from this target.
    pub job: String,
    /// An `http://` or `https://` URL with a host.
    pub url: String,
    /// How often to scrape.
    pub interval: Duration,
    /// At most `interval`.
    pub timeout: Duration,
    /// Valid label names, none starting with `__`, no `job`.
    pub labels: BTreeMap<String, String>,
}

/// One alerting rule, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// Unique, `[a-zA-Z_][a-zA-Z0-9_]*`; the `alertname` label.
    pub name: String,
    /// Where the rule's `[[rules]]` item starts.
    pub location: Location,
    /// PromQL text, not yet parsed.
    pub query: String,
    /// Where the query's string starts (its opening quote).
    pub query_at: Location,
    /// The evaluation step.
    pub every: Duration,
    /// How much history the check sees per series; at least `every`.
    pub window: Duration,
    /// Check plugin name, not yet resolved.
    pub check: String,
    /// Where the check's name is written.
    pub check_at: Location,
    /// A JSON object.
    pub params: serde_json::Value,
    /// Where `params` is written, or the rule's location without it.
    pub params_at: Location,
    /// How long a series must keep firing before its alert fires.
    pub for_: Duration,
    /// How long an alert keeps firing after its series stops.
    pub keep_firing_for: Duration,
    /// The rule's own timeout, or the sandbox's.
    pub timeout: Duration,
    /// The rule's own memory cap for its check, or the sandbox's.
    pub memory_limit_bytes: u64,
    /// Valid label names, none starting with `__`, no `alertname`.
    pub labels: BTreeMap<String, String>,
    /// Templates, not yet parsed.
    pub annotations: BTreeMap<String, String>,
    /// Where each annotation's value is written.
    pub annotations_at: BTreeMap<String, Location>,
}

/// One destination for notifications, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// Unique.
    pub name: String,
    /// Notifier plugin name (or the built-in `console`), not yet resolved.
    pub notifier: String,
    /// Where the notifier's name is written.
    pub notifier_at: Location,
    /// A JSON object.
    pub params: serde_json::Value,
    /// Where `params` is written, or the receiver's location without it.
    pub params_at: Location,
    /// `host` or `host:port`, lowercased; IPv6 hosts in brackets.
    pub allow_hosts: Vec<String>,
    /// Whether to notify when an alert resolves.
    pub send_resolved: bool,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// How long to keep retrying a failed delivery.
    pub retry_for: Duration,
}

/// A node of the routing tree.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// An existing receiver; children inherit their parent's. Empty only at
    /// the root when there are no receivers: alerts are then only logged.
    pub receiver: String,
    /// All must match for an alert to enter this route.
    pub matchers: Vec<Matcher>,
    /// Whether an alert that matched this route also tries later siblings.
    pub continue_: bool,
    /// Child routes, tried in order.
    pub routes: Vec<RouteConfig>,
}
