//! Alert instances and the persisted per-rule state.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::millis;
use crate::store::labels::Labels;

/// The state of one alert instance, as Prometheus names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Not active: a resolved alert kept so its resolution can be sent.
    Inactive,
    /// The condition holds but has not held for the rule's `for` yet.
    Pending,
    /// The condition has held for `for`: notifications go out.
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert instance: a rule's alert for one label set.
///
/// All times are Unix milliseconds. Fields are public for reading (the API
/// lists alerts, the notifier builds notifications from them); the rule
/// owns the lifecycle, and callers change only the send bookkeeping,
/// through [`super::AlertingRule::mark_sent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `labels.fingerprint()`: the alert's identity, and the key of
    /// persisted state.
    pub fingerprint: u64,
    /// Series labels without `__name__`, plus the rule's rendered labels,
    /// plus `alertname`.
    pub labels: Labels,
    /// Rendered annotations, refreshed at every firing evaluation.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Current state.
    pub state: AlertState,
    /// The series' value at the last firing evaluation.
    #[serde(with = "float_text")]
    pub value: f64,
    /// The range the check expected the value in at the last firing
    /// evaluation, for the status page. Not saved: the next evaluation
    /// gives it again.
    #[serde(skip)]
    pub band: Option<(f64, f64)>,
    /// When the condition started holding (the alert became pending).
    pub active_at: i64,
    /// When the alert started firing.
    #[serde(default)]
    pub fired_at: Option<i64>,
    /// When the alert resolved; set only in [`AlertState::Inactive`].
    #[serde(default)]
    pub resolved_at: Option<i64>,
    /// While a firing alert is held by `keep_firing_for`: the first
    /// evaluation at which the condition no longer held.
    #[serde(default)]
    pub keep_firing_since: Option<i64>,
    /// When the notifier last sent this alert.
    #[serde(default)]
    pub last_sent_at: Option<i64>,
    /// The state the alert had when it was last sent.
    #[serde(default)]
    pub last_sent_state: Option<AlertState>,
}

impl Alert {
    /// Whether the alert is pending or firing (not a retained resolution).
    pub fn is_active(&self) -> bool {
        self.state != AlertState::Inactive
    }

    /// Whether the notifier should send this alert now, like Prometheus'
    /// `Alert.needsSending`: never while pending; a firing alert when it
    /// has not been sent as firing yet or `resend_delay` has passed since
    /// the last send (so the receiver's own expiry never lapses); a
    /// resolved alert when its resolution has not been sent yet.
    ///
    /// Prometheus compares only timestamps; we also look at the state that
    /// was sent, so a send in the same millisecond as the resolution (but
    /// before it) does not count as having sent the resolution.
    pub fn needs_send(&self, now_ms: i64, resend_delay: Duration) -> bool {
        match self.state {
            AlertState::Pending => false,
            AlertState::Firing => {
                self.last_sent_state != Some(AlertState::Firing)
                    || self
                        .last_sent_at
                        .is_none_or(|sent| sent.saturating_add(millis(resend_delay)) < now_ms)
            }
            AlertState::Inactive => {
                let sent_resolution = self.last_sent_state == Some(AlertState::Inactive)
                    && matches!((self.last_sent_at, self.resolved_at), (Some(s), Some(r)) if s >= r);
                self.resolved_at.is_some() && !sent_resolution
            }
        }
    }

    /// Records a send of the alert in its current state.
    pub fn mark_sent(&mut self, now_ms: i64) {
        self.last_sent_at = Some(now_ms);
        self.last_sent_state = Some(self.state);
    }
}

/// Everything a rule remembers between evaluations: its alerts, keyed by
/// fingerprint. This is what is saved to SQLite and restored on start, so a
/// restart neither restarts a pending alert's `for` timer nor forgets a
/// firing alert (or a resolution not yet sent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateRepr", into = "StateRepr")]
pub struct RuleState {
    pub(super) alerts: BTreeMap<u64, Alert>,
}

/// The stored form: a list, so the format does not depend on how the map
/// is keyed, inside an object so fields can be added later.
#[derive(Serialize, Deserialize)]
struct StateRepr {
    alerts: Vec<Alert>,
}

impl From<StateRepr> for RuleState {
    /// Re-keys by the labels' fingerprint rather than trusting the stored
    /// one, so a stored file never puts an alert under the wrong key.
    fn from(repr: StateRepr) -> Self {
        let alerts = repr
            .alerts
            .into_iter()
            .map(|mut a| {
                a.fingerprint = a.labels.fingerprint();
                (a.fingerprint, a)
            })
            .collect();
        RuleState { alerts }
    }
}

impl From<RuleState> for StateRepr {
    fn from(state: RuleState) -> Self {
        StateRepr {
            alerts: state.alerts.into_values().collect(),
        }
    }
}

impl RuleState {
    /// All alerts, pending, firing and retained resolved ones, in
    /// fingerprint order.
    pub fn alerts(&self) -> impl ExactSizeIterator<Item = &Alert> {
        self.alerts.values()
    }

    /// The alert with this fingerprint.
    pub fn get(&self, fingerprint: u64) -> Option<&Alert> {
        self.alerts.get(&fingerprint)
    }

    /// Number of alerts held, resolved ones included.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether no alert is held.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }
}

/// Serializes a float as a JSON number when finite and as the Prometheus
/// spelling (`"NaN"`, `"+Inf"`, `"-Inf"`) otherwise: serde_json writes a
/// NaN as `null` and cannot read it back, which would make a rule whose
/// value was NaN unrestorable.
mod float_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v == f64::INFINITY {
            s.serialize_str("+Inf")
        } else if *v == f64::NEG_INFINITY {
            s.serialize_str("-Inf")
        } else {
            s.serialize_f64(*v)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "+Inf" | "Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(serde::de::Error::custom),
            },
        }
    }
}
