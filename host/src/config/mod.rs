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
mod params;
pub mod raw;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors, Location};
pub use matcher::{MatchOp, Matcher};
pub use params::ParamLocations;
pub use secret::{Secret, SecretSource};

pub(crate) use error::Diagnostics;
pub(crate) use validate::{is_label_name, rules_with_defaults};

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
    /// Remote query APIs rules can use, in file order.
    pub sources: Vec<SourceConfig>,
    /// Alerting rules, in file order.
    pub rules: Vec<RuleConfig>,
    /// Notification destinations, in file order.
    pub receivers: Vec<ReceiverConfig>,
    /// The root of the routing tree.
    pub route: RouteConfig,
    /// Alerts that mute other alerts while they fire.
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// The bearer token for API requests that change things.
    pub api_token: Option<Secret>,
    /// Named time intervals for routes.
    pub time_intervals: Vec<crate::notify::mute::NamedTimeInterval>,
    /// Flap damping, when on.
    pub flap_damping: Option<crate::notify::flap::FlapConfig>,
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

/// A remote query API, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// Unique among sources.
    pub name: String,
    /// Where the source's `[[sources]]` item starts.
    pub location: Location,
    /// The API it speaks.
    pub kind: SourceKind,
    /// An `http://` or `https://` base URL without a trailing `/`,
    /// credentials, query or fragment.
    pub url: String,
    /// How requests authenticate, if they do.
    pub auth: Option<SourceAuth>,
    /// How long one query may take.
    pub timeout: Duration,
    /// Extra headers: valid names, none that Vigil sets itself, each name
    /// once (case-insensitively).
    pub headers: BTreeMap<String, String>,
}

/// The `kind` of a `[[sources]]` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum SourceKind {
    /// Prometheus' HTTP query API (`/api/v1/query`, `/api/v1/query_range`),
    /// also served by Thanos Query, Mimir, Cortex and VictoriaMetrics.
    #[serde(rename = "prometheus")]
    Prometheus,
}

/// How requests to a source authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// As written in the configuration.
        username: String,
        /// From `password_file` or `password_env`.
        password: Secret,
    },
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
    /// The name of the `[[sources]]` item that evaluates the query; `None`
    /// for Vigil's own store.
    pub source: Option<String>,
    /// The evaluation step.
    pub every: Duration,
    /// How much history the check sees per series; at least `every`.
    pub window: Duration,
    /// Check plugin name, not yet resolved; `None` for a Prometheus-style
    /// rule, where every output series is firing.
    pub check: Option<String>,
    /// Where the check's name is written, or the rule's location without it.
    pub check_at: Location,
    /// A JSON object.
    pub params: serde_json::Value,
    /// Where `params` is written, or the rule's location without it.
    pub params_at: Location,
    /// Where each parameter in `params` is written.
    pub params_written: ParamLocations,
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
    /// Where each parameter in `params` is written.
    pub params_written: ParamLocations,
    /// `host` or `host:port`, lowercased; IPv6 hosts in brackets.
    pub allow_hosts: Vec<String>,
    /// Whether to notify when an alert resolves.
    pub send_resolved: bool,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// How long to keep retrying a failed delivery.
    pub retry_for: Duration,
    /// The largest body it sends.
    pub max_body_bytes: u64,
    /// `[smtp]` with the receiver's own `smtp` table applied over it; `None`
    /// when that leaves no server or sender (e-mails then fail at delivery).
    pub smtp: Option<SmtpConfig>,
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
    /// How alerts of this route are grouped into notifications.
    pub group_by: GroupBy,
    /// How long a new group waits for more alerts.
    pub group_wait: Duration,
    /// How long between notifications about changes to a group.
    pub group_interval: Duration,
    /// How long before an unchanged firing group is notified again.
    pub repeat_interval: Duration,
    /// Names of time intervals during which this route sends nothing.
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside of which this route sends nothing.
    pub active_time_intervals: Vec<String>,
    /// Child routes, tried in order.
    pub routes: Vec<RouteConfig>,
}

impl RouteConfig {
    /// A root route to `receiver` with Alertmanager's default timing.
    pub fn root(receiver: impl Into<String>) -> Self {
        RouteConfig {
            receiver: receiver.into(),
            matchers: Vec::new(),
            continue_: false,
            group_by: GroupBy::Labels(Vec::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// Alertmanager's defaults for the root route.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Which labels make up a notification group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// These labels (Alertmanager's `group_by: [a, b]`); none puts every
    /// alert of the route in one group.
    Labels(Vec<String>),
    /// Every label: one group per alert (`group_by: ['...']`).
    All,
}

/// An inhibition rule.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRuleConfig {
    /// All must match the inhibiting, firing alert.
    pub source_matchers: Vec<Matcher>,
    /// All must match a muted alert.
    pub target_matchers: Vec<Matcher>,
    /// Labels with equal values in source and target.
    pub equal: Vec<String>,
}

/// How an e-mail receiver reaches its SMTP server: `[smtp]` with the
/// receiver's `[receivers.smtp]` fields applied over it, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Host name or IP address, without a port.
    pub host: String,
    /// Defaults by `tls`: 587, 465 or 25.
    pub port: u16,
    /// How the connection is encrypted.
    pub tls: SmtpTls,
    /// For SMTP AUTH; `None` sends without authenticating.
    pub credentials: Option<SmtpCredentials>,
    /// A valid mailbox (`a@b.c` or `Name <a@b.c>`): the `From` header and
    /// the envelope sender.
    pub from: String,
    /// The EHLO name; `None` uses this machine's host name.
    pub hello_name: Option<String>,
    /// Extra roots for the server's certificate, read at load.
    pub ca_file: Option<CaFile>,
    /// How long one message may take, connection included.
    pub timeout: Duration,
}

/// The `tls` setting of `[smtp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum SmtpTls {
    /// A plain connection upgraded with STARTTLS, which the server must
    /// offer (submission, port 587).
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte ("SMTPS", port 465).
    #[serde(rename = "tls")]
    Tls,
    /// No encryption (a relay on this host or a trusted network, port 25).
    #[serde(rename = "none")]
    Plain,
}

impl SmtpTls {
    /// The port each mode conventionally uses.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::Plain => 25,
        }
    }
}

/// A user name and password for SMTP AUTH (PLAIN or LOGIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    /// As written in the configuration.
    pub username: String,
    /// From `password_file` or `password_env`.
    pub password: Secret,
}

/// A PEM file of CA certificates, read when the configuration is loaded so
/// that a reload picks up a renewed CA and a bad file fails the load.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    /// Resolved against the configuration file's directory.
    pub path: PathBuf,
    /// The file's contents: at least one PEM certificate.
    pub pem: Vec<u8>,
}

/// The path and size; the certificates themselves are noise in logs.
impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("bytes", &self.pem.len())
            .finish()
    }
}
