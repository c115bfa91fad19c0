//! Per-request telemetry for axum servers: one middleware gives each request a server span
//! (child of an incoming `traceparent`), the RED histogram observation with the span's trace id
//! as exemplar, the in-flight gauge, and one log line. Handlers run inside the span's context,
//! so their own log lines and outgoing calls carry the same trace.
//!
//! Internal errors are logged here, once: handlers put the detail in the response extensions
//! as [`ErrorDetail`] instead of logging it themselves.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::context::FutureExt;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::metrics::{HttpMetrics, ServerLabels};
use super::traces;

/// Route label for requests that matched no route (404s): keeps the label bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What a handler wants logged about a failed request (the response body stays generic).
#[derive(Clone, Debug)]
pub struct ErrorDetail(pub String);

/// Shared state of the middleware.
pub struct HttpTelemetry {
    pub metrics: HttpMetrics,
    pub tracer: BoxedTracer,
    /// One log line per request when true; failures (5xx) are logged regardless.
    pub request_log: bool,
}

impl HttpTelemetry {
    /// Uses the global tracer provider, so call after [`super::Telemetry::init`] (in tests
    /// without it, spans are no-ops and requests carry no trace ids).
    pub fn new(metrics: HttpMetrics, request_log: bool) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            tracer: opentelemetry::global::tracer("demo-app"),
            request_log,
        })
    }
}

/// The middleware; install with `axum::middleware::from_fn_with_state(telemetry, track)`.
pub async fn track(State(t): State<Arc<HttpTelemetry>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let parent = traces::extract(req.headers());
    let span = t
        .tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes(request_attributes(&req, &method, &route, &path))
        .start_with_context(&t.tracer, &parent);
    let cx = parent.with_span(span);
    let in_flight = t.metrics.in_flight();

    let response = next.run(req).with_context(cx.clone()).await;

    drop(in_flight);
    let elapsed = started.elapsed();
    let status = response.status();
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_u16().to_string()));
        span.set_status(Status::error(status.canonical_reason().unwrap_or("")));
    }
    let labels = ServerLabels {
        method,
        route,
        status_code: status.as_u16(),
    };
    t.metrics
        .observe_server(&labels, elapsed, span.span_context());
    log_request(&t, &cx, &labels, &path, elapsed, &response);
    span.end();
    response
}

fn request_attributes(req: &Request, method: &str, route: &str, path: &str) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.to_owned()),
        KeyValue::new("http.route", route.to_owned()),
        KeyValue::new("url.path", path.to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new(
            "network.protocol.version",
            match req.version() {
                http::Version::HTTP_2 => "2",
                http::Version::HTTP_10 => "1.0",
                _ => "1.1",
            },
        ),
    ];
    if let Some(query) = req.uri().query() {
        attributes.push(KeyValue::new("url.query", query.to_owned()));
    }
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(agent) = header(http::header::USER_AGENT) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    if let Some(host) = header(http::header::HOST) {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        attributes.push(KeyValue::new("server.address", name.to_owned()));
    }
    attributes
}

fn log_request(
    t: &HttpTelemetry,
    cx: &Context,
    labels: &ServerLabels,
    path: &str,
    elapsed: std::time::Duration,
    response: &Response,
) {
    let detail = response.extensions().get::<ErrorDetail>();
    if !t.request_log && detail.is_none() && !response.status().is_server_error() {
        return;
    }
    // The log layer reads the trace and span ids from the current context.
    let _attached = cx.clone().attach();
    // Whole microseconds, so the number prints short (1.312, not 1.3128199999999999).
    let duration_ms = elapsed.as_micros() as f64 / 1e3;
    if response.status().is_server_error() {
        tracing::error!(
            target: "http",
            method = %labels.method,
            route = %labels.route,
            path,
            status = labels.status_code,
            duration_ms,
            error = detail.map_or("", |d| d.0.as_str()),
            "request failed"
        );
    } else {
        tracing::info!(
            target: "http",
            method = %labels.method,
            route = %labels.route,
            path,
            status = labels.status_code,
            duration_ms,
            "request served"
        );
    }
}
