//! The alert lifecycle: pending, firing, resolved.
//!
//! This is Prometheus' `rules/alerting.go` (2.42) state machine, driven by
//! check verdicts instead of a query's output vector. It is pure: the
//! evaluation time comes in as `now_ms` (Unix milliseconds), nothing here
//! reads a clock or does I/O, and all state is plain data that serializes,
//! so it is tested without clocks and survives restarts.
//!
//! # Semantics
//!
//! Each evaluation of a rule hands [`AlertingRule::eval`] one
//! [`AlertInput`] per output series: its labels, its value, and the
//! check's [`CheckStatus`].
//!
//! * **Firing**: if the alert for that label set is pending or firing, its
//!   value and annotations are refreshed (and a `keep_firing_for` hold is
//!   cancelled); otherwise a new alert starts pending with
//!   `active_at = now`. A pending alert fires once `now - active_at >=
//!   for`; with `for = 0` it fires at the evaluation that created it.
//! * **Ok, or absent from the evaluation**: a pending alert is dropped (no
//!   notification, as Prometheus). A firing alert resolves (state
//!   inactive, `resolved_at = now`), unless `keep_firing_for` is set: then
//!   it keeps firing until `now - keep_firing_since >= keep_firing_for`,
//!   where `keep_firing_since` is the first evaluation at which the
//!   condition no longer held.
//! * **NoData**: the check could not judge (too little history, a gap).
//!   The alert is *held*: state, timers and value stay as they were. A
//!   pending alert neither fires nor is dropped, a firing alert does not
//!   resolve and its `keep_firing_for` clock neither starts nor resets, and
//!   no new alert is created. Prometheus has no such verdict (a series is
//!   either in the vector or not); treating "could not judge" as "ok"
//!   would resolve real incidents whenever a scrape target flaps, and
//!   treating it as "firing" would page on missing data, which is what
//!   `absent()` rules are for.
//! * Resolved alerts are kept for 15 minutes ([`RESOLVED_RETENTION_MS`],
//!   Prometheus' `resolvedRetention`) so the notifier can send the
//!   resolution, then dropped. A series that fires again meanwhile starts
//!   a new pending alert, as in Prometheus.
//!
//! # Labels and templates
//!
//! An alert's labels are, each overriding the ones before (and an empty
//! value removing the label):
//! 1. the series labels without `__name__`;
//! 2. the rule's labels, rendered as templates;
//! 3. the labels the check's verdict adds (e.g. the drift check removes
//!    `le` so a histogram has one alert, not one per bucket);
//! 4. `severity` from the verdict, when the check gives one: a check with
//!    several levels (warning above 0.02, critical above 0.05) decides the
//!    severity per series and evaluation, overriding the rule's
//!    `labels.severity`, which stays the default for verdicts without one;
//! 5. `alertname = rule name`.
//!
//! Annotations are
//! rendered with `$labels` = the series labels exactly as the query
//! returned them (`__name__` included when present, as Prometheus does),
//! `$value`, `$externalLabels` and `$externalURL`.
//!
//! # Severity changes
//!
//! The severity is a label, so a series escalating from warning to
//! critical gets a new alert (as Alertmanager sees it). So that escalating
//! never leaves a gap while the new alert waits out `for`, the switch is a
//! handover: while a series' new-severity alert is pending, its alert of
//! the previous severity is held as it is (as for no-data); when the new
//! one fires, the old one resolves at that evaluation. The same holds when
//! a series de-escalates. This applies only to severities that come from
//! verdicts; a templated `labels.severity` behaves as in Prometheus.
//!
//! # The rule's own alert
//!
//! A check may also judge the rule as a whole (e.g. a query that has
//! matched nothing for ten minutes): that input has no series labels, so
//! its alert has the rule's labels, the verdict's, and `alertname`, and its
//! value is the verdict's score.
//!
//! Two series that map to the same alert labels in one evaluation are
//! Prometheus' "vector contains metrics with the same labelset after
//! applying alert labels": the evaluation fails with
//! [`AlertError::DuplicateLabelset`] and no state changes.

mod state;
pub mod template;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

pub use state::{Alert, AlertState, RuleState};
pub use template::{Template, TemplateContext, TemplateError};

use crate::store::labels::{Labels, METRIC_NAME};

/// The label that carries the rule name on every alert.
pub const ALERTNAME: &str = "alertname";

/// How long a resolved alert is kept so the notifier can send its
/// resolution (Prometheus' `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// A duration in whole milliseconds, saturating: durations come from
/// config and must not wrap into the past.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The alerting part of a rule: what the state machine needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    /// The rule name; becomes the `alertname` label.
    pub name: String,
    /// How long the condition must hold before a pending alert fires.
    pub for_: Duration,
    /// How long a firing alert keeps firing after the condition stops
    /// holding, to ride out flapping.
    pub keep_firing_for: Duration,
    /// Labels added to every alert; values are templates.
    pub labels: BTreeMap<String, Template>,
    /// Annotations of every alert; values are templates.
    pub annotations: BTreeMap<String, Template>,
}

impl AlertRule {
    /// A rule with no `for`, no `keep_firing_for`, no labels or annotations.
    pub fn new(name: impl Into<String>) -> Self {
        AlertRule {
            name: name.into(),
            for_: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// What the check said about one series at one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// The condition holds.
    Firing,
    /// The condition does not hold.
    Ok,
    /// The check could not judge; the alert is held as it is.
    NoData,
}

/// One output series of an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct AlertInput<'a> {
    /// The series labels, `__name__` included if the query kept it.
    pub labels: &'a Labels,
    /// The series' value at this evaluation (the last point of its window).
    pub value: f64,
    /// The check's verdict.
    pub status: CheckStatus,
    /// The check's score, `$score` in templates.
    pub score: f64,
    /// The alert's `severity` as the verdict gives it (overriding the
    /// rule's; empty removes it); `None` leaves the rule's.
    pub severity: Option<&'a str>,
    /// Labels the verdict adds (overriding series and rule labels; an
    /// empty value removes the label).
    pub labels_added: &'a [(String, String)],
    /// The range the check expected the value in, `(lower, upper)`.
    pub band: Option<(f64, f64)>,
}

impl<'a> AlertInput<'a> {
    /// An input with no severity and no added labels.
    pub fn new(labels: &'a Labels, value: f64, status: CheckStatus, score: f64) -> Self {
        AlertInput {
            labels,
            value,
            status,
            score,
            severity: None,
            labels_added: &[],
            band: None,
        }
    }
}

/// The label a verdict's severity sets.
pub const SEVERITY: &str = "severity";

/// A change of an alert's state, for logging, counting and notifying.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The alert's fingerprint (its key in [`AlertingRule::alerts`]).
    pub fingerprint: u64,
    /// The alert's labels.
    pub labels: Labels,
    /// The state before this evaluation; `Inactive` for a new alert.
    pub from: AlertState,
    /// The state after this evaluation; `Inactive` for a dropped pending
    /// alert or a resolution.
    pub to: AlertState,
    /// The evaluation time.
    pub at: i64,
    /// The alert's value after this evaluation.
    pub value: f64,
}

impl Transition {
    /// The alert started firing.
    pub fn is_fired(&self) -> bool {
        self.to == AlertState::Firing
    }

    /// A firing alert resolved (a dropped pending alert is not a
    /// resolution and sends nothing).
    pub fn is_resolved(&self) -> bool {
        self.from == AlertState::Firing && self.to == AlertState::Inactive
    }
}

/// Why an evaluation failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AlertError {
    /// Two series produced the same alert labels, usually because they
    /// differed only in `__name__`.
    #[error("vector contains metrics with the same labelset after applying alert labels: {labels}")]
    DuplicateLabelset {
        /// The alert labels both series produced.
        labels: Labels,
    },
}

/// A rule's alert state machine: the rule, its external context and its
/// alerts.
#[derive(Clone, Debug)]
pub struct AlertingRule {
    rule: AlertRule,
    external_labels: Labels,
    external_url: String,
    state: RuleState,
}

/// What one firing input contributes to its alert.
struct Update {
    labels: Labels,
    annotations: BTreeMap<String, String>,
    value: f64,
    band: Option<(f64, f64)>,
}

impl AlertingRule {
    /// A rule with no alerts yet.
    pub fn new(rule: AlertRule) -> Self {
        Self::with_state(rule, RuleState::default())
    }

    /// A rule resuming from saved state (after a restart).
    pub fn with_state(rule: AlertRule, state: RuleState) -> Self {
        AlertingRule {
            rule,
            external_labels: Labels::default(),
            external_url: String::new(),
            state,
        }
    }

    /// Sets what templates see as `$externalLabels` and `$externalURL`.
    pub fn set_external(&mut self, labels: Labels, url: impl Into<String>) {
        self.external_labels = labels;
        self.external_url = url.into();
    }

    /// The rule definition.
    pub fn rule(&self) -> &AlertRule {
        &self.rule
    }

    /// Replaces the rule definition on reload, keeping its alerts, as
    /// Prometheus copies state into rules that survive a reload. A new
    /// `for` applies to pending alerts at the next evaluation (their
    /// `active_at` is kept); changed rule labels produce new alert label
    /// sets, so the old alerts resolve and new ones start.
    pub fn set_rule(&mut self, rule: AlertRule) {
        self.rule = rule;
    }

    /// The state to persist.
    pub fn state(&self) -> &RuleState {
        &self.state
    }

    /// Takes the state out, e.g. to move it into a rebuilt rule.
    pub fn into_state(self) -> RuleState {
        self.state
    }

    /// All alerts (pending, firing, and resolved ones still retained), in
    /// fingerprint order.
    pub fn alerts(&self) -> impl ExactSizeIterator<Item = &Alert> {
        self.state.alerts()
    }

    /// The alert with this fingerprint.
    pub fn alert(&self, fingerprint: u64) -> Option<&Alert> {
        self.state.get(fingerprint)
    }

    /// The highest state among the rule's alerts (Prometheus'
    /// `AlertingRule.State`), for the rules API.
    pub fn max_state(&self) -> AlertState {
        self.alerts()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Records that the notifier sent this alert at `now_ms` in its current
    /// state. Returns false if the alert no longer exists.
    pub fn mark_sent(&mut self, fingerprint: u64, now_ms: i64) -> bool {
        match self.state.alerts.get_mut(&fingerprint) {
            Some(a) => {
                a.mark_sent(now_ms);
                true
            }
            None => false,
        }
    }

    /// The alert labels for a series (see the module docs).
    fn alert_labels(&self, ctx: &TemplateContext<'_>, input: &AlertInput<'_>) -> Labels {
        // One vector, filled in precedence order: `Labels::new` keeps the
        // last value of a name and drops empty ones, which is exactly
        // "later layers override, an empty value removes, alertname
        // wins" -- with one allocation instead of a reallocation per label.
        let mut pairs = Vec::with_capacity(
            ctx.labels.len() + self.rule.labels.len() + input.labels_added.len() + 2,
        );
        pairs.extend(
            ctx.labels
                .iter()
                .filter(|(n, _)| *n != METRIC_NAME)
                .map(|(n, v)| (n.to_string(), v.to_string())),
        );
        for (name, template) in &self.rule.labels {
            pairs.push((name.clone(), template.render(ctx)));
        }
        pairs.extend(input.labels_added.iter().cloned());
        if let Some(severity) = input.severity {
            pairs.push((SEVERITY.to_string(), severity.to_string()));
        }
        pairs.push((ALERTNAME.to_string(), self.rule.name.clone()));
        Labels::new(pairs)
    }

    /// Runs one evaluation at `now_ms` and returns the state changes, in
    /// fingerprint order. On error nothing changes.
    pub fn eval<'a>(
        &mut self,
        now_ms: i64,
        inputs: impl IntoIterator<Item = AlertInput<'a>>,
    ) -> Result<Vec<Transition>, AlertError> {
        let for_ms = millis(self.rule.for_);
        let keep_ms = millis(self.rule.keep_firing_for);

        // Phase 1: work out what each series says, without touching state,
        // so a duplicate label set leaves the rule exactly as it was. Ok
        // series are skipped outright: they touch no alert, and on a large
        // rule they are nearly all of the series.
        let mut firing: HashMap<u64, Update> = HashMap::new();
        let mut held: HashSet<u64> = HashSet::new();
        // Alerts whose severity comes from the verdict, by the key of their
        // series (their labels without `severity`): candidates for a
        // handover from an alert of another severity.
        let mut graded: HashMap<u64, u64> = HashMap::new();
        for input in inputs {
            if input.status == CheckStatus::Ok {
                continue;
            }
            let ctx = TemplateContext {
                labels: input.labels,
                value: input.value,
                score: input.score,
                external_labels: &self.external_labels,
                external_url: &self.external_url,
            };
            let labels = self.alert_labels(&ctx, &input);
            let fp = labels.fingerprint();
            if firing.contains_key(&fp) || held.contains(&fp) {
                return Err(AlertError::DuplicateLabelset { labels });
            }
            if input.severity.is_some() && input.status == CheckStatus::Firing {
                graded.insert(series_key(&labels), fp);
            }
            match input.status {
                CheckStatus::Firing => {
                    let annotations = self
                        .rule
                        .annotations
                        .iter()
                        .map(|(k, t)| (k.clone(), t.render(&ctx)))
                        .collect();
                    firing.insert(
                        fp,
                        Update {
                            labels,
                            annotations,
                            value: input.value,
                            band: input.band,
                        },
                    );
                }
                CheckStatus::NoData => {
                    held.insert(fp);
                }
                CheckStatus::Ok => {}
            }
        }

        // Phase 2: refresh active alerts, start new ones. A retained
        // resolved alert is replaced by a fresh pending one.
        let mut created: HashSet<u64> = HashSet::new();
        let mut seen: HashSet<u64> = HashSet::with_capacity(firing.len());
        for (fp, up) in firing {
            seen.insert(fp);
            match self.state.alerts.get_mut(&fp) {
                Some(a) if a.is_active() => {
                    a.value = up.value;
                    a.band = up.band;
                    a.annotations = up.annotations;
                    a.keep_firing_since = None;
                }
                _ => {
                    created.insert(fp);
                    self.state.alerts.insert(
                        fp,
                        Alert {
                            fingerprint: fp,
                            labels: up.labels,
                            annotations: up.annotations,
                            state: AlertState::Pending,
                            value: up.value,
                            band: up.band,
                            active_at: now_ms,
                            fired_at: None,
                            resolved_at: None,
                            keep_firing_since: None,
                            last_sent_at: None,
                            last_sent_state: None,
                        },
                    );
                }
            }
        }

        // Handover: a series whose verdict-given severity changed keeps its
        // alert of the old severity while the new one is pending.
        if !graded.is_empty() {
            let pending: HashSet<u64> = graded
                .iter()
                .filter(|(_, fp)| {
                    self.state.alerts.get(fp).is_some_and(|a| {
                        a.state == AlertState::Pending
                            && now_ms.saturating_sub(a.active_at) < for_ms
                    })
                })
                .map(|(key, _)| *key)
                .collect();
            if !pending.is_empty() {
                for (fp, a) in &self.state.alerts {
                    if a.is_active()
                        && !seen.contains(fp)
                        && a.labels.get(SEVERITY).is_some()
                        && pending.contains(&series_key(&a.labels))
                    {
                        held.insert(*fp);
                    }
                }
            }
        }

        // Phase 3: advance every alert's state.
        let mut transitions = Vec::new();
        self.state.alerts.retain(|fp, a| {
            let before = if created.contains(fp) {
                AlertState::Inactive
            } else {
                a.state
            };
            let keep = if seen.contains(fp) {
                if a.state == AlertState::Pending && now_ms.saturating_sub(a.active_at) >= for_ms {
                    a.state = AlertState::Firing;
                    a.fired_at = Some(now_ms);
                }
                true
            } else if held.contains(fp) && a.is_active() {
                true
            } else {
                match a.state {
                    AlertState::Pending => {
                        a.state = AlertState::Inactive;
                        false
                    }
                    AlertState::Firing => {
                        let since = *a.keep_firing_since.get_or_insert(now_ms);
                        if keep_ms == 0 || now_ms.saturating_sub(since) >= keep_ms {
                            a.state = AlertState::Inactive;
                            a.resolved_at = Some(now_ms);
                            a.keep_firing_since = None;
                        }
                        true
                    }
                    AlertState::Inactive => a
                        .resolved_at
                        .is_some_and(|r| now_ms.saturating_sub(r) <= RESOLVED_RETENTION_MS),
                }
            };
            if before != a.state {
                transitions.push(Transition {
                    fingerprint: *fp,
                    labels: a.labels.clone(),
                    from: before,
                    to: a.state,
                    at: now_ms,
                    value: a.value,
                });
            }
            keep
        });
        Ok(transitions)
    }
}

/// The identity of an alert's series: its labels without `severity`.
fn series_key(labels: &Labels) -> u64 {
    if labels.get(SEVERITY).is_none() {
        return labels.fingerprint();
    }
    let mut without = labels.clone();
    without.remove(SEVERITY);
    without.fingerprint()
}
