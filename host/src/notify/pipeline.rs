//! The notification pipeline: Alertmanager inside Vigil.
//!
//! One task owns the alerts handed over by rules, their groups (see
//! [`group`](super::group)), the notification log and the outbox. Every
//! change is written to SQLite before it counts:
//! - an alert is saved when a rule hands it over, so a crash after a rule
//!   marked it sent cannot lose it;
//! - a flush is saved in the outbox before its delivery starts, and removed
//!   in the same transaction that logs it as sent, so after a crash it is
//!   delivered again only if it had not been acknowledged by the receiver;
//! - on start, groups are rebuilt from the saved alerts, and the saved log
//!   keeps them from repeating what was sent.
//!
//! A group with a notification in delivery waits for it (Alertmanager's
//! flush is synchronous), so a failing receiver never piles up copies of
//! one group's news; when a delivery gives up, the group tries again at its
//! next `group_interval`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::flap::{FlapConfig, FlapDetector, FlapEvent};
use super::group::{FlushFilter, GroupOpts, Groups, LogEntry};
use super::inhibit::{InhibitRule, Inhibitor};
use super::mute::{NamedTimeInterval, route_muted};
use super::silence::{ApiSilence, Silence, SilenceError, Silences};
use super::{Flush, Job, Queue, Renderer, RouteMatch, matching_routes, run_receiver};
use crate::config::{InhibitRuleConfig, ReceiverConfig, RouteConfig};
use crate::sandbox::{Alert, AlertStatus};
use crate::store::durable::{Durable, Record};
use crate::store::labels::Labels;
use crate::telemetry::events;

use super::transport::HttpTransport;

/// How long sent notifications and expired silences are remembered
/// (Alertmanager's `--data.retention`).
const RETENTION: std::time::Duration = std::time::Duration::from_secs(120 * 3600);
const LOG_RETENTION_MS: i64 = RETENTION.as_millis() as i64;

/// Delivery outcomes kept per alert.
const OUTCOMES_PER_ALERT: usize = 10;

/// The annotation a flapping alert carries while it is held.
pub const FLAPPING_ANNOTATION: &str = "flapping";

/// The pipeline's settings from the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub route: RouteConfig,
    pub external_url: String,
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    pub time_intervals: Vec<NamedTimeInterval>,
    pub flap_damping: Option<FlapConfig>,
}

/// A receiver and how it renders, as built from config and plugins.
pub type ReceiverSetup = (ReceiverConfig, Renderer);

pub(super) enum Msg {
    Alerts(Vec<(Labels, Alert)>),
    Configure(Box<Settings>, Vec<ReceiverSetup>),
    Done {
        id: i64,
        group_key: String,
        delivered: bool,
        outcomes: Vec<super::Outcome>,
    },
    /// Silences or acknowledgements changed.
    Controls,
}

/// An acknowledgement of a firing alert: no repeats until it resolves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ack {
    /// The firing episode acknowledged (the alert's `starts_at`); a new
    /// episode is not acknowledged.
    pub starts_at: i64,
    pub by: String,
    pub comment: String,
    pub at_ms: i64,
}

/// State the API changes and the pipeline reads.
#[derive(Default)]
pub struct Controls {
    pub acks: HashMap<u64, Ack>,
    /// The last delivery outcomes per alert fingerprint (16 hex digits).
    pub outcomes: HashMap<String, Vec<super::Outcome>>,
    pub silences: Silences,
}

/// A handle on the running pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Msg>,
    durable: Arc<Durable>,
    controls: Arc<Mutex<Controls>>,
}

impl Notifier {
    /// Restores the pipeline's saved state and starts it. Must be called
    /// inside a tokio runtime.
    pub fn start(
        durable: Arc<Durable>,
        settings: Settings,
        receivers: Vec<ReceiverSetup>,
        transport: Arc<dyn HttpTransport>,
    ) -> Notifier {
        let (tx, rx) = mpsc::unbounded_channel();
        let controls = Arc::new(Mutex::new(Controls::default()));
        let mut p = Pipeline {
            settings,
            alerts: HashMap::new(),
            groups: Groups::default(),
            receivers: HashMap::new(),
            in_flight: HashMap::new(),
            durable: durable.clone(),
            transport,
            tx: tx.clone(),
            controls: controls.clone(),
            resolved: HashSet::new(),
            flap: None,
        };
        p.restore();
        p.configure(receivers);
        p.resume_outbox();
        tokio::spawn(p.run(rx));
        Notifier {
            tx,
            durable,
            controls,
        }
    }

    /// Hands alerts over. They are saved before this returns, so the caller
    /// may then record them as sent.
    pub fn dispatch(&self, alerts: &[(Labels, Alert)]) {
        if alerts.is_empty() {
            return;
        }
        let json: Vec<(u64, String)> = alerts
            .iter()
            .filter_map(|(l, a)| Some((l.fingerprint(), serde_json::to_string(a).ok()?)))
            .collect();
        if let Err(e) = self
            .durable
            .save_notify_alerts(json.iter().map(|(fp, j)| (*fp, j.as_str())), [])
        {
            tracing::error!(error = %e, "cannot save alerts for notification; they are only in memory");
        }
        let _ = self.tx.send(Msg::Alerts(alerts.to_vec()));
    }

    /// Replaces the routing tree and the receivers. Queued notifications of
    /// receivers that still exist stay queued.
    pub fn configure(&self, settings: Settings, receivers: Vec<ReceiverSetup>) {
        let _ = self.tx.send(Msg::Configure(Box::new(settings), receivers));
    }

    /// Acknowledges a firing alert; `false` if no such alert is firing.
    pub fn ack(&self, fingerprint: u64, ack: Ack) -> bool {
        let json = match serde_json::to_string(&ack) {
            Ok(j) => j,
            Err(_) => return false,
        };
        if let Err(e) = self
            .durable
            .put_record(Record::Ack, &fingerprint.to_string(), Some(&json))
        {
            tracing::error!(error = %e, "cannot save acknowledgement");
        }
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acks
            .insert(fingerprint, ack);
        let _ = self.tx.send(Msg::Controls);
        true
    }

    /// Creates a silence, or updates the one whose `id` it carries (which
    /// may expire it and create a new one, as Alertmanager). Returns the id.
    pub fn put_silence(&self, api: &ApiSilence) -> Result<String, SilenceError> {
        let spec = api.spec()?;
        let now = now_ms();
        let mut c = self.lock();
        let id = match &api.id {
            Some(id) if !id.is_empty() => {
                let new_id = c.silences.update(id, spec, now)?;
                if &new_id != id {
                    self.save_silence(c.silences.get(id));
                }
                new_id
            }
            _ => c.silences.create(spec, now)?,
        };
        self.save_silence(c.silences.get(&id));
        drop(c);
        let _ = self.tx.send(Msg::Controls);
        Ok(id)
    }

    /// Expires a silence now.
    pub fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        let mut c = self.lock();
        c.silences.expire(id, now_ms())?;
        self.save_silence(c.silences.get(id));
        drop(c);
        let _ = self.tx.send(Msg::Controls);
        Ok(())
    }

    /// Silences matching every matcher of `filter`, in Alertmanager's order.
    pub fn silences(&self, filter: &[crate::config::Matcher]) -> Vec<ApiSilence> {
        let now = now_ms();
        self.lock()
            .silences
            .list(filter, now)
            .into_iter()
            .map(|s| s.to_api(now))
            .collect()
    }

    /// One silence by id.
    pub fn silence(&self, id: &str) -> Option<ApiSilence> {
        self.lock().silences.get(id).map(|s| s.to_api(now_ms()))
    }

    /// Ids of the silences muting an alert with these labels now.
    pub fn silenced_by(&self, labels: &Labels) -> Vec<String> {
        self.lock().silences.silenced_by(labels, now_ms())
    }

    fn save_silence(&self, silence: Option<&Silence>) {
        let Some(s) = silence else { return };
        match serde_json::to_string(&s.to_api(now_ms())) {
            Ok(json) => {
                if let Err(e) = self.durable.put_record(Record::Silence, &s.id, Some(&json)) {
                    tracing::error!(error = %e, "cannot save silence");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize silence"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Controls> {
        self.controls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last delivery outcomes of an alert (fingerprint in hex).
    pub fn outcomes(&self, fingerprint: &str) -> Vec<super::Outcome> {
        self.lock()
            .outcomes
            .get(fingerprint)
            .cloned()
            .unwrap_or_default()
    }

    /// The current acknowledgements.
    pub fn acks(&self) -> HashMap<u64, Ack> {
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acks
            .clone()
    }
}

struct ReceiverHandle {
    cfg: ReceiverConfig,
    queue: Arc<Queue>,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

struct Pipeline {
    settings: Settings,
    /// Alerts by fingerprint: firing, or resolved and not yet notified.
    alerts: HashMap<u64, Arc<Alert>>,
    groups: Groups,
    receivers: HashMap<String, ReceiverHandle>,
    /// Group key -> the outbox id and flush being delivered.
    in_flight: HashMap<String, (i64, Flush)>,
    durable: Arc<Durable>,
    transport: Arc<dyn HttpTransport>,
    tx: mpsc::UnboundedSender<Msg>,
    controls: Arc<Mutex<Controls>>,
    /// Resolved alerts to forget once no group holds them.
    resolved: HashSet<u64>,
    flap: Option<FlapDetector>,
}

pub(super) use crate::collect::scrape::now_ms;

impl Pipeline {
    fn restore(&mut self) {
        match self.durable.load_notify_log() {
            Ok(rows) => self.groups.restore_log(
                rows.into_iter()
                    .filter_map(|(k, e)| Some((k, serde_json::from_str::<LogEntry>(&e).ok()?))),
            ),
            Err(e) => tracing::error!(error = %e, "cannot load the notification log"),
        }
        match self.durable.load_notify_alerts() {
            Ok(rows) => {
                for (fp, json) in rows {
                    match serde_json::from_str::<Alert>(&json) {
                        Ok(a) => {
                            if a.status == AlertStatus::Resolved {
                                self.resolved.insert(fp);
                            }
                            self.alerts.insert(fp, Arc::new(a));
                        }
                        Err(e) => tracing::error!(error = %e, "dropping an unreadable saved alert"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load saved alerts"),
        }
        match self.durable.load_records(Record::Silence) {
            Ok(rows) => {
                let saved = rows.into_iter().filter_map(|(_, json)| {
                    let api: ApiSilence = serde_json::from_str(&json).ok()?;
                    Silence::from_api(&api).ok()
                });
                self.controls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .silences = Silences::from_saved(saved);
            }
            Err(e) => tracing::error!(error = %e, "cannot load silences"),
        }
        match self.durable.load_records(Record::Outcome) {
            Ok(rows) => {
                let mut c = self.controls.lock().unwrap_or_else(|e| e.into_inner());
                for (fp, json) in rows {
                    if let Ok(list) = serde_json::from_str(&json) {
                        c.outcomes.insert(fp, list);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load delivery outcomes"),
        }
        match self.durable.load_records(Record::Ack) {
            Ok(rows) => {
                let mut c = self.controls.lock().unwrap_or_else(|e| e.into_inner());
                for (k, v) in rows {
                    if let (Ok(fp), Ok(ack)) = (k.parse::<u64>(), serde_json::from_str::<Ack>(&v)) {
                        c.acks.insert(fp, ack);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load acknowledgements"),
        }
    }

    /// Puts notifications left in the outbox by the last run back in their
    /// receivers' queues; their groups wait for them.
    fn resume_outbox(&mut self) {
        let rows = match self.durable.load_outbox() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the outbox");
                return;
            }
        };
        for row in rows {
            let flush: Flush = match serde_json::from_str(&row.job) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "dropping an unreadable queued notification");
                    let _ = self.durable.complete(row.id, None);
                    continue;
                }
            };
            let Some(r) = self.receivers.get(&row.receiver) else {
                tracing::error!(receiver = %row.receiver, "dropping a queued notification for a receiver that no longer exists");
                let _ = self.durable.complete(row.id, None);
                continue;
            };
            let dropped = r.queue.push(
                &row.receiver,
                Job {
                    id: row.id,
                    group_key: flush.group_key.clone(),
                    notification: flush.notification.clone(),
                    created_ms: row.created_ms,
                },
            );
            self.end_dropped(dropped);
            self.in_flight
                .insert(flush.group_key.clone(), (row.id, flush));
        }
    }

    /// (Re)starts receivers' workers and rebuilds the groups for the
    /// current routing tree.
    fn configure(&mut self, receivers: Vec<ReceiverSetup>) {
        let mut old = std::mem::take(&mut self.receivers);
        for (cfg, renderer) in receivers {
            let queue = old
                .remove(&cfg.name)
                .map(|h| h.queue.clone())
                .unwrap_or_else(|| Arc::new(Queue::default()));
            let worker = tokio::spawn(run_receiver(
                cfg.clone(),
                renderer,
                queue.clone(),
                self.transport.clone(),
                self.tx.clone(),
            ));
            self.receivers
                .insert(cfg.name.clone(), ReceiverHandle { cfg, queue, worker });
        }
        // Notifications queued for removed receivers are given up.
        for (name, h) in old {
            for job in h.queue.drain() {
                tracing::warn!(receiver = %name, "receiver removed; dropping its queued notification");
                let _ = self.tx.send(Msg::Done {
                    id: job.id,
                    group_key: job.group_key,
                    delivered: false,
                    outcomes: Vec::new(),
                });
            }
        }
        let flap_cfg = self.settings.flap_damping;
        if flap_cfg != self.flap.as_ref().map(|f| *f.config()) {
            self.flap = flap_cfg.and_then(|cfg| FlapDetector::new(cfg).ok());
        }
        let mut groups = Groups::default();
        std::mem::swap(&mut groups, &mut self.groups);
        self.groups = groups.with_log_only();
        let now = now_ms();
        let alerts: Vec<Arc<Alert>> = self.alerts.values().cloned().collect();
        for alert in alerts {
            self.group(now, alert);
        }
    }

    /// Puts an alert into its group on every route it matches; returns the
    /// groups' keys.
    fn group(&mut self, now: i64, alert: Arc<Alert>) -> Vec<String> {
        let labels = &alert.labels;
        let mut keys = Vec::new();
        let mut matches = Vec::new();
        let root = &self.settings.route;
        matching_routes(root, labels, &super::route_id(None, root), &mut matches);
        for RouteMatch {
            route,
            key,
            display_key,
        } in matches
        {
            if route.receiver.is_empty() {
                continue;
            }
            let send_resolved = self
                .receivers
                .get(&route.receiver)
                .is_none_or(|r| r.cfg.send_resolved);
            let opts = GroupOpts {
                group_by: route.group_by.clone(),
                group_wait: route.group_wait,
                group_interval: route.group_interval,
                repeat_interval: route.repeat_interval,
            };
            keys.push(self.groups.insert(
                now,
                &key,
                &display_key,
                &route.receiver,
                send_resolved,
                &opts,
                labels,
                alert.clone(),
            ));
        }
        keys
    }

    fn on_alerts(&mut self, alerts: Vec<(Labels, Alert)>) {
        let now = now_ms();
        for (_, alert) in alerts {
            let fp = alert.labels.fingerprint();
            if alert.status == AlertStatus::Resolved {
                self.resolved.insert(fp);
                self.unack(fp);
            } else {
                self.resolved.remove(&fp);
            }
            let event = match &mut self.flap {
                Some(f) => f.observe(fp, alert.status, now),
                None => FlapEvent::Normal,
            };
            let alert = Arc::new(alert);
            self.alerts.insert(fp, alert.clone());
            match event {
                FlapEvent::Normal => {
                    self.group(now, alert);
                }
                FlapEvent::StartedFlapping => {
                    // Held firing, announced once, until it settles.
                    let mut held = Alert::clone(&alert);
                    held.status = AlertStatus::Firing;
                    held.ends_at = None;
                    held.annotations.retain(|(k, _)| k != FLAPPING_ANNOTATION);
                    held.annotations
                        .push((FLAPPING_ANNOTATION.to_string(), "true".to_string()));
                    self.resolved.remove(&fp);
                    events::AlertFlapping {
                        labels: &held.labels.to_string(),
                        flapping: true,
                    }
                    .emit();
                    for key in self.group(now, Arc::new(held)) {
                        self.groups.force(&key);
                    }
                }
                FlapEvent::Suppressed => {}
                FlapEvent::StoppedFlapping => self.settle(now, fp),
            }
        }
        self.forget_resolved();
    }

    /// A flapping alert settled: its current state is notified.
    fn settle(&mut self, now: i64, fp: u64) {
        let Some(alert) = self.alerts.get(&fp).cloned() else {
            return;
        };
        events::AlertFlapping {
            labels: &alert.labels.to_string(),
            flapping: false,
        }
        .emit();
        if alert.status == AlertStatus::Resolved {
            self.resolved.insert(fp);
        }
        for key in self.group(now, alert) {
            self.groups.force(&key);
        }
    }

    /// Keeps the last outcomes of each alert's notifications, so the API
    /// shows what a receiver (a remediation endpoint, say) answered.
    fn record_outcomes(&mut self, f: &Flush, outcomes: &[super::Outcome]) {
        let mut c = self.controls.lock().unwrap_or_else(|e| e.into_inner());
        for a in &f.notification.alerts {
            let list = c.outcomes.entry(a.fingerprint.clone()).or_default();
            list.extend(outcomes.iter().cloned());
            let excess = list.len().saturating_sub(OUTCOMES_PER_ALERT);
            list.drain(..excess);
            match serde_json::to_string(&list) {
                Ok(json) => {
                    if let Err(e) =
                        self.durable
                            .put_record(Record::Outcome, &a.fingerprint, Some(&json))
                    {
                        tracing::error!(error = %e, "cannot save delivery outcomes");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot serialize delivery outcomes"),
            }
        }
    }

    fn unack(&mut self, fp: u64) {
        let removed = self
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acks
            .remove(&fp)
            .is_some();
        if removed && let Err(e) = self.durable.put_record(Record::Ack, &fp.to_string(), None) {
            tracing::error!(error = %e, "cannot delete acknowledgement");
        }
    }

    /// Forgets resolved alerts no group holds any more.
    fn forget_resolved(&mut self) {
        let gone: Vec<u64> = self
            .resolved
            .iter()
            .copied()
            .filter(|fp| !self.groups.holds(*fp))
            .collect();
        if gone.is_empty() {
            return;
        }
        {
            let mut c = self.controls.lock().unwrap_or_else(|e| e.into_inner());
            for fp in &gone {
                self.resolved.remove(fp);
                self.alerts.remove(fp);
                let key = format!("{fp:016x}");
                if c.outcomes.remove(&key).is_some() {
                    let _ = self.durable.put_record(Record::Outcome, &key, None);
                }
            }
        }
        if let Err(e) = self.durable.save_notify_alerts([], gone) {
            tracing::error!(error = %e, "cannot forget resolved alerts");
        }
    }

    fn flush(&mut self) {
        let now = now_ms();
        let settled = match &mut self.flap {
            Some(f) => f.sweep(now),
            None => Vec::new(),
        };
        for (fp, _) in settled {
            self.settle(now, fp);
        }
        let inhibitor = Inhibitor::from_firing(
            self.settings
                .inhibit_rules
                .iter()
                .cloned()
                .map(InhibitRule::from)
                .collect(),
            self.alerts
                .values()
                .filter(|a| a.status == AlertStatus::Firing)
                .map(|a| &a.labels),
        );
        let controls = self.controls.lock().unwrap_or_else(|e| e.into_inner());
        let mut filter = Filter {
            in_flight: &self.in_flight,
            controls: &controls,
            inhibitor: &inhibitor,
            now,
        };
        let flushes = self
            .groups
            .flush_due(now, &self.settings.external_url, &mut filter);
        drop(controls);
        for f in flushes {
            if self.route_muted(&f.route_key, now) {
                continue;
            }
            let Some(r) = self.receivers.get(&f.notification.receiver) else {
                events::NotificationFailed {
                    receiver: &f.notification.receiver,
                    error: "receiver unavailable (its notifier plugin failed to load)",
                    final_attempt: true,
                }
                .emit();
                continue;
            };
            if f.notification.alerts.is_empty() {
                // Only resolutions, for a receiver without send_resolved:
                // nothing to deliver, but the log records them.
                self.log_sent(0, &f, now);
                continue;
            }
            let job = match serde_json::to_string(&f) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize a notification");
                    continue;
                }
            };
            let id = match self.durable.enqueue(&r.cfg.name, &job, now) {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(error = %e, "cannot save a notification to the outbox; sending it anyway");
                    0
                }
            };
            let dropped = r.queue.push(
                &r.cfg.name,
                Job {
                    id,
                    group_key: f.group_key.clone(),
                    notification: f.notification.clone(),
                    created_ms: now,
                },
            );
            self.end_dropped(dropped);
            self.in_flight.insert(f.group_key.clone(), (id, f));
        }
        self.forget_resolved();
    }

    /// Ends a job a full queue dropped as a failed delivery, so its group
    /// stops waiting for it and tries again at its next `group_interval`
    /// (otherwise the group would stay in flight for good).
    fn end_dropped(&self, dropped: Option<Job>) {
        if let Some(job) = dropped {
            let _ = self.tx.send(Msg::Done {
                id: job.id,
                group_key: job.group_key,
                delivered: false,
                outcomes: Vec::new(),
            });
        }
    }

    /// Whether a route is inside a mute interval or outside its active ones.
    fn route_muted(&self, route_key: &str, now: i64) -> bool {
        let root = &self.settings.route;
        let Some(route) = super::find_route(root, &super::route_id(None, root), route_key) else {
            return false;
        };
        if route.mute_time_intervals.is_empty() && route.active_time_intervals.is_empty() {
            return false;
        }
        let named = |names: &[String]| -> Vec<&NamedTimeInterval> {
            self.settings
                .time_intervals
                .iter()
                .filter(|i| names.contains(&i.name))
                .collect()
        };
        route_muted(
            now,
            &named(&route.mute_time_intervals),
            &named(&route.active_time_intervals),
        )
    }

    fn log_sent(&mut self, id: i64, f: &Flush, now: i64) {
        match serde_json::to_string(&f.entry) {
            Ok(entry) => {
                if let Err(e) = self
                    .durable
                    .complete(id, Some((&f.log_key, &entry, f.entry.at_ms)))
                {
                    tracing::error!(error = %e, "cannot record a sent notification");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize a log entry"),
        }
        self.groups.sent(f, now);
    }

    fn on_done(
        &mut self,
        id: i64,
        group_key: &str,
        delivered: bool,
        outcomes: Vec<super::Outcome>,
    ) {
        let now = now_ms();
        let flush = match self.in_flight.get(group_key) {
            Some((current, _)) if *current == id => {
                self.in_flight.remove(group_key).map(|(_, f)| f)
            }
            _ => None,
        };
        if let Some(f) = &flush
            && !outcomes.is_empty()
        {
            self.record_outcomes(f, &outcomes);
        }
        match (flush, delivered) {
            (Some(f), true) => self.log_sent(id, &f, now),
            (Some(_), false) => {
                if let Err(e) = self.durable.complete(id, None) {
                    tracing::error!(error = %e, "cannot remove a failed notification from the outbox");
                }
            }
            (None, _) => {
                let _ = self.durable.complete(id, None);
            }
        }
        self.forget_resolved();
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut gc = tokio::time::interval(std::time::Duration::from_secs(600));
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = match (
                // Not groups whose delivery is in flight: they are due
                // again when it ends (a `Done` message wakes this loop).
                self.groups
                    .next_due_except(|key| self.in_flight.contains_key(key)),
                self.flap.as_ref().and_then(|f| f.next_due()),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = match due {
                Some(due) => {
                    let wait = (due - now_ms()).max(0) as u64;
                    std::time::Duration::from_millis(wait)
                }
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    match msg {
                        Msg::Alerts(a) => self.on_alerts(a),
                        Msg::Configure(settings, receivers) => {
                            self.settings = *settings;
                            self.configure(receivers);
                        }
                        Msg::Done { id, group_key, delivered, outcomes } => {
                            self.on_done(id, &group_key, delivered, outcomes)
                        }
                        Msg::Controls => {}
                    }
                }
                _ = tokio::time::sleep(sleep) => self.flush(),
                _ = gc.tick() => {
                    let before = now_ms() - LOG_RETENTION_MS;
                    self.groups.gc_log(before);
                    let gone = self
                        .controls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .silences
                        .gc(now_ms(), RETENTION);
                    for id in gone {
                        let _ = self.durable.put_record(Record::Silence, &id, None);
                    }
                    if let Err(e) = self.durable.gc_notify_log(before) {
                        tracing::error!(error = %e, "cannot trim the notification log");
                    }
                }
            }
        }
    }
}

/// Silences, inhibitions and acknowledgements, as seen at one flush.
struct Filter<'a> {
    in_flight: &'a HashMap<String, (i64, Flush)>,
    controls: &'a Controls,
    inhibitor: &'a Inhibitor,
    now: i64,
}

impl FlushFilter for Filter<'_> {
    fn muted(&mut self, _fingerprint: u64, alert: &Alert) -> bool {
        let labels = &alert.labels;
        !self
            .controls
            .silences
            .silenced_by(labels, self.now)
            .is_empty()
            || self.inhibitor.inhibited(labels).is_some()
    }

    fn acked(&self, fingerprint: u64) -> bool {
        self.controls.acks.contains_key(&fingerprint)
    }

    fn busy(&self, group_key: &str) -> bool {
        self.in_flight.contains_key(group_key)
    }
}
