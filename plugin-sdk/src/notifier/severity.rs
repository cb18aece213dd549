//! How urgent an alert is, from its `severity` label, and the order in which
//! notifiers list alerts.

use super::{Alert, AlertStatus};

/// An alert's urgency, from its `severity` label; ordered most urgent first,
/// so `min` is the highest severity and sorting puts critical first.
///
/// Rules spell severities many ways (`critical`, `page`, `P1`, `warn`, ...)
/// while the services notifiers talk to take a fixed set (PagerDuty's four
/// levels, a colour per level in chat); this maps the common spellings onto
/// four levels once, the same way in every notifier.
///
/// ```
/// use vigil_plugin_sdk::notifier::Severity;
/// assert_eq!(Severity::parse("P1"), Severity::Critical);
/// assert_eq!(Severity::parse(" warn "), Severity::Warning);
/// assert_eq!(Severity::parse("whatever").name(), None);
/// assert!(Severity::Critical < Severity::Info);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `critical`, `crit`, `fatal`, `emergency`, `alert`, `page`, `p1`.
    Critical,
    /// `error`, `err`, `high`, `major`, `p2`.
    Error,
    /// `warning`, `warn`, `medium`, `minor`, `ticket`, `p3`.
    Warning,
    /// `info`, `informational`, `notice`, `low`, `debug`, `p4`, `p5`.
    Info,
    /// No `severity` label, or one not listed above.
    None,
}

impl Severity {
    /// Maps common severity spellings (case-insensitive, surrounding spaces
    /// ignored) onto the four levels.
    pub fn parse(label: &str) -> Severity {
        match label.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "alert" | "page" | "p1" => {
                Severity::Critical
            }
            "error" | "err" | "high" | "major" | "p2" => Severity::Error,
            "warning" | "warn" | "medium" | "minor" | "ticket" | "p3" => Severity::Warning,
            "info" | "informational" | "notice" | "low" | "debug" | "p4" | "p5" => Severity::Info,
            _ => Severity::None,
        }
    }

    /// The severity of an alert's `severity` label.
    pub fn of(alert: &Alert) -> Severity {
        alert
            .label("severity")
            .map_or(Severity::None, Severity::parse)
    }

    /// The canonical name, `None` for [`Severity::None`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            Severity::Critical => Some("critical"),
            Severity::Error => Some("error"),
            Severity::Warning => Some("warning"),
            Severity::Info => Some("info"),
            Severity::None => None,
        }
    }
}

/// The alerts, most important first: firing before resolved, then by
/// severity (critical, error, warning, info, none), then earliest start;
/// ties keep the group's order.
///
/// A message shows only so many alerts (a chat's block limit, an SMS's
/// length); this order makes the ones shown the ones that matter, the same
/// in every notifier.
pub fn by_importance(alerts: &[Alert]) -> Vec<&Alert> {
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by_key(|a| {
        (
            a.status == AlertStatus::Resolved,
            Severity::of(a),
            a.starts_at,
        )
    });
    sorted
}

/// The highest severity among `alerts` ([`Severity::None`] when there are
/// none), e.g. to pick a message's colour or an incident's urgency.
pub fn max_severity<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Severity {
    alerts
        .into_iter()
        .map(Severity::of)
        .min()
        .unwrap_or(Severity::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: AlertStatus, severity: &str, starts_at: i64) -> Alert {
        Alert {
            status,
            labels: vec![("severity".into(), severity.into())],
            annotations: vec![],
            value: 0.0,
            starts_at,
            ends_at: None,
            generator_url: String::new(),
            fingerprint: format!("{severity}-{starts_at}"),
        }
    }

    #[test]
    fn firing_first_then_severity_then_start() {
        let alerts = [
            alert(AlertStatus::Resolved, "critical", 0),
            alert(AlertStatus::Firing, "info", 1),
            alert(AlertStatus::Firing, "p1", 3),
            alert(AlertStatus::Firing, "", 0),
            alert(AlertStatus::Firing, "page", 2),
        ];
        let order: Vec<&str> = by_importance(&alerts)
            .iter()
            .map(|a| a.fingerprint.as_str())
            .collect();
        assert_eq!(order, ["page-2", "p1-3", "info-1", "-0", "critical-0"]);
        assert_eq!(max_severity(&alerts[1..2]), Severity::Info);
        assert_eq!(max_severity(&alerts), Severity::Critical);
        assert_eq!(max_severity(&[]), Severity::None);
    }
}
