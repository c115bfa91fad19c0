//! Per-request telemetry for axum servers: one middleware gives each request a server span
//! (child of an incoming `traceparent`), the RED histogram observation with the span's trace id
//! as exemplar, the in-flight gauge, and one log line. Handlers run inside the span's context,
//! so their own log lines and outgoing calls carry the same trace.
//!
//! Internal errors are logged here, once: handlers put the detail in the response extensions
//! as [`ErrorDetail`] instead of logging it themselves.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use futures::future::BoxFuture;
use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics::{HttpMetrics, RouteLabel, ServerLabels};
use super::traces;
use crate::middleware::take_ready;

/// Route label for requests that matched no route (404s): keeps the label bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The method label for a method outside the standard set (HTTP semantic conventions): a client
/// inventing methods must not create label values or span names.
pub const OTHER_METHOD: &str = "_OTHER";

/// What a handler wants logged about a failed request (the response body stays generic).
#[derive(Clone, Debug)]
pub struct ErrorDetail(pub String);

/// Shared state of the middleware.
pub struct HttpTelemetry {
    pub metrics: HttpMetrics,
    /// One log line per request when true; failures (5xx) are logged regardless.
    pub request_log: bool,
}

impl HttpTelemetry {
    /// Spans go to whatever subscriber [`super::Telemetry::init`] installed (in tests without
    /// it, spans are no-ops and requests carry no trace ids).
    pub fn new(metrics: HttpMetrics, request_log: bool) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            request_log,
        })
    }
}

/// The method as a bounded label: the nine standard methods as sent, anything else `_OTHER`.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => OTHER_METHOD,
    }
}

/// The method as received, for `http.request.method_original`, cut to a bounded length (a
/// method is a token of any length to HTTP/1.1; only `_OTHER` requests carry it).
const MAX_ORIGINAL_METHOD_BYTES: usize = 32;

/// The middleware, as a tower layer: `router.layer(TrackLayer(telemetry))`. (Not
/// `middleware::from_fn`, which boxes the rest of the stack again for every request.)
#[derive(Clone)]
pub struct TrackLayer(pub Arc<HttpTelemetry>);

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            telemetry: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    telemetry: Arc<HttpTelemetry>,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        Box::pin(track(self.telemetry.clone(), req, inner))
    }
}

/// One request: its span, the call, then the histogram observation and the log line.
async fn track<S>(t: Arc<HttpTelemetry>, req: Request, mut inner: S) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .cloned()
        .map_or(RouteLabel::Static(UNMATCHED_ROUTE), RouteLabel::Matched);
    let method = method_label(req.method());
    // `Uri` shares its bytes: cloning it copies no string.
    let uri = req.uri().clone();
    let span = server_span(&req, method, route.as_str());
    let in_flight = t.metrics.in_flight();
    let recorder = span.clone();
    let served = async move {
        let response = inner.call(req).await?;
        drop(in_flight);
        let labels = ServerLabels {
            method,
            route,
            status_code: response.status().as_u16(),
        };
        // Still in the poll that got the response, so inside the span: the exemplar and the
        // log line take its ids from the current context without entering it again.
        finish(
            &t,
            &recorder,
            &labels,
            uri.path(),
            started.elapsed(),
            &response,
        );
        Ok(response)
    };
    InSpan {
        inner: served,
        span,
    }
    .await
}

/// Records the outcome on the span, observes the histogram and writes the log line. Called
/// inside the request's span.
fn finish(
    t: &HttpTelemetry,
    span: &tracing::Span,
    labels: &ServerLabels,
    path: &str,
    elapsed: Duration,
    response: &Response,
) {
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("error.type", status.as_str());
        // A description alone sets error status (tracing-opentelemetry's `on_record`).
        span.record(
            "otel.status_description",
            status.canonical_reason().unwrap_or(""),
        );
    }
    let span_context = opentelemetry::Context::map_current(|cx| cx.span().span_context().clone());
    t.metrics.observe_server(labels, elapsed, &span_context);
    if wants_log_line(t, response) {
        log_request(labels, path, elapsed, response);
    }
}

pin_project_lite::pin_project! {
    /// Polls `inner` inside `span`, as `tracing::Instrumented` does, but drops it without
    /// entering the span again: with the OpenTelemetry layer every enter attaches a context
    /// and reads the clock, and the request's future is finished by the time it is dropped.
    /// `inner` is declared first so it drops first, before the span it may hold a clone of.
    struct InSpan<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.inner.poll(cx)
    }
}

/// The server span of one request, child of the caller's `traceparent` when there is one.
/// Every field known from the request is set here, at creation (an `Option` that is `None`
/// is left out): each later `record` is another trip through the subscriber. The status is
/// recorded once known; the span ends when the last clone drops.
fn server_span(req: &Request, method: &'static str, route: &str) -> tracing::Span {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    // Field values are only evaluated when the span is enabled.
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = span_name(method, route).as_str(),
        otel.kind = "server",
        otel.status_description = Empty,
        http.request.method = method,
        http.request.method_original = (method == OTHER_METHOD)
            .then(|| truncate(req.method().as_str(), MAX_ORIGINAL_METHOD_BYTES)),
        http.route = route,
        http.response.status_code = Empty,
        url.path = req.uri().path(),
        url.query = req.uri().query(),
        url.scheme = "http",
        network.protocol.version = protocol_version(req.version()),
        user_agent.original = header(http::header::USER_AGENT),
        server.address = header(http::header::HOST)
            .map(|host| host.rsplit_once(':').map_or(host, |(name, _)| name)),
        error.type = Empty,
    );
    if !span.is_disabled() && req.headers().contains_key("traceparent") {
        // Fails only when no OpenTelemetry layer is installed (tests): the span stays a root.
        let _ = span.set_parent(traces::extract(req.headers()));
    }
    span
}

/// An HTTP span's name: `{method} {route}`, or `HTTP {route}` for an `_OTHER` method (HTTP
/// semantic conventions). Joined by hand: as a `Display` field the bridge would format it
/// through `fmt::Debug`, which costs about a microsecond per span.
pub fn span_name(method: &str, route: &str) -> String {
    let method = if method == OTHER_METHOD {
        "HTTP"
    } else {
        method
    };
    let mut name = String::with_capacity(method.len() + 1 + route.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(route);
    name
}

fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_10 => "1.0",
        _ => "1.1",
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Every request when the request log is on; failures and requests with an error detail
/// always.
fn wants_log_line(t: &HttpTelemetry, response: &Response) -> bool {
    t.request_log
        || response.status().is_server_error()
        || response.extensions().get::<ErrorDetail>().is_some()
}

fn log_request(labels: &ServerLabels, path: &str, elapsed: Duration, response: &Response) {
    let detail = response.extensions().get::<ErrorDetail>();
    // Whole microseconds, so the number prints short (1.312, not 1.3128199999999999).
    let duration_ms = elapsed.as_micros() as f64 / 1e3;
    if response.status().is_server_error() {
        tracing::error!(
            target: "http",
            method = labels.method,
            route = labels.route.as_str(),
            path,
            status = labels.status_code,
            duration_ms,
            error = detail.map_or("", |d| d.0.as_str()),
            "request failed"
        );
    } else {
        tracing::info!(
            target: "http",
            method = labels.method,
            route = labels.route.as_str(),
            path,
            status = labels.status_code,
            duration_ms,
            "request served"
        );
    }
}
