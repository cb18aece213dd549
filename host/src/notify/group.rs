//! Alert groups with Alertmanager 0.25's timing and deduplication.
//!
//! Pure: every method takes `now` (Unix milliseconds) and does no I/O, so
//! grouping is tested without clocks or sockets.
//!
//! The semantics are `dispatch/dispatch.go` and `notify/notify.go`'s
//! `DedupStage`:
//! - an alert joins the group keyed by its route and its values of the
//!   route's `group_by` labels (all labels for `...`);
//! - a new group flushes after `group_wait` (at once if its first alert
//!   started longer than `group_wait` ago), then every `group_interval`;
//! - a flush notifies only if a firing alert was not in the last
//!   notification, if everything resolved after a firing notification, if
//!   (with `send_resolved`) an alert resolved since the last notification,
//!   or if `repeat_interval` passed since the last notification;
//! - after a successful notification, resolved alerts leave the group, and
//!   an empty group is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::sandbox::{Alert, AlertStatus, Notification};
use crate::store::labels::Labels;

/// Which labels make up a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// These labels (Alertmanager's `group_by: [a, b]`).
    Labels(Vec<String>),
    /// Every label: one group per alert (`group_by: ['...']`).
    All,
}

/// The timing of a route's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOpts {
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// What the last successful notification of a group contained
/// (Alertmanager's notification log entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
struct Member {
    alert: Alert,
    /// Bumped on every update, so a flush only drops the version it sent.
    version: u64,
}

#[derive(Debug, Clone)]
struct Group {
    receiver: String,
    send_resolved: bool,
    labels: Labels,
    opts: GroupOpts,
    alerts: BTreeMap<u64, Member>,
    next_flush_ms: i64,
    has_flushed: bool,
    log: Option<LogEntry>,
}

/// A notification ready to send, and what to record once it is sent.
///
/// For a receiver without `send_resolved`, a flush that only announces
/// resolutions carries no alerts: deliver nothing, but still call
/// [`Groups::sent`], as Alertmanager records it in its notification log.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    pub group_key: String,
    pub notification: Notification,
    /// The firing and resolved fingerprints it carries, for the log.
    pub entry: LogEntry,
    /// Alert versions included, so `sent` only drops what was notified.
    versions: Vec<(u64, u64)>,
}

/// Every group of every route.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
    next_version: u64,
}

/// The labels an alert is grouped by on a route.
pub fn group_labels(labels: &Labels, by: &GroupBy) -> Labels {
    match by {
        GroupBy::All => labels.clone(),
        GroupBy::Labels(names) => {
            Labels::from_pairs(labels.iter().filter(|(k, _)| names.iter().any(|n| n == k)))
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Groups {
    /// Adds or updates an alert in its group on a route. `route_key`
    /// identifies the route (its path of matchers); `receiver` is where
    /// the group's notifications go.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        now: i64,
        route_key: &str,
        receiver: &str,
        send_resolved: bool,
        opts: &GroupOpts,
        labels: &Labels,
        alert: Alert,
    ) {
        let glabels = group_labels(labels, &opts.group_by);
        let key = format!("{route_key}:{glabels}");
        let group = self.groups.entry(key).or_insert_with(|| Group {
            receiver: receiver.to_string(),
            send_resolved,
            labels: glabels,
            opts: opts.clone(),
            alerts: BTreeMap::new(),
            next_flush_ms: now.saturating_add(ms(opts.group_wait)),
            has_flushed: false,
            log: None,
        });
        // An alert that started longer than `group_wait` ago flushes a
        // group that has not flushed yet right away.
        if !group.has_flushed && alert.starts_at.saturating_add(ms(group.opts.group_wait)) < now {
            group.next_flush_ms = group.next_flush_ms.min(now);
        }
        self.next_version += 1;
        group.alerts.insert(
            labels.fingerprint(),
            Member {
                alert,
                version: self.next_version,
            },
        );
    }

    /// The earliest time a group is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }

    /// Flushes every due group: returns the notifications to send. A due
    /// group whose notification would repeat the last one is skipped.
    pub fn flush_due(&mut self, now: i64, external_url: &str) -> Vec<Flush> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            if g.next_flush_ms > now {
                continue;
            }
            g.has_flushed = true;
            g.next_flush_ms = now.saturating_add(ms(g.opts.group_interval).max(1));
            if g.alerts.is_empty() {
                empty.push(key.clone());
                continue;
            }
            let firing: BTreeSet<u64> = g
                .alerts
                .iter()
                .filter(|(_, m)| m.alert.status == AlertStatus::Firing)
                .map(|(fp, _)| *fp)
                .collect();
            let resolved: BTreeSet<u64> = g
                .alerts
                .iter()
                .filter(|(_, m)| m.alert.status == AlertStatus::Resolved)
                .map(|(fp, _)| *fp)
                .collect();
            if !needs_update(
                g.log.as_ref(),
                &firing,
                &resolved,
                g.send_resolved,
                ms(g.opts.repeat_interval),
                now,
            ) {
                // Nothing to say; resolved alerts the receiver never heard
                // of, or already heard about, can go.
                g.alerts
                    .retain(|_, m| m.alert.status == AlertStatus::Firing);
                if g.alerts.is_empty() {
                    empty.push(key.clone());
                }
                continue;
            }
            out.push(Flush {
                group_key: key.clone(),
                notification: notification(g, key, external_url),
                entry: LogEntry {
                    firing,
                    resolved,
                    at_ms: now,
                },
                versions: g.alerts.iter().map(|(fp, m)| (*fp, m.version)).collect(),
            });
        }
        for k in empty {
            self.groups.remove(&k);
        }
        out
    }

    /// Records a successful notification: the log entry, and resolved
    /// alerts leave the group unless they changed since the flush.
    pub fn sent(&mut self, flush: &Flush) {
        let Some(g) = self.groups.get_mut(&flush.group_key) else {
            return;
        };
        g.log = Some(flush.entry.clone());
        for (fp, version) in &flush.versions {
            if g.alerts
                .get(fp)
                .is_some_and(|m| m.version == *version && m.alert.status == AlertStatus::Resolved)
            {
                g.alerts.remove(fp);
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(&flush.group_key);
        }
    }

    /// Groups currently held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell a receiver that heard of a firing alert.
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.at_ms < now.saturating_sub(repeat_ms)
}

fn notification(g: &Group, key: &str, external_url: &str) -> Notification {
    let mut alerts: Vec<&Alert> = g.alerts.values().map(|m| &m.alert).collect();
    // Alertmanager sorts alerts by their labels.
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    let common_labels = common(alerts.iter().map(|a| &a.labels));
    let common_annotations = common(alerts.iter().map(|a| &a.annotations));
    let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    };
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .filter(|a| g.send_resolved || a.status == AlertStatus::Firing)
        .cloned()
        .collect();
    Notification {
        receiver: g.receiver.clone(),
        status,
        group_key: key.to_string(),
        group_labels: g
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        common_labels,
        common_annotations,
        external_url: external_url.to_string(),
        alerts,
        truncated_alerts: 0,
    }
}

/// The pairs every list has, with the same value.
fn common<'a>(mut lists: impl Iterator<Item = &'a Vec<(String, String)>>) -> Vec<(String, String)> {
    let Some(first) = lists.next() else {
        return Vec::new();
    };
    let mut out = first.clone();
    for l in lists {
        out.retain(|p| l.contains(p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000;

    fn opts(wait: i64, interval: i64, repeat: i64) -> GroupOpts {
        GroupOpts {
            group_by: GroupBy::Labels(vec!["alertname".into()]),
            group_wait: Duration::from_secs(wait as u64),
            group_interval: Duration::from_secs(interval as u64),
            repeat_interval: Duration::from_secs(repeat as u64),
        }
    }

    fn alert(name: &str, instance: &str, status: AlertStatus, starts: i64) -> (Labels, Alert) {
        let labels = Labels::from_pairs([("alertname", name), ("instance", instance)]);
        let a = Alert {
            status,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: vec![("summary".into(), format!("{name} on {instance}"))],
            value: 1.0,
            starts_at: starts,
            ends_at: (status == AlertStatus::Resolved).then_some(starts + 1),
            generator_url: String::new(),
            fingerprint: format!("{:016x}", labels.fingerprint()),
        };
        (labels, a)
    }

    fn insert(
        g: &mut Groups,
        now: i64,
        o: &GroupOpts,
        send_resolved: bool,
        (l, a): (Labels, Alert),
    ) {
        g.insert(now, "{}", "team", send_resolved, o, &l, a);
    }

    /// Flushes and marks everything sent; returns (status, instances) per notification.
    fn flush(g: &mut Groups, now: i64) -> Vec<(AlertStatus, Vec<String>)> {
        let out = g.flush_due(now, "http://vigil");
        for f in &out {
            g.sent(f);
        }
        out.iter()
            .map(|f| {
                let inst = f
                    .notification
                    .alerts
                    .iter()
                    .map(|a| {
                        let i = a
                            .labels
                            .iter()
                            .find(|(k, _)| k == "instance")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default();
                        format!(
                            "{i}:{}",
                            if a.status == AlertStatus::Firing {
                                "firing"
                            } else {
                                "resolved"
                            }
                        )
                    })
                    .collect();
                (f.notification.status, inst)
            })
            .collect()
    }

    #[test]
    fn group_wait_then_group_interval_batches_alerts() {
        let o = opts(30, 300, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        assert!(flush(&mut g, 29 * S).is_empty(), "waits group_wait");
        insert(
            &mut g,
            10 * S,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 10 * S),
        );
        assert_eq!(
            flush(&mut g, 30 * S),
            vec![(
                AlertStatus::Firing,
                vec!["a:firing".into(), "b:firing".into()]
            )]
        );
        // A third alert waits for the group interval, not the group wait.
        insert(
            &mut g,
            40 * S,
            &o,
            true,
            alert("Down", "c", AlertStatus::Firing, 40 * S),
        );
        assert!(flush(&mut g, 100 * S).is_empty());
        assert_eq!(flush(&mut g, 330 * S).len(), 1);
        assert_eq!(flush(&mut g, 330 * S).len(), 0, "not due again yet");
    }

    #[test]
    fn nothing_new_is_not_resent_until_repeat_interval() {
        let o = opts(0, 60, 600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        assert_eq!(flush(&mut g, 0).len(), 1);
        assert!(flush(&mut g, 60 * S).is_empty());
        assert!(flush(&mut g, 540 * S).is_empty());
        // 600 s after the last notification, at the next interval tick.
        assert_eq!(flush(&mut g, 660 * S).len(), 1);
    }

    #[test]
    fn resolution_is_sent_and_the_group_goes_away() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        flush(&mut g, 0);
        insert(
            &mut g,
            30 * S,
            &o,
            true,
            alert("Down", "a", AlertStatus::Resolved, 0),
        );
        assert_eq!(
            flush(&mut g, 60 * S),
            vec![(AlertStatus::Resolved, vec!["a:resolved".into()])]
        );
        assert!(g.is_empty());
    }

    #[test]
    fn partial_resolution_respects_send_resolved() {
        let o = opts(0, 60, 3600);
        for send_resolved in [true, false] {
            let mut g = Groups::default();
            insert(
                &mut g,
                0,
                &o,
                send_resolved,
                alert("Down", "a", AlertStatus::Firing, 0),
            );
            insert(
                &mut g,
                0,
                &o,
                send_resolved,
                alert("Down", "b", AlertStatus::Firing, 0),
            );
            flush(&mut g, 0);
            insert(
                &mut g,
                30 * S,
                &o,
                send_resolved,
                alert("Down", "b", AlertStatus::Resolved, 0),
            );
            let got = flush(&mut g, 60 * S);
            if send_resolved {
                assert_eq!(
                    got,
                    vec![(
                        AlertStatus::Firing,
                        vec!["a:firing".into(), "b:resolved".into()]
                    )]
                );
            } else {
                assert!(
                    got.is_empty(),
                    "no change a receiver without send_resolved cares about"
                );
            }
        }
    }

    #[test]
    fn fired_and_resolved_between_flushes_is_never_sent() {
        let o = opts(30, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Blip", "a", AlertStatus::Firing, 0),
        );
        insert(
            &mut g,
            10 * S,
            &o,
            true,
            alert("Blip", "a", AlertStatus::Resolved, 0),
        );
        assert!(flush(&mut g, 30 * S).is_empty());
        assert!(g.is_empty());
    }

    #[test]
    fn an_old_alert_skips_group_wait() {
        let o = opts(30, 300, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            100 * S,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        assert_eq!(flush(&mut g, 100 * S).len(), 1);
    }

    #[test]
    fn an_unsent_flush_is_retried_at_the_next_interval() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        assert_eq!(
            g.flush_due(0, "").len(),
            1,
            "delivery fails: `sent` not called"
        );
        assert_eq!(
            g.flush_due(60 * S, "").len(),
            1,
            "still news at the next interval"
        );
    }

    #[test]
    fn group_by_splits_groups_and_all_means_one_per_alert() {
        let mut g = Groups::default();
        let o = opts(0, 60, 3600);
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Slow", "a", AlertStatus::Firing, 0),
        );
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        assert_eq!(g.len(), 2);
        let all = GroupOpts {
            group_by: GroupBy::All,
            ..o
        };
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &all,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        insert(
            &mut g,
            0,
            &all,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        assert_eq!(g.len(), 2);
        let f = g.flush_due(0, "");
        assert_eq!(
            f[0].notification.common_labels.len(),
            2,
            "{:?}",
            f[0].notification.common_labels
        );
    }

    #[test]
    fn common_labels_and_group_labels() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        let f = g.flush_due(0, "http://vigil");
        let n = &f[0].notification;
        assert_eq!(
            n.group_labels,
            vec![("alertname".to_string(), "Down".to_string())]
        );
        assert_eq!(
            n.common_labels,
            vec![("alertname".to_string(), "Down".to_string())]
        );
        assert!(n.common_annotations.is_empty());
        assert_eq!(n.group_key, "{}:{alertname=\"Down\"}");
        assert_eq!(n.external_url, "http://vigil");
    }
}
