//! Notifications: route alerts to receivers, group them, render with
//! notifier plugins, deliver with retries.
//!
//! Routing follows Alertmanager's tree (matchers, nested routes,
//! `continue`); grouping, the notification log and the outbox live in the
//! [`pipeline`]. Each receiver has its own worker and queue, so a failing
//! receiver only delays itself. Rendering runs in the plugin sandbox; the
//! host performs the deliveries after checking them against `allow_hosts`.

pub mod flap;
pub mod group;
pub mod inhibit;
pub mod mute;
pub mod pipeline;
pub mod silence;
pub mod smtp;
pub mod transport;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, so retry deadlines follow paused time in tests.
use tokio::time::Instant;

use crate::config::{Location, ReceiverConfig, RouteConfig};
use crate::sandbox::{
    AlertStatus, Delivery, Notification, NotifierInstance, Plugin, PluginError, Sandbox,
};
use crate::store::labels::Labels;
use crate::telemetry::events;
pub use group::Flush;
pub use pipeline::{Ack, Notifier, Settings};
use transport::{DeliveryError, HttpTransport, check_allowed};

/// The built-in receiver kind that writes alerts to the log.
pub const CONSOLE: &str = "console";

/// Queued notifications per receiver; past this the oldest is dropped, as
/// Prometheus' notifier queue does, so memory stays bounded.
const QUEUE_CAPACITY: usize = 10_000;

/// A route an alert reached, with its id: Alertmanager's route `ID()`,
/// the path of matcher sets from the root with each child's index, like
/// `{}/{severity="critical"}/0`, so sibling routes with the same matchers
/// keep separate groups.
pub struct RouteMatch<'a> {
    pub route: &'a RouteConfig,
    pub key: String,
    /// Alertmanager's `Route.Key()`: the same path without child indexes.
    pub display_key: String,
}

/// The id of `node`, the `index`-th child of the route with id `parent`
/// (`None` for the root).
pub fn route_id(parent: Option<(&str, usize)>, node: &RouteConfig) -> String {
    let own: Vec<String> = node.matchers.iter().map(ToString::to_string).collect();
    match parent {
        None => format!("{{{}}}", own.join(",")),
        Some((parent, index)) => format!("{parent}/{{{}}}/{index}", own.join(",")),
    }
}

/// The routes an alert goes to, as Alertmanager's `Route.Match`: the
/// deepest matching routes, trying later siblings only after a route with
/// `continue`. `id` is `node`'s [`route_id`].
pub fn matching_routes<'a>(
    node: &'a RouteConfig,
    labels: &Labels,
    id: &str,
    out: &mut Vec<RouteMatch<'a>>,
) -> bool {
    matching(node, labels, id, &route_id(None, node), out)
}

fn matching<'a>(
    node: &'a RouteConfig,
    labels: &Labels,
    id: &str,
    display: &str,
    out: &mut Vec<RouteMatch<'a>>,
) -> bool {
    if !node.matchers.iter().all(|m| m.matches(labels.get(&m.name))) {
        return false;
    }
    let before = out.len();
    for (i, child) in node.routes.iter().enumerate() {
        let child_id = route_id(Some((id, i)), child);
        let child_display = format!("{display}/{}", route_id(None, child));
        if matching(child, labels, &child_id, &child_display, out) && !child.continue_ {
            break;
        }
    }
    if out.len() == before {
        out.push(RouteMatch {
            route: node,
            key: id.to_string(),
            display_key: display.to_string(),
        });
    }
    true
}

/// The route with this id.
pub fn find_route<'a>(node: &'a RouteConfig, id: &str, wanted: &str) -> Option<&'a RouteConfig> {
    if id == wanted {
        return Some(node);
    }
    if !wanted.starts_with(id) {
        return None;
    }
    node.routes
        .iter()
        .enumerate()
        .find_map(|(i, c)| find_route(c, &route_id(Some((id, i)), c), wanted))
}

/// The receivers an alert goes to, in routing order, without repeats.
pub fn route<'a>(node: &'a RouteConfig, labels: &Labels, out: &mut Vec<&'a str>) {
    let mut matches = Vec::new();
    matching_routes(node, labels, &route_id(None, node), &mut matches);
    for m in matches {
        let r = m.route.receiver.as_str();
        if !r.is_empty() && !out.contains(&r) {
            out.push(r);
        }
    }
}

/// How a receiver turns a notification into deliveries.
pub enum Renderer {
    Console,
    Plugin(NotifierInstance),
}

impl Renderer {
    /// Builds the renderer for a receiver: the built-in console, or an
    /// instance of its notifier plugin configured with its params.
    pub fn for_receiver(
        cfg: &ReceiverConfig,
        sandbox: &Sandbox,
        plugins: &HashMap<String, Arc<Plugin>>,
    ) -> Result<Renderer, RendererError> {
        if cfg.notifier == CONSOLE {
            return Ok(Renderer::Console);
        }
        let plugin = plugins.get(&cfg.notifier).ok_or_else(|| RendererError {
            at: cfg.notifier_at,
            message: format!(
                "no notifier plugin named {:?} in the plugin directory",
                cfg.notifier
            ),
        })?;
        NotifierInstance::new(
            sandbox,
            plugin.clone(),
            &cfg.params,
            sandbox.default_limits(),
        )
        .map(Renderer::Plugin)
        .map_err(|e| RendererError {
            at: match &e {
                PluginError::Configure(why) => cfg.params_written.locate(why),
                _ => None,
            }
            .unwrap_or(cfg.params_at),
            message: format!("notifier {:?} {e}", cfg.notifier),
        })
    }
}

/// Why a receiver has no renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RendererError {
    /// Where in the configuration file: the parameter the notifier
    /// rejected, or else the receiver's `params` (its `notifier` when the
    /// plugin is missing).
    pub at: Location,
    /// What is wrong, naming the notifier.
    pub message: String,
}

impl std::fmt::Display for RendererError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One notification for one receiver.
struct Job {
    /// Its outbox id (0 when it could not be saved).
    id: i64,
    group_key: String,
    notification: Notification,
    /// When it was queued (Unix milliseconds): retries stop `retry_for`
    /// after this, across restarts.
    created_ms: i64,
}

/// A bounded queue that drops its oldest entry when full.
#[derive(Default)]
struct Queue {
    items: Mutex<VecDeque<Job>>,
    wake: tokio::sync::Notify,
}

impl Queue {
    /// Queues a job; returns the oldest one if it had to make room. The
    /// caller must end that job (its group is waiting for it).
    fn push(&self, receiver: &str, job: Job) -> Option<Job> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped = None;
        if items.len() >= QUEUE_CAPACITY {
            dropped = items.pop_front();
            events::NotificationFailed {
                receiver,
                error: "queue full; dropped the oldest notification",
                final_attempt: true,
            }
            .emit();
        }
        items.push_back(job);
        drop(items);
        self.wake.notify_one();
        dropped
    }

    async fn pop(&self) -> Job {
        loop {
            if let Some(job) = self
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            {
                return job;
            }
            self.wake.notified().await;
        }
    }

    fn drain(&self) -> Vec<Job> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect()
    }
}

async fn run_receiver(
    cfg: ReceiverConfig,
    renderer: Renderer,
    queue: Arc<Queue>,
    transport: Arc<dyn HttpTransport>,
    done: tokio::sync::mpsc::UnboundedSender<pipeline::Msg>,
) {
    let mut renderer = Some(renderer);
    loop {
        let job = queue.pop().await;
        let mut outcomes = Vec::new();
        let delivered = match renderer.take() {
            Some(Renderer::Console) => {
                log_to_console(&job.notification);
                renderer = Some(Renderer::Console);
                true
            }
            Some(Renderer::Plugin(mut instance)) => {
                let n = job.notification.clone();
                let joined = tokio::task::spawn_blocking(move || {
                    let r = instance.render(&n);
                    (instance, r)
                })
                .await;
                let rendered = match joined {
                    Ok((instance, r)) => {
                        renderer = Some(Renderer::Plugin(instance));
                        r
                    }
                    Err(e) => Err(PluginError::Trap(format!("render task failed: {e}"))),
                };
                match rendered {
                    Ok(deliveries) => {
                        // Retries share one deadline from when the
                        // notification was queued, even across restarts.
                        let age = Duration::from_millis(
                            (pipeline::now_ms() - job.created_ms).max(0) as u64,
                        );
                        let queued_at =
                            Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                        for d in deliveries {
                            outcomes.push(deliver(&cfg, &d, queued_at, transport.as_ref()).await);
                        }
                        outcomes.iter().all(|o| o.delivered)
                    }
                    Err(e) => {
                        let error = format!("notifier {} {e}", cfg.notifier);
                        events::NotificationFailed {
                            receiver: &cfg.name,
                            error: &error,
                            final_attempt: true,
                        }
                        .emit();
                        outcomes.push(Outcome {
                            receiver: cfg.name.clone(),
                            at_ms: pipeline::now_ms(),
                            delivered: false,
                            attempts: 0,
                            detail: error,
                        });
                        false
                    }
                }
            }
            None => false,
        };
        let _ = done.send(pipeline::Msg::Done {
            id: job.id,
            group_key: job.group_key,
            delivered,
            outcomes,
        });
    }
}

/// Delivers one rendered message, retrying transient failures with
/// exponential backoff and jitter until the receiver's `retry_for` runs out.
/// How one delivery ended, as recorded with the alerts it carried.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub receiver: String,
    pub at_ms: i64,
    pub delivered: bool,
    pub attempts: u32,
    /// The answer (HTTP status and the start of the body) or the last error.
    pub detail: String,
}

async fn deliver(
    cfg: &ReceiverConfig,
    d: &Delivery,
    queued_at: Instant,
    transport: &dyn HttpTransport,
) -> Outcome {
    deliver_with(cfg, d, queued_at, transport, smtp::shared()).await
}

/// [`deliver`] with the mail transport passed in, for tests.
async fn deliver_with(
    cfg: &ReceiverConfig,
    d: &Delivery,
    queued_at: Instant,
    transport: &dyn HttpTransport,
    mail: &dyn smtp::MailTransport,
) -> Outcome {
    let deadline = queued_at + cfg.retry_for;
    let mut backoff = Duration::from_millis(250);
    let mut attempts = 0u32;
    let outcome = |delivered, attempts, detail| Outcome {
        receiver: cfg.name.clone(),
        at_ms: pipeline::now_ms(),
        delivered,
        attempts,
        detail,
    };
    let size = match d {
        Delivery::Http(req) => req.body.len(),
        Delivery::Email(e) => {
            e.text.len() + e.html.as_ref().map_or(0, String::len) + e.subject.len()
        }
    };
    loop {
        attempts += 1;
        let result = if size as u64 > cfg.max_body_bytes {
            Err(DeliveryError::Permanent(format!(
                "the rendered message has {size} bytes, more than the receiver's max_body_bytes ({})",
                cfg.max_body_bytes
            )))
        } else {
            match d {
                Delivery::Http(req) => match check_allowed(&req.url, &cfg.allow_hosts) {
                    Ok(()) => transport.send(req, cfg.timeout).await,
                    Err(e) => Err(e),
                },
                Delivery::Email(email) => smtp::send(cfg, email, mail)
                    .await
                    .map(|()| "accepted by the SMTP server".to_string()),
            }
        };
        match result {
            Ok(detail) => {
                events::NotificationSent {
                    receiver: &cfg.name,
                    attempts,
                    latency: queued_at.elapsed(),
                }
                .emit();
                return outcome(true, attempts, detail);
            }
            Err(e) => {
                let give_up = e.is_permanent() || Instant::now() + backoff >= deadline;
                events::NotificationFailed {
                    receiver: &cfg.name,
                    error: &e.to_string(),
                    final_attempt: give_up,
                }
                .emit();
                if give_up {
                    return outcome(false, attempts, e.to_string());
                }
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Spreads retries of many receivers over time: 50% to 100% of `d`.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    let frac = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
    d.mul_f64(frac)
}

fn log_to_console(n: &Notification) {
    for a in &n.alerts {
        let labels: Vec<String> = a
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let summary = a
            .annotations
            .iter()
            .find(|(k, _)| k == "summary")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let status = match a.status {
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "RESOLVED",
        };
        tracing::info!(
            target: "vigil::console",
            receiver = %n.receiver,
            "[{status}] {{{}}} value={} {summary}",
            labels.join(", "),
            a.value
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Matcher;
    use std::sync::atomic::{AtomicU32, Ordering};
    use transport::BoxFuture;

    #[test]
    fn a_full_queue_hands_back_the_job_it_dropped() {
        let job = |id: i64| Job {
            id,
            group_key: format!("g{id}"),
            notification: Notification {
                receiver: "r".into(),
                status: AlertStatus::Firing,
                group_key: format!("g{id}"),
                group_labels: Vec::new(),
                common_labels: Vec::new(),
                common_annotations: Vec::new(),
                external_url: String::new(),
                alerts: Vec::new(),
                truncated_alerts: 0,
            },
            created_ms: 0,
        };
        let q = Queue::default();
        for id in 0..QUEUE_CAPACITY as i64 {
            assert!(q.push("r", job(id)).is_none());
        }
        // The oldest goes, and the pipeline must end it: its group waits.
        let dropped = q.push("r", job(-1)).map(|j| j.group_key);
        assert_eq!(dropped.as_deref(), Some("g0"));
        assert_eq!(q.drain().len(), QUEUE_CAPACITY);
    }

    /// Fails the first `failures` attempts with `error`, then accepts.
    struct Flaky {
        failures: u32,
        permanent: bool,
        attempts: AtomicU32,
    }

    impl HttpTransport for Flaky {
        fn send<'a>(
            &'a self,
            _req: &'a crate::sandbox::HttpRequest,
            _t: Duration,
        ) -> BoxFuture<'a, Result<String, DeliveryError>> {
            Box::pin(async move {
                let n = self.attempts.fetch_add(1, Ordering::SeqCst);
                if n < self.failures {
                    Err(if self.permanent {
                        DeliveryError::Permanent("400".into())
                    } else {
                        DeliveryError::Transient("503".into())
                    })
                } else {
                    Ok("200 OK".into())
                }
            })
        }
    }

    fn receiver(allow: &[&str]) -> ReceiverConfig {
        ReceiverConfig {
            name: "r".into(),
            notifier: "webhook".into(),
            notifier_at: crate::config::Location::new(1, 1),
            params: serde_json::json!({}),
            params_at: crate::config::Location::new(1, 1),
            params_written: Default::default(),
            allow_hosts: allow.iter().map(|s| s.to_string()).collect(),
            send_resolved: true,
            timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(60),
            max_body_bytes: 1 << 20,
            smtp: None,
        }
    }

    fn http(url: &str) -> Delivery {
        Delivery::Http(crate::sandbox::HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![],
            body: "{}".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_delivered() {
        let t = Flaky {
            failures: 3,
            permanent: false,
            attempts: AtomicU32::new(0),
        };
        deliver(
            &receiver(&["127.0.0.1:9"]),
            &http("http://127.0.0.1:9/x"),
            Instant::now(),
            &t,
        )
        .await;
        assert_eq!(t.attempts.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_deadline_and_on_permanent_errors() {
        let t = Flaky {
            failures: u32::MAX,
            permanent: false,
            attempts: AtomicU32::new(0),
        };
        let started = tokio::time::Instant::now();
        deliver(
            &receiver(&["127.0.0.1:9"]),
            &http("http://127.0.0.1:9/x"),
            Instant::now(),
            &t,
        )
        .await;
        // Backoff 250 ms doubling to 30 s: a handful of attempts in 60 s.
        let n = t.attempts.load(Ordering::SeqCst);
        assert!((5..=12).contains(&n), "{n} attempts");
        assert!(started.elapsed() <= Duration::from_secs(60));
        let t = Flaky {
            failures: u32::MAX,
            permanent: true,
            attempts: AtomicU32::new(0),
        };
        deliver(
            &receiver(&["127.0.0.1:9"]),
            &http("http://127.0.0.1:9/x"),
            Instant::now(),
            &t,
        )
        .await;
        assert_eq!(t.attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_outside_allow_hosts_is_never_contacted() {
        let t = Flaky {
            failures: 0,
            permanent: false,
            attempts: AtomicU32::new(0),
        };
        deliver(
            &receiver(&["127.0.0.1:9"]),
            &http("http://10.1.2.3:80/x"),
            Instant::now(),
            &t,
        )
        .await;
        assert_eq!(t.attempts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn routes_follow_alertmanager_continue_semantics() {
        let leaf = |receiver: &str, matchers: &[&str], cont: bool| RouteConfig {
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            continue_: cont,
            ..RouteConfig::root(receiver)
        };
        let root = RouteConfig {
            routes: vec![
                leaf("console", &[], true),
                leaf("pager", &["severity=\"critical\""], false),
                leaf("never", &["severity=~\"crit.*\""], false),
            ],
            ..RouteConfig::root("default")
        };
        let mut out = Vec::new();
        route(
            &root,
            &Labels::from_pairs([("severity", "critical")]),
            &mut out,
        );
        assert_eq!(out, vec!["console", "pager"]);
        let mut out = Vec::new();
        route(&root, &Labels::from_pairs([("severity", "info")]), &mut out);
        assert_eq!(out, vec!["console"]);
        let mut matches = Vec::new();
        matching_routes(
            &root,
            &Labels::from_pairs([("severity", "critical")]),
            "{}",
            &mut matches,
        );
        let keys: Vec<&str> = matches.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, vec!["{}/{}/0", "{}/{severity=\"critical\"}/1"]);
        for k in keys {
            assert_eq!(
                find_route(&root, "{}", k).map(|r| r.receiver.as_str()),
                Some(if k.ends_with("/0") {
                    "console"
                } else {
                    "pager"
                })
            );
        }
    }
}
