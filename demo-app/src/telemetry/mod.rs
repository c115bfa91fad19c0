//! Telemetry shared by every subcommand: set up once in `main`, shut down in order at exit.
//!
//! One instrumentation API: code writes `tracing` spans and events. Two layers consume them:
//!
//! - [`logs`]: events become JSON lines on stdout, with `trace_id`/`span_id` of the innermost
//!   span (its OpenTelemetry context is attached while the span is entered).
//! - [`traces`]: our own spans (target `demo_app…`) become OpenTelemetry spans through
//!   tracing-opentelemetry, exported over OTLP; W3C propagation helpers.
//! - [`metrics`]: the Prometheus registry (RED histograms with exemplars, in-flight, build info).
//! - [`http`]: the axum middleware that gives every request a server span, a histogram
//!   observation (with the span's trace id as exemplar) and one log line.
//!
//! The two layers filter separately: `RUST_LOG` chooses the log lines, never the spans, so a
//! quiet log level keeps traces whole.

pub mod http;
pub mod logs;
pub mod metrics;
pub mod traces;

use std::time::Duration;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use traces::{OtlpProtocol, TraceSettings};

/// A count or id as a span attribute: OTLP integers are `i64`, and tracing-opentelemetry has
/// no `record_u64`, so a `u64` or `usize` field would go through `Debug` and arrive as a string
/// attribute, formatted anew for every span. Saturates at `i64::MAX`.
pub fn int_attribute(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry configuration: {0}")]
    Config(String),
}

/// Telemetry flags every subcommand takes (flattened into its arguments).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryArgs {
    /// Log filter in RUST_LOG syntax, e.g. `info` or `info,demo_app=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_level: String,

    /// Write one log line per HTTP request served (errors are always logged).
    #[arg(long, env = "DEMO_REQUEST_LOG", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub request_log: bool,

    /// OTLP endpoint for spans [default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4317 (gRPC) / :4318 (HTTP)].
    #[arg(long, value_name = "URL", global = true)]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `grpc` or `http/protobuf` [default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    /// then OTEL_EXPORTER_OTLP_PROTOCOL, then grpc].
    #[arg(long, value_name = "PROTOCOL", global = true)]
    pub otlp_protocol: Option<String>,

    /// Turn tracing off: no spans, so no trace ids in logs and no `traceparent` sent on. To
    /// keep ids in logs without exporting, set OTEL_TRACES_SAMPLER=always_off instead.
    #[arg(long, env = "OTEL_SDK_DISABLED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub otel_sdk_disabled: bool,
}

/// Where log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

/// Owns the tracer provider and the log writer; `shutdown` flushes both, spans first so the
/// exporter's own complaints still reach the log.
pub struct Telemetry {
    provider: SdkTracerProvider,
    log_guard: logs::LogGuard,
    pub request_log: bool,
}

impl Telemetry {
    /// Installs the global log subscriber and tracer provider. Call once, inside the runtime.
    pub fn init(
        args: &TelemetryArgs,
        service_name: &str,
        output: LogOutput,
    ) -> Result<Self, TelemetryError> {
        let filter = EnvFilter::try_new(&args.log_level).map_err(|e| {
            TelemetryError::Config(format!("invalid log filter {:?}: {e}", args.log_level))
        })?;
        let writer: Box<dyn std::io::Write + Send> = match output {
            LogOutput::Stdout => Box::new(std::io::stdout()),
            LogOutput::Stderr => Box::new(std::io::stderr()),
        };
        let settings = TraceSettings {
            disabled: args.otel_sdk_disabled,
            protocol: TraceSettings::resolve_protocol(args.otlp_protocol.as_deref(), |k| {
                std::env::var(k).ok()
            })?,
            endpoint: args.otlp_endpoint.clone(),
            default_service_name: service_name.to_owned(),
        };
        let provider = traces::tracer_provider(&settings)?;
        let (log_layer, log_guard) = logs::json_layer(writer);
        // A disabled SDK is a no-op, as the OpenTelemetry spec has it: without the span layer
        // no span is even created, so requests cost what they would without tracing. (Not an
        // `Option` layer: a `None` layer enables every callsite.)
        let installed = if settings.disabled {
            tracing_subscriber::registry()
                .with(log_layer.with_filter(logs::log_filter(filter, &args.log_level)))
                .try_init()
        } else {
            tracing_subscriber::registry()
                .with(traces::span_layer(&provider))
                .with(log_layer.with_filter(logs::log_filter(filter, &args.log_level)))
                .try_init()
        };
        installed
            .map_err(|e| TelemetryError::Config(format!("a log subscriber is already set: {e}")))?;
        tracing::info!(
            service = service_name,
            traces_exported = !settings.disabled,
            protocol = ?settings.protocol,
            "telemetry started"
        );
        Ok(Self {
            provider,
            log_guard,
            request_log: args.request_log,
        })
    }

    /// Flushes pending spans (bounded by `deadline`), then the log writer.
    pub fn shutdown(self, deadline: Duration) {
        if let Err(e) = self.provider.shutdown_with_timeout(deadline) {
            tracing::warn!(error = %e, "spans may be lost: the tracer provider did not shut down cleanly");
        }
        drop(self.log_guard);
    }
}
