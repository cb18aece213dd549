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
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::engine::Shared;

pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/plugins", get(plugins))
        .with_state(shared)
}

fn success(data: serde_json::Value) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
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
