//! Prometheus metrics with `trace_id` exemplars (prometheus-client).
//!
//! The registry is encoded as OpenMetrics, the only format that carries exemplars, when the
//! scraper asks for it (Prometheus does with exemplar storage on); otherwise as the classic
//! text format 0.0.4 (exemplars, `# UNIT` and `# EOF` removed; counter families named with
//! `_total` as that format expects), which is what `promtool check metrics` and older
//! scrapers read.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use axum::extract::MatchedPath;
use opentelemetry::trace::SpanContext;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// OpenTelemetry's recommended bucket boundaries for HTTP durations, in seconds.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exemplar attached to a histogram bucket: the trace that landed there.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

/// Labels of one server observation, built per request without copying a string: the method
/// is one of a fixed set, the route shares the router's own copy of its template.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub method: &'static str,
    /// The route template (`/api/links/{id}/vote`), never the raw path: bounded cardinality.
    pub route: RouteLabel,
    pub status_code: u16,
}

/// A route template as a label value.
#[derive(Clone, Debug)]
pub enum RouteLabel {
    /// The template axum matched (an `Arc<str>` inside: cloning it copies no bytes).
    Matched(MatchedPath),
    /// A fixed label, e.g. for requests that matched no route.
    Static(&'static str),
}

impl RouteLabel {
    pub fn as_str(&self) -> &str {
        match self {
            RouteLabel::Matched(path) => path.as_str(),
            RouteLabel::Static(label) => label,
        }
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl std::hash::Hash for RouteLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        self.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub method: &'static str,
    /// The peer's `host:port`, made once per peer.
    pub server_address: SharedLabel,
    /// The called route template on the peer.
    pub route: &'static str,
    pub status_code: ClientStatus,
}

/// A label value made once and shared: cloning it copies no bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct SharedLabel(pub Arc<str>);

impl EncodeLabelValue for SharedLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        (&*self.0).encode(encoder)
    }
}

/// The HTTP status of a client call, or `error` when no response arrived (timeout, refused
/// connection).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ClientStatus {
    Code(u16),
    Error,
}

impl EncodeLabelValue for ClientStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            ClientStatus::Code(code) => code.encode(encoder),
            ClientStatus::Error => "error".encode(encoder),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are written as the variant names
pub enum FaultKind {
    error,
    latency,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    kind: FaultKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    role: String,
}

type DurationFamily<L> = Family<L, HistogramWithExemplars<TraceExemplar>>;

/// The metric handles a service records into; cheap to clone (all `Arc`s inside).
#[derive(Clone)]
pub struct HttpMetrics {
    server_duration: DurationFamily<ServerLabels>,
    client_duration: DurationFamily<ClientLabels>,
    in_flight: Gauge,
    faults: Family<FaultLabels, Counter<u64, AtomicU64>>,
}

/// The registry plus the handles; `encode` serves `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub http: HttpMetrics,
}

fn duration_family<L: Clone + std::hash::Hash + Eq>() -> DurationFamily<L> {
    Family::new_with_constructor(|| HistogramWithExemplars::new(DURATION_BUCKETS.into_iter()))
}

impl Metrics {
    /// Registers every metric; `role` ends up in the build-info gauge.
    pub fn new(role: &str) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics {
            server_duration: duration_family(),
            client_duration: duration_family(),
            in_flight: Gauge::default(),
            faults: Family::default(),
        };
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP requests served, by method, route template and status code",
            Unit::Seconds,
            http.server_duration.clone(),
        );
        registry.register_with_unit(
            "http_client_request_duration",
            "Duration of HTTP requests sent to other services, by peer, route and status code",
            Unit::Seconds,
            http.client_duration.clone(),
        );
        registry.register(
            "http_server_active_requests",
            "HTTP requests being served right now",
            http.in_flight.clone(),
        );
        registry.register(
            "demo_app_injected_faults",
            "Faults injected on purpose (failure and latency injection), by kind",
            http.faults.clone(),
        );
        let log_lines_dropped: Counter<u64, AtomicU64> = super::logs::dropped_lines_counter();
        registry.register(
            "demo_app_log_lines_dropped",
            "Log lines dropped because stdout could not keep up (requests never wait for the log)",
            log_lines_dropped,
        );
        let spans_ended: Counter<u64, AtomicU64> = super::traces::span_counters().ended.clone();
        registry.register(
            "demo_app_spans_ended",
            "Spans this process ended and handed to the batch processor",
            spans_ended,
        );
        let spans_exported: Counter<u64, AtomicU64> =
            super::traces::span_counters().exported.clone();
        registry.register(
            "demo_app_spans_exported",
            "Spans the collector accepted (ended - exported - export_failed = dropped or queued)",
            spans_exported,
        );
        let spans_export_failed: Counter<u64, AtomicU64> =
            super::traces::span_counters().failed.clone();
        registry.register(
            "demo_app_spans_export_failed",
            "Spans in batches the exporter could not send",
            spans_export_failed,
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                role: role.to_owned(),
            })
            .set(1);
        registry.register(
            "demo_app_build_info",
            "Always 1; labels say which build and role this process runs",
            build_info,
        );
        Self {
            registry: Arc::new(registry),
            http,
        }
    }

    /// Encodes the registry; `openmetrics` selects the format that carries exemplars.
    pub fn encode(&self, openmetrics: bool) -> String {
        encode(&self.registry, openmetrics)
    }

    /// The registry, to serve it with [`router`].
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}

/// Encodes any registry; `openmetrics` selects the format that carries exemplars.
pub fn encode(registry: &Registry, openmetrics: bool) -> String {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("formatting into a String cannot fail");
    if openmetrics {
        text
    } else {
        to_prometheus_text(&text)
    }
}

/// `GET /metrics` for a registry, in the format the scraper's `Accept` header asks for.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(serve).with_state(registry))
}

async fn serve(
    axum::extract::State(registry): axum::extract::State<Arc<Registry>>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let openmetrics = wants_openmetrics(accept);
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        PROMETHEUS_TEXT_CONTENT_TYPE
    };
    let body = encode(&registry, openmetrics);
    ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The exemplar for a span, only when it is sampled: an exemplar must point to a trace that
/// exists in the backend.
pub(crate) fn exemplar(span: &SpanContext) -> Option<TraceExemplar> {
    (span.is_valid() && span.is_sampled()).then(|| {
        let mut trace_id = String::with_capacity(32);
        super::logs::push_hex(&mut trace_id, &span.trace_id().to_bytes());
        TraceExemplar { trace_id }
    })
}

impl HttpMetrics {
    pub fn observe_server(&self, labels: &ServerLabels, elapsed: Duration, span: &SpanContext) {
        let exemplar = exemplar(span);
        let at = exemplar.as_ref().map(|_| SystemTime::now());
        self.server_duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64(), exemplar, at);
    }

    pub fn observe_client(&self, labels: &ClientLabels, elapsed: Duration, span: &SpanContext) {
        let exemplar = exemplar(span);
        let at = exemplar.as_ref().map(|_| SystemTime::now());
        self.client_duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64(), exemplar, at);
    }

    /// Counts a request as in flight until the guard is dropped (also on cancellation).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn count_fault(&self, kind: FaultKind) {
        self.faults.get_or_create(&FaultLabels { kind }).inc();
    }
}

/// Decrements the in-flight gauge on drop.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// True when the `Accept` header asks for OpenMetrics (as Prometheus does).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Converts prometheus-client's OpenMetrics output to the text format 0.0.4.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or(line.strip_prefix("# TYPE "))
        {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if counters.contains(&name) {
                "_total"
            } else {
                ""
            };
            out.push_str(&line[..7]);
            out.push_str(name);
            out.push_str(suffix);
            out.push(' ');
            out.push_str(tail);
        } else if line.starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(strip_exemplar(line));
        }
        out.push('\n');
    }
    out
}

/// A sample line without its exemplar (` # {labels} value [timestamp]`). The exemplar starts
/// after the sample's own label set and value, so look for it only after the last `}` of the
/// sample's labels; label values we emit never contain ` # {`.
fn strip_exemplar(line: &str) -> &str {
    let labels_end = if line.contains('{') {
        line.find("} ").map_or(0, |i| i + 1)
    } else {
        0
    };
    match line[labels_end..].find(" # {") {
        Some(i) => &line[..labels_end + i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn sampled_span() -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    }

    fn labels(route: &'static str) -> ServerLabels {
        ServerLabels {
            method: "GET",
            route: RouteLabel::Static(route),
            status_code: 200,
        }
    }

    #[test]
    fn openmetrics_carries_exemplars_and_classic_text_does_not() {
        let m = Metrics::new("db");
        m.http
            .observe_server(&labels("/links"), Duration::from_millis(3), &sampled_span());
        m.http.count_fault(FaultKind::error);
        let om = m.encode(true);
        assert!(om.contains(
            "http_server_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/links\",status_code=\"200\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.003"
        ), "{om}");
        assert!(om.ends_with("# EOF\n"));
        let text = m.encode(false);
        assert!(!text.contains("trace_id"), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE demo_app_injected_faults_total counter"),
            "{text}"
        );
        assert!(
            text.contains("demo_app_injected_faults_total{kind=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("demo_app_build_info{version=\"0.1.0\",role=\"db\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn unsampled_spans_leave_no_exemplar() {
        let m = Metrics::new("app");
        let unsampled = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        m.http
            .observe_server(&labels("/"), Duration::from_millis(1), &unsampled);
        assert!(!m.encode(true).contains("trace_id"));
    }

    #[test]
    fn in_flight_guard_decrements_on_drop() {
        let m = Metrics::new("app");
        let guard = m.http.in_flight();
        assert!(m.encode(false).contains("http_server_active_requests 1"));
        drop(guard);
        assert!(m.encode(false).contains("http_server_active_requests 0"));
    }

    #[test]
    fn strips_only_the_exemplar() {
        assert_eq!(
            strip_exemplar("a_bucket{le=\"1\"} 3 # {trace_id=\"x\"} 0.5 1.0"),
            "a_bucket{le=\"1\"} 3"
        );
        assert_eq!(strip_exemplar("a_count 3"), "a_count 3");
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
