//! Rule queries evaluated by a remote Prometheus-compatible API (Prometheus,
//! Thanos Query, Mimir, Cortex, VictoriaMetrics): a `[[sources]]` item.
//!
//! [`RemoteSource::instant`] and [`RemoteSource::range`] are the remote
//! counterparts of [`Query::instant`](super::Query::instant) and
//! [`Query::range`](super::Query::range): `POST /api/v1/query` and
//! `/api/v1/query_range`, their JSON turned into the same [`Sample`]s and
//! [`RangeSeries`], so a rule with a `source` goes through the same windows,
//! check and alerts as one over the local store. The source parses and
//! evaluates the query text itself; Vigil's own evaluator never sees it.
//!
//! This lives in `query`, not `collect`, because it answers queries: nothing
//! it returns enters the store.
//!
//! Every failure is a [`RemoteError`]: a transport failure or timeout, an
//! HTTP status with the API's `errorType` and `error`, or a body that is not
//! the API's JSON. [`RemoteError::reason`] tells the query's fault from the
//! source's.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::{RangeSeries, Sample};
use crate::config::{SourceAuth, SourceConfig, format_duration};
use crate::store::labels::Labels;

/// Prometheus refuses a range query of more than 11,000 points per series;
/// a longer backfill is split into requests of at most this many steps.
const MAX_STEPS_PER_REQUEST: i64 = 10_000;

/// The largest response body read; a larger one is an error, not an
/// out-of-memory host. 100k series of 120 points is about 400 MB of JSON.
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// How much of a body that is not the API's JSON an error quotes.
const BODY_EXCERPT_CHARS: usize = 200;

/// Why a remote query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The HTTP client could not be built from the source's settings.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// No answer within the source's `timeout`.
    #[error("no answer within {}", format_duration(*.0))]
    Timeout(Duration),
    /// No connection: refused, unknown host, TLS handshake.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The request or the response body failed after connecting.
    #[error("request failed: {0}")]
    Transport(String),
    /// The API refused or failed the query: its `errorType` (`bad_data`,
    /// `execution`, `timeout`, `canceled`, `internal`, `unavailable`) and
    /// `error`.
    #[error("HTTP {status}, {error_type}: {error}")]
    Api {
        status: u16,
        error_type: String,
        error: String,
    },
    /// A failure status without the API's error body, like a proxy's 502 or
    /// a 401 from the authentication in front of the API.
    #[error("HTTP {status}{}", excerpt_suffix(.body))]
    Status { status: u16, body: String },
    /// The body is not the API's JSON.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The query's result has a type a rule cannot use.
    #[error("{0}")]
    ResultType(String),
}

impl RemoteError {
    /// `"query"` when the query is at fault (the API rejected or failed it,
    /// or it returns the wrong type), `"source"` when the source is
    /// (unreachable, slow, overloaded, misconfigured): the `reason` label of
    /// `vigil_rule_evaluation_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            RemoteError::Api { error_type, .. }
                if error_type == "bad_data" || error_type == "execution" =>
            {
                "query"
            }
            RemoteError::ResultType(_) => "query",
            _ => "source",
        }
    }
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// A `[[sources]]` item ready to answer queries. Cheap to share: rules
/// using the same source share one connection pool.
pub struct RemoteSource {
    name: String,
    url: String,
    client: reqwest::Client,
    auth: Option<SourceAuth>,
    timeout: Duration,
}

impl std::fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteSource {
    /// A client for a validated source.
    pub fn new(cfg: &SourceConfig) -> Result<RemoteSource, RemoteError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| RemoteError::Setup(format!("header {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| RemoteError::Setup(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| RemoteError::Setup(error_chain(&e)))?;
        Ok(RemoteSource {
            name: cfg.name.clone(),
            url: cfg.url.trim_end_matches('/').to_string(),
            client,
            auth: cfg.auth.clone(),
            timeout: cfg.timeout,
        })
    }

    /// The source's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Evaluates `query` at `t_ms` (`/api/v1/query`). A scalar result is one
    /// sample with no labels, as [`Query::instant`](super::Query::instant)
    /// gives it.
    pub async fn instant(&self, query: &str, t_ms: i64) -> Result<Vec<Sample>, RemoteError> {
        let form = [
            ("query", query.to_string()),
            ("time", seconds(t_ms)),
            ("timeout", seconds(duration_ms(self.timeout))),
        ];
        let (status, body) = self.post("/api/v1/query", &form).await?;
        parse_off_runtime(move || parse_response(status, &body).and_then(instant_samples)).await
    }

    /// Evaluates `query` at `start_ms, start_ms + step_ms, ..., end_ms`
    /// (`/api/v1/query_range`, split into requests the API accepts): each
    /// series with its points in time order, series in label order, as
    /// [`Query::range`](super::Query::range) gives them.
    pub async fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<RangeSeries>, RemoteError> {
        if step_ms <= 0 {
            return Err(RemoteError::ResultType(
                "the step of a range query must be positive".into(),
            ));
        }
        let mut merged: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
        let mut from = start_ms;
        while from <= end_ms {
            let to =
                end_ms.min(from.saturating_add(step_ms.saturating_mul(MAX_STEPS_PER_REQUEST - 1)));
            let form = [
                ("query", query.to_string()),
                ("start", seconds(from)),
                ("end", seconds(to)),
                ("step", seconds(step_ms)),
                ("timeout", seconds(duration_ms(self.timeout))),
            ];
            let (status, body) = self.post("/api/v1/query_range", &form).await?;
            let part =
                parse_off_runtime(move || parse_response(status, &body).and_then(range_series))
                    .await?;
            for (labels, points) in part {
                merged.entry(labels).or_default().extend(points);
            }
            from = match to.checked_add(step_ms) {
                Some(next) => next,
                None => break,
            };
        }
        let mut out: Vec<RangeSeries> = merged.into_iter().collect();
        for (_, points) in &mut out {
            points.sort_by_key(|&(t, _)| t);
            points.dedup_by_key(|&mut (t, _)| t);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Posts a form (so a long query never meets a URL length limit) and
    /// reads the whole answer, whatever its status.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<(u16, Vec<u8>), RemoteError> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .timeout(self.timeout)
            .form(form);
        request = match &self.auth {
            None => request,
            Some(SourceAuth::Bearer(token)) => request.bearer_auth(token.expose()),
            Some(SourceAuth::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose()))
            }
        };
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let capacity = response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(MAX_RESPONSE_BYTES);
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(RemoteError::BadResponse(format!(
                    "the answer is larger than {} MiB",
                    MAX_RESPONSE_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn transport(&self, e: reqwest::Error) -> RemoteError {
        if e.is_timeout() {
            RemoteError::Timeout(self.timeout)
        } else if e.is_connect() {
            RemoteError::Connect(error_chain(&e))
        } else {
            RemoteError::Transport(error_chain(&e))
        }
    }
}

/// Parses on a blocking thread: the answer for many series is a large JSON
/// document, and parsing it must not hold up the runtime's other tasks.
async fn parse_off_runtime<T: Send + 'static>(
    parse: impl FnOnce() -> Result<T, RemoteError> + Send + 'static,
) -> Result<T, RemoteError> {
    tokio::task::spawn_blocking(parse)
        .await
        .unwrap_or_else(|e| Err(RemoteError::BadResponse(format!("parsing failed: {e}"))))
}

/// An error's causes, without reqwest's "error sending request for url
/// (...)" wrapper when there is a cause to show.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        next = cause.source();
    }
    if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    }
}

/// Unix seconds with millisecond precision, as the API takes times, steps
/// and timeouts.
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The API's answer: `{"status": "success", "data": {...}}` or
/// `{"status": "error", "errorType": "...", "error": "..."}`.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// `data` of a successful answer.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result")]
enum Data {
    #[serde(rename = "vector")]
    Vector(Vec<VectorItem>),
    #[serde(rename = "scalar")]
    Scalar(Point),
    #[serde(rename = "matrix")]
    Matrix(Vec<MatrixItem>),
    #[serde(rename = "string")]
    String(serde::de::IgnoredAny),
}

/// `[<unix seconds>, "<value>"]`.
type Point = (f64, String);

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: HashMap<String, String>,
    /// Absent for a native histogram sample (`histogram` instead), which
    /// rules over floats skip, as the local evaluator does.
    value: Option<Point>,
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: HashMap<String, String>,
    #[serde(default)]
    values: Vec<Point>,
}

/// The `data` of an answer, or the error it reports.
fn parse_response(status: u16, body: &[u8]) -> Result<Data, RemoteError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(_) if !(200..300).contains(&status) => {
            return Err(RemoteError::Status {
                status,
                body: excerpt(body),
            });
        }
        Err(e) => {
            return Err(RemoteError::BadResponse(format!(
                "not the query API's JSON ({e}): {}",
                excerpt(body)
            )));
        }
    };
    if envelope.status != "success" || !(200..300).contains(&status) {
        return Err(match (envelope.error_type, envelope.error) {
            (None, None) => RemoteError::Status {
                status,
                body: excerpt(body),
            },
            (error_type, error) => RemoteError::Api {
                status,
                error_type: error_type.unwrap_or_default(),
                error: error.unwrap_or_default(),
            },
        });
    }
    envelope
        .data
        .ok_or_else(|| RemoteError::BadResponse("a successful answer without `data`".into()))
}

/// The samples of an instant query's result.
fn instant_samples(data: Data) -> Result<Vec<Sample>, RemoteError> {
    match data {
        Data::Vector(items) => items
            .into_iter()
            .filter_map(|item| {
                let (_, value) = item.value?;
                Some(value_of(&value).map(|value| Sample {
                    labels: labels(item.metric),
                    value,
                }))
            })
            .collect(),
        Data::Scalar((_, value)) => Ok(vec![Sample {
            labels: Labels::default(),
            value: value_of(&value)?,
        }]),
        Data::Matrix(_) => Err(RemoteError::ResultType(
            "a rule query must return an instant vector or a scalar, not a range vector".into(),
        )),
        Data::String(_) => Err(RemoteError::ResultType(
            "a rule query must return an instant vector or a scalar, not a string".into(),
        )),
    }
}

/// The series of a range query's result.
fn range_series(data: Data) -> Result<Vec<RangeSeries>, RemoteError> {
    let points = |values: Vec<Point>| -> Result<Vec<(i64, f64)>, RemoteError> {
        values
            .into_iter()
            .map(|(t, v)| Ok((millis(t)?, value_of(&v)?)))
            .collect()
    };
    match data {
        Data::Matrix(items) => items
            .into_iter()
            .map(|item| Ok((labels(item.metric), points(item.values)?)))
            .collect(),
        // Not what `query_range` returns, but unambiguous.
        Data::Vector(items) => items
            .into_iter()
            .filter_map(|item| {
                let point = item.value?;
                Some(points(vec![point]).map(|p| (labels(item.metric), p)))
            })
            .collect(),
        Data::Scalar(point) => Ok(vec![(Labels::default(), points(vec![point])?)]),
        Data::String(_) => Err(RemoteError::ResultType(
            "a rule query must return an instant vector or a scalar, not a string".into(),
        )),
    }
}

fn labels(metric: HashMap<String, String>) -> Labels {
    Labels::new(metric.into_iter().collect())
}

/// A sample value as the API writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn value_of(text: &str) -> Result<f64, RemoteError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|_| RemoteError::BadResponse(format!("{text:?} is not a sample value"))),
    }
}

/// Unix seconds (a JSON number) to milliseconds.
fn millis(seconds: f64) -> Result<i64, RemoteError> {
    let ms = (seconds * 1000.0).round();
    if ms.is_finite() && ms.abs() < 9.0e15 {
        Ok(ms as i64)
    } else {
        Err(RemoteError::BadResponse(format!(
            "{seconds} is not a timestamp"
        )))
    }
}

/// The start of a body, on one line, for an error message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap as Headers, StatusCode};
    use axum::routing::post;

    use super::*;
    use crate::config::{Location, Secret, SecretSource, SourceKind};

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: Labels::from_pairs(pairs.iter().copied()),
            value,
        }
    }

    fn instant(status: u16, body: &str) -> Result<Vec<Sample>, RemoteError> {
        parse_response(status, body.as_bytes()).and_then(instant_samples)
    }

    #[test]
    fn vectors_keep_labels_and_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a","instance":"h:1"},"value":[1700000000.5,"1"]},
            {"metric":{"job":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{"job":"c"},"value":[1700000000.5,"+Inf"]},
            {"metric":{"job":"d"},"value":[1700000000.5,"-Inf"]},
            {"metric":{"job":"e"},"value":[1700000000.5,"1e-3"]},
            {"metric":{"job":"h"},"histogram":[1700000000.5,{"count":"1"}]}
        ]},"warnings":["ignored"]}"#;
        let got = instant(200, body).unwrap();
        assert_eq!(got.len(), 5, "the histogram sample is skipped");
        assert_eq!(
            got[0],
            sample(
                &[("__name__", "up"), ("instance", "h:1"), ("job", "a")],
                1.0
            )
        );
        assert!(got[1].value.is_nan());
        assert_eq!(got[2].value, f64::INFINITY);
        assert_eq!(got[3].value, f64::NEG_INFINITY);
        assert_eq!(got[4].value, 0.001);
    }

    #[test]
    fn a_scalar_is_one_sample_without_labels() {
        let got = instant(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"42"]}}"#,
        )
        .unwrap();
        assert_eq!(got, vec![sample(&[], 42.0)]);
    }

    #[test]
    fn ranges_and_strings_are_not_rule_results() {
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = instant(200, matrix).unwrap_err();
        assert!(matches!(err, RemoteError::ResultType(_)), "{err}");
        assert_eq!(err.reason(), "query");
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert!(matches!(
            instant(200, string),
            Err(RemoteError::ResultType(_))
        ));
    }

    #[test]
    fn api_errors_keep_status_type_and_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \")\""}"#;
        let err = instant(400, body).unwrap_err();
        assert_eq!(
            err,
            RemoteError::Api {
                status: 400,
                error_type: "bad_data".into(),
                error: "1:5: parse error: unexpected \")\"".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "HTTP 400, bad_data: 1:5: parse error: unexpected \")\""
        );
        assert_eq!(err.reason(), "query");
        let busy = r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#;
        assert_eq!(instant(503, busy).unwrap_err().reason(), "source");
    }

    #[test]
    fn other_bodies_are_reported_shortly() {
        let html = format!(
            "<html>\n<body>502 Bad Gateway {}</body></html>",
            "x".repeat(500)
        );
        let err = instant(502, &html).unwrap_err();
        let RemoteError::Status { status: 502, body } = &err else {
            panic!("{err:?}")
        };
        assert!(body.starts_with("<html> <body>502 Bad Gateway"), "{body}");
        assert!(body.len() < 220, "{body}");
        assert_eq!(err.reason(), "source");
        assert_eq!(
            instant(401, "").unwrap_err().to_string(),
            "HTTP 401",
            "an empty body adds nothing"
        );
        let err = instant(200, "{\"status\":\"success\"").unwrap_err();
        assert!(matches!(err, RemoteError::BadResponse(_)), "{err}");
        let err = instant(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"one"]}]}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad response: \"one\" is not a sample value"
        );
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(seconds(500), "0.500");
        assert_eq!(seconds(-1_500), "-1.500");
        assert_eq!(millis(1_700_000_000.123).unwrap(), 1_700_000_000_123);
        assert!(millis(f64::NAN).is_err());
    }

    /// What a fake API received: the path, the headers, the form.
    type Seen = Arc<Mutex<Vec<(String, Headers, BTreeMap<String, String>)>>>;

    /// A fake query API on loopback answering range queries with one series
    /// whose value is its timestamp in seconds, and instant queries with
    /// `up{job="x"} 1`; `delay` holds every answer back.
    async fn fake_api(delay: Duration) -> (String, Seen, tokio::task::JoinHandle<()>) {
        async fn answer(
            State((seen, delay)): State<(Seen, Duration)>,
            uri: axum::http::Uri,
            headers: Headers,
            body: String,
        ) -> (StatusCode, String) {
            // The form, decoded the way URLs decode their query.
            let form: BTreeMap<String, String> =
                reqwest::Url::parse(&format!("http://form/?{body}"))
                    .unwrap()
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
            tokio::time::sleep(delay).await;
            let path = uri.path().to_string();
            seen.lock()
                .unwrap()
                .push((path.clone(), headers, form.clone()));
            if path.ends_with("/query_range") {
                let num = |k: &str| form[k].parse::<f64>().unwrap();
                let (start, end, step) = (num("start"), num("end"), num("step"));
                let mut values = Vec::new();
                let mut t = start;
                while t <= end + 1e-9 {
                    values.push(format!("[{t},\"{t}\"]"));
                    t += step;
                }
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"job":"x"}},"values":[{}]}}]}}}}"#,
                    values.join(",")
                );
                return (StatusCode::OK, body);
            }
            (
                StatusCode::OK,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"x"},"value":[1,"1"]}]}}"#.into(),
            )
        }
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(post(answer))
            .with_state((seen.clone(), delay));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/prefix"), seen, task)
    }

    fn source(url: &str, auth: Option<SourceAuth>, timeout: Duration) -> RemoteSource {
        RemoteSource::new(&SourceConfig {
            name: "prom".into(),
            location: Location::new(1, 1),
            kind: SourceKind::Prometheus,
            url: url.into(),
            auth,
            timeout,
            headers: BTreeMap::from([("X-Scope-OrgID".to_string(), "ml".to_string())]),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn instant_queries_post_the_query_time_auth_and_headers() {
        let (url, seen, task) = fake_api(Duration::ZERO).await;
        let token = Secret::new("s3cret", SecretSource::Env("T".into()));
        let src = source(
            &url,
            Some(SourceAuth::Bearer(token)),
            Duration::from_secs(5),
        );
        let got = src.instant("up == 1", 1_700_000_000_250).await.unwrap();
        assert_eq!(got, vec![sample(&[("__name__", "up"), ("job", "x")], 1.0)]);
        let seen = seen.lock().unwrap();
        let (path, headers, form) = &seen[0];
        assert_eq!(path, "/prefix/api/v1/query");
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(headers["x-scope-orgid"], "ml");
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("vigil/")
        );
        assert_eq!(form["query"], "up == 1");
        assert_eq!(form["time"], "1700000000.250");
        assert_eq!(form["timeout"], "5.000");
        task.abort();
    }

    #[tokio::test]
    async fn long_ranges_are_split_and_merged_in_order() {
        let (url, seen, task) = fake_api(Duration::ZERO).await;
        let password = Secret::new("pw", SecretSource::Env("P".into()));
        let auth = SourceAuth::Basic {
            username: "vigil".into(),
            password,
        };
        let src = source(&url, Some(auth), Duration::from_secs(5));
        let steps = 2 * MAX_STEPS_PER_REQUEST + 5;
        let got = src
            .range("x", 1_000, 1_000 + (steps - 1) * 1_000, 1_000)
            .await
            .unwrap();
        let [(labels, points)] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(labels, &Labels::from_pairs([("job", "x")]));
        assert_eq!(points.len() as i64, steps);
        assert!(points.windows(2).all(|w| w[1].0 - w[0].0 == 1_000));
        assert!(
            points
                .iter()
                .all(|&(t, v)| (t as f64 / 1000.0 - v).abs() < 1e-9)
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "three requests");
        assert_eq!(seen[0].0, "/prefix/api/v1/query_range");
        // "vigil:pw"
        assert_eq!(seen[0].1["authorization"], "Basic dmlnaWw6cHc=");
        assert_eq!(seen[0].2["step"], "1.000");
        assert_eq!(seen[1].2["start"], "10001.000");
        task.abort();
    }

    #[tokio::test]
    async fn slow_and_absent_sources_fail_typed() {
        let (url, _, task) = fake_api(Duration::from_secs(5)).await;
        let src = source(&url, None, Duration::from_millis(200));
        let err = src.instant("up", 0).await.unwrap_err();
        assert_eq!(err, RemoteError::Timeout(Duration::from_millis(200)));
        assert_eq!(err.to_string(), "no answer within 200ms");
        task.abort();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let src = source(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(1),
        );
        let err = src.instant("up", 0).await.unwrap_err();
        assert!(matches!(err, RemoteError::Connect(_)), "{err:?}");
        assert_eq!(err.reason(), "source");
    }
}
