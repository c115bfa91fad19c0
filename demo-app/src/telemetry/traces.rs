//! OpenTelemetry traces: the tracer provider (OTLP gRPC by default, HTTP/protobuf selectable),
//! the layer that turns our `tracing` spans into OpenTelemetry spans, and W3C `traceparent`
//! propagation in and out of HTTP requests.
//!
//! The standard variables work because the SDK and the OTLP exporter read them:
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`,
//! `_HEADERS`, `_TIMEOUT`, `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_BSP_*` (queue size, batch size,
//! delay). Only the protocol and `OTEL_SDK_DISABLED` are resolved here: the default protocol
//! differs (we default to gRPC), and a disabled SDK installs no span layer at all (see
//! [`super::Telemetry::init`]). `OTEL_TRACES_SAMPLER=always_off` is the way to keep trace ids in
//! logs without exporting.

use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use prometheus_client::metrics::counter::Counter;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use super::TelemetryError;

/// The OTLP transport for spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

impl FromStr for OtlpProtocol {
    type Err = TelemetryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(TelemetryError::Config(format!(
                "unsupported OTLP protocol {other:?}: use \"grpc\" or \"http/protobuf\""
            ))),
        }
    }
}

/// What the tracer provider is built from (flags already merged with the environment).
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// `OTEL_SDK_DISABLED=true`: no exporter, and no span layer (so no spans and no ids).
    pub disabled: bool,
    pub protocol: OtlpProtocol,
    /// Overrides `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` when set.
    pub endpoint: Option<String>,
    /// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub default_service_name: String,
}

impl TraceSettings {
    /// Resolves the protocol: the flag, then `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then gRPC.
    pub fn resolve_protocol(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<OtlpProtocol, TelemetryError> {
        let chosen = flag
            .map(str::to_owned)
            .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        chosen.map_or(Ok(OtlpProtocol::Grpc), |p| p.parse())
    }
}

/// Builds the provider and installs the W3C propagator globally. Must run inside a Tokio
/// runtime (the gRPC channel is created lazily on it). Never fails because a collector is
/// unreachable: export errors are retried and logged by the SDK, requests are not affected.
pub fn tracer_provider(settings: &TraceSettings) -> Result<SdkTracerProvider, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let builder = SdkTracerProvider::builder().with_resource(resource(settings));
    if settings.disabled {
        return Ok(builder.with_sampler(Sampler::AlwaysOff).build());
    }
    let exporter = match settings.protocol {
        OtlpProtocol::Grpc => {
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(http_traces_url(endpoint));
            }
            b.build()
        }
    }
    .map_err(|e| TelemetryError::Config(format!("OTLP span exporter: {e}")))?;
    let batch = BatchSpanProcessor::builder(Counted(exporter)).build();
    Ok(builder.with_span_processor(Counted(batch)).build())
}

/// How many spans this process ended, had exported and failed to export: the batch processor
/// drops spans silently when its queue is full, so `ended - exported - failed` is what it
/// dropped (plus at most `OTEL_BSP_MAX_QUEUE_SIZE` still queued). Registered in `/metrics` by
/// [`super::metrics::Metrics::new`].
pub struct SpanCounters {
    pub ended: Counter<u64, AtomicU64>,
    pub exported: Counter<u64, AtomicU64>,
    pub failed: Counter<u64, AtomicU64>,
}

/// Global because the tracer provider is: one per process, built by [`tracer_provider`].
static SPAN_COUNTERS: LazyLock<SpanCounters> = LazyLock::new(|| SpanCounters {
    ended: Counter::default(),
    exported: Counter::default(),
    failed: Counter::default(),
});

pub fn span_counters() -> &'static SpanCounters {
    &SPAN_COUNTERS
}

/// Wraps the batch processor (counting spans ended) or the exporter (counting spans sent or
/// failed); everything else is passed through.
#[derive(Debug)]
struct Counted<T>(T);

impl<P: SpanProcessor> SpanProcessor for Counted<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        SPAN_COUNTERS.ended.inc();
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.0.export(batch).await;
        match &result {
            Ok(()) => SPAN_COUNTERS.exported.inc_by(spans),
            Err(_) => SPAN_COUNTERS.failed.inc_by(spans),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// The `tracing` layer that makes OpenTelemetry spans of our own spans (targets `demo_app…`),
/// at any level, whatever `RUST_LOG` says. Dependencies' spans (hyper, h2, tonic) and all
/// events stay out: log lines go to the log, linked to spans by their ids, not copied into
/// span events.
///
/// Entering a span attaches its OpenTelemetry context (context activation, on by default),
/// which is how the log layer finds the ids. The attributes this crate adds by default are
/// turned off because nobody reads them and each costs time per span: source location (3
/// attributes), thread name and id, the target, and busy/idle timings (two clock reads and a
/// lock per enter and exit).
pub fn span_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let layer: OpenTelemetryLayer<S, Tracer> = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("demo-app"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false);
    layer.with_filter(filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with("demo_app")
    }))
}

/// The SDK appends `/v1/traces` only to the env endpoint; a flag endpoint is used as given,
/// so do the same for it.
fn http_traces_url(endpoint: &str) -> String {
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

fn resource(settings: &TraceSettings) -> Resource {
    let env_names_service = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if !env_names_service {
        builder = builder.with_service_name(settings.default_service_name.clone());
    }
    builder.build()
}

/// The remote parent carried by an incoming request's `traceparent`/`tracestate`, if any.
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes the context's span as `traceparent`/`tracestate` into outgoing request headers.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};

    #[test]
    fn protocol_flag_wins_then_signal_env_then_generic_env_then_grpc() {
        let env = |k: &str| match k {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" => Some("http/protobuf".to_owned()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
            _ => None,
        };
        assert_eq!(
            TraceSettings::resolve_protocol(Some("grpc"), env).unwrap(),
            OtlpProtocol::Grpc
        );
        assert_eq!(
            TraceSettings::resolve_protocol(None, env).unwrap(),
            OtlpProtocol::HttpProtobuf
        );
        let generic =
            |k: &str| (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/protobuf".into());
        assert_eq!(
            TraceSettings::resolve_protocol(None, generic).unwrap(),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            TraceSettings::resolve_protocol(None, |_| None).unwrap(),
            OtlpProtocol::Grpc
        );
        let err = TraceSettings::resolve_protocol(Some("http/json"), |_| None).unwrap_err();
        assert!(err.to_string().contains("http/protobuf"), "{err}");
    }

    #[test]
    fn traceparent_round_trips() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = extract(&incoming);
        let mut outgoing = http::HeaderMap::new();
        inject(&cx, &mut outgoing);
        assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
    }

    #[test]
    fn a_disabled_provider_samples_nothing() {
        let provider = tracer_provider(&TraceSettings {
            disabled: true,
            protocol: OtlpProtocol::Grpc,
            endpoint: None,
            default_service_name: "test".into(),
        })
        .unwrap();
        let span = provider.tracer("t").start("x");
        let cx = Context::new().with_span(span);
        assert!(cx.span().span_context().is_valid());
        assert!(!cx.span().span_context().is_sampled());
    }

    #[test]
    fn http_endpoint_gets_the_traces_path_once() {
        assert_eq!(http_traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            http_traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
