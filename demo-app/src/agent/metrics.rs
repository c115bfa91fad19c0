//! The agent's self-metrics, named like the OpenTelemetry Collector's so existing Collector
//! dashboards and alerts work unchanged: `otelcol_receiver_*` by receiver and transport,
//! `otelcol_exporter_*` by exporter. Counters are exposed with `_total` in the text format.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    pub receiver: &'static str,
    /// `grpc` or `http`.
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLabels {
    /// `otlp` (gRPC), `otlphttp` or `loki`.
    pub exporter: &'static str,
}

type Counters<L> = Family<L, Counter<u64, AtomicU64>>;

/// Handles to every agent metric; cheap to clone.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Arc<Registry>,
    pub accepted_spans: Counters<ReceiverLabels>,
    pub refused_spans: Counters<ReceiverLabels>,
    pub sent_spans: Counters<ExporterLabels>,
    pub send_failed_spans: Counters<ExporterLabels>,
    pub enqueue_failed_spans: Counters<ExporterLabels>,
    /// Export attempts that failed and were (or would have been) retried.
    pub send_retries: Counters<ExporterLabels>,
    pub queue_size: Family<ExporterLabels, Gauge>,
    pub queue_capacity: Family<ExporterLabels, Gauge>,
    pub queue_size_bytes: Family<ExporterLabels, Gauge>,
    pub queue_capacity_bytes: Family<ExporterLabels, Gauge>,
    pub sent_log_records: Counters<ExporterLabels>,
    pub send_failed_log_records: Counters<ExporterLabels>,
    pub skipped_log_records: Counters<ExporterLabels>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let m = Self {
            registry: Arc::default(),
            accepted_spans: Family::default(),
            refused_spans: Family::default(),
            sent_spans: Family::default(),
            send_failed_spans: Family::default(),
            enqueue_failed_spans: Family::default(),
            send_retries: Family::default(),
            queue_size: Family::default(),
            queue_capacity: Family::default(),
            queue_size_bytes: Family::default(),
            queue_capacity_bytes: Family::default(),
            sent_log_records: Family::default(),
            send_failed_log_records: Family::default(),
            skipped_log_records: Family::default(),
        };
        r.register(
            "otelcol_receiver_accepted_spans",
            "Spans successfully pushed into the pipeline",
            m.accepted_spans.clone(),
        );
        r.register(
            "otelcol_receiver_refused_spans",
            "Spans that could not be pushed into the pipeline (the client was told to retry)",
            m.refused_spans.clone(),
        );
        r.register(
            "otelcol_exporter_sent_spans",
            "Spans successfully sent to the destination",
            m.sent_spans.clone(),
        );
        r.register(
            "otelcol_exporter_send_failed_spans",
            "Spans given up on: permanent error, retries exhausted, or unsent at shutdown",
            m.send_failed_spans.clone(),
        );
        r.register(
            "otelcol_exporter_enqueue_failed_spans",
            "Spans that did not fit in the sending queue (refused or dropped, per --overflow)",
            m.enqueue_failed_spans.clone(),
        );
        r.register(
            "agent_exporter_send_retries",
            "Failed export attempts that were retried",
            m.send_retries.clone(),
        );
        r.register(
            "otelcol_exporter_queue_size",
            "Spans in the sending queue, including batches being sent or retried",
            m.queue_size.clone(),
        );
        r.register(
            "otelcol_exporter_queue_capacity",
            "Most spans the sending queue holds",
            m.queue_capacity.clone(),
        );
        r.register(
            "agent_exporter_queue_size_bytes",
            "Encoded bytes in the sending queue, including batches being sent or retried",
            m.queue_size_bytes.clone(),
        );
        r.register(
            "agent_exporter_queue_capacity_bytes",
            "Most encoded bytes the sending queue holds",
            m.queue_capacity_bytes.clone(),
        );
        r.register(
            "otelcol_exporter_sent_log_records",
            "Log records (Kubernetes events) sent to the destination",
            m.sent_log_records.clone(),
        );
        r.register(
            "otelcol_exporter_send_failed_log_records",
            "Log records (Kubernetes events) given up on",
            m.send_failed_log_records.clone(),
        );
        let log_lines_dropped: Counter<u64, AtomicU64> =
            crate::telemetry::logs::dropped_lines_counter();
        r.register(
            "demo_app_log_lines_dropped",
            "Log lines dropped because stdout could not keep up (nothing waits for the log)",
            log_lines_dropped,
        );
        r.register(
            "agent_events_skipped",
            "Kubernetes events seen again after a restart or re-watch and not re-sent",
            m.skipped_log_records.clone(),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }

    /// The registry as text: OpenMetrics when asked for, else the Prometheus text format.
    pub fn encode(&self, openmetrics: bool) -> String {
        crate::telemetry::metrics::encode(&self.registry, openmetrics)
    }

    /// The registry, to serve it with [`crate::telemetry::metrics::router`].
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}
