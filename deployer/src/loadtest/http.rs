//! The HTTP calls loadtest makes through its port-forwards: GET, with a timeout, a tenant header
//! where the backend is multi-tenant, and errors that say which URL and why.

use std::time::Duration;

/// Longest a single query may take (the forwards are local; the backends answer in seconds).
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("GET {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("GET {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: the answer is not JSON: {reason}")]
    NotJson { url: String, reason: String },
}

/// A client that sends `X-Scope-OrgID: tenant` when given one.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Http { client }
    }

    pub async fn get_text(
        &self,
        url: &str,
        query: &[(&str, String)],
        tenant: Option<&str>,
    ) -> Result<String, HttpError> {
        let mut request = self.client.get(url).query(query);
        if let Some(tenant) = tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        let unreachable = |e: reqwest::Error| HttpError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(HttpError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: body
                    .chars()
                    .take(300)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            });
        }
        Ok(body)
    }

    pub async fn get_json(
        &self,
        url: &str,
        query: &[(&str, String)],
        tenant: Option<&str>,
    ) -> Result<serde_json::Value, HttpError> {
        let body = self.get_text(url, query, tenant).await?;
        serde_json::from_str(&body).map_err(|e| HttpError::NotJson {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }
}
