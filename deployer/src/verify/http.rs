//! GET requests to one backend as one tenant, and what can go wrong with them, in words that
//! point at a cause.

use std::time::Duration;

use reqwest::StatusCode;

/// Mimir, Loki and Tempo read the tenant from this header.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Bodies of error answers are cut to this many characters in messages.
const BODY_EXCERPT: usize = 200;

/// Which backend a request went to; hints name the service behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Mimir,
    Loki,
    Tempo,
    App,
}

impl Backend {
    /// The Service `verify` forwards to, as the hints name it.
    pub fn service(self) -> &'static str {
        match self {
            Backend::Mimir => "mimir-query-frontend (namespace mimir)",
            Backend::Loki => "loki-read (namespace loki)",
            Backend::Tempo => "tempo-query-frontend (namespace tempo)",
            Backend::App => "app (namespace demo, remote cluster)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no answer from {url} within {}ms", .after.as_millis())]
    Timeout { url: String, after: Duration },
    #[error("{url} answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered 404: {body}")]
    NotFound { url: String, body: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer from {url}: {reason}")]
    Shape { url: String, reason: String },
}

impl QueryError {
    /// Errors that asking again will not fix: fail now rather than at the deadline.
    pub fn is_permanent(&self) -> bool {
        match self {
            QueryError::Unreachable { .. }
            | QueryError::Rejected { .. }
            | QueryError::NotFound { .. }
            | QueryError::Shape { .. } => true,
            QueryError::Status { status, .. } => (400..500).contains(status) && *status != 429,
            QueryError::Timeout { .. } => false,
        }
    }

    /// The likely cause, for a request to `backend` as `tenant`.
    pub fn hint(&self, backend: Backend, tenant: &str) -> String {
        let service = backend.service();
        match self {
            QueryError::Unreachable { .. } => format!(
                "connection refused: the port-forward to {service} is down or its pod is not \
                 ready; see `deployer status`"
            ),
            QueryError::Timeout { .. } => format!(
                "{service} did not answer in time: it may be overloaded or starting; look at its \
                 pods, or raise --deadline"
            ),
            QueryError::Rejected { .. } => format!(
                "tenant `{tenant}` rejected: {service} wants the {TENANT_HEADER} header of a \
                 tenant it accepts; check the tenant names in the manifests"
            ),
            QueryError::NotFound { .. } => format!(
                "wrong path: is the forward really to {service}? (Mimir serves the Prometheus API \
                 under /prometheus)"
            ),
            QueryError::Status { status, .. } if *status >= 500 => {
                format!("{service} failed; look at its pods' logs")
            }
            QueryError::Status { .. } => {
                format!("{service} refused the query; this is likely a bug in verify")
            }
            QueryError::Shape { .. } => format!(
                "the answer is not the documented API shape: is the forward really to {service}?"
            ),
        }
    }
}

/// One backend, one tenant.
#[derive(Debug, Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    base: String,
    tenant: Option<String>,
    /// Each request's limit (set on `http`), for the message when it passes.
    timeout: Duration,
}

/// The HTTP client all checks share: no proxy (the backends are local port-forwards), and a
/// timeout per request so a hung backend cannot eat the whole deadline.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .unwrap_or_default()
}

impl BackendClient {
    pub fn new(http: reqwest::Client, base: &str, tenant: Option<&str>, timeout: Duration) -> Self {
        BackendClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            tenant: tenant.map(str::to_string),
            timeout,
        }
    }

    /// The request as a person reads it (not URL-encoded), for the report's `query` field.
    pub fn describe(&self, path: &str, params: &[(&str, String)]) -> String {
        let mut text = format!("GET {path}");
        for (i, (key, value)) in params.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(&format!("{key}={value}"));
        }
        if let Some(tenant) = &self.tenant {
            text.push_str(&format!(" ({TENANT_HEADER}: {tenant})"));
        }
        text
    }

    /// The URL of `path` with `params`, as sent and as errors name it.
    pub fn url(&self, path: &str, params: &[(&str, String)]) -> String {
        let mut url = format!("{}{path}", self.base);
        if let Ok(parsed) = reqwest::Url::parse_with_params(&url, params) {
            url = parsed.to_string();
        }
        url
    }

    /// GETs `path` and returns the body of a 2xx answer.
    pub async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<String, QueryError> {
        self.get_with(path, params, None).await
    }

    /// GETs `path` with one more header (e.g. `traceparent`).
    pub async fn get_with(
        &self,
        path: &str,
        params: &[(&str, String)],
        header: Option<(&str, &str)>,
    ) -> Result<String, QueryError> {
        let url = self.url(path, params);
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(tenant) = &self.tenant {
            request = request.header(TENANT_HEADER, tenant);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let failed = |e: reqwest::Error| transport_error(&url, &e, self.timeout);
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let body = response.text().await.map_err(failed)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(status_error(url, status, &body))
        }
    }
}

fn transport_error(url: &str, error: &reqwest::Error, timeout: Duration) -> QueryError {
    if error.is_timeout() {
        QueryError::Timeout {
            url: url.to_string(),
            after: timeout,
        }
    } else {
        QueryError::Unreachable {
            url: url.to_string(),
            reason: root_cause(error),
        }
    }
}

/// reqwest's own message is "error sending request"; the cause (refused, reset) is at the bottom.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn status_error(url: String, status: StatusCode, body: &str) -> QueryError {
    let body = excerpt(body);
    match status.as_u16() {
        401 | 403 => QueryError::Rejected {
            url,
            status: status.as_u16(),
            body,
        },
        404 => QueryError::NotFound { url, body },
        code => QueryError::Status {
            url,
            status: code,
            body,
        },
    }
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(500);
        assert_eq!(excerpt(&body).len(), BODY_EXCERPT + 3);
        assert_eq!(excerpt(" no org id\n"), "no org id");
    }

    #[test]
    fn statuses_map_to_causes() {
        let url = || "http://x".to_string();
        assert!(matches!(
            status_error(url(), StatusCode::UNAUTHORIZED, "no org id"),
            QueryError::Rejected { status: 401, .. }
        ));
        assert!(matches!(
            status_error(url(), StatusCode::NOT_FOUND, ""),
            QueryError::NotFound { .. }
        ));
        let overloaded = status_error(url(), StatusCode::SERVICE_UNAVAILABLE, "");
        assert!(!overloaded.is_permanent());
        let bad_query = status_error(url(), StatusCode::BAD_REQUEST, "parse error");
        assert!(bad_query.is_permanent());
    }

    #[test]
    fn tenant_hint_names_the_tenant() {
        let error = status_error("http://x".into(), StatusCode::UNAUTHORIZED, "no org id");
        let hint = error.hint(Backend::Loki, "remote01");
        assert!(hint.contains("tenant `remote01` rejected"), "{hint}");
        assert!(hint.contains("loki-read"), "{hint}");
    }

    #[test]
    fn urls_carry_encoded_params() {
        let client = BackendClient::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9/",
            Some("remote01"),
            Duration::from_secs(1),
        );
        let params = [("query", "up{a=\"b\"}".to_string())];
        let url = client.url("/api/v1/query", &params);
        assert_eq!(
            url,
            "http://127.0.0.1:9/api/v1/query?query=up%7Ba%3D%22b%22%7D"
        );
        assert_eq!(
            client.describe("/api/v1/query", &params),
            "GET /api/v1/query?query=up{a=\"b\"} (X-Scope-OrgID: remote01)"
        );
    }
}
