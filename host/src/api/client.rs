//! A client of a running Vigil's API, for `vigil silence` and `vigil ack`.

use std::time::Duration;

use crate::notify::silence::{ApiMatcher, ApiSilence, format_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Where the API is and how to authenticate.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let message = body["error"].as_str().map(str::to_string).unwrap_or(text);
            return Err(ClientError::Refused {
                url: url.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    /// Creates a silence; returns its id.
    pub async fn add_silence(
        &self,
        matchers: &[String],
        starts_at_ms: i64,
        ends_at_ms: i64,
        created_by: &str,
        comment: &str,
    ) -> Result<String, ClientError> {
        let mut api_matchers = Vec::new();
        for m in matchers {
            let parsed = crate::config::Matcher::parse(m)
                .map_err(|e| ClientError::Invalid(format!("matcher {m:?}: {e}")))?;
            api_matchers.push(ApiMatcher::from(&parsed));
        }
        let body = ApiSilence {
            id: None,
            matchers: api_matchers,
            starts_at: format_rfc3339(starts_at_ms),
            ends_at: format_rfc3339(ends_at_ms),
            created_by: created_by.to_string(),
            comment: comment.to_string(),
            updated_at: None,
            status: None,
        };
        let url = format!("{}/api/v1/silences", self.base);
        let v = self.send(self.http.post(&url).json(&body), &url).await?;
        v["silenceID"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Invalid(format!("{url}: no silenceID in the answer")))
    }

    pub async fn list_silences(&self, filter: &[String]) -> Result<Vec<ApiSilence>, ClientError> {
        let url = format!("{}/api/v1/silences", self.base);
        let query: Vec<(&str, &str)> = filter.iter().map(|f| ("filter", f.as_str())).collect();
        let v = self.send(self.http.get(&url).query(&query), &url).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Invalid(format!("{url}: {e}")))
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/silences/{id}", self.base);
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    pub async fn ack(
        &self,
        fingerprint: &str,
        created_by: &str,
        comment: &str,
    ) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/alerts/{fingerprint}/ack", self.base);
        let body = serde_json::json!({ "createdBy": created_by, "comment": comment });
        self.send(self.http.post(&url).json(&body), &url)
            .await
            .map(|_| ())
    }
}

/// One line per silence, for a terminal.
pub fn silence_table(silences: &[ApiSilence]) -> String {
    let mut out = format!(
        "{:<36}  {:<8}  {:<24}  {:<16}  {}\n",
        "ID", "STATE", "ENDS", "CREATED BY", "MATCHERS / COMMENT"
    );
    for s in silences {
        let matchers: Vec<String> = s
            .matchers
            .iter()
            .map(|m| match m.to_matcher() {
                Ok(m) => m.to_string(),
                Err(_) => format!("{}?{}", m.name, m.value),
            })
            .collect();
        let state = s
            .status
            .map(|st| format!("{:?}", st.state).to_lowercase())
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<36}  {:<8}  {:<24}  {:<16}  {} {}\n",
            s.id.as_deref().unwrap_or(""),
            state,
            s.ends_at,
            s.created_by,
            matchers.join(","),
            if s.comment.is_empty() {
                String::new()
            } else {
                format!("# {}", s.comment)
            }
        ));
    }
    out
}
