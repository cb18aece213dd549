//! The HTTP API, `/metrics` and the status page.
//!
//! `app()` returns a plain `Router` over the shared engine status, so tests
//! drive it without a socket and the binary serves it on `listen`.
//! Responses follow Prometheus' API envelope (`{"status":"success","data":..}`)
//! so existing tooling reads them.

mod page;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
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
    let Some(alert) = s
        .rule_statuses()
        .into_iter()
        .flat_map(|r| r.alerts)
        .find(|a| a.fingerprint == fingerprint && a.state == "firing")
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

async fn alerts(State(s): State<Arc<Shared>>) -> Response {
    let alerts: Vec<_> = s
        .rule_statuses()
        .into_iter()
        .flat_map(|r| r.alerts)
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
