//! The deployer's own logs and trace: log lines on stderr (as before), and, when an OTLP endpoint
//! is set in the environment, the deploy as a trace (one span per step and per external command)
//! exported through tracing-opentelemetry.
//!
//! The standard variables are read by the OpenTelemetry SDK and exporter themselves
//! (`OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`, `_HEADERS`, `_TIMEOUT`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_SERVICE_NAME`); the protocol is resolved here like the demo-app does it, because the
//! default is gRPC. Nothing is built without an endpoint, with `OTEL_SDK_DISABLED=true`, or for a
//! dry run (which runs nothing worth a trace).

use std::str::FromStr;
use std::time::Duration;

use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// How long the exit waits for the last spans to reach the collector.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("unsupported OTLP protocol {0:?} in {1}")]
    Protocol(String, &'static str),
    #[error("cannot set up the OTLP span exporter: {0}")]
    Exporter(String),
}

impl TelemetryError {
    pub fn help(&self) -> String {
        match self {
            TelemetryError::Protocol(..) => {
                "use grpc (the default) or http/protobuf, or unset the variable".to_string()
            }
            TelemetryError::Exporter(_) => {
                "check OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4317 for gRPC), or \
                 unset it to deploy without exporting the trace"
                    .to_string()
            }
        }
    }
}

/// The OTLP transport for spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

impl FromStr for OtlpProtocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            _ => Err(()),
        }
    }
}

/// Whether and how to export, from the environment (`env` looks a variable up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Off,
    Otlp(OtlpProtocol),
}

impl Export {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Export, TelemetryError> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        if endpoint.is_none() || disabled {
            return Ok(Export::Off);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = set(name) {
                let protocol = value
                    .parse()
                    .map_err(|()| TelemetryError::Protocol(value, name))?;
                return Ok(Export::Otlp(protocol));
            }
        }
        Ok(Export::Otlp(OtlpProtocol::Grpc))
    }
}

/// Owns the tracer provider for the life of the command; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber: log lines on stderr filtered by `RUST_LOG` (or
    /// `default_level`), plus the OTLP export of the deployer's spans when `export` says so.
    /// Must run inside the Tokio runtime (the gRPC channel is created on it).
    pub fn install(default_level: &str, export: &Export) -> Result<Telemetry, TelemetryError> {
        let provider = match export {
            Export::Off => None,
            Export::Otlp(protocol) => Some(tracer_provider(*protocol)?),
        };
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        let trace = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("deployer"))
                // Where in the deployer's source a span was opened means nothing to a reader of
                // the deploy's trace, and every step shares one thread.
                .with_location(false)
                .with_threads(false)
                // Busy/idle times and module paths are the deployer's internals; the span's own
                // duration is what a reader wants.
                .with_tracked_inactivity(false)
                .with_target(false)
                .with_filter(filter_fn(deployer_spans_and_warnings))
        });
        Registry::default().with(trace).with(logs).init();
        Ok(Telemetry { provider })
    }

    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued; waits at most a few seconds for an unreachable collector
    /// (the SDK logs the failure on stderr).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // Blocking: the batch processor's thread exports while this waits.
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_DEADLINE))
                .await;
        if let Ok(Err(error)) = flushed {
            eprintln!("warning: the deploy's trace was not fully exported: {error}");
        }
    }
}

/// The deployer's own spans (steps and commands), and its warnings and errors as span events;
/// not its debug logging, nor the spans and logs of the libraries it uses.
fn deployer_spans_and_warnings(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("deployer")
        && (metadata.is_span() || *metadata.level() <= Level::WARN)
}

fn tracer_provider(protocol: OtlpProtocol) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = match protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
    }
    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(exporter)
        .build())
}

/// `service.name` is `deployer` unless the user names it through the standard variables.
fn resource() -> Resource {
    let env_names_service = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if env_names_service {
        builder.build()
    } else {
        builder.with_service_name("deployer").build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn exports_only_with_an_endpoint() {
        assert_eq!(Export::from_env(env(&[])).unwrap(), Export::Off);
        assert_eq!(
            Export::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])).unwrap(),
            Export::Off
        );
        assert_eq!(
            Export::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")])).unwrap(),
            Export::Otlp(OtlpProtocol::Grpc)
        );
        assert_eq!(
            Export::from_env(env(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://c:4318/v1/traces"
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ]))
            .unwrap(),
            Export::Otlp(OtlpProtocol::HttpProtobuf)
        );
        assert_eq!(
            Export::from_env(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "true"),
            ]))
            .unwrap(),
            Export::Off
        );
    }

    #[test]
    fn the_signal_protocol_wins_and_a_bad_one_is_named() {
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            Export::from_env(both).unwrap(),
            Export::Otlp(OtlpProtocol::Grpc)
        );
        let bad = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        let err = Export::from_env(bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"http/json\" in OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{err}"
        );
        assert!(err.help().contains("http/protobuf"));
    }
}
