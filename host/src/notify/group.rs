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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::GroupBy;
use crate::sandbox::{Alert, AlertStatus, Notification};
use crate::store::labels::Labels;

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
    /// Shared with the pipeline's map of alerts and every other group the
    /// alert is in.
    alert: Arc<Alert>,
    /// Bumped on every update, so a flush only drops the version it sent.
    version: u64,
}

#[derive(Debug, Clone)]
struct Group {
    route_key: String,
    /// Alertmanager's group key (`Route.Key()` and the group labels),
    /// shown in notifications.
    display_key: String,
    /// The notification log's key: receiver and display key, as
    /// Alertmanager's log, so reordering sibling routes keeps the log.
    log_key: String,
    receiver: String,
    send_resolved: bool,
    labels: Labels,
    opts: GroupOpts,
    alerts: BTreeMap<u64, Member>,
    next_flush_ms: i64,
    has_flushed: bool,
    /// Notify at the next flush even if nothing changed (a flapping alert
    /// was announced).
    force: bool,
}

/// A notification ready to send, and what to record once it is sent.
///
/// For a receiver without `send_resolved`, a flush that only announces
/// resolutions carries no alerts: deliver nothing, but still call
/// [`Groups::sent`], as Alertmanager records it in its notification log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Flush {
    pub group_key: String,
    /// Where the notification log records it.
    pub log_key: String,
    /// The route the group belongs to (for its time intervals).
    pub route_key: String,
    pub notification: Notification,
    /// The firing and resolved fingerprints it carries, for the log.
    pub entry: LogEntry,
    /// Alert versions included, so `sent` only drops what was notified.
    versions: Vec<(u64, u64)>,
}

/// What a flush must leave out, asked per alert and per group.
pub trait FlushFilter {
    /// Silenced or inhibited: left out of the notification and of the log
    /// entry, as Alertmanager's mute stages run before its dedup stage.
    fn muted(&mut self, fingerprint: u64, alert: &Alert) -> bool;
    /// Acknowledged: still notified when it changes, but not repeated.
    fn acked(&self, fingerprint: u64) -> bool;
    /// A notification of this group is still being delivered: the group
    /// waits, as Alertmanager's flush is synchronous.
    fn busy(&self, group_key: &str) -> bool;
}

/// A filter that mutes nothing.
pub struct NoFilter;

impl FlushFilter for NoFilter {
    fn muted(&mut self, _: u64, _: &Alert) -> bool {
        false
    }
    fn acked(&self, _: u64) -> bool {
        false
    }
    fn busy(&self, _: &str) -> bool {
        false
    }
}

/// Every group of every route, and the notification log.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
    log: HashMap<String, LogEntry>,
    /// How many groups hold each alert.
    holders: HashMap<u64, u32>,
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
    /// Adds or updates an alert in its group on a route, and returns the
    /// group's key. `route_key` identifies the route (unique per route);
    /// `display_key` is Alertmanager's key of it (its path of matchers,
    /// which siblings may share); `receiver` is where the group's
    /// notifications go.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        now: i64,
        route_key: &str,
        display_key: &str,
        receiver: &str,
        send_resolved: bool,
        opts: &GroupOpts,
        labels: &Labels,
        alert: impl Into<Arc<Alert>>,
    ) -> String {
        let alert: Arc<Alert> = alert.into();
        let glabels = group_labels(labels, &opts.group_by);
        let key = format!("{route_key}:{glabels}");
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            route_key: route_key.to_string(),
            display_key: format!("{display_key}:{glabels}"),
            log_key: format!("{receiver}/{display_key}:{glabels}"),
            receiver: receiver.to_string(),
            send_resolved,
            labels: glabels,
            opts: opts.clone(),
            alerts: BTreeMap::new(),
            next_flush_ms: now.saturating_add(ms(opts.group_wait)),
            has_flushed: false,
            force: false,
        });
        // An alert that started longer than `group_wait` ago flushes a
        // group that has not flushed yet right away.
        if !group.has_flushed && alert.starts_at.saturating_add(ms(group.opts.group_wait)) < now {
            group.next_flush_ms = group.next_flush_ms.min(now);
        }
        self.next_version += 1;
        let fp = labels.fingerprint();
        let previous = group.alerts.insert(
            fp,
            Member {
                alert,
                version: self.next_version,
            },
        );
        if previous.is_none() {
            *self.holders.entry(fp).or_default() += 1;
        }
        key
    }

    /// Makes a group notify at its next flush even if nothing changed.
    pub fn force(&mut self, group_key: &str) {
        if let Some(g) = self.groups.get_mut(group_key) {
            g.force = true;
        }
    }

    /// The same log and version counter with no groups, to regroup every
    /// alert after the routing tree changed.
    pub fn with_log_only(self) -> Groups {
        Groups {
            log: self.log,
            next_version: self.next_version,
            ..Groups::default()
        }
    }

    /// Restores the notification log (after a restart).
    pub fn restore_log(&mut self, entries: impl IntoIterator<Item = (String, LogEntry)>) {
        self.log.extend(entries);
    }

    /// Forgets log entries older than `before_ms`.
    pub fn gc_log(&mut self, before_ms: i64) {
        self.log.retain(|_, e| e.at_ms >= before_ms);
    }

    /// Whether any group holds the alert.
    pub fn holds(&self, fingerprint: u64) -> bool {
        self.holders.contains_key(&fingerprint)
    }

    /// The earliest time a group is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.next_due_except(|_| false)
    }

    /// When the next group that is not `busy` is due. A group waiting for
    /// its delivery cannot flush, so waking up for it would only spin.
    pub fn next_due_except(&self, busy: impl Fn(&str) -> bool) -> Option<i64> {
        self.groups
            .iter()
            .filter(|(key, _)| !busy(key))
            .map(|(_, g)| g.next_flush_ms)
            .min()
    }

    fn release(holders: &mut HashMap<u64, u32>, fp: u64) {
        if let Some(n) = holders.get_mut(&fp) {
            *n -= 1;
            if *n == 0 {
                holders.remove(&fp);
            }
        }
    }

    /// Flushes every due group: returns the notifications to send. A due
    /// group whose notification would repeat the last one is skipped.
    pub fn flush_due(
        &mut self,
        now: i64,
        external_url: &str,
        filter: &mut dyn FlushFilter,
    ) -> Vec<Flush> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            if g.next_flush_ms > now || filter.busy(key) {
                continue;
            }
            g.has_flushed = true;
            g.next_flush_ms = now.saturating_add(ms(g.opts.group_interval).max(1));
            if g.alerts.is_empty() {
                empty.push(key.clone());
                continue;
            }
            let mut firing = BTreeSet::new();
            let mut resolved = BTreeSet::new();
            let mut included = Vec::new();
            for (fp, m) in &g.alerts {
                if filter.muted(*fp, &m.alert) {
                    continue;
                }
                included.push(*fp);
                match m.alert.status {
                    AlertStatus::Firing => firing.insert(*fp),
                    AlertStatus::Resolved => resolved.insert(*fp),
                };
            }
            let force = std::mem::take(&mut g.force) && !included.is_empty();
            let repeat_ok = firing.iter().any(|fp| !filter.acked(*fp));
            if !force
                && (included.is_empty()
                    || !needs_update(
                        self.log.get(&g.log_key),
                        &firing,
                        &resolved,
                        g.send_resolved,
                        ms(g.opts.repeat_interval),
                        repeat_ok,
                        now,
                    ))
            {
                // Nothing to say; resolved alerts the receiver never heard
                // of, or already heard about, can go.
                let holders = &mut self.holders;
                g.alerts.retain(|fp, m| {
                    let keep = m.alert.status == AlertStatus::Firing;
                    if !keep {
                        Self::release(holders, *fp);
                    }
                    keep
                });
                if g.alerts.is_empty() {
                    empty.push(key.clone());
                }
                continue;
            }
            out.push(Flush {
                group_key: key.clone(),
                log_key: g.log_key.clone(),
                route_key: g.route_key.clone(),
                notification: notification(g, &g.display_key, external_url, &included),
                entry: LogEntry {
                    firing,
                    resolved,
                    at_ms: now,
                },
                versions: included
                    .iter()
                    .filter_map(|fp| g.alerts.get(fp).map(|m| (*fp, m.version)))
                    .collect(),
            });
        }
        for k in empty {
            self.groups.remove(&k);
        }
        out
    }

    /// Records a successful notification: the log entry, and resolved
    /// alerts leave the group unless they changed since the flush. The
    /// group's timer is not touched: as Alertmanager's, it was set a
    /// `group_interval` after the flush started (a flush that outlasts it
    /// is followed by the next at once).
    pub fn sent(&mut self, flush: &Flush, _now: i64) {
        self.log.insert(flush.log_key.clone(), flush.entry.clone());
        let Some(g) = self.groups.get_mut(&flush.group_key) else {
            return;
        };
        for (fp, version) in &flush.versions {
            if g.alerts
                .get(fp)
                .is_some_and(|m| m.version == *version && m.alert.status == AlertStatus::Resolved)
            {
                g.alerts.remove(fp);
                Self::release(&mut self.holders, *fp);
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
    repeat_ok: bool,
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
    repeat_ok && entry.at_ms < now.saturating_sub(repeat_ms)
}

fn notification(g: &Group, key: &str, external_url: &str, included: &[u64]) -> Notification {
    let mut alerts: Vec<&Alert> = included
        .iter()
        .filter_map(|fp| g.alerts.get(fp).map(|m| &*m.alert))
        .collect();
    // Alertmanager sorts alerts by their labels.
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    // Without send_resolved, resolved alerts are left out before the
    // common labels are taken, as Alertmanager's RetryStage filters them
    // before the notifier builds its template data.
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .filter(|a| g.send_resolved || a.status == AlertStatus::Firing)
        .cloned()
        .collect();
    let common_labels = common(alerts.iter().map(|a| a.labels.pairs()));
    let common_annotations = common(alerts.iter().map(|a| a.annotations.as_slice()));
    let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    };
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
fn common<'a>(mut lists: impl Iterator<Item = &'a [(String, String)]>) -> Vec<(String, String)> {
    let Some(first) = lists.next() else {
        return Vec::new();
    };
    let mut out = first.to_vec();
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
            labels: labels.clone(),
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
        g.insert(now, "{}", "{}", "team", send_resolved, o, &l, a);
    }

    /// Flushes and marks everything sent; returns (status, instances) per notification.
    fn flush(g: &mut Groups, now: i64) -> Vec<(AlertStatus, Vec<String>)> {
        let out = g.flush_due(now, "http://vigil", &mut NoFilter);
        for f in &out {
            g.sent(f, now);
        }
        out.iter()
            .map(|f| {
                let inst = f
                    .notification
                    .alerts
                    .iter()
                    .map(|a| {
                        let i = a.labels.get("instance").unwrap_or_default().to_string();
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

    /// Found by comparing with a real Alertmanager
    /// (`tests/all/alertmanager.rs`): its common labels are those of the
    /// alerts it sends.
    #[test]
    fn without_send_resolved_common_labels_ignore_resolved_alerts() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            false,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        flush(&mut g, 0);
        insert(
            &mut g,
            30 * S,
            &o,
            false,
            alert("Down", "a", AlertStatus::Resolved, 0),
        );
        insert(
            &mut g,
            30 * S,
            &o,
            false,
            alert("Down", "b", AlertStatus::Firing, 30 * S),
        );
        let f = g.flush_due(60 * S, "", &mut NoFilter);
        assert_eq!(instances(&f[0]), vec!["b"]);
        assert_eq!(
            f[0].notification.common_labels,
            vec![
                ("alertname".to_string(), "Down".to_string()),
                ("instance".to_string(), "b".to_string())
            ]
        );
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
            g.flush_due(0, "", &mut NoFilter).len(),
            1,
            "delivery fails: `sent` not called"
        );
        assert_eq!(
            g.flush_due(60 * S, "", &mut NoFilter).len(),
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
        let f = g.flush_due(0, "", &mut NoFilter);
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
        let f = g.flush_due(0, "http://vigil", &mut NoFilter);
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

    /// Mutes instances by name, acks by fingerprint, blocks groups by key.
    #[derive(Default)]
    struct Rules {
        muted: Vec<&'static str>,
        acked: Vec<u64>,
        busy: Vec<String>,
    }

    impl FlushFilter for Rules {
        fn muted(&mut self, _: u64, a: &Alert) -> bool {
            a.labels
                .iter()
                .any(|(k, v)| k == "instance" && self.muted.contains(&v))
        }
        fn acked(&self, fp: u64) -> bool {
            self.acked.contains(&fp)
        }
        fn busy(&self, key: &str) -> bool {
            self.busy.iter().any(|k| k == key)
        }
    }

    fn instances(f: &Flush) -> Vec<String> {
        f.notification
            .alerts
            .iter()
            .filter_map(|a| a.labels.get("instance"))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn muted_alerts_leave_the_notification_and_the_log() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        for i in ["a", "b"] {
            insert(
                &mut g,
                0,
                &o,
                true,
                alert("Down", i, AlertStatus::Firing, 0),
            );
        }
        let mut rules = Rules {
            muted: vec!["b"],
            ..Rules::default()
        };
        let f = g.flush_due(0, "", &mut rules);
        assert_eq!(instances(&f[0]), vec!["a"]);
        g.sent(&f[0], 0);
        // The silence ends: `b` was never notified, so it is news.
        let f = g.flush_due(60 * S, "", &mut NoFilter);
        assert_eq!(instances(&f[0]), vec!["a", "b"]);
        // Everything muted: nothing at all is sent, not even an empty group.
        let mut g2 = Groups::default();
        insert(
            &mut g2,
            0,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        assert!(g2.flush_due(0, "", &mut rules).is_empty());
    }

    #[test]
    fn acknowledged_alerts_are_not_repeated_but_news_is_sent() {
        let o = opts(0, 60, 600);
        let mut g = Groups::default();
        let (la, a) = alert("Down", "a", AlertStatus::Firing, 0);
        insert(&mut g, 0, &o, true, (la.clone(), a));
        flush(&mut g, 0);
        let mut rules = Rules {
            acked: vec![la.fingerprint()],
            ..Rules::default()
        };
        // Past repeat_interval: no repeat for an acknowledged alert.
        for t in [660, 1260, 1860] {
            assert!(g.flush_due(t * S, "", &mut rules).is_empty(), "t={t}");
        }
        // A new alert in the group is news, and the repeat resumes for it.
        insert(
            &mut g,
            1900 * S,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        let f = g.flush_due(1920 * S, "", &mut rules);
        assert_eq!(instances(&f[0]), vec!["a", "b"]);
    }

    #[test]
    fn a_busy_group_waits_then_flushes_on_its_own_schedule() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        insert(
            &mut g,
            0,
            &o,
            true,
            alert("Down", "a", AlertStatus::Firing, 0),
        );
        let f = g.flush_due(0, "", &mut NoFilter);
        let key = f[0].group_key.clone();
        insert(
            &mut g,
            10 * S,
            &o,
            true,
            alert("Down", "b", AlertStatus::Firing, 0),
        );
        let mut rules = Rules {
            busy: vec![key.clone()],
            ..Rules::default()
        };
        assert!(g.flush_due(60 * S, "", &mut rules).is_empty());
        // The delivery ends late: the missed flush happens at once, as
        // Alertmanager reads its timer right after a slow flush returns.
        let f = g.flush_due(90 * S, "", &mut NoFilter);
        assert_eq!(instances(&f[0]), vec!["a", "b"]);
        g.sent(&f[0], 95 * S);
        // And then every group_interval from that flush, not from the send.
        insert(
            &mut g,
            100 * S,
            &o,
            true,
            alert("Down", "c", AlertStatus::Firing, 0),
        );
        assert!(g.flush_due(149 * S, "", &mut NoFilter).is_empty());
        assert_eq!(g.flush_due(150 * S, "", &mut NoFilter).len(), 1);
    }

    #[test]
    fn forced_groups_notify_and_holders_track_membership() {
        let o = opts(0, 60, 3600);
        let mut g = Groups::default();
        let (la, a) = alert("Down", "a", AlertStatus::Firing, 0);
        let key = g.insert(0, "{}", "{}", "team", true, &o, &la, a.clone());
        flush(&mut g, 0);
        assert!(g.flush_due(60 * S, "", &mut NoFilter).is_empty());
        g.force(&key);
        assert_eq!(g.flush_due(120 * S, "", &mut NoFilter).len(), 1);
        assert!(g.holds(la.fingerprint()));
        let resolved = Alert {
            status: AlertStatus::Resolved,
            ..a
        };
        g.insert(130 * S, "{}", "{}", "team", true, &o, &la, resolved);
        let f = g.flush_due(180 * S, "", &mut NoFilter);
        g.sent(&f[0], 180 * S);
        assert!(!g.holds(la.fingerprint()));
        // The log survives regrouping.
        let g = g.with_log_only();
        assert!(g.is_empty());
        assert_eq!(
            g.log.get(&format!("team/{key}")).map(|e| e.resolved.len()),
            Some(1)
        );
    }
}
