//! One rule's life: evaluate, keep windows and state, drive its alerts.
//!
//! A rule evaluates as soon as a scrape that feeds it lands (so alert
//! latency is close to the scrape's own), and at least every `every`. The
//! evaluation itself (query, windows, the plugin call, the alert state
//! machine) runs on a blocking thread so a slow plugin never stalls the
//! runtime; other rules run on their own tasks and never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use super::plugins::Catalog;
use super::window::Windows;
use super::{AlertView, ExpectedBand, RuleSpec, Shared};
use crate::alert::{self, AlertInput, AlertState, AlertingRule, CheckStatus, RuleState};
use crate::collect::scrape::{ScrapeLanded, now_ms};
use crate::notify::Notifier;
use crate::query::Sample;
use crate::sandbox::{
    Alert, AlertStatus, Batch, CheckInput, CheckInstance, LabelCache, Plugin, Sandbox, SeriesState,
    Status, Verdict,
};
use crate::store::SeriesStore;
use crate::store::durable::Durable;
use crate::store::labels::Labels;
use crate::telemetry::events;

/// Firing alerts are sent once; repeating them is the routing's business.
const NO_REPEAT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How often learned check state is written to SQLite.
const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// Messages from the supervisor.
pub enum RuleCommand {
    /// A config reload changed the rule; alerts and state carry over. No
    /// instance for a Prometheus-style rule.
    Update(Box<RuleSpec>, Option<CheckInstance>),
}

/// Everything an evaluation touches, moved to a blocking thread and back.
pub(crate) struct RuleCore {
    pub(crate) spec: Arc<RuleSpec>,
    pub(crate) check: Option<CheckInstance>,
    pub(crate) windows: Windows,
    pub(crate) alerts: AlertingRule,
    batch: Batch,
    state: SeriesState,
    /// Persisted state waiting for its series to reappear, by fingerprint.
    restored_state: HashMap<u64, Vec<u8>>,
    /// The check's state for the rule as a whole, persisted with the series'.
    rule_state: Vec<u8>,
    /// The labels of the last batch, sent to the check with it.
    labels: LabelCache,
    /// A rule with a source: backfill its windows from the source before
    /// the next step (see `source.rs`).
    pub(crate) remote_backfill: bool,
    /// The last published view of each active alert, by fingerprint.
    views: HashMap<u64, AlertView>,
    /// The rule's name, shared by its alert views.
    name: Arc<str>,
}

/// What one evaluation produced.
pub(crate) struct Outcome {
    pub at_ms: i64,
    pub duration: Duration,
    pub series: usize,
    pub error: Option<(String, &'static str)>,
    pub transitions: Vec<alert::Transition>,
    pub to_send: Vec<(Labels, Alert)>,
}

impl RuleCore {
    pub(crate) fn new(spec: Arc<RuleSpec>, check: Option<CheckInstance>) -> Self {
        let window_ms = spec.cfg.window.as_millis() as i64;
        let name = Arc::from(spec.cfg.name.as_str());
        let mut alerts = AlertingRule::new(spec.alert.clone());
        alerts.set_external(Labels::default(), spec.external_url.clone());
        RuleCore {
            spec,
            check,
            windows: Windows::new(window_ms),
            alerts,
            batch: Batch::default(),
            state: SeriesState::default(),
            restored_state: HashMap::new(),
            rule_state: Vec::new(),
            labels: LabelCache::default(),
            remote_backfill: false,
            views: HashMap::new(),
            name,
        }
    }

    /// Restores alert and check state saved by an earlier run.
    pub(crate) fn restore(&mut self, durable: &Durable) {
        let name = &self.spec.cfg.name;
        match durable.load_rule_alerts(name) {
            Ok(Some(json)) => match serde_json::from_str::<RuleState>(&json) {
                Ok(state) => {
                    self.alerts = AlertingRule::with_state(self.spec.alert.clone(), state);
                    self.alerts
                        .set_external(Labels::default(), self.spec.external_url.clone());
                    tracing::info!(rule = %name, alerts = self.alerts.alerts().len(), "restored alert state");
                }
                Err(e) => {
                    tracing::warn!(rule = %name, error = %e, "ignoring unreadable saved alert state")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(rule = %name, error = %e, "cannot read saved alert state"),
        }
        match durable.load_check_state(name) {
            Ok(mut st) => {
                self.rule_state = st.remove(&RULE_STATE_KEY).unwrap_or_default();
                self.restored_state = st;
            }
            Err(e) => tracing::warn!(rule = %name, error = %e, "cannot read saved check state"),
        }
    }

    /// Fills the windows from stored samples at past steps, so a check has
    /// history as soon as the rule starts.
    pub(crate) fn backfill(&mut self, store: &SeriesStore, now: i64) {
        let Some(query) = self.spec.query.local() else {
            // A rule with a source backfills from it before its next step.
            self.remote_backfill = true;
            return;
        };
        let step = self.spec.cfg.every.as_millis().max(1) as i64;
        let start = now - self.windows.window_ms() + step;
        // One range query: the cost grows with the series touched, not with
        // the number of steps re-selecting them.
        match query.range(store, start, now - step, step) {
            Ok(series) => {
                for (labels, points) in &series {
                    for &(t, v) in points {
                        self.windows.seed(labels, t, v);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(rule = %self.spec.cfg.name, error = %e, "window backfill failed; the window fills as the rule runs");
            }
        }
    }

    pub(crate) fn evaluate(
        &mut self,
        store: &SeriesStore,
        now: i64,
        external_url: &str,
    ) -> Outcome {
        let started = Instant::now();
        let samples = match self.spec.query.local() {
            Some(query) => query
                .instant(store, now)
                .map_err(|e| (format!("query: {e}"), "query")),
            None => Err((
                "a rule with a source needs its samples fetched".into(),
                "source",
            )),
        };
        self.evaluate_samples(samples, started, now, external_url)
    }

    /// A step from the query's result at `now`, however it was evaluated
    /// (locally, or by the rule's source): windows, check, alerts.
    /// `started` is when the step began, for its duration.
    pub(crate) fn evaluate_samples(
        &mut self,
        samples: Result<Vec<Sample>, (String, &'static str)>,
        started: Instant,
        now: i64,
        external_url: &str,
    ) -> Outcome {
        let mut out = Outcome {
            at_ms: now,
            duration: Duration::ZERO,
            series: 0,
            error: None,
            transitions: Vec::new(),
            to_send: Vec::new(),
        };
        let samples = match samples {
            Ok(s) => s,
            Err(error) => {
                out.error = Some(error);
                out.duration = started.elapsed();
                return out;
            }
        };
        let present = self.windows.observe(now, &samples);
        self.windows.expire(now);
        if !self.restored_state.is_empty() {
            for s in &samples {
                if let Some(data) = self.restored_state.remove(&s.labels.fingerprint()) {
                    self.windows.restore_state(&s.labels, data);
                }
            }
        }
        out.series = present.len();
        // The series the check judged (present, then vanished), a verdict
        // for each, and the check's verdict on the rule as a whole.
        let (judged, verdicts, rule_verdict) = match (&self.spec.cfg.check, self.check.as_mut()) {
            // Prometheus' semantics: every series the query returned fires.
            (None, _) => {
                let verdicts = present
                    .iter()
                    .map(|&i| Verdict {
                        status: Status::Firing,
                        score: self.windows.last_value(i).unwrap_or(f64::NAN),
                        message: None,
                        band: None,
                        severity: None,
                        labels: Vec::new(),
                    })
                    .collect();
                (present, verdicts, None)
            }
            (Some(name), None) => {
                out.error = Some((
                    format!("check plugin {name:?} is not loaded"),
                    "plugin_missing",
                ));
                out.duration = started.elapsed();
                return out;
            }
            (Some(_), Some(check)) => {
                // Series that vanished since an earlier step follow the
                // present ones (the sandbox keeps them from a 0.1.0 plugin).
                let mut order = present;
                let matched = order.len();
                order.extend(self.windows.vanished(&order));
                let mut batch = std::mem::take(&mut self.batch);
                let mut state = std::mem::take(&mut self.state);
                self.windows.fill(&order, &mut batch, &mut state);
                let windows = &self.windows;
                self.labels.update(&batch.series, |k| {
                    windows.labels(order[k]).into_iter().flat_map(|l| l.iter())
                });
                let input = CheckInput {
                    batch,
                    matched,
                    state,
                    rule_state: std::mem::take(&mut self.rule_state),
                };
                let (input, result) = check.evaluate_rule(now, input, &mut self.labels);
                (self.batch, self.state) = (input.batch, input.state);
                self.rule_state = input.rule_state;
                match result {
                    Ok(o) => {
                        self.windows.store_state(&order, &o.state);
                        self.rule_state = o.rule_state;
                        (order, o.verdicts, o.rule_verdict)
                    }
                    Err(e) => {
                        out.error = Some((
                            format!("check plugin {} {e}", check.plugin().info.name),
                            e.reason(),
                        ));
                        out.duration = started.elapsed();
                        return out;
                    }
                }
            }
        };
        let windows = &self.windows;
        let no_labels = Labels::default();
        let inputs = judged
            .iter()
            .zip(&verdicts)
            .filter_map(|(&i, v)| {
                let value = windows.last_value(i).unwrap_or(f64::NAN);
                Some(alert_input(windows.labels(i)?, value, v))
            })
            // The rule's own alert: no series labels, the score as its value.
            .chain(
                rule_verdict
                    .iter()
                    .map(|v| alert_input(&no_labels, v.score, v)),
            );
        match self.alerts.eval(now, inputs) {
            Ok(t) => out.transitions = t,
            Err(e) => out.error = Some((e.to_string(), "alerts")),
        }
        out.to_send = self.collect_sends(now, external_url);
        out.duration = started.elapsed();
        out
    }

    /// Alerts whose news has not been sent: newly firing, or resolved.
    /// Marks them sent, so a restart does not send them again. Firing
    /// alerts are not repeated: repeats belong to notification routing.
    fn collect_sends(&mut self, now: i64, external_url: &str) -> Vec<(Labels, Alert)> {
        let generator_url = format!(
            "{}/#rule-{}",
            external_url.trim_end_matches('/'),
            self.spec.cfg.name
        );
        let mut out = Vec::new();
        for a in self.alerts.alerts() {
            if !a.needs_send(now, NO_REPEAT) {
                continue;
            }
            let status = match a.state {
                AlertState::Firing => AlertStatus::Firing,
                AlertState::Inactive => AlertStatus::Resolved,
                AlertState::Pending => continue,
            };
            out.push((
                a.labels.clone(),
                Alert {
                    status,
                    labels: a.labels.clone(),
                    annotations: a
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    value: a.value,
                    starts_at: a.fired_at.unwrap_or(a.active_at),
                    ends_at: a.resolved_at,
                    generator_url: generator_url.clone(),
                    fingerprint: format!("{:016x}", a.fingerprint),
                },
            ));
        }
        for (labels, _) in &out {
            self.alerts.mark_sent(labels.fingerprint(), now);
        }
        out
    }

    /// The active alerts as the API shows them. What does not change
    /// between evaluations (labels, fingerprint, usually the annotations)
    /// comes from the cache of the previous call, so republishing views at
    /// every evaluation allocates only the list.
    pub(crate) fn alert_views(&mut self) -> Arc<Vec<AlertView>> {
        if *self.name != *self.spec.cfg.name {
            self.name = Arc::from(self.spec.cfg.name.as_str());
        }
        let rule = &self.name;
        let mut old = std::mem::take(&mut self.views);
        let mut views = Vec::new();
        for a in self.alerts.alerts().filter(|a| a.is_active()) {
            let view = match old.remove(&a.fingerprint) {
                Some(mut v) => {
                    if *v.annotations != a.annotations {
                        v.annotations = Arc::new(a.annotations.clone());
                    }
                    v.rule = rule.clone();
                    v.state = a.state.as_str();
                    v.active_at_ms = a.active_at;
                    v.fired_at_ms = a.fired_at;
                    v.value = a.value;
                    v.band = a.band.map(ExpectedBand::from);
                    v
                }
                None => AlertView {
                    rule: rule.clone(),
                    labels: Arc::new(
                        a.labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                    annotations: Arc::new(a.annotations.clone()),
                    state: a.state.as_str(),
                    active_at_ms: a.active_at,
                    fired_at_ms: a.fired_at,
                    value: a.value,
                    band: a.band.map(ExpectedBand::from),
                    fingerprint: Arc::from(format!("{:016x}", a.fingerprint)),
                },
            };
            self.views.insert(a.fingerprint, view.clone());
            views.push(view);
        }
        Arc::new(views)
    }

    fn save_check_state(&self, durable: &Durable) {
        let entries: Vec<(u64, &[u8])> = self
            .windows
            .states()
            .map(|(l, d)| (l.fingerprint(), d))
            .chain(self.restored_state.iter().map(|(k, v)| (*k, v.as_slice())))
            .chain([(RULE_STATE_KEY, self.rule_state.as_slice())])
            .collect();
        if let Err(e) = durable.save_check_state(&self.spec.cfg.name, entries) {
            tracing::warn!(rule = %self.spec.cfg.name, error = %e, "cannot save check state");
        }
    }

    /// Swaps in a new version of the check plugin, keeping windows and state.
    fn swap_plugin(
        &mut self,
        sandbox: &Sandbox,
        plugin: Option<Arc<Plugin>>,
    ) -> Result<(), String> {
        let Some(name) = &self.spec.cfg.check else {
            // A Prometheus-style rule has no plugin to swap.
            return Ok(());
        };
        let Some(plugin) = plugin else {
            if self.check.take().is_some() {
                tracing::warn!(rule = %self.spec.cfg.name, plugin = %name, "check plugin removed; rule paused");
            }
            return Ok(());
        };
        if self
            .check
            .as_ref()
            .is_some_and(|c| c.plugin().sha256 == plugin.sha256)
        {
            return Ok(());
        }
        match CheckInstance::new(
            sandbox,
            plugin.clone(),
            &self.spec.cfg.params,
            self.spec.limits,
        ) {
            Ok(inst) => {
                tracing::info!(rule = %self.spec.cfg.name, plugin = %name, version = %plugin.info.version, "check plugin swapped in; state and alerts kept");
                self.check = Some(inst);
                Ok(())
            }
            Err(e) => Err(format!(
                "new version of check plugin {name:?} {e}; keeping the previous version"
            )),
        }
    }
}

/// The task that owns one rule.
pub(crate) struct RuleTask {
    pub(crate) core: Option<RuleCore>,
    pub(crate) store: Arc<SeriesStore>,
    pub(crate) durable: Arc<Durable>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sandbox: Sandbox,
    pub(crate) notifier: Notifier,
    pub(crate) catalog: watch::Receiver<Arc<Catalog>>,
    pub(crate) landed: broadcast::Receiver<ScrapeLanded>,
    pub(crate) commands: mpsc::Receiver<RuleCommand>,
    pub(crate) external_url: String,
}

impl RuleTask {
    pub(crate) async fn run(mut self) {
        let mut last_eval: Option<Instant> = None;
        // The first evaluation waits for a scrape that feeds the rule (or
        // `every`, if none comes): right after a restart the store is empty,
        // and judging an empty store would drop restored pending alerts.
        let started = Instant::now();
        let mut last_state_save = Instant::now();
        let mut plugin_error: Option<String> = None;
        loop {
            let Some(spec) = self.core.as_ref().map(|c| c.spec.clone()) else {
                return;
            };
            let every = spec.cfg.every;
            // Scrape-triggered evaluations keep at least 90% of `every`
            // apart, so a window holds about one point per step. The timer
            // is the fallback for when no feeding scrape lands: waiting half
            // a step more than `every` keeps it from evaluating between two
            // scrapes and so pushing the next scrape's evaluation a step late.
            let min_gap = every.mul_f64(0.9);
            let due =
                tokio::time::Instant::from_std(last_eval.unwrap_or(started) + every + every / 2);
            // A rule with a source has only its timer: first at once (its
            // windows come from the source), then every `every`.
            let remote = spec.query.remote().is_some();
            let due = match last_eval {
                _ if !remote => due,
                None => tokio::time::Instant::from_std(started),
                Some(t) => tokio::time::Instant::from_std(t + every),
            };
            let run_now = tokio::select! {
                _ = tokio::time::sleep_until(due) => true,
                r = self.landed.recv() => match r {
                    Ok(ev) => feeds(&spec, &ev) && last_eval.is_none_or(|t| t.elapsed() >= min_gap),
                    Err(broadcast::error::RecvError::Lagged(_)) => !remote && last_eval.is_none_or(|t| t.elapsed() >= min_gap),
                    Err(broadcast::error::RecvError::Closed) => false,
                },
                changed = self.catalog.changed() => {
                    if changed.is_err() { return; }
                    let catalog = self.catalog.borrow_and_update().clone();
                    if let Some(core) = self.core.as_mut() {
                        plugin_error = core.swap_plugin(&self.sandbox, spec.cfg.check.as_deref().and_then(|n| catalog.get(n)).cloned()).err();
                        if let Some(e) = &plugin_error {
                            events::RuleFailed { rule: &spec.cfg.name, reason: "plugin_reload", error: e }.emit();
                        }
                    }
                    false
                }
                cmd = self.commands.recv() => {
                    match cmd {
                        None => {
                            // The supervisor let go: stopping. Keep what was learned.
                            self.save_check_state();
                            return;
                        }
                        Some(RuleCommand::Update(new_spec, check)) => self.apply_update(*new_spec, check),
                    }
                    false
                }
            };
            if !run_now {
                continue;
            }
            last_eval = Some(Instant::now());
            self.tick(plugin_error.as_deref()).await;
            if last_state_save.elapsed() >= STATE_SAVE_INTERVAL {
                last_state_save = Instant::now();
                self.save_check_state();
            }
        }
    }

    fn apply_update(&mut self, spec: RuleSpec, check: Option<CheckInstance>) {
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let query_changed = !super::source::same_data(&core.spec, &spec);
        core.alerts.set_rule(spec.alert.clone());
        if query_changed {
            core.windows = Windows::new(spec.cfg.window.as_millis() as i64);
        } else {
            core.windows
                .set_window_ms(spec.cfg.window.as_millis() as i64);
        }
        core.spec = Arc::new(spec);
        core.check = check;
        if query_changed {
            core.backfill(&self.store, now_ms());
        }
    }

    /// One evaluation, on a blocking thread.
    pub(crate) async fn tick(&mut self, plugin_error: Option<&str>) {
        let Some(mut core) = self.core.take() else {
            return;
        };
        let store = self.store.clone();
        let url = self.external_url.clone();
        let spec = core.spec.clone();
        let now = now_ms();
        let started = Instant::now();
        let fetched = match spec.query.remote() {
            Some(remote) => Some(core.fetch_remote(remote, now).await),
            None => None,
        };
        let joined = tokio::task::spawn_blocking(move || {
            let out = match fetched {
                Some(samples) => core.evaluate_samples(samples, started, now, &url),
                None => core.evaluate(&store, now, &url),
            };
            (core, out)
        })
        .await;
        let (mut core, mut out) = match joined {
            Ok(x) => x,
            Err(e) => {
                // A bug, not a plugin failure (plugins cannot panic the host).
                tracing::error!(rule = %spec.cfg.name, error = %e, "rule evaluation crashed; restarting the rule");
                let check = match &spec.cfg.check {
                    None => None,
                    Some(name) => {
                        let Some(plugin) = self.catalog.borrow().get(name).cloned() else {
                            return;
                        };
                        CheckInstance::new(&self.sandbox, plugin, &spec.cfg.params, spec.limits)
                            .ok()
                    }
                };
                self.core = Some(RuleCore::new(spec, check));
                return;
            }
        };
        if out.error.is_none()
            && let Some(e) = plugin_error
        {
            out.error = Some((e.to_string(), "plugin_reload"));
        }
        self.finish(&mut core, &out);
        self.core = Some(core);
    }

    fn finish(&self, core: &mut RuleCore, out: &Outcome) {
        let spec = core.spec.clone();
        let name = &spec.cfg.name;
        match &out.error {
            None => events::RuleEvaluated {
                rule: name,
                series: out.series,
                duration: out.duration,
            }
            .emit(),
            Some((e, reason)) => events::RuleFailed {
                rule: name,
                reason,
                error: e,
            }
            .emit(),
        }
        for t in &out.transitions {
            events::AlertChanged {
                rule: name,
                labels: &t.labels.to_string(),
                from: &t.from.to_string(),
                to: &t.to.to_string(),
            }
            .emit();
        }
        // Hand alerts over (the notifier saves them) before saving the
        // state that records them as sent: a crash in between re-sends,
        // which the notification log deduplicates, instead of losing them.
        if !out.to_send.is_empty() {
            self.notifier.dispatch(&out.to_send);
        }
        if !out.transitions.is_empty() || !out.to_send.is_empty() {
            match serde_json::to_string(core.alerts.state()) {
                Ok(json) => {
                    if let Err(e) = self.durable.save_rule_alerts(name, &json, out.at_ms) {
                        tracing::error!(rule = %name, error = %e, "cannot save alert state");
                    }
                }
                Err(e) => tracing::error!(rule = %name, error = %e, "cannot serialize alert state"),
            }
        }
        let views = core.alert_views();
        self.shared.update_rule(name, |st| {
            st.last_evaluation_ms = out.at_ms;
            st.last_duration_seconds = out.duration.as_secs_f64();
            st.series = out.series;
            st.window_points = core.windows.points();
            st.evaluations += 1;
            st.last_error = out.error.as_ref().map(|(e, _)| e.clone());
            st.alerts = views;
        });
    }

    pub(crate) fn save_check_state(&self) {
        if let Some(core) = &self.core {
            core.save_check_state(&self.durable);
        }
    }
}

/// The key of a rule's own check state (the rule's slot in the contract)
/// among its series' fingerprints: the FNV-1a fingerprint of a real label
/// set is 0 with probability 2^-64.
const RULE_STATE_KEY: u64 = 0;

/// What the alert state machine needs from one verdict.
fn alert_input<'a>(labels: &'a Labels, value: f64, v: &'a Verdict) -> AlertInput<'a> {
    let status = match v.status {
        Status::Ok => CheckStatus::Ok,
        Status::Firing => CheckStatus::Firing,
        Status::NoData => CheckStatus::NoData,
    };
    AlertInput {
        severity: v.severity.as_deref(),
        labels_added: &v.labels,
        band: v.band.map(|b| (b.lower, b.upper)),
        ..AlertInput::new(labels, value, status, v.score)
    }
}

/// Whether a scrape feeds a rule: it exposes a metric the query reads, or the
/// query has a selector without a metric name.
fn feeds(spec: &RuleSpec, ev: &ScrapeLanded) -> bool {
    spec.reads_unnamed || spec.metric_names.iter().any(|n| ev.names.contains(n))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{Catalog, compile};
    use crate::sandbox::Limits;

    fn core_for(text: &str) -> RuleCore {
        let cfg = crate::config::parse(Path::new("/nonexistent/vigil.toml"), text).unwrap();
        let sandbox = Sandbox::new(None, Limits::default()).unwrap();
        let compiled = compile(&cfg, &Catalog::default(), &sandbox).unwrap();
        let (spec, check) = compiled.rules.into_iter().next().unwrap();
        RuleCore::new(Arc::new(spec), check)
    }

    #[test]
    fn alert_views_reuse_what_did_not_change() {
        let mut core = core_for(
            "[[rules]]\nname = \"High\"\nquery = \"x > 1\"\n\
             [rules.annotations]\nsummary = \"{{ $value }}\"\n",
        );
        let store = SeriesStore::new(i64::MAX / 4);
        let a = store.intern(Labels::from_pairs([("__name__", "x"), ("job", "a")]));
        let b = store.intern(Labels::from_pairs([("__name__", "x"), ("job", "b")]));
        let t = 1_700_000_000_000;
        store.append(&[(a, t, 2.0), (b, t, 3.0)]);
        core.evaluate(&store, t, "http://v");
        let first = core.alert_views();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|v| v.state == "firing" && &*v.rule == "High")
        );

        // b's value (so its annotation) changes, a's does not; then a goes.
        store.append(&[(a, t + 1000, 2.0), (b, t + 1000, 4.0)]);
        core.evaluate(&store, t + 1000, "http://v");
        let second = core.alert_views();
        let find = |views: &[AlertView], job: &str| {
            views
                .iter()
                .find(|v| v.labels.get("job").map(String::as_str) == Some(job))
                .cloned()
                .unwrap()
        };
        let (a1, a2) = (find(&first, "a"), find(&second, "a"));
        assert!(Arc::ptr_eq(&a1.labels, &a2.labels));
        assert!(Arc::ptr_eq(&a1.annotations, &a2.annotations));
        let (b1, b2) = (find(&first, "b"), find(&second, "b"));
        assert!(Arc::ptr_eq(&b1.labels, &b2.labels));
        assert_eq!(b1.annotations.get("summary").unwrap(), "3");
        assert_eq!(b2.annotations.get("summary").unwrap(), "4");
        assert_eq!(b2.value, 4.0);

        store.append(&[(a, t + 2000, 0.0), (b, t + 2000, 4.0)]);
        core.evaluate(&store, t + 2000, "http://v");
        let third = core.alert_views();
        assert_eq!(third.len(), 1);
        assert_eq!(core.views.len(), 1, "the cache forgets resolved alerts");
        // The earlier snapshot is untouched.
        assert_eq!(first.len(), 2);
    }
}
