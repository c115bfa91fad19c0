//! The app role's client for the db role: one shared HTTP client (connection pool, timeouts),
//! round-robin over the db URLs, a client span per call with `traceparent` injected, and the
//! client-side duration histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use opentelemetry::trace::TraceContextExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use url::Url;

use super::error::{ApiError, ErrorBody};
use super::links::{Link, NewLink};
use crate::telemetry::http::method_label;
use crate::telemetry::http::span_name;
use crate::telemetry::metrics::{ClientLabels, ClientStatus, HttpMetrics, SharedLabel};
use crate::telemetry::traces;

pub struct DbClient {
    http: reqwest::Client,
    peers: Vec<Peer>,
    next: AtomicUsize,
    metrics: HttpMetrics,
}

/// One db, with what its calls are labelled by, worked out once.
struct Peer {
    base: Url,
    /// `host:port`, the `server_address` label.
    address: SharedLabel,
    port: u16,
}

impl Peer {
    fn new(base: Url) -> Self {
        let port = base.port_or_known_default().unwrap_or(80);
        let address = format!("{}:{port}", base.host_str().unwrap_or(""));
        Self {
            base,
            address: SharedLabel(address.into()),
            port,
        }
    }
}

/// One call: the route template labels metrics and names the span; the path is what is sent.
struct Call<'a> {
    method: http::Method,
    route: &'static str,
    path: &'a str,
    body: Option<Vec<u8>>,
}

impl DbClient {
    pub fn new(urls: Vec<Url>, timeout: Duration, metrics: HttpMetrics) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a plain-HTTP reqwest client always builds");
        Arc::new(Self {
            http,
            peers: urls.into_iter().map(Peer::new).collect(),
            next: AtomicUsize::new(0),
            metrics,
        })
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<Link>, ApiError> {
        let path = format!("/links?limit={limit}");
        self.send(Call {
            method: http::Method::GET,
            route: "/links",
            path: &path,
            body: None,
        })
        .await
    }

    pub async fn add(&self, link: &NewLink) -> Result<Link, ApiError> {
        let body = serde_json::to_vec(link).expect("a NewLink always serializes");
        self.send(Call {
            method: http::Method::POST,
            route: "/links",
            path: "/links",
            body: Some(body),
        })
        .await
    }

    pub async fn vote(&self, id: u64) -> Result<Link, ApiError> {
        let path = format!("/links/{id}/vote");
        self.send(Call {
            method: http::Method::POST,
            route: "/links/{id}/vote",
            path: &path,
            body: None,
        })
        .await
    }

    /// True when any db answers its health check (the app's readiness).
    pub async fn any_ready(&self) -> bool {
        for peer in &self.peers {
            let Ok(url) = peer.base.join("/healthz") else {
                continue;
            };
            let probe = self.http.get(url).timeout(Duration::from_secs(1)).send();
            if probe.await.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
        }
        false
    }

    fn pick(&self) -> &Peer {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.peers.len();
        &self.peers[i]
    }

    async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, ApiError> {
        let peer = self.pick();
        let url = peer
            .base
            .join(call.path)
            .map_err(|e| internal(format!("bad db path {}: {e}", call.path)))?;
        // A child of the current span (the request's server span, or an internal span in it).
        let span = tracing::info_span!(
            "db call",
            otel.name = span_name(call.method.as_str(), call.route).as_str(),
            otel.kind = "client",
            otel.status_description = Empty,
            http.request.method = call.method.as_str(),
            http.route = call.route,
            http.response.status_code = Empty,
            url.full = url.as_str(),
            server.address = peer.base.host_str().unwrap_or(""),
            server.port = i64::from(peer.port),
            error.type = Empty,
        );
        let cx = span.context();

        let mut headers = http::HeaderMap::new();
        traces::inject(&cx, &mut headers);
        let mut request = self.http.request(call.method.clone(), url).headers(headers);
        if let Some(body) = call.body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }

        let started = Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();

        let status_label = match &outcome {
            Ok((status, _)) => {
                span.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() {
                    span.record("error.type", status.as_str());
                    span.record("otel.status_description", "db answered with a server error");
                }
                ClientStatus::Code(status.as_u16())
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                };
                span.record("error.type", kind);
                span.record("otel.status_description", e.to_string());
                ClientStatus::Error
            }
        };
        self.metrics.observe_client(
            &ClientLabels {
                method: method_label(&call.method),
                server_address: peer.address.clone(),
                route: call.route,
                status_code: status_label,
            },
            elapsed,
            cx.span().span_context(),
        );
        drop(span);
        decode(call.route, outcome)
    }
}

fn internal(detail: String) -> ApiError {
    ApiError::internal(StatusCode::BAD_GATEWAY, "the db failed", detail)
}

/// Maps the db's answer to ours: a 4xx from the db is the caller's mistake and passes through
/// with the db's message; a 5xx, a timeout or a refused connection is a bad gateway.
fn decode<T: DeserializeOwned>(
    route: &str,
    outcome: Result<(StatusCode, bytes::Bytes), reqwest::Error>,
) -> Result<T, ApiError> {
    let (status, body) = match outcome {
        Ok(ok) => ok,
        Err(e) if e.is_timeout() => {
            return Err(ApiError::internal(
                StatusCode::GATEWAY_TIMEOUT,
                "the db did not answer in time",
                format!("db {route}: {e}"),
            ));
        }
        Err(e) => return Err(internal(format!("db {route}: {e}"))),
    };
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| internal(format!("db {route}: unreadable answer: {e}")));
    }
    if status.is_client_error() {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (
                "db_error".to_owned(),
                String::from_utf8_lossy(&body).into_owned(),
            ),
        };
        return Err(ApiError::new(status, client_code(&code), message));
    }
    Err(internal(format!("db {route}: answered {status}")))
}

/// Keeps the error codes we know; anything else from the db becomes a generic code.
fn client_code(code: &str) -> &'static str {
    match code {
        "not_found" => "not_found",
        "invalid_field" => "invalid_field",
        "invalid_request" => "invalid_request",
        "invalid_json" => "invalid_json",
        _ => "db_rejected",
    }
}
