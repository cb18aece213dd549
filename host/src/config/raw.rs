//! The configuration file as written: serde structs that mirror the TOML.
//!
//! These doc comments are the user documentation of `vigil.toml`. Values are
//! kept as written (durations as strings) with their position in the file;
//! `validate` gives them meaning.
//!
//! The file is decoded section by section and item by item from a spanned
//! document, so that an error in one `[[rules]]` item does not hide errors in
//! another item or section.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

use super::ParamLocations;
use super::error::Diagnostics;

/// The whole `vigil.toml`. Relative paths resolve against the directory of
/// the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory for Vigil's own state: the SQLite database (alert states,
    /// plugin state, silences, the notification outbox) and the cache of
    /// compiled plugins. Default: `"data"`.
    pub data_dir: Option<Spanned<PathBuf>>,
    /// Directory of plugins (`.wasm` files). Vigil watches it and reloads a
    /// plugin when its file changes. Default: `"plugins"`.
    pub plugin_dir: Option<Spanned<PathBuf>>,
    /// Address (`IP:PORT`) of the HTTP server: the API, `/metrics` and the
    /// status page. Default: `"127.0.0.1:9464"`.
    pub listen: Option<Spanned<String>>,
    /// The URL under which users reach this Vigil, used for links in
    /// notifications (`http://` or `https://`). Default: `"http://"` followed
    /// by `listen`.
    pub external_url: Option<Spanned<String>>,
    /// Defaults for scraping `[[targets]]`.
    pub scrape: Option<RawScrape>,
    /// Defaults for evaluating `[[rules]]`.
    pub evaluation: Option<RawEvaluation>,
    /// Limits for every plugin call.
    pub sandbox: Option<RawSandbox>,
    /// How e-mails are sent: the SMTP server, credentials and sender shared
    /// by every receiver whose notifier renders e-mails. A receiver can
    /// override any of these in its own `smtp` table. Default: none (e-mail
    /// deliveries then fail).
    pub smtp: Option<Spanned<RawSmtp>>,
    /// Prometheus or OpenMetrics endpoints to scrape.
    #[serde(default)]
    pub targets: Vec<Spanned<RawTarget>>,
    /// Remote Prometheus-compatible query APIs (Prometheus, Thanos, Mimir,
    /// VictoriaMetrics) that rules can run their query on instead of
    /// Vigil's own store, with `source = "name"`. Default: none.
    #[serde(default)]
    pub sources: Vec<Spanned<RawSource>>,
    /// Alerting rules: a query, a window of its history, and optionally a
    /// check plugin that decides whether each series is firing (without
    /// one, every series the query returns is firing, as in Prometheus).
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
    /// Where notifications go: each receiver renders them with a notifier
    /// plugin (or the built-in `console`).
    #[serde(default)]
    pub receivers: Vec<Spanned<RawReceiver>>,
    /// Which receiver gets which alert. Optional when there is at most one
    /// receiver: alerts then go to that receiver (or are only logged when
    /// there is none).
    pub route: Option<Spanned<RawRoute>>,
    /// Alerts that mute other alerts while they fire, like a model's
    /// outage muting its latency warnings. Default: none.
    #[serde(default)]
    pub inhibit_rules: Vec<Spanned<RawInhibitRule>>,
    /// The HTTP API's access control.
    pub api: Option<RawApi>,
    /// Named time intervals that routes refer to in `mute_time_intervals`
    /// and `active_time_intervals`, as in Alertmanager. Default: none.
    #[serde(default)]
    pub time_intervals: Vec<Spanned<RawNamedInterval>>,
    /// Holds alerts that change state too often instead of notifying every
    /// change. Default: off.
    pub flap_damping: Option<Spanned<RawFlapDamping>>,
}

/// `[scrape]`: defaults for every target.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScrape {
    /// How often to scrape each target, as a duration like `"15s"`.
    /// Default: `"15s"`.
    pub interval: Option<Spanned<String>>,
    /// How long one scrape may take; at most `interval`.
    /// Default: `"10s"`, or `interval` if that is shorter.
    pub timeout: Option<Spanned<String>>,
}

/// `[evaluation]`: defaults for every rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvaluation {
    /// How often each rule is evaluated unless it sets `every`.
    /// Default: `"15s"`.
    pub interval: Option<Spanned<String>>,
}

/// `[sandbox]`: limits for every plugin call.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    /// How long one plugin call may run before it is stopped; more than zero
    /// and at most `"60s"`. A rule can override it. Default: `"250ms"`.
    pub timeout: Option<Spanned<String>>,
    /// The most linear memory one plugin instance may use, in MiB, from 1 to
    /// 4096. Default: `64`.
    pub memory_limit_mib: Option<Spanned<u64>>,
}

/// `[[targets]]`: one endpoint to scrape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The value of the `job` label on every scraped series. Required; two
    /// targets may share a job but not a job and a URL.
    pub job: Spanned<String>,
    /// The metrics endpoint, an `http://` or `https://` URL with a host.
    /// Required.
    pub url: Spanned<String>,
    /// How often to scrape this target. Default: `[scrape].interval`.
    pub interval: Option<Spanned<String>>,
    /// How long a scrape may take; at most `interval`. Default: the shorter
    /// of `[scrape].timeout` and `interval`.
    pub timeout: Option<Spanned<String>>,
    /// Extra labels added to every series from this target, like
    /// `{ env = "prod" }`. Names must be valid label names
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`), must not start with `__`, and must not be
    /// `job`. Default: none.
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, String>,
}

/// `[[sources]]`: a remote Prometheus-compatible query API. A rule with
/// `source = "name"` sends its query to it: `/api/v1/query` at each step,
/// and `/api/v1/query_range` (step: the rule's `every`) to fill its windows
/// when it starts or its query changes. Such a rule keeps nothing in
/// Vigil's store and is evaluated every `every`, not after local scrapes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The source's name, unique among sources; rules refer to it with
    /// `source`. Required.
    pub name: Spanned<String>,
    /// The API the source speaks: `"prometheus"`, the HTTP query API of
    /// Prometheus, which Thanos Query, Mimir, Cortex and VictoriaMetrics
    /// serve too. Required.
    pub kind: Spanned<super::SourceKind>,
    /// The base URL the API paths are appended to, `http://` or
    /// `https://`, like `"http://prometheus:9090"` or, for Mimir,
    /// `"http://mimir:8080/prometheus"`. Without credentials, query or
    /// fragment. Required.
    pub url: Spanned<String>,
    /// A file holding a bearer token sent with every request
    /// (`Authorization: Bearer <token>`); a trailing line break is ignored.
    /// Relative to the configuration file; read at startup and at each
    /// reload. Default: none.
    pub bearer_token_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the bearer token, instead of
    /// `bearer_token_file`. Default: none.
    pub bearer_token_env: Option<Spanned<String>>,
    /// Not accepted: a token written in `vigil.toml` ends up in backups and
    /// version control. Use `bearer_token_file` or `bearer_token_env`.
    pub bearer_token: Option<Spanned<toml::Value>>,
    /// HTTP basic authentication, like `{ username = "vigil", password_file
    /// = "/run/secrets/prom" }`; not together with a bearer token.
    /// Default: none.
    pub basic_auth: Option<Spanned<RawBasicAuth>>,
    /// How long one query may take, answer included; also sent to the API
    /// as its `timeout` parameter. A query that takes longer fails that
    /// rule step. Default: `"10s"`.
    pub timeout: Option<Spanned<String>>,
    /// Extra HTTP headers sent with every request, like `{ "X-Scope-OrgID"
    /// = "ml" }` for a Mimir or Cortex tenant. Not `Authorization` (use the
    /// fields above), nor `Host`, `Content-Type`, `Content-Length`,
    /// `Connection` or `Transfer-Encoding`, which Vigil sets. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `basic_auth` of a `[[sources]]` item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    /// The user name. Required.
    pub username: Spanned<String>,
    /// A file holding the password; a trailing line break is ignored.
    /// Relative to the configuration file; read at startup and at each
    /// reload. This or `password_env` is required.
    pub password_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the password, instead of
    /// `password_file`.
    pub password_env: Option<Spanned<String>>,
    /// Not accepted: use `password_file` or `password_env`.
    pub password: Option<Spanned<toml::Value>>,
}

/// `[[rules]]`: one alerting rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// The rule's name, unique among rules, also the `alertname` label of its
    /// alerts: `[a-zA-Z_][a-zA-Z0-9_]*`. Required.
    pub name: Spanned<String>,
    /// The PromQL query evaluated at each step; each output series gets its
    /// own window and verdict. Required.
    pub query: Spanned<String>,
    /// The `[[sources]]` item whose API evaluates the query, by name.
    /// The query is then sent as written (the source decides what it
    /// accepts, so a query it refuses is reported on the rule at each step,
    /// not at load), the rule is evaluated every `every` rather than after
    /// local scrapes, and `vigil test` still evaluates it over the test's
    /// input series. Default: none, the query runs on Vigil's own store.
    pub source: Option<Spanned<String>>,
    /// The evaluation step. Default: `[evaluation].interval`.
    pub every: Option<Spanned<String>>,
    /// How much history (per output series) the check sees; at least
    /// `every`. Default: `"5m"`, or `every` if that is longer; `every` for
    /// a rule without a `check`.
    pub window: Option<Spanned<String>>,
    /// The check plugin that judges the windows: a plugin name from
    /// `plugin_dir`. Default: none, and the rule has Prometheus' semantics:
    /// every series the query returns is firing, every other series is ok
    /// (so `up == 0` or `rate(x[5m]) > 0.1` work as pasted), and no plugin
    /// is loaded or called.
    pub check: Option<Spanned<String>>,
    /// Parameters for the check plugin, passed to it as a JSON object, like
    /// `{ above = 0.05 }`. Default: `{}`.
    pub params: Option<Spanned<toml::Table>>,
    /// Not a setting: where each parameter in `params` is written, recorded
    /// while decoding.
    #[serde(skip)]
    pub params_written: ParamLocations,
    /// How long a series must keep firing before its alert fires (it is
    /// pending until then). Default: `"0s"`.
    #[serde(rename = "for")]
    pub for_: Option<Spanned<String>>,
    /// How long an alert keeps firing after its series stops firing.
    /// Default: `"0s"`.
    pub keep_firing_for: Option<Spanned<String>>,
    /// How long one call of the check may run, overriding
    /// `[sandbox].timeout`; more than zero and at most `"60s"`.
    pub timeout: Option<Spanned<String>>,
    /// Memory cap of this rule's check instance in MiB, overriding
    /// `[sandbox].memory_limit_mib`; 1 to 4096. A rule over many series
    /// hands its check a large batch: 100k series of 120 points is 192 MB.
    pub memory_limit_mib: Option<Spanned<u64>>,
    /// Labels added to the rule's alerts, like `{ severity = "critical" }`.
    /// Names must be valid label names, must not start with `__`, and must not
    /// be `alertname`. Default: none.
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Annotations of the rule's alerts, like `{ summary = "..." }`. Values
    /// are templates (`{{ $labels.model }}`, `{{ $value }}`). Default: none.
    #[serde(default)]
    pub annotations: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `[[receivers]]`: one destination for notifications.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    /// The receiver's name, unique among receivers; routes refer to it.
    /// Required.
    pub name: Spanned<String>,
    /// The notifier plugin that renders notifications for this receiver, or
    /// `"console"`, the built-in notifier that writes them to the log.
    /// Required.
    pub notifier: Spanned<String>,
    /// Parameters for the notifier plugin, passed to it as a JSON object,
    /// like `{ url = "http://127.0.0.1:9000/hook" }`. Default: `{}`.
    pub params: Option<Spanned<toml::Table>>,
    /// Not a setting: where each parameter in `params` is written, recorded
    /// while decoding.
    #[serde(skip)]
    pub params_written: ParamLocations,
    /// Hosts this receiver may send HTTP requests to, each `"host"` (any
    /// port) or `"host:port"`, like `["hooks.example.com",
    /// "127.0.0.1:9000"]`. Default: none.
    #[serde(default)]
    pub allow_hosts: Vec<Spanned<String>>,
    /// Whether to notify when an alert resolves. Default: `true`.
    pub send_resolved: Option<bool>,
    /// How long one delivery attempt may take. Default: `"10s"`.
    pub timeout: Option<Spanned<String>>,
    /// How long to keep retrying a failed delivery, with exponential backoff,
    /// before giving up on it. Default: `"10m"`.
    pub retry_for: Option<Spanned<String>>,
    /// The largest request body (or e-mail) this receiver sends, in bytes;
    /// a larger rendering fails instead of being sent. Default: `1048576`.
    pub max_body_bytes: Option<Spanned<u64>>,
    /// SMTP settings of this receiver, like `smtp = { from =
    /// "ml-oncall@example.com" }`: the same fields as `[smtp]`, each one set
    /// here replacing the one there (`password_file` and `password_env`
    /// together replace the password). Default: `[smtp]` as it is.
    pub smtp: Option<Spanned<RawSmtp>>,
}

/// `[smtp]`: how the host sends the e-mails notifier plugins render (a
/// plugin never gets a socket). A receiver's own `smtp` table takes the same
/// fields and overrides these one by one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// The SMTP server (submission server or relay): a host name or IP
    /// address without a port, like `"smtp.example.com"`. Required for
    /// e-mail.
    pub host: Option<Spanned<String>>,
    /// The server's port. Default: by `tls`, 587 for `"starttls"`, 465 for
    /// `"tls"`, 25 for `"none"`.
    pub port: Option<Spanned<u16>>,
    /// How the connection is encrypted: `"starttls"` (a plain connection
    /// upgraded with STARTTLS, which the server must offer), `"tls"` (TLS
    /// from the first byte, also called SMTPS) or `"none"` (no encryption:
    /// only for a relay on this host or a trusted network). With TLS the
    /// server's certificate must be valid for `host` and signed by a
    /// well-known CA (the Mozilla roots of `webpki-roots`) or one from
    /// `ca_file`. Default: `"starttls"`.
    pub tls: Option<Spanned<super::SmtpTls>>,
    /// User name for SMTP AUTH (PLAIN or LOGIN); needs `password_file` or
    /// `password_env`. Default: none, send without authenticating.
    pub username: Option<Spanned<String>>,
    /// A file holding the SMTP password, like `"/run/secrets/smtp"`; a
    /// trailing line break is ignored. Relative to the configuration file.
    /// Read at startup and at each reload.
    pub password_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the SMTP password, like
    /// `"VIGIL_SMTP_PASSWORD"`. Read at startup and at each reload.
    pub password_env: Option<Spanned<String>>,
    /// Not accepted: a password written in `vigil.toml` ends up in backups
    /// and version control. Use `password_file` or `password_env`.
    pub password: Option<Spanned<toml::Value>>,
    /// The sender of every e-mail (the `From` header and the envelope
    /// sender): an address like `"vigil@example.com"` or a mailbox like
    /// `"Vigil <vigil@example.com>"`. Required for e-mail.
    pub from: Option<Spanned<String>>,
    /// The name Vigil gives in its EHLO greeting, usually this machine's
    /// fully qualified domain name; some servers check it. Default: this
    /// machine's host name.
    pub hello_name: Option<Spanned<String>>,
    /// A PEM file of CA certificates trusted for the server's certificate in
    /// addition to the well-known roots: for a server whose certificate comes
    /// from a private CA, or is self-signed. Relative to the configuration
    /// file. Default: none.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// How long sending one message may take: connecting, TLS,
    /// authentication and the whole SMTP conversation. The receiver's
    /// `timeout` applies too; the shorter one wins. Default: `"10s"`.
    pub timeout: Option<Spanned<String>>,
}

/// `[route]`: a tree that sends each alert to receivers. An alert enters at
/// the root and goes down into the first child whose matchers all match (or
/// into every such child while they set `continue`); it is sent to the
/// receiver of the deepest route it reached.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The receiver for alerts that reach this route. Required at the root;
    /// a child route inherits its parent's receiver.
    pub receiver: Option<Spanned<String>>,
    /// Conditions on the alert's labels, all of which must hold, in
    /// Alertmanager syntax: `name="value"`, `name!="value"`,
    /// `name=~"regex"`, `name!~"regex"` (regexes match the whole value).
    /// Default: none (matches every alert).
    #[serde(default)]
    pub matchers: Vec<Spanned<String>>,
    /// Whether an alert that matched this route also tries the sibling
    /// routes after it. Default: `false`.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Labels that split this route's alerts into groups, one notification
    /// per group, like `["alertname", "model"]`; `["..."]` groups by every
    /// label (one group per alert). Default: the parent's; at the root, no
    /// labels (every alert of the route in one group), as Alertmanager.
    pub group_by: Option<Vec<Spanned<String>>>,
    /// How long a new group waits for more alerts before its first
    /// notification. Default: the parent's; at the root `"30s"`.
    pub group_wait: Option<Spanned<String>>,
    /// How long a group waits before notifying about alerts added to it or
    /// resolved since its last notification. Default: the parent's; at the
    /// root `"5m"`.
    pub group_interval: Option<Spanned<String>>,
    /// How long before a notification is sent again for alerts that are
    /// still firing, unchanged. Default: the parent's; at the root `"4h"`.
    pub repeat_interval: Option<Spanned<String>>,
    /// Names of `[[time_intervals]]` during which this route sends nothing
    /// (alerts keep grouping; the notification goes out after the interval
    /// if still needed). Default: none (not inherited, as Alertmanager).
    #[serde(default)]
    pub mute_time_intervals: Vec<Spanned<String>>,
    /// Names of `[[time_intervals]]` outside of which this route sends
    /// nothing. Default: none, meaning always active.
    #[serde(default)]
    pub active_time_intervals: Vec<Spanned<String>>,
    /// Child routes, tried in order, like
    /// `[{ receiver = "pager", matchers = ['severity="critical"'] }]`.
    /// Default: none.
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
}

/// `[[time_intervals]]`: a named set of times, like Alertmanager's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamedInterval {
    /// The name routes use. Required, unique.
    pub name: Spanned<String>,
    /// The interval is any of these. Required.
    pub time_intervals: Vec<Spanned<RawTimeInterval>>,
}

/// One time interval: every condition given must hold; an omitted one
/// places no condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeInterval {
    /// Times of day, like `[{ start_time = "09:00", end_time = "17:00" }]`;
    /// the end is exclusive and may be `"24:00"`.
    #[serde(default)]
    pub times: Vec<Spanned<RawTimeRange>>,
    /// Days of the week or ranges, like `["monday:friday", "sunday"]`.
    #[serde(default)]
    pub weekdays: Vec<Spanned<String>>,
    /// Days of the month or ranges, like `["1:5", "-1"]` (negative counts
    /// from the month's end).
    #[serde(default)]
    pub days_of_month: Vec<Spanned<String>>,
    /// Months by number or name, or ranges, like `["january:march", "12"]`.
    #[serde(default)]
    pub months: Vec<Spanned<String>>,
    /// Years or ranges, like `["2026:2027"]`.
    #[serde(default)]
    pub years: Vec<Spanned<String>>,
    /// The IANA time zone the fields are in, like `"Europe/Berlin"`, or
    /// `"Local"`. Default: `"UTC"`.
    pub location: Option<Spanned<String>>,
}

/// A time-of-day range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeRange {
    /// `"HH:MM"`, inclusive.
    pub start_time: String,
    /// `"HH:MM"`, exclusive; up to `"24:00"`.
    pub end_time: String,
}

/// `[flap_damping]`: an alert that changes between firing and resolved
/// `changes` times within `window` is flapping: one notification says so,
/// and it is not notified again until it keeps one state for `stable_for`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlapDamping {
    /// How many state changes within `window` make an alert flapping, at
    /// least 2. Required.
    pub changes: u32,
    /// How far back changes are counted. Default: `"10m"`.
    pub window: Option<Spanned<String>>,
    /// How long a flapping alert must keep one state to stop flapping.
    /// Default: `"10m"`.
    pub stable_for: Option<Spanned<String>>,
}

/// `[api]`: who may change things through the HTTP API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// A file holding the bearer token that requests creating or expiring
    /// silences and acknowledging alerts must send
    /// (`Authorization: Bearer <token>`). Without a token (this or
    /// `token_env`) those requests are refused. Default: none.
    pub token_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the bearer token, instead of
    /// `token_file`. Default: none.
    pub token_env: Option<Spanned<String>>,
}

/// `[[inhibit_rules]]`: while an alert matching `source_matchers` fires,
/// alerts matching `target_matchers` that have the same values of the
/// `equal` labels are not notified (Alertmanager's inhibition).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInhibitRule {
    /// Conditions on the inhibiting (firing) alert, in matcher syntax like
    /// `['severity="critical"']`. Required.
    pub source_matchers: Vec<Spanned<String>>,
    /// Conditions on the alerts to mute, like `['severity="warning"']`.
    /// Required.
    pub target_matchers: Vec<Spanned<String>>,
    /// Labels whose values must be equal in source and target (a label
    /// missing from both counts as equal), like `["model"]`. Default: none.
    #[serde(default)]
    pub equal: Vec<Spanned<String>>,
}

/// How errors name the document's root table.
const TOP_LEVEL: &str = "the top level";

/// Which parts of the file could not be decoded. Validation skips the checks
/// those parts would make misleading (an unknown receiver, say, when a
/// receiver failed to decode).
#[derive(Debug, Default)]
pub(crate) struct Gaps {
    pub receivers: bool,
    pub route: bool,
    /// `[smtp]` is written but could not be decoded.
    pub smtp: bool,
    /// A `[[sources]]` item could not be decoded.
    pub sources: bool,
}

/// Decodes the file into raw sections, recording every structural error.
/// Returns `None` only when the file is not valid TOML.
pub(crate) fn decode(diag: &mut Diagnostics<'_>) -> Option<(RawConfig, Gaps)> {
    let text = diag.text();
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = syntax_message(text, &e, &span);
            diag.error(&span, message);
            return None;
        }
    };
    let root_span = document.span();
    let mut root = document.into_inner();
    let mut gaps = Gaps::default();

    let mut take = |key: &str| root.remove(key);
    let scrape = take("scrape");
    let evaluation = take("evaluation");
    let sandbox = take("sandbox");
    let targets = take("targets");
    let sources = take("sources");
    let rules = take("rules");
    let receivers = take("receivers");
    let route = take("route");
    let inhibit_rules = take("inhibit_rules");
    let api = take("api");
    let time_intervals = take("time_intervals");
    let flap_damping = take("flap_damping");
    let smtp = take("smtp");

    let mut raw = table::<RawConfig>(
        diag,
        Spanned::new(root_span, DeValue::Table(root)),
        TOP_LEVEL,
    )
    .map(Spanned::into_inner)
    .unwrap_or_default();
    raw.scrape = section(diag, scrape, "[scrape]");
    raw.evaluation = section(diag, evaluation, "[evaluation]");
    raw.sandbox = section(diag, sandbox, "[sandbox]");
    gaps.smtp = smtp.is_some();
    raw.smtp = smtp.and_then(|smtp| table(diag, smtp, "[smtp]"));
    gaps.smtp &= raw.smtp.is_none();
    raw.targets = items(diag, targets, "targets").0;
    (raw.sources, gaps.sources) = items(diag, sources, "sources");
    raw.rules = items_with_params(diag, rules, "rules", |r: &mut RawRule| {
        &mut r.params_written
    })
    .0;
    (raw.receivers, gaps.receivers) =
        items_with_params(diag, receivers, "receivers", |r: &mut RawReceiver| {
            &mut r.params_written
        });
    raw.inhibit_rules = items(diag, inhibit_rules, "inhibit_rules").0;
    raw.api = section(diag, api, "[api]");
    raw.time_intervals = items(diag, time_intervals, "time_intervals").0;
    if let Some(flap) = flap_damping {
        raw.flap_damping = table(diag, flap, "[flap_damping]");
    }
    if let Some(route) = route {
        raw.route = self::route(diag, route, "[route]");
        gaps.route = raw.route.is_none();
    }
    Some((raw, gaps))
}

/// An optional `[section]`.
fn section<T: DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    value: Option<Spanned<DeValue<'_>>>,
    what: &str,
) -> Option<T> {
    table(diag, value?, what).map(Spanned::into_inner)
}

/// An optional `[[key]]` array of tables, item by item. The flag says whether
/// an item failed.
pub(crate) fn items<T: DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    value: Option<Spanned<DeValue<'_>>>,
    key: &str,
) -> (Vec<Spanned<T>>, bool) {
    let Some(value) = value else {
        return (Vec::new(), false);
    };
    let what = format!("[[{key}]]");
    let Some(array) = array(diag, value, &format!("`{key}`")) else {
        return (Vec::new(), true);
    };
    let mut out = Vec::with_capacity(array.len());
    let mut failed = false;
    for item in array {
        match table(diag, item, &what) {
            Some(item) => out.push(item),
            None => failed = true,
        }
    }
    (out, failed)
}

/// [`items`] whose tables have a `params` table of plugin parameters: also
/// records where each parameter is written, which `T` keeps in the field
/// `written` returns.
pub(crate) fn items_with_params<T: DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    value: Option<Spanned<DeValue<'_>>>,
    key: &str,
    written: fn(&mut T) -> &mut ParamLocations,
) -> (Vec<Spanned<T>>, bool) {
    // By the byte offset where the item starts.
    let mut found: Vec<(usize, ParamLocations)> = Vec::new();
    if let Some(DeValue::Array(array)) = value.as_ref().map(Spanned::get_ref) {
        for item in array.iter() {
            if let DeValue::Table(table) = item.get_ref()
                && let Some(params) = table.get("params")
            {
                found.push((item.span().start, ParamLocations::of(diag, params)));
            }
        }
    }
    let (mut out, failed) = items(diag, value, key);
    for item in &mut out {
        let start = item.span().start;
        if let Some(i) = found.iter().position(|(at, _)| *at == start) {
            *written(item.get_mut()) = found.swap_remove(i).1;
        }
    }
    (out, failed)
}

/// The route tree, each route decoded on its own so that an error in one
/// child does not hide errors in its siblings.
fn route(
    diag: &mut Diagnostics<'_>,
    value: Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<RawRoute>> {
    let span = value.span();
    let mut value = value.into_inner();
    let children = match &mut value {
        DeValue::Table(t) => t.remove("routes"),
        _ => None,
    };
    let parent = table::<RawRoute>(diag, Spanned::new(span, value), what);
    let mut routes = Vec::new();
    let mut complete = parent.is_some();
    if let Some(children) = children {
        match array(diag, children, "`routes`") {
            Some(children) => {
                for child in children {
                    match self::route(diag, child, "a route") {
                        Some(child) => routes.push(child),
                        None => complete = false,
                    }
                }
            }
            None => complete = false,
        }
    }
    let mut parent = parent.filter(|_| complete)?;
    parent.get_mut().routes = routes;
    Some(parent)
}

fn array<'i>(
    diag: &mut Diagnostics<'_>,
    value: Spanned<DeValue<'i>>,
    what: &str,
) -> Option<DeArray<'i>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(array) => Some(array),
        other => {
            diag.error(
                &span,
                format!("{what} must be an array of tables, found {}", kind(&other)),
            );
            None
        }
    }
}

/// Decodes one table into `T`, reporting every unknown key (with a
/// suggestion when one is close) and every key of the wrong type, not just
/// the first. Returns `None` if anything was wrong.
pub(crate) fn table<T: DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    value: Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<T>> {
    let span = value.span();
    let mut table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            diag.error(
                &span,
                format!("expected a table for {what}, found {}", kind(&other)),
            );
            return None;
        }
    };
    let fields = struct_fields::<T>();
    let unknown: Vec<(String, Range<usize>)> = table
        .keys()
        .filter(|key| !fields.contains(&key.get_ref().as_ref()))
        .map(|key| (key.get_ref().to_string(), key.span()))
        .collect();
    let mut ok = unknown.is_empty();
    // Fields an unknown key was probably meant to be: not reported missing.
    let mut suggested: Vec<&str> = Vec::new();
    for (key, key_span) in unknown {
        let close = closest(&key, fields);
        diag.error(&key_span, unknown_field(&key, what, close, fields));
        suggested.extend(close);
        table.remove(key.as_str());
    }
    // serde stops at the first bad value: drop that key and try again, so
    // that every bad value is reported.
    let mut removed: Vec<String> = Vec::new();
    loop {
        let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let error = match T::deserialize(ValueDeserializer::from(attempt)) {
            Ok(value) => return ok.then(|| Spanned::new(span, value)),
            Err(error) => error,
        };
        let at = error.span().unwrap_or_else(|| span.clone());
        let message = tidy(error.message());
        let path = key_path(&table, at.start);
        let Some(first) = path.first().cloned() else {
            // An error about the table itself, such as a missing field. A
            // field we removed for having a bad value is not missing.
            match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                Some(name) if removed.iter().any(|r| r == name) || suggested.contains(&name) => {}
                Some(_) => diag.error(&at, format!("{message} {}", place(what))),
                None => diag.error(&at, message),
            }
            return None;
        };
        diag.error(&at, format!("`{}`: {message}", join_path(&path)));
        ok = false;
        table.remove(first.as_str());
        removed.push(first);
    }
}

/// The fields a derived `Deserialize` struct accepts (after renames), read
/// by handing it a deserializer that records them and stops.
fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The probe always fails; only the recorded fields matter.
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// `in [[rules]]`, `at the top level`.
fn place(what: &str) -> String {
    if what == TOP_LEVEL {
        "at the top level".to_string()
    } else {
        format!("in {what}")
    }
}

fn unknown_field(key: &str, what: &str, close: Option<&str>, fields: &[&str]) -> String {
    let place = place(what);
    match close {
        Some(close) => format!("unknown field `{key}` {place}, did you mean `{close}`?"),
        None => {
            let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            format!(
                "unknown field `{key}` {place}, expected one of {}",
                expected.join(", ")
            )
        }
    }
}

/// The candidate closest to `key` by edit distance, if close enough to be a
/// likely typo (a third of the length, as rustc and cargo judge it).
pub(crate) fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = key.chars().count().max(3) / 3;
    candidates
        .iter()
        .map(|c| (edit_distance(key, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting characters, where swapping two neighbours is one
/// edit (optimal string alignment), so `chekc` is one edit from `check`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The keys (and array indices) leading to the value at `offset`.
fn key_path(table: &DeTable<'_>, offset: usize) -> Vec<String> {
    fn walk(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
        match value.get_ref() {
            DeValue::Table(table) => {
                for (key, child) in table.iter() {
                    path.push(key.get_ref().to_string());
                    if walk(child, offset, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            DeValue::Array(array) => {
                for (i, child) in array.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    if walk(child, offset, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            _ => {}
        }
        let span = value.span();
        span.contains(&offset) || span.start == offset
    }

    let mut path = Vec::new();
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if walk(value, offset, &mut path) {
            return path;
        }
        path.pop();
    }
    path
}

/// `labels.env`, `matchers[1]`.
fn join_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// serde's wording, in TOML's terms.
fn tidy(message: &str) -> String {
    message
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace("expected path string", "expected a string")
        .replace("expected u64", "expected a non-negative integer")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
}

fn syntax_message(text: &str, error: &toml::de::Error, span: &Range<usize>) -> String {
    let message = error.message();
    if message == "duplicate key" {
        let key: String = text
            .get(span.start..)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !key.is_empty() {
            return format!("TOML syntax error: duplicate key `{key}`");
        }
    }
    format!("TOML syntax error: {message}")
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_fields_sees_renames() {
        let fields = struct_fields::<RawRule>();
        assert!(fields.contains(&"for"));
        assert!(fields.contains(&"keep_firing_for"));
        assert!(!fields.contains(&"for_"));
        assert!(struct_fields::<RawRoute>().contains(&"continue"));
    }

    #[test]
    fn suggests_close_names_only() {
        let fields = ["interval", "timeout", "labels", "job", "url"];
        assert_eq!(closest("intervl", &fields), Some("interval"));
        assert_eq!(closest("timout", &fields), Some("timeout"));
        assert_eq!(closest("jbo", &fields), Some("job"));
        assert_eq!(closest("xyz", &fields), None);
        assert_eq!(closest("severity", &fields), None);
        assert_eq!(closest("lables", &fields), Some("labels"));
        assert_eq!(closest("tiemout", &fields), Some("timeout"));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("chekc", "check"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
    }

    #[test]
    fn key_paths_name_nested_values() {
        let text = "a = 1\nlabels = { env = 5 }\nlist = ['x', 2]\n";
        let doc = DeTable::parse(text).unwrap().into_inner();
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(join_path(&key_path(&doc, at("1"))), "a");
        assert_eq!(join_path(&key_path(&doc, at("5"))), "labels.env");
        assert_eq!(join_path(&key_path(&doc, at("2"))), "list[1]");
    }
}
