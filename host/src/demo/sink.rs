//! A webhook sink for the demo: receives Alertmanager webhook payloads on
//! loopback and prints one line per alert, as a team's endpoint would.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = Router::new().route("/hook", post(receive));
    axum::serve(listener, app).await
}

async fn receive(body: Bytes) -> StatusCode {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        tracing::warn!(target: "vigil::demo::sink", "webhook sink got a body that is not JSON");
        return StatusCode::BAD_REQUEST;
    };
    let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
    for a in alerts {
        let status = a["status"].as_str().unwrap_or("?").to_uppercase();
        let name = a["labels"]["alertname"].as_str().unwrap_or("?");
        let summary = a["annotations"]["summary"].as_str().unwrap_or("");
        tracing::info!(target: "vigil::demo::sink", "webhook sink received [{status}] {name}: {summary}");
    }
    StatusCode::OK
}
