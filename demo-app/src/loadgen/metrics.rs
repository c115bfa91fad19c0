//! The load generator's own metrics, for Prometheus in the cluster (`--metrics-addr`):
//! requests by operation and outcome, latency by operation (with the request's trace as
//! exemplar), and sends missed because the in-flight cap was reached.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::SpanContext;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use super::stats::Outcome;
use super::workload::Operation;
use crate::telemetry::metrics::{DURATION_BUCKETS, TraceExemplar, exemplar};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone)]
pub struct LoadgenMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    duration: Family<OperationLabels, HistogramWithExemplars<TraceExemplar>>,
    missed: Counter,
}

impl Default for LoadgenMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration =
            Family::<OperationLabels, HistogramWithExemplars<TraceExemplar>>::new_with_constructor(
                || HistogramWithExemplars::new(DURATION_BUCKETS.into_iter()),
            );
        let missed = Counter::default();
        registry.register(
            "loadgen_requests",
            "Requests completed by the load generator, by operation and outcome",
            requests.clone(),
        );
        registry.register_with_unit(
            "loadgen_request_duration",
            "Request latency measured from the intended send time, by operation",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "loadgen_missed_sends",
            "Intended sends skipped because the in-flight cap was reached",
            missed.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            duration,
            missed,
        }
    }
}

impl LoadgenMetrics {
    pub fn record(&self, op: Operation, outcome: Outcome, latency: Duration, span: &SpanContext) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: op.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
        let ex = exemplar(span);
        let at = ex.as_ref().map(|_| SystemTime::now());
        self.duration
            .get_or_create(&OperationLabels {
                operation: op.as_str(),
            })
            .observe(latency.as_secs_f64(), ex, at);
    }

    pub fn missed(&self) {
        self.missed.inc();
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}
