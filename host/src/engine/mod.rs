//! The engine: turns a validated config into running collectors, rules and
//! receivers, and keeps them running across plugin and config reloads.
//!
//! Startup and reload take the same path: `compile` builds every rule and
//! receiver (parsing queries, compiling templates, instantiating and
//! configuring plugins) and returns every error at once with its location;
//! only a config that compiles completely replaces the running one.

pub mod plugins;
pub mod rule;
pub mod runtime;
mod source;
pub mod window;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::alert::AlertRule;
use crate::alert::template::Template;
use crate::collect::scrape::TargetStatus;
use crate::config::{Config, ConfigError, ConfigErrors, ReceiverConfig, RuleConfig};
use crate::notify::Renderer;
use crate::query::remote::RemoteSource;
use crate::query::{LOOKBACK_MS, Query};
use crate::sandbox::{CheckInstance, Limits, PluginError, PluginKind, Sandbox};
use crate::store::Retention;
use plugins::Catalog;

pub use rule::RuleCommand;

/// A rule ready to run: its config plus what was compiled from it.
pub struct RuleSpec {
    pub cfg: RuleConfig,
    pub query: RuleQuery,
    pub alert: AlertRule,
    pub limits: Limits,
    /// Base of the links in notifications.
    pub external_url: String,
    /// Metric names the query reads: a scrape exposing one triggers an evaluation.
    pub metric_names: Vec<String>,
    /// The query has a selector without a metric name: every scrape feeds it.
    pub reads_unnamed: bool,
}

/// What evaluates a rule's query.
pub enum RuleQuery {
    /// Vigil's evaluator, over the local store.
    Local(Query),
    /// The rule's `source`, which parses and evaluates the query text.
    Remote(Arc<RemoteSource>),
}

impl RuleQuery {
    /// The parsed query of a rule over the local store.
    pub fn local(&self) -> Option<&Query> {
        match self {
            RuleQuery::Local(q) => Some(q),
            RuleQuery::Remote(_) => None,
        }
    }

    /// The source of a rule with a `source`.
    pub fn remote(&self) -> Option<&Arc<RemoteSource>> {
        match self {
            RuleQuery::Local(_) => None,
            RuleQuery::Remote(r) => Some(r),
        }
    }
}

/// A compiled config: every rule with its check instance (none for a
/// Prometheus-style rule), every receiver with its renderer.
pub struct Compiled {
    pub rules: Vec<(RuleSpec, Option<CheckInstance>)>,
    pub receivers: Vec<(ReceiverConfig, Renderer)>,
}

/// Compiles rules and receivers against the plugin catalog. Every error is
/// reported, each at the config location it comes from.
pub fn compile(
    cfg: &Config,
    catalog: &Catalog,
    sandbox: &Sandbox,
) -> Result<Compiled, ConfigErrors> {
    let mut errors = Vec::new();
    let file = cfg.file.clone();
    let err = |loc, msg: String| ConfigError::at(file.clone(), loc, msg);
    let sources = source::connect(cfg, &mut errors);
    let rules = compile_rules_with(
        &cfg.file,
        &cfg.rules,
        &cfg.plugin_dir,
        &cfg.external_url,
        catalog,
        sandbox,
        Some(&sources),
        &mut errors,
    );
    let mut receivers = Vec::new();
    for r in &cfg.receivers {
        if r.notifier != crate::notify::CONSOLE {
            match catalog.get(&r.notifier) {
                None => {
                    errors.push(err(
                        r.notifier_at,
                        missing_plugin(&r.notifier, PluginKind::Notifier, catalog, &cfg.plugin_dir),
                    ));
                    continue;
                }
                Some(p) if p.info.kind != PluginKind::Notifier => {
                    errors.push(err(
                        r.notifier_at,
                        format!(
                            "plugin {:?} is a {} plugin; `notifier` needs a notifier plugin",
                            r.notifier, p.info.kind
                        ),
                    ));
                    continue;
                }
                Some(_) => {}
            }
        }
        match Renderer::for_receiver(r, sandbox, &catalog.by_name) {
            Ok(renderer) => receivers.push((r.clone(), renderer)),
            Err(e) => errors.push(err(e.at, format!("receiver {:?}: {e}", r.name))),
        }
    }
    if errors.is_empty() {
        Ok(Compiled { rules, receivers })
    } else {
        let mut errors = ConfigErrors(errors);
        errors.sort();
        Err(errors)
    }
}

/// Compiles rules read from `file` against the plugin catalog, pushing
/// every error onto `errors`. A rule without a `check` gets no instance.
/// Every query is evaluated over the local store, `source` or not (rule
/// unit tests run this way).
pub fn compile_rules(
    file: &Path,
    rules: &[RuleConfig],
    plugin_dir: &Path,
    external_url: &str,
    catalog: &Catalog,
    sandbox: &Sandbox,
    errors: &mut Vec<ConfigError>,
) -> Vec<(RuleSpec, Option<CheckInstance>)> {
    compile_rules_with(
        file,
        rules,
        plugin_dir,
        external_url,
        catalog,
        sandbox,
        None,
        errors,
    )
}

/// [`compile_rules`], with `sources` (by name) evaluating the queries of
/// rules that name one.
#[allow(clippy::too_many_arguments)]
fn compile_rules_with(
    file: &Path,
    rules: &[RuleConfig],
    plugin_dir: &Path,
    external_url: &str,
    catalog: &Catalog,
    sandbox: &Sandbox,
    sources: Option<&source::Sources>,
    errors: &mut Vec<ConfigError>,
) -> Vec<(RuleSpec, Option<CheckInstance>)> {
    let err = |loc, msg: String| ConfigError::at(file, loc, msg);
    let mut out = Vec::new();
    for r in rules {
        let remote = match (sources, &r.source) {
            (Some(sources), Some(name)) => match sources.get(name) {
                Some(Some(remote)) => Some(Some(remote.clone())),
                // The source failed to set up: already reported.
                Some(None) => Some(None),
                None => {
                    errors.push(err(
                        r.location,
                        format!("rule {:?}: unknown source {name:?}", r.name),
                    ));
                    Some(None)
                }
            },
            _ => None,
        };
        let query = match remote {
            Some(remote) => remote.map(RuleQuery::Remote),
            None => match Query::parse(&r.query) {
                // Subqueries without a step use the rule's evaluation
                // interval, as Prometheus' rule manager does.
                Ok(q) => Some(RuleQuery::Local(
                    q.with_subquery_step(r.every.as_millis() as i64),
                )),
                Err(e) => {
                    errors.push(err(
                        r.query_at,
                        format!("rule {:?}: invalid query: {e}", r.name),
                    ));
                    None
                }
            },
        };
        let alert = match alert_rule(r) {
            Ok(a) => Some(a),
            Err(errs) => {
                for (loc, msg) in errs {
                    errors.push(err(loc, msg));
                }
                None
            }
        };
        let limits = Limits {
            timeout: r.timeout,
            memory_bytes: r.memory_limit_bytes,
        };
        // `Some(None)`: a Prometheus-style rule, compiled; `None`: failed.
        let check = match r.check.as_deref() {
            None => Some(None),
            Some(name) => match catalog.get(name) {
                None => {
                    errors.push(err(
                        r.check_at,
                        missing_plugin(name, PluginKind::Check, catalog, plugin_dir),
                    ));
                    None
                }
                Some(p) if p.info.kind != PluginKind::Check => {
                    errors.push(err(
                        r.check_at,
                        format!(
                            "plugin {name:?} is a {} plugin; `check` needs a check plugin",
                            p.info.kind
                        ),
                    ));
                    None
                }
                Some(p) => match CheckInstance::new(sandbox, p.clone(), &r.params, limits) {
                    Ok(c) => Some(Some(c)),
                    Err(e) => {
                        // At the parameter the check rejected, if it names one.
                        let at = match &e {
                            PluginError::Configure(why) => r.params_written.locate(why),
                            _ => None,
                        };
                        errors.push(err(
                            at.unwrap_or(r.params_at),
                            format!("rule {:?}: check plugin {name:?} {e}", r.name),
                        ));
                        None
                    }
                },
            },
        };
        if let (Some(query), Some(alert), Some(check)) = (query, alert, check) {
            // A rule with a source is not fed by local scrapes.
            let (metric_names, reads_unnamed) = query.local().map_or((Vec::new(), false), |q| {
                (q.metric_names(), q.reads_unnamed())
            });
            out.push((
                RuleSpec {
                    cfg: r.clone(),
                    query,
                    alert,
                    limits,
                    external_url: external_url.to_string(),
                    metric_names,
                    reads_unnamed,
                },
                check,
            ));
        }
    }
    out
}

/// Compiles a rule's label and annotation templates.
fn alert_rule(r: &RuleConfig) -> Result<AlertRule, Vec<(crate::config::Location, String)>> {
    let mut errs = Vec::new();
    let mut compile = |kind: &str, map: &BTreeMap<String, String>| {
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match Template::parse(v) {
                Ok(t) => {
                    out.insert(k.clone(), t);
                }
                Err(e) => {
                    let loc = r.annotations_at.get(k).copied().unwrap_or(r.location);
                    let loc = inside_string(loc, v, e.offset);
                    errs.push((loc, format!("rule {:?}: {kind} {k:?}: {e}", r.name)));
                }
            }
        }
        out
    };
    let labels = compile("label", &r.labels);
    let annotations = compile("annotation", &r.annotations);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(AlertRule {
        name: r.name.clone(),
        for_: r.for_,
        keep_firing_for: r.keep_firing_for,
        labels,
        annotations,
    })
}

/// The position of byte `offset` of a string value whose opening quote is
/// at `quote`, when the TOML text is the value itself (one line, no escapes);
/// otherwise the quote's position.
fn inside_string(
    quote: crate::config::Location,
    value: &str,
    offset: usize,
) -> crate::config::Location {
    let plain = !value.contains(['"', '\\', '\n', '\t', '\r']);
    match value.get(..offset) {
        Some(before) if plain => crate::config::Location {
            line: quote.line,
            column: quote.column + 1 + before.chars().count() as u32,
        },
        _ => quote,
    }
}

fn missing_plugin(name: &str, kind: PluginKind, catalog: &Catalog, dir: &Path) -> String {
    let mut available: Vec<&str> = catalog
        .by_name
        .values()
        .filter(|p| p.info.kind == kind)
        .map(|p| p.info.name.as_str())
        .collect();
    available.sort_unstable();
    let broken = catalog.files.values().filter(|f| f.result.is_err()).count();
    let mut msg = format!(
        "no {kind} plugin named {name:?} in {} (available: {})",
        dir.display(),
        if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        }
    );
    if broken > 0 {
        msg.push_str(&format!(
            "; {broken} file(s) there failed to load, see `vigil plugins --dir {}`",
            dir.display()
        ));
    }
    msg
}

/// How long raw samples must be kept for these rules, per metric: the
/// rule's window (for backfill) plus how far back its query reads from each
/// step (ranges, offsets, subqueries, or the selector lookback), for every
/// metric the query names; for every metric when a selector names none.
/// Rules with a `source` keep nothing here.
pub fn retention<'a>(rules: impl IntoIterator<Item = &'a RuleSpec>) -> Retention {
    let mut r = Retention::uniform(LOOKBACK_MS);
    for spec in rules {
        let Some(q) = spec.query.local() else {
            continue;
        };
        let window = i64::try_from(spec.cfg.window.as_millis()).unwrap_or(i64::MAX);
        let need = window.saturating_add(q.lookbehind_ms().max(LOOKBACK_MS));
        if q.reads_unnamed() {
            r.require(None, need);
        }
        for name in q.metric_names() {
            r.require(Some(&name), need);
        }
    }
    r
}

/// An active alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub rule: Arc<str>,
    /// Shared with the rule's view cache and earlier snapshots: views are
    /// republished at every evaluation, labels and annotations rarely change.
    pub labels: Arc<BTreeMap<String, String>>,
    pub annotations: Arc<BTreeMap<String, String>>,
    pub state: &'static str,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub value: f64,
    /// The range the check expected the value in (an `ewma` band, a
    /// threshold), when it says.
    pub band: Option<ExpectedBand>,
    /// The alert's fingerprint, 16 hex digits (as in notifications); the
    /// key for acknowledging it.
    pub fingerprint: Arc<str>,
}

/// The range a check expected a value in; an unbounded side is `null`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExpectedBand {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl From<(f64, f64)> for ExpectedBand {
    fn from((lower, upper): (f64, f64)) -> Self {
        let side = |v: f64| v.is_finite().then_some(v);
        ExpectedBand {
            lower: side(lower),
            upper: side(upper),
        }
    }
}

/// A rule as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleStatus {
    pub name: String,
    pub query: String,
    /// The `[[sources]]` item evaluating the query; `None` for the local
    /// store.
    pub source: Option<String>,
    /// The check plugin's name; `None` for a Prometheus-style rule.
    pub check: Option<String>,
    /// `"check"` when a plugin judges the windows, `"promql"` when every
    /// output series fires (no `check`).
    pub semantics: &'static str,
    pub every_seconds: f64,
    pub window_seconds: f64,
    pub last_evaluation_ms: i64,
    pub last_duration_seconds: f64,
    pub last_error: Option<String>,
    pub series: usize,
    /// Points held across the rule's windows after the last evaluation
    /// (backfilled ones included).
    pub window_points: usize,
    pub evaluations: u64,
    /// A snapshot: readers clone the `Arc`, not the alerts.
    pub alerts: Arc<Vec<AlertView>>,
}

/// A plugin file as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub file: String,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub params: Vec<crate::sandbox::ParamDoc>,
    pub error: Option<String>,
}

impl PluginStatus {
    pub fn from_catalog(catalog: &Catalog) -> Vec<PluginStatus> {
        catalog
            .files
            .values()
            .map(|f| match &f.result {
                Ok(p) => PluginStatus {
                    file: f.path.display().to_string(),
                    name: Some(p.info.name.clone()),
                    kind: Some(p.info.kind.to_string()),
                    version: Some(p.info.version.clone()),
                    description: Some(p.info.description.clone()),
                    params: p.info.params.clone(),
                    error: None,
                },
                Err(e) => PluginStatus {
                    file: f.path.display().to_string(),
                    name: None,
                    kind: None,
                    version: None,
                    description: None,
                    params: Vec::new(),
                    error: Some(e.clone()),
                },
            })
            .collect()
    }
}

/// What the API reads: written by the engine's tasks.
#[derive(Default)]
pub struct Shared {
    pub ready: AtomicBool,
    rules: RwLock<BTreeMap<String, RuleStatus>>,
    targets: RwLock<Vec<Arc<Mutex<TargetStatus>>>>,
    catalog: RwLock<Arc<Catalog>>,
    store: RwLock<Option<Arc<crate::store::SeriesStore>>>,
    notifier: RwLock<Option<crate::notify::Notifier>>,
    api_token: RwLock<Option<crate::config::Secret>>,
}

impl Shared {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn rule_statuses(&self) -> Vec<RuleStatus> {
        self.rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn update_rule(&self, name: &str, f: impl FnOnce(&mut RuleStatus)) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = rules.get_mut(name) {
            f(st);
        }
    }

    /// Replaces the rule list, keeping the status of rules that survive.
    pub fn set_rules(&self, rules: &[RuleConfig]) {
        let mut map = self.rules.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::new();
        for r in rules {
            let mut st = map.remove(&r.name).unwrap_or_default();
            st.name = r.name.clone();
            st.query = r.query.clone();
            st.source = r.source.clone();
            st.check = r.check.clone();
            st.semantics = if r.check.is_some() { "check" } else { "promql" };
            st.every_seconds = r.every.as_secs_f64();
            st.window_seconds = r.window.as_secs_f64();
            next.insert(r.name.clone(), st);
        }
        *map = next;
    }

    pub fn set_targets(&self, targets: Vec<Arc<Mutex<TargetStatus>>>) {
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = targets;
    }

    pub fn target_statuses(&self) -> Vec<TargetStatus> {
        self.targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|t| t.lock().ok().map(|t| t.clone()))
            .collect()
    }

    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = catalog;
    }

    pub fn plugin_statuses(&self) -> Vec<PluginStatus> {
        PluginStatus::from_catalog(&self.catalog.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set_notifier(&self, notifier: crate::notify::Notifier) {
        *self.notifier.write().unwrap_or_else(|e| e.into_inner()) = Some(notifier);
    }

    /// The notification pipeline, once started.
    pub fn notifier(&self) -> Option<crate::notify::Notifier> {
        self.notifier
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_api_token(&self, token: Option<crate::config::Secret>) {
        *self.api_token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Whether a request's `Authorization` header carries the API token.
    /// Compared in constant time; always false when no token is set.
    pub fn authorized(&self, header: Option<&str>) -> Result<(), &'static str> {
        let token = self.api_token.read().unwrap_or_else(|e| e.into_inner());
        let Some(token) = token.as_ref() else {
            return Err(
                "this Vigil has no API token: set token_file or token_env in [api] to allow changes through the API",
            );
        };
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err("missing `Authorization: Bearer <token>` header");
        };
        let (a, b) = (given.trim().as_bytes(), token.expose().as_bytes());
        let diff = a.len() ^ b.len()
            | a.iter()
                .zip(b.iter().cycle())
                .fold(0, |acc, (x, y)| acc | (*x ^ *y) as usize);
        if diff == 0 && !b.is_empty() {
            Ok(())
        } else {
            Err("wrong API token")
        }
    }

    pub fn set_store(&self, store: Arc<crate::store::SeriesStore>) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(store);
    }

    /// Refreshes gauges that are read rather than counted.
    pub fn record_gauges(&self) {
        if let Some(store) = self
            .store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            crate::telemetry::gauge(
                "vigil_store_series",
                "Series held in memory.",
                &[],
                store.series_count() as f64,
            );
            crate::telemetry::gauge(
                "vigil_store_samples",
                "Samples held in memory.",
                &[],
                store.sample_count() as f64,
            );
        }
        let (firing, pending) = alert_counts(&self.rule_statuses());
        crate::telemetry::gauge(
            "vigil_alerts",
            "Active alerts by state.",
            &[("state", "firing")],
            firing as f64,
        );
        crate::telemetry::gauge(
            "vigil_alerts",
            "Active alerts by state.",
            &[("state", "pending")],
            pending as f64,
        );
    }
}

/// Firing and pending alerts across rules.
pub fn alert_counts(rules: &[RuleStatus]) -> (usize, usize) {
    let count = |state: &str| {
        rules
            .iter()
            .flat_map(|r| r.alerts.iter())
            .filter(|a| a.state == state)
            .count()
    };
    (count("firing"), count("pending"))
}
