//! Scraping Prometheus and OpenMetrics endpoints.
//!
//! Like Prometheus: the scrape timestamp is the start of the request; every
//! target gets `up`, `scrape_duration_seconds` and `scrape_samples_scraped`;
//! a series that vanishes from a target, or every series of a target that
//! went down, gets a staleness marker. A cache from the raw series text to
//! the series id means labels are parsed only for series not seen before.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::exposition::{self, Entry, Format};
use crate::config::TargetConfig;
use crate::store::labels::{Labels, METRIC_NAME};
use crate::store::{SeriesId, SeriesStore, stale_nan};
use crate::telemetry::events;

/// Largest body read from a target.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Announces that a scrape's samples are in the store, so rules fed by it
/// evaluate now rather than at their next tick.
#[derive(Debug, Clone)]
pub struct ScrapeLanded {
    pub job: String,
    pub at_ms: i64,
    /// Metric names the target exposes.
    pub names: Arc<HashSet<String>>,
}

/// What the API shows for a target.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TargetStatus {
    pub job: String,
    pub url: String,
    pub instance: String,
    pub health: &'static str,
    pub last_scrape_ms: i64,
    pub last_duration_seconds: f64,
    pub last_samples: usize,
    pub last_error: Option<String>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `instance` label of a target: its host and port.
pub fn instance_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// One target's scrape loop state.
pub struct Scraper {
    cfg: TargetConfig,
    instance: String,
    client: reqwest::Client,
    store: Arc<SeriesStore>,
    cache: HashMap<String, SeriesId>,
    names: Arc<HashSet<String>>,
    last_seen: HashSet<SeriesId>,
    landed: broadcast::Sender<ScrapeLanded>,
    status: Arc<Mutex<TargetStatus>>,
    buf: Vec<(SeriesId, i64, f64)>,
    /// The store's collection epoch the cache was last checked against.
    gc_epoch: u64,
}

impl Scraper {
    pub fn new(
        cfg: TargetConfig,
        client: reqwest::Client,
        store: Arc<SeriesStore>,
        landed: broadcast::Sender<ScrapeLanded>,
        status: Arc<Mutex<TargetStatus>>,
    ) -> Self {
        let instance = instance_of(&cfg.url);
        if let Ok(mut s) = status.lock() {
            *s = TargetStatus {
                job: cfg.job.clone(),
                url: cfg.url.clone(),
                instance: instance.clone(),
                health: "unknown",
                ..Default::default()
            };
        }
        Scraper {
            cfg,
            instance,
            client,
            store,
            cache: HashMap::new(),
            names: Arc::new(HashSet::new()),
            last_seen: HashSet::new(),
            landed,
            status,
            buf: Vec::new(),
            gc_epoch: 0,
        }
    }

    /// Forgets cached ids of series the store collected, so a series that
    /// comes back after a long absence is interned again rather than
    /// appended to an id that no longer exists.
    fn forget_collected(&mut self) {
        let epoch = self.store.gc_epoch();
        if epoch == self.gc_epoch {
            return;
        }
        self.gc_epoch = epoch;
        let mut ids: Vec<SeriesId> = self.cache.values().copied().collect();
        self.store.retain_alive(&mut ids);
        let alive: HashSet<SeriesId> = ids.into_iter().collect();
        self.cache.retain(|_, id| alive.contains(id));
        self.last_seen.retain(|id| alive.contains(id));
    }

    /// Scrapes forever at the target's interval.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.cfg.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.scrape_once().await;
        }
    }

    /// One scrape: fetch, parse, append, announce.
    pub async fn scrape_once(&mut self) {
        let started = Instant::now();
        let t = now_ms();
        self.forget_collected();
        let result = self.fetch().await;
        self.buf.clear();
        let outcome = match result {
            Ok((body, format)) => self.ingest(&body, format, t),
            Err(e) => Err(e),
        };
        let duration = started.elapsed();
        let (up, samples) = match &outcome {
            Ok(n) => (1.0, *n),
            Err(_) => (0.0, 0),
        };
        if outcome.is_err() {
            // The target is down: everything it exposed is stale now.
            self.buf.clear();
            for &id in &self.last_seen {
                self.buf.push((id, t, stale_nan()));
            }
            self.last_seen.clear();
        }
        self.push_synthetic("up", up, t);
        self.push_synthetic("scrape_duration_seconds", duration.as_secs_f64(), t);
        self.push_synthetic("scrape_samples_scraped", samples as f64, t);
        self.store.append(&self.buf);
        if let Ok(mut s) = self.status.lock() {
            s.health = if outcome.is_ok() { "up" } else { "down" };
            s.last_scrape_ms = t;
            s.last_duration_seconds = duration.as_secs_f64();
            s.last_samples = samples;
            s.last_error = outcome.as_ref().err().cloned();
        }
        match &outcome {
            Ok(n) => events::ScrapeSucceeded {
                job: &self.cfg.job,
                url: &self.cfg.url,
                samples: *n,
                duration,
            }
            .emit(),
            Err(e) => events::ScrapeFailed {
                job: &self.cfg.job,
                url: &self.cfg.url,
                error: e,
            }
            .emit(),
        }
        let _ = self.landed.send(ScrapeLanded {
            job: self.cfg.job.clone(),
            at_ms: t,
            names: self.names.clone(),
        });
    }

    async fn fetch(&self) -> Result<(Vec<u8>, Format), String> {
        let resp = self
            .client
            .get(&self.cfg.url)
            .header(reqwest::header::ACCEPT, ACCEPT)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.cfg.timeout.as_secs_f64()),
            )
            .timeout(self.cfg.timeout)
            .send()
            .await
            .map_err(|e| describe_reqwest(&e, self.cfg.timeout))?;
        if !resp.status().is_success() {
            return Err(format!("server returned HTTP status {}", resp.status()));
        }
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_BODY_BYTES)
        {
            return Err(format!("body larger than {MAX_BODY_BYTES} bytes"));
        }
        let format = exposition::detect_format(
            resp.headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let body = resp
            .bytes()
            .await
            .map_err(|e| describe_reqwest(&e, self.cfg.timeout))?;
        if body.len() > MAX_BODY_BYTES {
            return Err(format!("body larger than {MAX_BODY_BYTES} bytes"));
        }
        Ok((body.to_vec(), format))
    }

    /// Parses a payload into `self.buf`; on a syntax error nothing is kept.
    fn ingest(&mut self, body: &[u8], format: Format, t: i64) -> Result<usize, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        let mut seen = HashSet::with_capacity(self.last_seen.len());
        let mut new_names: Vec<String> = Vec::new();
        for entry in exposition::Parser::new(text, format) {
            let entry = entry.map_err(|e| e.to_string())?;
            let Entry::Sample(s) = entry else { continue };
            let id = match self.cache.get(s.series) {
                Some(&id) => id,
                None => {
                    let labels = self.target_labels(s.series)?;
                    if let Some(name) = labels.metric_name()
                        && !self.names.contains(name)
                    {
                        new_names.push(name.to_string());
                    }
                    let id = self.store.intern(labels);
                    self.cache.insert(s.series.to_string(), id);
                    id
                }
            };
            if !seen.insert(id) {
                // A duplicate series in one payload: Prometheus keeps the first.
                continue;
            }
            self.buf.push((id, s.timestamp_ms.unwrap_or(t), s.value));
        }
        let n = self.buf.len();
        for &id in self.last_seen.difference(&seen) {
            self.buf.push((id, t, stale_nan()));
        }
        self.last_seen = seen;
        if !new_names.is_empty() {
            let mut names: HashSet<String> = (*self.names).clone();
            names.extend(new_names);
            self.names = Arc::new(names);
        }
        Ok(n)
    }

    /// The series' labels plus `job`, `instance` and the target's labels.
    /// A scraped label that clashes with one of those is kept as
    /// `exported_<name>`, as Prometheus does without `honor_labels`.
    fn target_labels(&self, series: &str) -> Result<Labels, String> {
        let (name, pairs) = exposition::parse_series(series).map_err(|e| e.to_string())?;
        let mut out: Vec<(String, String)> =
            Vec::with_capacity(pairs.len() + 3 + self.cfg.labels.len());
        let ours = |n: &str| n == "job" || n == "instance" || self.cfg.labels.contains_key(n);
        for (k, v) in pairs {
            if ours(&k) {
                out.push((format!("exported_{k}"), v));
            } else {
                out.push((k, v));
            }
        }
        out.push((METRIC_NAME.to_string(), name));
        out.push(("job".into(), self.cfg.job.clone()));
        out.push(("instance".into(), self.instance.clone()));
        for (k, v) in &self.cfg.labels {
            out.push((k.clone(), v.clone()));
        }
        Ok(Labels::new(out))
    }

    fn push_synthetic(&mut self, name: &str, value: f64, t: i64) {
        let key = format!("\u{0}{name}");
        let id = match self.cache.get(&key) {
            Some(&id) => id,
            None => {
                let mut pairs = vec![
                    (METRIC_NAME.to_string(), name.to_string()),
                    ("job".to_string(), self.cfg.job.clone()),
                    ("instance".to_string(), self.instance.clone()),
                ];
                pairs.extend(self.cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                let id = self.store.intern(Labels::new(pairs));
                self.cache.insert(key, id);
                let mut names: HashSet<String> = (*self.names).clone();
                names.insert(name.to_string());
                self.names = Arc::new(names);
                id
            }
        };
        self.buf.push((id, t, value));
    }
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {}ms", timeout.as_millis())
    } else if e.is_connect() {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;
    use std::collections::BTreeMap;

    fn scraper(store: Arc<SeriesStore>) -> Scraper {
        let cfg = TargetConfig {
            job: "triton".into(),
            url: "http://127.0.0.1:8002/metrics".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        };
        let (tx, _) = broadcast::channel(4);
        Scraper::new(cfg, reqwest::Client::new(), store, tx, Arc::default())
    }

    fn values(store: &SeriesStore, q: &str, t: i64) -> Vec<(String, f64)> {
        let q = Query::parse(q).unwrap();
        let mut v: Vec<_> = store
            .select_instant(&q, t, 60_000)
            .into_iter()
            .map(|s| (s.labels.to_string(), s.value))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn vanished_series_go_stale_and_target_labels_are_added() {
        let store = Arc::new(SeriesStore::new(600_000));
        let mut s = scraper(store.clone());
        let a = "# TYPE x counter\nx{model=\"a\"} 1\nx{model=\"b\",job=\"inner\"} 2\n";
        assert_eq!(s.ingest(a.as_bytes(), Format::PrometheusText, 1_000), Ok(2));
        store.append(&s.buf);
        let expected: Vec<(String, f64)> = vec![
            (
                r#"x{env="prod", exported_job="inner", instance="127.0.0.1:8002", job="triton", model="b"}"#.into(),
                2.0,
            ),
            (r#"x{env="prod", instance="127.0.0.1:8002", job="triton", model="a"}"#.into(), 1.0),
        ];
        assert_eq!(values(&store, "x", 1_500), expected);
        s.buf.clear();
        let b = "x{model=\"a\"} 3\n";
        assert_eq!(s.ingest(b.as_bytes(), Format::PrometheusText, 2_000), Ok(1));
        store.append(&s.buf);
        // b vanished: stale from 2 s on, though still within the lookback.
        let after = values(&store, "x", 2_500);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].1, 3.0);
    }

    #[test]
    fn a_series_collected_by_the_store_is_interned_again_when_it_returns() {
        let store = Arc::new(SeriesStore::new(60_000));
        let mut s = scraper(store.clone());
        assert_eq!(
            s.ingest(b"x{model=\"a\"} 1\n", Format::PrometheusText, 1_000),
            Ok(1)
        );
        store.append(&s.buf);
        let first = s.buf[0].0;
        // Nothing written for longer than the retention: collected.
        assert_eq!(store.gc(super::now_ms() + 120_000), 1);
        assert!(!store.is_alive(first));
        s.forget_collected();
        s.buf.clear();
        assert_eq!(
            s.ingest(b"x{model=\"a\"} 2\n", Format::PrometheusText, 2_000),
            Ok(1)
        );
        store.append(&s.buf);
        assert_ne!(s.buf[0].0, first, "a new id, never the collected one");
        assert_eq!(values(&store, "x", 2_000).len(), 1);
    }

    #[test]
    fn a_syntax_error_names_the_line_and_keeps_nothing() {
        let store = Arc::new(SeriesStore::new(600_000));
        let mut s = scraper(store.clone());
        let err = s
            .ingest(b"ok 1\nbad{x=\"1\" 2\n", Format::PrometheusText, 1_000)
            .unwrap_err();
        assert!(err.starts_with("line 2, column"), "{err}");
    }

    #[test]
    fn synthetic_series_follow_prometheus() {
        let store = Arc::new(SeriesStore::new(600_000));
        let mut s = scraper(store.clone());
        s.push_synthetic("up", 1.0, 1_000);
        s.push_synthetic("scrape_samples_scraped", 7.0, 1_000);
        store.append(&s.buf);
        assert_eq!(
            values(&store, "up", 1_000),
            vec![(
                r#"up{env="prod", instance="127.0.0.1:8002", job="triton"}"#.into(),
                1.0
            )]
        );
        assert_eq!(values(&store, "scrape_samples_scraped", 1_000)[0].1, 7.0);
    }
}
