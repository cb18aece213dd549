//! Vigil's own telemetry: typed events that log and count in one place.
//!
//! Each operator-relevant event is a struct whose `emit()` writes the log
//! line and updates the counters together, so the two never disagree (the
//! Vector pattern). `/metrics` renders the registry in Prometheus text
//! format: counters end in `_total`, durations are `_seconds` histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Histogram buckets for durations, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<Key, f64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut r)
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    )
}

/// Adds to a counter.
pub fn counter(name: &'static str, help: &'static str, labels: &[(&'static str, &str)], by: f64) {
    with(|r| {
        r.help.entry(name).or_insert(("counter", help));
        *r.counters.entry(key(name, labels)).or_default() += by;
    });
}

/// Sets a gauge.
pub fn gauge(name: &'static str, help: &'static str, labels: &[(&'static str, &str)], v: f64) {
    with(|r| {
        r.help.entry(name).or_insert(("gauge", help));
        r.gauges.insert(key(name, labels), v);
    });
}

/// Observes a duration.
pub fn observe(
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &str)],
    d: Duration,
) {
    let secs = d.as_secs_f64();
    with(|r| {
        r.help.entry(name).or_insert(("histogram", help));
        let h = r.histograms.entry(key(name, labels)).or_default();
        if h.buckets.is_empty() {
            h.buckets = vec![0; DURATION_BUCKETS.len()];
        }
        for (i, b) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.buckets[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    });
}

fn write_labels(out: &mut String, labels: &[(&'static str, String)], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().map(|(k, v)| (*k, v.as_str())).chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Renders every metric in Prometheus text format 0.0.4.
pub fn render() -> String {
    with(|r| {
        let mut out = String::new();
        for (&name, &(kind, help)) in &r.help {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match kind {
                "counter" | "gauge" => {
                    let map = if kind == "counter" {
                        &r.counters
                    } else {
                        &r.gauges
                    };
                    for ((n, labels), v) in map.range((name, Vec::new())..) {
                        if *n != name {
                            break;
                        }
                        out.push_str(name);
                        write_labels(&mut out, labels, None);
                        let _ = writeln!(out, " {v}");
                    }
                }
                _ => {
                    for ((n, labels), h) in r.histograms.range((name, Vec::new())..) {
                        if *n != name {
                            break;
                        }
                        for (b, c) in DURATION_BUCKETS.iter().zip(&h.buckets) {
                            let _ = write!(out, "{name}_bucket");
                            write_labels(&mut out, labels, Some(("le", &b.to_string())));
                            let _ = writeln!(out, " {c}");
                        }
                        let _ = write!(out, "{name}_bucket");
                        write_labels(&mut out, labels, Some(("le", "+Inf")));
                        let _ = writeln!(out, " {}", h.count);
                        let _ = write!(out, "{name}_sum");
                        write_labels(&mut out, labels, None);
                        let _ = writeln!(out, " {}", h.sum);
                        let _ = write!(out, "{name}_count");
                        write_labels(&mut out, labels, None);
                        let _ = writeln!(out, " {}", h.count);
                    }
                }
            }
        }
        out
    })
}

/// The events an operator cares about.
pub mod events {
    use std::time::Duration;

    use super::{counter, gauge, observe};

    pub struct ScrapeSucceeded<'a> {
        pub job: &'a str,
        pub url: &'a str,
        pub samples: usize,
        pub duration: Duration,
    }

    impl ScrapeSucceeded<'_> {
        pub fn emit(self) {
            tracing::debug!(
                job = self.job,
                url = self.url,
                samples = self.samples,
                duration_ms = self.duration.as_millis() as u64,
                "scraped"
            );
            counter(
                "vigil_scrapes_total",
                "Scrapes attempted.",
                &[("job", self.job), ("result", "ok")],
                1.0,
            );
            counter(
                "vigil_scraped_samples_total",
                "Samples ingested by scrapes.",
                &[("job", self.job)],
                self.samples as f64,
            );
            observe(
                "vigil_scrape_duration_seconds",
                "Time to fetch and parse one scrape.",
                &[("job", self.job)],
                self.duration,
            );
        }
    }

    pub struct ScrapeFailed<'a> {
        pub job: &'a str,
        pub url: &'a str,
        pub error: &'a str,
    }

    impl ScrapeFailed<'_> {
        pub fn emit(self) {
            tracing::warn!(
                job = self.job,
                url = self.url,
                error = self.error,
                "scrape failed"
            );
            counter(
                "vigil_scrapes_total",
                "Scrapes attempted.",
                &[("job", self.job), ("result", "error")],
                1.0,
            );
        }
    }

    pub struct RuleEvaluated<'a> {
        pub rule: &'a str,
        pub series: usize,
        pub duration: Duration,
    }

    impl RuleEvaluated<'_> {
        pub fn emit(self) {
            tracing::debug!(
                rule = self.rule,
                series = self.series,
                duration_us = self.duration.as_micros() as u64,
                "rule evaluated"
            );
            counter(
                "vigil_rule_evaluations_total",
                "Rule evaluations.",
                &[("rule", self.rule)],
                1.0,
            );
            observe(
                "vigil_rule_evaluation_duration_seconds",
                "Time of one rule evaluation: query, check and alerts.",
                &[("rule", self.rule)],
                self.duration,
            );
            gauge(
                "vigil_rule_series",
                "Series in the rule's last evaluation.",
                &[("rule", self.rule)],
                self.series as f64,
            );
        }
    }

    pub struct RuleFailed<'a> {
        pub rule: &'a str,
        pub reason: &'a str,
        pub error: &'a str,
    }

    impl RuleFailed<'_> {
        pub fn emit(self) {
            tracing::warn!(
                rule = self.rule,
                reason = self.reason,
                error = self.error,
                "rule evaluation failed"
            );
            counter(
                "vigil_rule_evaluation_failures_total",
                "Rule evaluations that failed.",
                &[("rule", self.rule), ("reason", self.reason)],
                1.0,
            );
        }
    }

    pub struct PluginLoaded<'a> {
        pub name: &'a str,
        pub version: &'a str,
        pub kind: &'a str,
        pub path: &'a str,
    }

    impl PluginLoaded<'_> {
        pub fn emit(self) {
            tracing::info!(
                plugin = self.name,
                version = self.version,
                kind = self.kind,
                path = self.path,
                "plugin loaded"
            );
            counter(
                "vigil_plugin_loads_total",
                "Plugin files loaded.",
                &[("result", "ok")],
                1.0,
            );
        }
    }

    pub struct PluginRejected<'a> {
        pub path: &'a str,
        pub error: &'a str,
    }

    impl PluginRejected<'_> {
        pub fn emit(self) {
            tracing::warn!(path = self.path, error = self.error, "plugin rejected");
            counter(
                "vigil_plugin_loads_total",
                "Plugin files loaded.",
                &[("result", "error")],
                1.0,
            );
        }
    }

    pub struct AlertChanged<'a> {
        pub rule: &'a str,
        pub labels: &'a str,
        pub from: &'a str,
        pub to: &'a str,
    }

    impl AlertChanged<'_> {
        pub fn emit(self) {
            tracing::info!(
                rule = self.rule,
                alert = self.labels,
                from = self.from,
                to = self.to,
                "alert changed state"
            );
            counter(
                "vigil_alert_transitions_total",
                "Alert state changes.",
                &[("rule", self.rule), ("to", self.to)],
                1.0,
            );
        }
    }

    pub struct AlertFlapping<'a> {
        pub labels: &'a str,
        /// Started (true) or stopped (false) flapping.
        pub flapping: bool,
    }

    impl AlertFlapping<'_> {
        pub fn emit(self) {
            tracing::warn!(
                alert = self.labels,
                flapping = self.flapping,
                "alert flap damping {}",
                if self.flapping { "started" } else { "ended" }
            );
            counter(
                "vigil_alert_flapping_total",
                "Alerts that started flapping and were held.",
                &[("phase", if self.flapping { "started" } else { "ended" })],
                1.0,
            );
        }
    }

    pub struct NotificationSent<'a> {
        pub receiver: &'a str,
        pub attempts: u32,
        pub latency: Duration,
    }

    impl NotificationSent<'_> {
        pub fn emit(self) {
            tracing::info!(
                receiver = self.receiver,
                attempts = self.attempts,
                "notification delivered"
            );
            counter(
                "vigil_notifications_total",
                "Notifications by outcome.",
                &[("receiver", self.receiver), ("result", "sent")],
                1.0,
            );
            observe(
                "vigil_notification_latency_seconds",
                "From queueing to delivery of a notification.",
                &[("receiver", self.receiver)],
                self.latency,
            );
        }
    }

    pub struct NotificationFailed<'a> {
        pub receiver: &'a str,
        pub error: &'a str,
        pub final_attempt: bool,
    }

    impl NotificationFailed<'_> {
        pub fn emit(self) {
            if self.final_attempt {
                tracing::error!(
                    receiver = self.receiver,
                    error = self.error,
                    "notification dropped after retries"
                );
                counter(
                    "vigil_notifications_total",
                    "Notifications by outcome.",
                    &[("receiver", self.receiver), ("result", "dropped")],
                    1.0,
                );
            } else {
                tracing::warn!(
                    receiver = self.receiver,
                    error = self.error,
                    "notification attempt failed; will retry"
                );
                counter(
                    "vigil_notification_retries_total",
                    "Failed delivery attempts that will be retried.",
                    &[("receiver", self.receiver)],
                    1.0,
                );
            }
        }
    }

    pub struct ConfigReloaded<'a> {
        pub file: &'a str,
        pub ok: bool,
    }

    impl ConfigReloaded<'_> {
        pub fn emit(self) {
            if self.ok {
                tracing::info!(file = self.file, "configuration reloaded");
            } else {
                tracing::error!(
                    file = self.file,
                    "configuration reload failed; keeping the running configuration"
                );
            }
            counter(
                "vigil_config_reloads_total",
                "Configuration reloads.",
                &[("result", if self.ok { "ok" } else { "error" })],
                1.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        counter("vigil_test_things_total", "Things.", &[("k", "a\"b")], 2.0);
        observe(
            "vigil_test_duration_seconds",
            "Durations.",
            &[],
            Duration::from_millis(3),
        );
        let text = render();
        assert!(text.contains("# TYPE vigil_test_things_total counter"));
        assert!(text.contains("vigil_test_things_total{k=\"a\\\"b\"} 2"));
        assert!(text.contains("vigil_test_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("vigil_test_duration_seconds_count 1"));
    }
}
