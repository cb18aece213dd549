//! Rules with a `source`: their query runs on a remote Prometheus-compatible
//! API instead of the local store.
//!
//! What comes back enters the same path as a local evaluation
//! ([`RuleCore::evaluate_samples`]): same windows, same check, same alerts.
//! The windows are backfilled with a range query from the source before the
//! first step, after the query changes, and after a failed step (so a
//! source's outage leaves no gap once it answers again). A failing query
//! fails that rule's step only, with the source's error.

use std::collections::HashMap;
use std::sync::Arc;

use super::RuleSpec;
use super::rule::RuleCore;
use crate::config::{Config, ConfigError};
use crate::query::Sample;
use crate::query::remote::RemoteSource;

/// Every source by name; `None` for one whose client could not be set up
/// (already reported).
pub(crate) type Sources = HashMap<String, Option<Arc<RemoteSource>>>;

/// Sets up a client for every source; one that cannot be set up is an
/// error at its `[[sources]]` item.
pub(crate) fn connect(cfg: &Config, errors: &mut Vec<ConfigError>) -> Sources {
    cfg.sources
        .iter()
        .map(|s| {
            let remote = match RemoteSource::new(s) {
                Ok(remote) => Some(Arc::new(remote)),
                Err(e) => {
                    errors.push(ConfigError::at(
                        &cfg.file,
                        s.location,
                        format!("source {:?}: {e}", s.name),
                    ));
                    None
                }
            };
            (s.name.clone(), remote)
        })
        .collect()
}

/// Whether two versions of a rule read the same data, so the windows of
/// one are valid for the other: the same query on the same store or source
/// (name and URL).
pub(crate) fn same_data(a: &RuleSpec, b: &RuleSpec) -> bool {
    let origin = |s: &RuleSpec| {
        s.query
            .remote()
            .map(|r| (r.name().to_string(), r.url().to_string()))
    };
    a.cfg.query == b.cfg.query && origin(a) == origin(b)
}

impl RuleCore {
    /// One step's samples from the rule's source, at `now`: backfills the
    /// windows first when they need it. The error is what the step reports
    /// (its message, and `"query"` or `"source"` as the failure's reason).
    pub(crate) async fn fetch_remote(
        &mut self,
        remote: &RemoteSource,
        now: i64,
    ) -> Result<Vec<Sample>, (String, &'static str)> {
        let query = self.spec.cfg.query.clone();
        if self.remote_backfill {
            // Tried once per need: a source that answers instant queries but
            // refuses this range (too many samples, say) still runs the rule.
            self.remote_backfill = false;
            self.backfill_remote(remote, &query, now).await;
        }
        match remote.instant(&query, now).await {
            Ok(samples) => Ok(samples),
            Err(e) => {
                // An outage leaves a gap to fill once the source answers; a
                // query the source rejects does not.
                self.remote_backfill |= e.reason() == "source";
                Err((format!("source {:?}: {e}", remote.name()), e.reason()))
            }
        }
    }

    /// Fills the windows from past steps, as [`RuleCore::backfill`] does
    /// from the local store; points the windows already hold are kept.
    async fn backfill_remote(&mut self, remote: &RemoteSource, query: &str, now: i64) {
        let step = i64::try_from(self.spec.cfg.every.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let start = now - self.windows.window_ms() + step;
        let end = now - step;
        if end < start {
            return;
        }
        match remote.range(query, start, end, step).await {
            Ok(series) => {
                let mut points = 0;
                for (labels, values) in &series {
                    for &(t, v) in values {
                        self.windows.seed(labels, t, v);
                    }
                    points += values.len();
                }
                tracing::debug!(rule = %self.spec.cfg.name, source = %remote.name(), series = series.len(), points, "windows backfilled from the source");
            }
            Err(e) => {
                tracing::warn!(rule = %self.spec.cfg.name, source = %remote.name(), error = %e, "window backfill from the source failed; the window fills as the rule runs");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;
    use crate::alert::AlertState;
    use crate::engine::plugins::Catalog;
    use crate::engine::{RuleQuery, compile, retention};
    use crate::sandbox::{Limits, Sandbox};
    use crate::store::SeriesStore;

    #[derive(Default)]
    struct Fake {
        /// 0: answer; otherwise fail with this status.
        fail: AtomicU16,
        ranges: AtomicUsize,
        instants: AtomicUsize,
    }

    /// A query API whose range queries return `up{job="x"} 1` at every
    /// step and whose instant queries return it at 1.
    async fn fake_api(fake: Arc<Fake>) -> (String, tokio::task::JoinHandle<()>) {
        async fn answer(
            State(fake): State<Arc<Fake>>,
            uri: axum::http::Uri,
            body: String,
        ) -> (StatusCode, String) {
            let form: HashMap<String, String> = reqwest::Url::parse(&format!("http://f/?{body}"))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            match fake.fail.load(Ordering::SeqCst) {
                0 => {}
                400 => {
                    return (
                        StatusCode::BAD_REQUEST,
                        r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into(),
                    );
                }
                code => {
                    return (
                        StatusCode::from_u16(code).unwrap(),
                        r#"{"status":"error","errorType":"unavailable","error":"down"}"#.into(),
                    );
                }
            }
            if uri.path().ends_with("/query_range") {
                fake.ranges.fetch_add(1, Ordering::SeqCst);
                let num = |k: &str| form[k].parse::<f64>().unwrap();
                let (start, end, step) = (num("start"), num("end"), num("step"));
                let n = ((end - start) / step).round() as i64 + 1;
                let values: Vec<String> = (0..n)
                    .map(|i| format!("[{},\"1\"]", start + i as f64 * step))
                    .collect();
                return (
                    StatusCode::OK,
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"__name__":"up","job":"x"}},"values":[{}]}}]}}}}"#,
                        values.join(",")
                    ),
                );
            }
            fake.instants.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::OK,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"x"},"value":[1,"1"]}]}}"#.into(),
            )
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(post(answer)).with_state(fake);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), task)
    }

    #[tokio::test]
    async fn a_remote_step_backfills_then_goes_the_local_way() {
        let fake = Arc::new(Fake::default());
        let (url, task) = fake_api(fake.clone()).await;
        let text = format!(
            "[[sources]]\nname = \"fake\"\nkind = \"prometheus\"\nurl = \"{url}\"\n\n\
             [[rules]]\nname = \"Up\"\nsource = \"fake\"\nquery = \"up == 1 unsupported_by_vigil\"\n\
             every = \"500ms\"\nwindow = \"5s\"\n\n\
             [[rules]]\nname = \"Local\"\nquery = \"up\"\nwindow = \"1h\"\n\n\
             [[rules]]\nname = \"Ranged\"\nquery = \"count_over_time(up[2h])\"\nwindow = \"30s\"\n"
        );
        let cfg = crate::config::parse(Path::new("/nonexistent/vigil.toml"), &text).unwrap();
        let sandbox = Sandbox::new(None, Limits::default()).unwrap();
        // The source's query is not Vigil's to parse.
        let compiled = compile(&cfg, &Catalog::default(), &sandbox).unwrap();
        // Only local rules keep samples in the store, each its window plus
        // what its query reads before a step, for the metrics it reads: the
        // 2h range outlasts the 1h window.
        let lookback = crate::query::LOOKBACK_MS;
        let all = retention(compiled.rules.iter().map(|(s, _)| s));
        assert_eq!(all.for_name(Some("up")), 30_000 + 7_200_000);
        assert_eq!(all.for_name(Some("other")), lookback);
        let two = retention(compiled.rules.iter().take(2).map(|(s, _)| s));
        assert_eq!(two.for_name(Some("up")), 3_600_000 + lookback);
        assert_eq!(two.longest(), 3_600_000 + lookback);
        let (spec, check) = compiled.rules.into_iter().next().unwrap();
        assert!(check.is_none());
        assert!(spec.metric_names.is_empty() && !spec.reads_unnamed);
        let RuleQuery::Remote(remote) = &spec.query else {
            panic!("a local query")
        };
        let remote = remote.clone();
        let spec = Arc::new(spec);

        let mut core = RuleCore::new(spec.clone(), None);
        let store = SeriesStore::new(0);
        let now = 1_700_000_000_000;
        core.backfill(&store, now);
        assert!(
            core.remote_backfill,
            "a remote rule backfills when it steps"
        );
        let samples = core.fetch_remote(&remote, now).await;
        assert_eq!(fake.ranges.load(Ordering::SeqCst), 1);
        assert_eq!(core.windows.points(), 9, "now-4.5s ..= now-0.5s");
        let out = core.evaluate_samples(samples, std::time::Instant::now(), now, "http://v");
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(core.windows.points(), 10);
        let alert = core.alerts.alerts().next().expect("an alert");
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.labels.get("job"), Some("x"));

        // The next step does not backfill again.
        let samples = core.fetch_remote(&remote, now + 500).await;
        assert!(samples.is_ok());
        assert_eq!(fake.ranges.load(Ordering::SeqCst), 1);

        // The source is down: the step fails as the source's fault, and the
        // gap is backfilled when it answers again.
        fake.fail.store(503, Ordering::SeqCst);
        let (error, reason) = core.fetch_remote(&remote, now + 1_000).await.unwrap_err();
        assert_eq!(
            (error.as_str(), reason),
            ("source \"fake\": HTTP 503, unavailable: down", "source")
        );
        let out = core.evaluate_samples(
            Err((error, reason)),
            std::time::Instant::now(),
            now + 1_000,
            "http://v",
        );
        assert_eq!(out.error.map(|e| e.1), Some("source"));
        assert!(core.remote_backfill);
        fake.fail.store(0, Ordering::SeqCst);
        let samples = core.fetch_remote(&remote, now + 2_000).await;
        assert_eq!(fake.ranges.load(Ordering::SeqCst), 2);
        core.evaluate_samples(samples, std::time::Instant::now(), now + 2_000, "http://v");
        // A full window again, now-2.5s ..= now+2s: the backfill filled
        // now+0.5s ..= now+1.5s, which no step appended.
        assert_eq!(core.windows.points(), 10);

        // A query the source refuses is the query's fault and needs no
        // backfill.
        fake.fail.store(400, Ordering::SeqCst);
        let (_, reason) = core.fetch_remote(&remote, now + 2_500).await.unwrap_err();
        assert_eq!(reason, "query");
        assert!(!core.remote_backfill);
        task.abort();
    }

    #[test]
    fn windows_survive_only_the_same_query_on_the_same_source() {
        let sandbox = Sandbox::new(None, Limits::default()).unwrap();
        let spec = |url: &str, query: &str| {
            let text = format!(
                "[[sources]]\nname = \"s\"\nkind = \"prometheus\"\nurl = \"{url}\"\n\
                 [[rules]]\nname = \"R\"\nsource = \"s\"\nquery = \"{query}\"\n"
            );
            let cfg = crate::config::parse(Path::new("v.toml"), &text).unwrap();
            compile(&cfg, &Catalog::default(), &sandbox)
                .unwrap()
                .rules
                .remove(0)
                .0
        };
        let a = spec("http://a:9090", "up");
        assert!(same_data(&a, &spec("http://a:9090/", "up")));
        assert!(!same_data(&a, &spec("http://b:9090", "up")));
        assert!(!same_data(&a, &spec("http://a:9090", "up == 0")));
    }
}
