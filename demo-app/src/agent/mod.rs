//! `demo-app agent`: the per-cluster telemetry agent. It receives OTLP traces (from the demo
//! workload and from Linkerd's proxies), relays them to the central Tempo with the tenant
//! header and the cluster's resource attributes, and (optionally) ships Kubernetes events to
//! Loki.
//!
//! Data path (modelled on the OpenTelemetry Collector's exporterhelper, our own code):
//! receivers ([`receiver_grpc`], [`receiver_http`]) -> [`intake`] (resource attributes,
//! overflow policy) -> bounded [`queue`] (spans and bytes; batching by count, bytes, time) ->
//! [`worker`]s (send with [`retry`], via [`exporter`]) -> upstream. [`metrics`] counts every
//! span at each step under the Collector's names; [`health`] turns `/readyz` red when exports
//! keep failing. [`events`] is the Kubernetes events -> Loki path.
//!
//! The agent never traces itself: `main` disables span export for this subcommand, so its
//! own relaying cannot loop back into its receivers.

pub mod body;
pub mod events;
pub mod exporter;
pub mod gzip;
pub mod health;
pub mod intake;
pub mod loki;
pub mod memory;
pub mod metrics;
pub mod otlp_rewrite;
pub mod otlp_scan;
pub mod queue;
pub mod receiver_grpc;
pub mod receiver_http;
pub mod retry;
pub mod sent_events;
pub mod wire;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{parse_duration, parse_ratio};
use crate::listener::ListenerArgs;
use exporter::{ExportProtocol, Exporter, ExporterError, TENANT_HEADER};
use health::ExportHealth;
use intake::{Intake, Overflow};
use metrics::{AgentMetrics, ExporterLabels};
use otlp_rewrite::ResourceRewrite;
use queue::{BatchLimits, Queue, QueueLimits};
use retry::BackoffPolicy;
use worker::Worker;

const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("header_read_timeout", |a| a.env("AGENT_HEADER_READ_TIMEOUT")),
    mut_arg("idle_timeout", |a| a.env("AGENT_IDLE_TIMEOUT")),
    mut_arg("body_timeout", |a| a.env("AGENT_BODY_TIMEOUT")),
    mut_arg("max_connections", |a| a.env("AGENT_MAX_CONNECTIONS"))
)]
pub struct AgentArgs {
    /// Where to receive OTLP/gRPC.
    #[arg(long, env = "AGENT_GRPC_LISTEN", default_value = "0.0.0.0:4317")]
    pub grpc_listen: SocketAddr,

    /// Where to receive OTLP/HTTP (`POST /v1/traces`, protobuf or JSON).
    #[arg(long, env = "AGENT_HTTP_LISTEN", default_value = "0.0.0.0:4318")]
    pub http_listen: SocketAddr,

    /// Where to serve /metrics, /healthz and /readyz (8888 like the Collector's metrics).
    #[arg(long, env = "AGENT_METRICS_LISTEN", default_value = "0.0.0.0:8888")]
    pub metrics_listen: SocketAddr,

    /// The OTLP endpoint to relay to: host:port (plain HTTP/2) or http://host:port.
    #[arg(long, env = "AGENT_UPSTREAM")]
    pub upstream: String,

    /// How to talk to the upstream.
    #[arg(
        long,
        env = "AGENT_UPSTREAM_PROTOCOL",
        value_enum,
        default_value = "grpc"
    )]
    pub upstream_protocol: ExportProtocol,

    /// The tenant, sent as `X-Scope-OrgID` on every export call.
    #[arg(long, env = "AGENT_TENANT")]
    pub tenant: String,

    /// Extra header on every export call, `name=value` (repeat, or comma-separate in the env).
    #[arg(long = "header", env = "AGENT_HEADERS", value_delimiter = ',', value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,

    /// Resource attribute set on all spans (added or overriding), `key=value`; repeatable.
    #[arg(long = "resource-attribute", env = "AGENT_RESOURCE_ATTRIBUTES", value_delimiter = ',', value_parser = parse_key_value)]
    pub resource_attributes: Vec<(String, String)>,

    /// Timeout of one export call.
    #[arg(long, env = "AGENT_EXPORT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub export_timeout: Duration,

    /// Export calls in flight at once.
    #[arg(long, env = "AGENT_EXPORTERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub exporters: u16,

    /// Largest OTLP request accepted, in bytes, compressed or inflated (larger:
    /// RESOURCE_EXHAUSTED / 413).
    #[arg(long, env = "AGENT_MAX_REQUEST_BYTES", default_value_t = 4 * MIB)]
    pub max_request_bytes: usize,

    /// Requests inflated, checked and rewritten at once (others wait their turn). With the
    /// queue's and the bodies' budgets this bounds the agent's memory: about
    /// --queue-max-bytes + --max-request-bytes x this + 30 MiB.
    #[arg(long, env = "AGENT_MAX_CONCURRENT_DECODES", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_decodes: u16,

    /// Timeouts and the connection bound of every listener (a stalled body is answered 408 /
    /// DEADLINE_EXCEEDED and gives its buffer back).
    #[command(flatten)]
    pub listener: ListenerArgs,

    #[command(flatten)]
    pub queue: QueueArgs,

    #[command(flatten)]
    pub retry: RetryArgs,

    /// /readyz turns not-ready once exports have failed without a success for this long.
    #[arg(long, env = "AGENT_UNREADY_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub unready_after: Duration,

    /// After SIGTERM: how long to keep sending what is queued before giving up on it.
    #[arg(long, env = "AGENT_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub events: events::EventsArgs,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Queue and batching")]
pub struct QueueArgs {
    /// Most spans held (waiting plus being sent/retried).
    #[arg(long, env = "AGENT_QUEUE_MAX_SPANS", default_value_t = 200_000)]
    pub queue_max_spans: usize,

    /// Most encoded bytes held (waiting plus being sent/retried).
    #[arg(long, env = "AGENT_QUEUE_MAX_BYTES", default_value_t = 64 * MIB)]
    pub queue_max_bytes: usize,

    /// When the queue is full: refuse (the sender retries; gRPC UNAVAILABLE, HTTP 503 +
    /// Retry-After) or drop (answer OK, drop, count in otelcol_exporter_enqueue_failed_spans).
    #[arg(long, env = "AGENT_OVERFLOW", value_enum, default_value = "refuse")]
    pub overflow: Overflow,

    /// Send a batch once this many spans wait.
    #[arg(long, env = "AGENT_BATCH_MAX_SPANS", default_value_t = 8192)]
    pub batch_max_spans: usize,

    /// Most bytes in one export call (gRPC servers, Tempo's included, refuse messages over
    /// 4 MiB unless told otherwise; a single larger request is still sent alone).
    #[arg(long, env = "AGENT_BATCH_MAX_BYTES", default_value_t = 2 * MIB)]
    pub batch_max_bytes: usize,

    /// Send what waits once the oldest span has waited this long.
    #[arg(long, env = "AGENT_BATCH_TIMEOUT", default_value = "200ms", value_parser = parse_duration)]
    pub batch_timeout: Duration,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Retries")]
pub struct RetryArgs {
    /// First delay before retrying a failed export.
    #[arg(long, env = "AGENT_RETRY_INITIAL", default_value = "500ms", value_parser = parse_duration)]
    pub retry_initial: Duration,

    /// Longest delay between retries (also caps a server's Retry-After / RetryInfo).
    #[arg(long, env = "AGENT_RETRY_MAX", default_value = "30s", value_parser = parse_duration)]
    pub retry_max: Duration,

    /// Random spread of each delay, as a ratio (0.5: between half and 1.5 times).
    #[arg(long, env = "AGENT_RETRY_JITTER", default_value = "0.5", value_parser = parse_ratio)]
    pub retry_jitter: f64,

    /// Give up on a batch (count it in otelcol_exporter_send_failed_spans) after retrying
    /// it this long.
    #[arg(long, env = "AGENT_RETRY_MAX_ELAPSED", default_value = "5m", value_parser = parse_duration)]
    pub retry_max_elapsed: Duration,
}

impl RetryArgs {
    pub fn policy(&self) -> BackoffPolicy {
        BackoffPolicy {
            initial: self.retry_initial,
            max: self.retry_max,
            multiplier: 1.5,
            jitter: self.retry_jitter,
            max_elapsed: self.retry_max_elapsed,
        }
    }
}

/// Parses `key=value` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "cannot listen on {addr}: {source} (is another process using the port? choose another with --grpc-listen / --http-listen / --metrics-listen)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    #[error(transparent)]
    Events(#[from] events::EventsError),
    #[error("server failed: {0}")]
    Server(#[from] std::io::Error),
}

impl AgentArgs {
    fn validate(&self) -> Result<(), AgentError> {
        let q = &self.queue;
        if self.max_request_bytes > q.queue_max_bytes {
            return Err(AgentError::Config(format!(
                "--max-request-bytes ({}) must not exceed --queue-max-bytes ({}): such a request could never be queued",
                self.max_request_bytes, q.queue_max_bytes
            )));
        }
        if q.queue_max_spans == 0 || q.batch_max_spans == 0 || q.batch_max_bytes == 0 {
            return Err(AgentError::Config(
                "queue and batch sizes must be positive".into(),
            ));
        }
        if self.tenant.trim().is_empty() {
            return Err(AgentError::Config("--tenant must not be empty".into()));
        }
        Ok(())
    }

    /// The tenant header first, then the extra headers (an extra `X-Scope-OrgID` is refused:
    /// the tenant must come from `--tenant` alone).
    fn export_headers(&self) -> Result<Vec<(String, String)>, AgentError> {
        let mut headers = vec![(TENANT_HEADER.to_owned(), self.tenant.clone())];
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case(TENANT_HEADER) {
                return Err(AgentError::Config(
                    "set the tenant with --tenant, not --header X-Scope-OrgID=...".into(),
                ));
            }
            headers.push((k.to_ascii_lowercase(), v.clone()));
        }
        Ok(headers)
    }
}

/// Receives and relays until `shutdown` completes; then stops receiving, sends what is
/// queued (up to `--shutdown-timeout`) and logs how many spans could not be sent.
pub async fn run(
    args: AgentArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    args.validate()?;
    let metrics = AgentMetrics::new();
    let exporter = Arc::new(Exporter::new(
        args.upstream_protocol,
        &args.upstream,
        &args.export_headers()?,
        args.export_timeout,
    )?);
    let exporter_labels = ExporterLabels {
        exporter: exporter.kind(),
    };
    let queue = Arc::new(Queue::new(QueueLimits {
        max_spans: args.queue.queue_max_spans,
        max_bytes: args.queue.queue_max_bytes,
    }));
    set_capacity_gauges(&metrics, &exporter_labels, queue.limits());
    let health = Arc::new(ExportHealth::new(args.unready_after));
    memory::unmap_large_allocations();
    let memory = memory::ReturnToOs::new();
    let intake = Arc::new(Intake {
        queue: queue.clone(),
        metrics: metrics.clone(),
        overflow: args.queue.overflow,
        resource_attributes: ResourceRewrite::new(&args.resource_attributes),
        exporter: exporter.kind(),
        decodes: Semaphore::new(usize::from(args.max_concurrent_decodes)),
        // Bodies share what the decodes may hold: the memory bound stays
        // queue + max request x decodes (+ the process's own).
        bodies: body::BodyBudget::new(
            args.max_request_bytes
                .saturating_mul(usize::from(args.max_concurrent_decodes)),
            memory.clone(),
        ),
        body_timeout: args.listener.body_timeout,
    });
    let events_pipeline = events::Pipeline::from_args(
        &args.events,
        &args.tenant,
        metrics.clone(),
        args.retry.policy(),
    )
    .await?;

    let grpc = bind(args.grpc_listen).await?;
    let http = bind(args.http_listen).await?;
    let admin = bind(args.metrics_listen).await?;
    tracing::info!(
        grpc_addr = %grpc.local_addr()?,
        http_addr = %http.local_addr()?,
        metrics_addr = %admin.local_addr()?,
        upstream = %args.upstream,
        protocol = ?args.upstream_protocol,
        tenant = %args.tenant,
        overflow = ?args.queue.overflow,
        queue_max_spans = args.queue.queue_max_spans,
        queue_max_bytes = args.queue.queue_max_bytes,
        events = events_pipeline.is_some(),
        "listening"
    );

    let stop_receiving = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let mut receivers = JoinSet::new();
    receivers.spawn(serve(
        grpc,
        receiver_grpc::router(intake.clone(), args.max_request_bytes),
        args.listener.clone(),
        "grpc",
        stop_receiving.clone(),
    ));
    receivers.spawn(serve(
        http,
        receiver_http::router(intake, args.max_request_bytes),
        args.listener.clone(),
        "http",
        stop_receiving.clone(),
    ));
    let admin_server = tokio::spawn(serve(
        admin,
        admin_router(metrics.clone(), health.clone()),
        args.listener.clone(),
        "metrics",
        stop_admin.clone(),
    ));

    let abandon = CancellationToken::new();
    let mut workers = JoinSet::new();
    for _ in 0..args.exporters {
        workers.spawn(
            Worker {
                queue: queue.clone(),
                exporter: exporter.clone(),
                metrics: metrics.clone(),
                health: health.clone(),
                batch: BatchLimits {
                    max_spans: args.queue.batch_max_spans,
                    max_bytes: args.queue.batch_max_bytes,
                    timeout: args.queue.batch_timeout,
                },
                backoff: args.retry.policy(),
                abandon: abandon.clone(),
                memory: memory.clone(),
            }
            .run(),
        );
    }
    let stop_trimming = CancellationToken::new();
    let trimming = tokio::spawn(memory.run(stop_trimming.clone()));
    let stop_events = CancellationToken::new();
    let events_task =
        events_pipeline.map(|p| tokio::spawn(p.run(stop_events.clone(), abandon.clone())));

    let server_error = tokio::select! {
        () = shutdown => None,
        Some(ended) = receivers.join_next() => Some(match ended {
            Ok(Ok(())) => std::io::Error::other("a receiver stopped unexpectedly"),
            Ok(Err(e)) => e,
            Err(e) => std::io::Error::other(e),
        }),
    };

    // Stop receiving first (readiness goes red so the Service stops routing to us), then
    // send what is queued, all within one deadline.
    let deadline = tokio::time::Instant::now() + args.shutdown_timeout;
    health.start_draining();
    stop_receiving.cancel();
    stop_events.cancel();
    let _ = tokio::time::timeout_at(deadline, async {
        while receivers.join_next().await.is_some() {}
    })
    .await;
    queue.close();
    tracing::info!(
        queued_spans = queue.usage().spans,
        deadline_s = args.shutdown_timeout.as_secs_f64(),
        "stopped receiving; sending what is queued"
    );
    let drained = tokio::time::timeout_at(deadline, async {
        while workers.join_next().await.is_some() {}
        if let Some(task) = events_task {
            let _ = task.await;
        }
    })
    .await;
    if drained.is_err() {
        abandon.cancel();
        // Workers return at once when abandoned; a send in flight ends by its own timeout.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while workers.join_next().await.is_some() {}
        })
        .await;
    }
    let unsent = queue.usage().spans;
    if unsent > 0 {
        metrics
            .send_failed_spans
            .get_or_create(&exporter_labels)
            .inc_by(unsent as u64);
        tracing::warn!(
            unsent_spans = unsent,
            "shutdown deadline passed; these spans could not be sent and are lost"
        );
    } else {
        tracing::info!("queue drained; every accepted span was sent or counted as failed");
    }
    stop_admin.cancel();
    stop_trimming.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), admin_server).await;
    let _ = trimming.await;
    match server_error {
        Some(e) => Err(AgentError::Server(e)),
        None => Ok(()),
    }
}

fn set_capacity_gauges(metrics: &AgentMetrics, labels: &ExporterLabels, limits: QueueLimits) {
    metrics
        .queue_capacity
        .get_or_create(labels)
        .set(i64::try_from(limits.max_spans).unwrap_or(i64::MAX));
    metrics
        .queue_capacity_bytes
        .get_or_create(labels)
        .set(i64::try_from(limits.max_bytes).unwrap_or(i64::MAX));
    metrics.queue_size.get_or_create(labels).set(0);
    metrics.queue_size_bytes.get_or_create(labels).set(0);
}

async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerArgs,
    name: &'static str,
    stop: CancellationToken,
) -> std::io::Result<()> {
    crate::listener::serve(listener, router, &limits, name, stop).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })
}

fn admin_router(metrics: AgentMetrics, health: Arc<ExportHealth>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz).with_state(health))
        .merge(crate::telemetry::metrics::router(metrics.registry()))
        .fallback(crate::serve::error::no_route)
}

async fn readyz(State(health): State<Arc<ExportHealth>>) -> Response {
    match health.check() {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not ready", "reason": reason})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
