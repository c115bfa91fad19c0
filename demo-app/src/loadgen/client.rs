//! Sends one planned request: round-robin over the targets through a pooled HTTP/1.1 client,
//! with a client span that starts a new trace (so loadgen -> app -> db is one trace) and its
//! `traceparent` injected, classified into an [`Outcome`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use url::Url;

use super::stats::Outcome;
use super::workload::PlannedRequest;
use crate::telemetry::http::span_name;
use crate::telemetry::traces;

pub struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    targets: Vec<Target>,
    next: AtomicUsize,
    timeout: Duration,
}

struct Target {
    /// The base URL without a trailing slash.
    base: String,
    host: String,
    port: u16,
}

/// What came back.
pub struct Reply {
    pub outcome: Outcome,
    /// The body of a 2xx answer (for ids to vote on).
    pub body: Option<Bytes>,
    pub span: SpanContext,
}

impl Sender {
    /// `max_idle` bounds the idle connections kept per target (the in-flight cap is a good
    /// value: every in-flight request may need its own connection).
    pub fn new(targets: &[Url], timeout: Duration, max_idle: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let targets = targets
            .iter()
            .map(|u| Target {
                base: u.as_str().trim_end_matches('/').to_owned(),
                host: u.host_str().unwrap_or("").to_owned(),
                port: u.port_or_known_default().unwrap_or(80),
            })
            .collect();
        Self {
            client,
            targets,
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    pub async fn send(&self, planned: &PlannedRequest) -> Reply {
        let target = &self.targets[self.next.fetch_add(1, Ordering::Relaxed) % self.targets.len()];
        let url = format!("{}{}", target.base, planned.path);
        // Every request starts its own trace (`parent: None`).
        let span = tracing::info_span!(
            parent: None,
            "loadgen request",
            otel.name = span_name(planned.method.as_str(), planned.route).as_str(),
            otel.kind = "client",
            otel.status_description = Empty,
            http.request.method = planned.method.as_str(),
            url.full = url.as_str(),
            server.address = target.host.as_str(),
            server.port = i64::from(target.port),
            loadgen.operation = planned.operation.as_str(),
            error.type = Empty,
        );
        let cx = span.context();

        let mut builder = http::Request::builder()
            .method(planned.method.clone())
            .uri(&url);
        if let Some(headers) = builder.headers_mut() {
            traces::inject(&cx, headers);
            if planned.body.is_some() {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
        }
        let body = Full::new(Bytes::from(planned.body.clone().unwrap_or_default()));
        let (outcome, body) = match builder.body(body) {
            Ok(request) => self.exchange(request).await,
            Err(_) => (Outcome::OtherError, None),
        };

        let error_type = match outcome {
            Outcome::Timeout => Some("timeout"),
            Outcome::ConnectError => Some("connect"),
            Outcome::OtherError => Some("other"),
            _ => None,
        };
        if let Some(kind) = error_type {
            span.record("error.type", kind);
        }
        // A 4xx is the request's fault, not a failed call (HTTP semantic conventions).
        if error_type.is_some() || outcome == Outcome::Status5xx {
            span.record("otel.status_description", outcome.as_str());
        }
        drop(span);
        Reply {
            outcome,
            body,
            span: cx.span().span_context().clone(),
        }
    }

    /// `GET {target}/healthz` on every target: the reason for the first one that fails.
    pub async fn preflight(&self) -> Result<(), (String, String)> {
        for target in &self.targets {
            let url = format!("{}/healthz", target.base);
            let request = http::Request::get(&url)
                .body(Full::new(Bytes::new()))
                .map_err(|e| (target.base.clone(), e.to_string()))?;
            match self.exchange(request).await {
                (Outcome::Status2xx, _) => {}
                (outcome, _) => return Err((target.base.clone(), describe(outcome))),
            }
        }
        Ok(())
    }

    async fn exchange(&self, request: http::Request<Full<Bytes>>) -> (Outcome, Option<Bytes>) {
        let call = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read the whole body, so the connection can be reused.
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            Ok::<_, hyper_util::client::legacy::Error>((status, body.ok()))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => (Outcome::Timeout, None),
            Ok(Err(e)) if e.is_connect() => (Outcome::ConnectError, None),
            Ok(Err(_)) => (Outcome::OtherError, None),
            Ok(Ok((status, body))) => {
                let outcome = Outcome::from_status(status.as_u16());
                let body = if status.is_success() { body } else { None };
                (outcome, body)
            }
        }
    }
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Outcome::ConnectError => "connection failed (nothing listening, or unreachable)".into(),
        Outcome::Timeout => "no answer before the timeout".into(),
        Outcome::OtherError => "the request failed".into(),
        status => format!("/healthz answered {}", status.as_str()),
    }
}
