//! The HTTP API, `/metrics` and the status page.
//!
//! `app()` returns a plain `Router` over the shared engine status, so tests
//! drive it without a socket and the binary serves it on `listen`.
//! Responses follow Prometheus' API envelope (`{"status":"success","data":..}`)
//! so existing tooling reads them.

pub mod client;
mod page;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::engine::Shared;

pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{fingerprint}/ack", post(ack))
        // Alertmanager API v2 shapes, under our prefix and under v2's own
        // paths so Alertmanager clients (amtool, Grafana) work unchanged.
        .route("/api/v1/silences", get(list_silences).post(put_silence))
        .route(
            "/api/v1/silences/{id}",
            get(get_silence).delete(expire_silence),
        )
        .route("/api/v2/silences", get(list_silences).post(put_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(expire_silence),
        )
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/plugins", get(plugins))
        .with_state(shared)
}

fn success(data: serde_json::Value) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

/// Prometheus' error envelope.
fn failure(status: StatusCode, error_type: &str, error: &str) -> Response {
    (
        status,
        Json(json!({ "status": "error", "errorType": error_type, "error": error })),
    )
        .into_response()
}

/// Checks the bearer token of a request that changes state.
#[allow(clippy::result_large_err)]
fn authorize(s: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.authorized(header).map_err(|why| {
        let status = if why.starts_with("this Vigil has no API token") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        failure(status, "unauthorized", why)
    })
}

/// The body of `POST /api/v1/alerts/{fingerprint}/ack`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AckRequest {
    /// Who acknowledges.
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// Acknowledges a firing alert: its notifications stop repeating until it
/// resolves.
async fn ack(
    State(s): State<Arc<Shared>>,
    Path(fingerprint): Path<String>,
    headers: HeaderMap,
    body: Option<Json<AckRequest>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    let Json(req) = body.unwrap_or_default();
    let statuses = s.rule_statuses();
    let Some(alert) = statuses
        .iter()
        .flat_map(|r| r.alerts.iter())
        .find(|a| *a.fingerprint == *fingerprint && a.state == "firing")
    else {
        return failure(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no firing alert has fingerprint {fingerprint:?}"),
        );
    };
    let (Some(notifier), Ok(fp)) = (s.notifier(), u64::from_str_radix(&fingerprint, 16)) else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "notifications are not running",
        );
    };
    let ack = crate::notify::Ack {
        starts_at: alert.fired_at_ms.unwrap_or(alert.active_at_ms),
        by: req.created_by,
        comment: req.comment,
        at_ms: crate::collect::scrape::now_ms(),
    };
    notifier.ack(fp, ack.clone());
    success(json!({ "fingerprint": fingerprint, "acknowledged": ack }))
}

async fn healthy() -> &'static str {
    "Vigil is Healthy.\n"
}

async fn ready(State(s): State<Arc<Shared>>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Vigil is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Vigil is starting.\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    s.record_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
        .into_response()
}

/// Active alerts, each with what mutes its notifications: the silences
/// matching it and its acknowledgement.
async fn alerts(State(s): State<Arc<Shared>>) -> Response {
    let notifier = s.notifier();
    let acks = notifier.as_ref().map(|n| n.acks()).unwrap_or_default();
    let statuses = s.rule_statuses();
    let alerts: Vec<serde_json::Value> = statuses
        .iter()
        .flat_map(|r| r.alerts.iter())
        .map(|a| {
            let labels = crate::store::labels::Labels::from_pairs(
                a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let silenced_by = notifier
                .as_ref()
                .map(|n| n.silenced_by(&labels))
                .unwrap_or_default();
            let ack = u64::from_str_radix(&a.fingerprint, 16)
                .ok()
                .and_then(|fp| acks.get(&fp).cloned());
            let mut v = serde_json::to_value(a).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("silencedBy".into(), json!(silenced_by));
                obj.insert("acknowledged".into(), json!(ack));
                let outcomes = notifier
                    .as_ref()
                    .map(|n| n.outcomes(&a.fingerprint))
                    .unwrap_or_default();
                obj.insert("notifications".into(), json!(outcomes));
            }
            v
        })
        .collect();
    success(json!({ "alerts": alerts }))
}

async fn rules(State(s): State<Arc<Shared>>) -> Response {
    success(json!({ "groups": [{ "name": "vigil", "rules": s.rule_statuses() }] }))
}

async fn targets(State(s): State<Arc<Shared>>) -> Response {
    success(json!({ "activeTargets": s.target_statuses() }))
}

async fn plugins(State(s): State<Arc<Shared>>) -> Response {
    success(json!({ "plugins": s.plugin_statuses() }))
}

async fn status_page(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(page::render(&s))
}

#[allow(clippy::result_large_err)]
fn notifier_or_unavailable(s: &Shared) -> Result<crate::notify::Notifier, Response> {
    s.notifier().ok_or_else(|| {
        failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "notifications are not running",
        )
    })
}

fn silence_error(e: crate::notify::silence::SilenceError) -> Response {
    use crate::notify::silence::SilenceError;
    let status = match e {
        SilenceError::NotFound(_) => StatusCode::NOT_FOUND,
        SilenceError::AlreadyExpired(_) | SilenceError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    failure(status, "bad_data", &e.to_string())
}

async fn list_silences(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    // `?filter=name="value"`, repeatable, as Alertmanager's API.
    let mut filter = Vec::new();
    for (_, f) in q.iter().filter(|(k, _)| k == "filter") {
        match crate::config::Matcher::parse(f) {
            Ok(m) => filter.push(m),
            Err(e) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "bad_data",
                    &format!("filter {f:?}: {e}"),
                );
            }
        }
    }
    match notifier_or_unavailable(&s) {
        Ok(n) => Json(n.silences(&filter)).into_response(),
        Err(r) => r,
    }
}

async fn get_silence(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    match notifier_or_unavailable(&s).map(|n| n.silence(&id)) {
        Ok(Some(sil)) => Json(sil).into_response(),
        Ok(None) => failure(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no silence {id:?}"),
        ),
        Err(r) => r,
    }
}

/// Creates a silence, or updates the one named by the body's `id`.
async fn put_silence(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Json<crate::notify::silence::ApiSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    let Json(api) = match body {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, "bad_data", &e.body_text()),
    };
    let n = match notifier_or_unavailable(&s) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match n.put_silence(&api) {
        Ok(id) => Json(json!({ "silenceID": id })).into_response(),
        Err(e) => silence_error(e),
    }
}

async fn expire_silence(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    let n = match notifier_or_unavailable(&s) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match n.expire_silence(&id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => silence_error(e),
    }
}
