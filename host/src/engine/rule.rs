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
use super::{AlertView, RuleSpec, Shared};
use crate::alert::{self, AlertInput, AlertState, AlertingRule, CheckStatus, RuleState};
use crate::collect::scrape::{ScrapeLanded, now_ms};
use crate::notify::Notifier;
use crate::sandbox::{
    Alert, AlertStatus, Batch, CheckInstance, Plugin, Sandbox, SeriesState, Status,
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
            Ok(st) => self.restored_state = st,
            Err(e) => tracing::warn!(rule = %name, error = %e, "cannot read saved check state"),
        }
    }

    /// Fills the windows from stored samples at past steps, so a check has
    /// history as soon as the rule starts.
    pub(crate) fn backfill(&mut self, store: &SeriesStore, now: i64) {
        let step = self.spec.cfg.every.as_millis().max(1) as i64;
        let start = now - self.windows.window_ms() + step;
        // One range query: the cost grows with the series touched, not with
        // the number of steps re-selecting them.
        match self.spec.query.range(store, start, now - step, step) {
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
        let mut out = Outcome {
            at_ms: now,
            duration: Duration::ZERO,
            series: 0,
            error: None,
            transitions: Vec::new(),
            to_send: Vec::new(),
        };
        let samples = match self.spec.query.instant(store, now) {
            Ok(s) => s,
            Err(e) => {
                out.error = Some((format!("query: {e}"), "query"));
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
        // Per present series: the verdict and the score templates see.
        let verdicts: Vec<(CheckStatus, f64)> = match (&self.spec.cfg.check, self.check.as_mut()) {
            // Prometheus' semantics: every series the query returned fires.
            (None, _) => present
                .iter()
                .map(|&i| {
                    let v = self.windows.last_value(i).unwrap_or(f64::NAN);
                    (CheckStatus::Firing, v)
                })
                .collect(),
            (Some(name), None) => {
                out.error = Some((
                    format!("check plugin {name:?} is not loaded"),
                    "plugin_missing",
                ));
                out.duration = started.elapsed();
                return out;
            }
            (Some(_), Some(check)) => {
                let batch = std::mem::take(&mut self.batch);
                let state = std::mem::take(&mut self.state);
                let (mut batch, mut state) = (batch, state);
                self.windows.fill(&present, &mut batch, &mut state);
                let (batch, state, result) = check.evaluate(now, batch, state);
                self.batch = batch;
                self.state = state;
                match result {
                    Ok(o) => {
                        self.windows.store_state(&present, &o.state);
                        o.verdicts
                            .iter()
                            .map(|v| {
                                let status = match v.status {
                                    Status::Ok => CheckStatus::Ok,
                                    Status::Firing => CheckStatus::Firing,
                                    Status::NoData => CheckStatus::NoData,
                                };
                                (status, v.score)
                            })
                            .collect()
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
        let inputs = present
            .iter()
            .zip(&verdicts)
            .filter_map(|(&i, &(status, score))| {
                Some(AlertInput {
                    labels: windows.labels(i)?,
                    value: windows.last_value(i).unwrap_or(f64::NAN),
                    score,
                    status,
                })
            });
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
                    labels: a
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
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

    pub(crate) fn alert_views(&self) -> Vec<AlertView> {
        self.alerts
            .alerts()
            .filter(|a| a.is_active())
            .map(|a| AlertView {
                rule: self.spec.cfg.name.clone(),
                labels: a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                annotations: a.annotations.clone(),
                state: a.state.to_string(),
                active_at_ms: a.active_at,
                fired_at_ms: a.fired_at,
                value: a.value,
                fingerprint: format!("{:016x}", a.fingerprint),
            })
            .collect()
    }

    fn save_check_state(&self, durable: &Durable) {
        let entries: Vec<(u64, &[u8])> = self
            .windows
            .states()
            .map(|(l, d)| (l.fingerprint(), d))
            .chain(self.restored_state.iter().map(|(k, v)| (*k, v.as_slice())))
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
            let run_now = tokio::select! {
                _ = tokio::time::sleep_until(due) => true,
                r = self.landed.recv() => match r {
                    Ok(ev) => feeds(&spec, &ev) && last_eval.is_none_or(|t| t.elapsed() >= min_gap),
                    Err(broadcast::error::RecvError::Lagged(_)) => last_eval.is_none_or(|t| t.elapsed() >= min_gap),
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
        let query_changed = core.spec.cfg.query != spec.cfg.query;
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
        let joined = tokio::task::spawn_blocking(move || {
            let out = core.evaluate(&store, now, &url);
            (core, out)
        })
        .await;
        let (core, mut out) = match joined {
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
        self.finish(&core, &out);
        self.core = Some(core);
    }

    fn finish(&self, core: &RuleCore, out: &Outcome) {
        let name = &core.spec.cfg.name;
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
        self.shared.update_rule(name, |st| {
            st.last_evaluation_ms = out.at_ms;
            st.last_duration_seconds = out.duration.as_secs_f64();
            st.series = out.series;
            st.evaluations += 1;
            st.last_error = out.error.as_ref().map(|(e, _)| e.clone());
            st.alerts = core.alert_views();
        });
    }

    pub(crate) fn save_check_state(&self) {
        if let Some(core) = &self.core {
            core.save_check_state(&self.durable);
        }
    }
}

/// Whether a scrape feeds a rule: it exposes a metric the query reads, or the
/// query has a selector without a metric name.
fn feeds(spec: &RuleSpec, ev: &ScrapeLanded) -> bool {
    spec.reads_unnamed || spec.metric_names.iter().any(|n| ev.names.contains(n))
}
