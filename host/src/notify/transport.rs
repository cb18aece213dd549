//! How deliveries leave the process.
//!
//! A small trait so delivery policy (allow-lists, retries, deadlines) is
//! tested with a fake, while one test per transport talks to a real server.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::sandbox::HttpRequest;

/// Why one delivery attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: network trouble, 5xx, 429, timeouts.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: 4xx, a forbidden host, a malformed request.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent(_))
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends HTTP deliveries. On success, returns the response's status and
/// the start of its body, which is recorded with the alerts (a remediation
/// endpoint's answer, say).
pub trait HttpTransport: Send + Sync {
    fn send<'a>(
        &'a self,
        req: &'a HttpRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, DeliveryError>>;
}

/// The real HTTP transport.
pub struct Reqwest {
    client: reqwest::Client,
}

/// How much of a response body is kept (in errors and outcomes).
const MAX_BODY_IN_ERROR: usize = 512;

impl Reqwest {
    pub fn new() -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            // A receiver must not bounce us to a host it was not allowed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DeliveryError::Permanent(format!("building HTTP client: {e}")))?;
        Ok(Reqwest { client })
    }
}

impl HttpTransport for Reqwest {
    fn send<'a>(
        &'a self,
        req: &'a HttpRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
                DeliveryError::Permanent(format!("invalid HTTP method {:?}", req.method))
            })?;
            let mut builder = self.client.request(method, &req.url).timeout(timeout);
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            let resp = builder
                .body(req.body.clone())
                .send()
                .await
                .map_err(|e| DeliveryError::Transient(format!("{}: {e}", req.url)))?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let snippet: String = body.chars().take(MAX_BODY_IN_ERROR).collect();
            if status.is_success() {
                return Ok(format!("{status} {}", snippet.trim()).trim().to_string());
            }
            let msg = format!("{} answered {status}: {snippet}", req.url);
            if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(DeliveryError::Transient(msg))
            } else {
                Err(DeliveryError::Permanent(msg))
            }
        })
    }
}

/// Checks a URL against a receiver's `allow_hosts` (`host` or `host:port`).
pub fn check_allowed(url: &str, allow_hosts: &[String]) -> Result<(), DeliveryError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| DeliveryError::Permanent(format!("invalid URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DeliveryError::Permanent(format!(
            "URL {url:?} is not http or https"
        )));
    }
    let host = parsed.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port_or_known_default().unwrap_or(0);
    let allowed = allow_hosts.iter().any(|entry| {
        let entry = entry.trim();
        match split_host_port(entry) {
            (h, Some(p)) => h.eq_ignore_ascii_case(host) && p == port,
            (h, None) => h.eq_ignore_ascii_case(host),
        }
    });
    if allowed {
        Ok(())
    } else {
        Err(DeliveryError::Permanent(format!(
            "host {host}:{port} is not in this receiver's allow_hosts {allow_hosts:?}"
        )))
    }
}

fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        // [::1]:8080 or [::1]
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_hosts_match_host_and_port() {
        let allow = vec![
            "127.0.0.1:9000".to_string(),
            "hooks.example.com".to_string(),
        ];
        assert!(check_allowed("http://127.0.0.1:9000/x", &allow).is_ok());
        assert!(check_allowed("http://127.0.0.1:9001/x", &allow).is_err());
        assert!(check_allowed("https://HOOKS.example.com/a", &allow).is_ok());
        assert!(check_allowed("http://evil.example.com/", &allow).is_err());
        assert!(check_allowed("file:///etc/passwd", &allow).is_err());
        assert!(check_allowed("http://[::1]:80/", &["[::1]:80".into()]).is_ok());
    }
}
