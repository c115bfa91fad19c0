//! What both receivers do with an encoded request: check it and count its spans in one pass
//! over the wire format ([`otlp_scan`]), hold room for it in the queue, set the agent's
//! resource attributes ([`otlp_rewrite`]) and queue it; or refuse (or drop) it, counting every
//! span either way. A request is refused as a whole when any of it is invalid, so one bad
//! sender never poisons a batch merged with others' data.
//!
//! Work is bounded before it is spent: at most `--max-concurrent-decodes` requests are
//! inflated, checked and rewritten at once ([`Intake::decode_permit`]), and the rewritten
//! copy is allocated only after its exact size has been reserved in the queue.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::body::BodyBudget;
use super::metrics::{AgentMetrics, ExporterLabels, ReceiverLabels};
use super::otlp_rewrite::ResourceRewrite;
use super::otlp_scan::{self, Invalid};
use super::queue::{EnqueueError, Item, Queue};
use std::sync::Arc;

/// What to do with data that does not fit in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Overflow {
    /// Tell the sender to retry later (gRPC UNAVAILABLE, HTTP 503 with Retry-After): the
    /// data stays with the sender, whose own queue holds it or drops it visibly.
    Refuse,
    /// Answer success, drop the data and count it in `otelcol_exporter_enqueue_failed_spans`.
    Drop,
}

/// How long a refused sender is asked to wait before retrying.
pub const REFUSED_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The queue is full and the policy is to refuse.
    #[error("the agent's queue is full; retry later")]
    Full,
    #[error("the agent is shutting down; retry against another instance")]
    ShuttingDown,
    /// Malformed, or ids the upstream would refuse (HTTP 400 / INVALID_ARGUMENT).
    #[error("invalid ExportTraceServiceRequest: {0}")]
    Invalid(#[from] Invalid),
    /// Larger than the whole queue, once rewritten: it could never be queued (413 /
    /// RESOURCE_EXHAUSTED without a retry hint).
    #[error(
        "request of {spans} spans / {bytes} bytes (with the agent's resource attributes) exceeds what the queue can ever hold; split it"
    )]
    TooLarge { spans: usize, bytes: usize },
}

pub struct Intake {
    pub queue: Arc<Queue>,
    pub metrics: AgentMetrics,
    pub overflow: Overflow,
    /// Set on every resource, replacing an attribute of the same key.
    pub resource_attributes: ResourceRewrite,
    /// The exporter label of the queue metrics.
    pub exporter: &'static str,
    /// Requests being inflated, decoded, checked or rewritten at once.
    pub decodes: Semaphore,
    /// The bytes all request bodies being received may hold at once.
    pub bodies: Arc<BodyBudget>,
    pub body_timeout: Duration,
}

impl Intake {
    /// Waits for a turn to decode: holding the permit bounds the memory and CPU spent on
    /// requests at once, whatever the number of connections.
    pub async fn decode_permit(&self) -> Result<SemaphorePermit<'_>, IntakeError> {
        // Only a closed semaphore fails, and nothing closes it; say "shutting down" if so.
        self.decodes
            .acquire()
            .await
            .map_err(|_| IntakeError::ShuttingDown)
    }

    /// Checks, counts and queues one encoded `ExportTraceServiceRequest`.
    pub fn accept(&self, request: Bytes, transport: &'static str) -> Result<(), IntakeError> {
        let receiver = ReceiverLabels {
            receiver: "otlp",
            transport,
        };
        let found = match otlp_scan::scan(&request) {
            Ok(found) => found,
            Err(invalid) => {
                let spans = otlp_scan::count_spans_leniently(&request);
                self.count_refused(&receiver, spans);
                return Err(invalid.into());
            }
        };
        let spans = found.spans;
        if spans == 0 {
            return Ok(());
        }
        let bytes = if self.resource_attributes.is_empty() {
            request.len()
        } else {
            self.resource_attributes.output_len(&request)
        };
        if !self.queue.could_ever_hold(spans, bytes) {
            self.count_refused(&receiver, spans);
            return Err(IntakeError::TooLarge { spans, bytes });
        }
        let reservation = match self.queue.reserve(spans, bytes) {
            Ok(reservation) => reservation,
            Err(e) => return self.not_queued(e, &receiver, spans),
        };
        let payload = if self.resource_attributes.is_empty() {
            request
        } else {
            Bytes::from(self.resource_attributes.rewrite(&request, bytes))
        };
        reservation.commit(Item { payload, spans });
        self.metrics
            .accepted_spans
            .get_or_create(&receiver)
            .inc_by(spans as u64);
        self.update_gauges();
        Ok(())
    }

    fn count_refused(&self, receiver: &ReceiverLabels, spans: usize) {
        self.metrics
            .refused_spans
            .get_or_create(receiver)
            .inc_by(spans as u64);
    }

    fn not_queued(
        &self,
        error: EnqueueError,
        receiver: &ReceiverLabels,
        spans: usize,
    ) -> Result<(), IntakeError> {
        let n = spans as u64;
        if error == EnqueueError::Closed {
            self.count_refused(receiver, spans);
            return Err(IntakeError::ShuttingDown);
        }
        self.metrics
            .enqueue_failed_spans
            .get_or_create(&self.exporter_labels())
            .inc_by(n);
        match self.overflow {
            Overflow::Refuse => {
                self.count_refused(receiver, spans);
                Err(IntakeError::Full)
            }
            Overflow::Drop => {
                self.metrics
                    .accepted_spans
                    .get_or_create(receiver)
                    .inc_by(n);
                tracing::debug!(spans, "queue full; spans dropped (--overflow drop)");
                Ok(())
            }
        }
    }

    fn exporter_labels(&self) -> ExporterLabels {
        ExporterLabels {
            exporter: self.exporter,
        }
    }

    fn update_gauges(&self) {
        let exporter = self.exporter_labels();
        let usage = self.queue.usage();
        self.metrics
            .queue_size
            .get_or_create(&exporter)
            .set(i64::try_from(usage.spans).unwrap_or(i64::MAX));
        self.metrics
            .queue_size_bytes
            .get_or_create(&exporter)
            .set(i64::try_from(usage.bytes).unwrap_or(i64::MAX));
    }
}

/// An intake over a small queue, for unit tests of the receivers.
#[cfg(test)]
pub fn test_intake(overflow: Overflow, max_spans: usize) -> Intake {
    Intake {
        queue: Arc::new(Queue::new(super::queue::QueueLimits {
            max_spans,
            max_bytes: 1 << 20,
        })),
        metrics: AgentMetrics::new(),
        overflow,
        resource_attributes: ResourceRewrite::default(),
        exporter: "otlp",
        decodes: Semaphore::new(1),
        bodies: BodyBudget::new(1 << 20, super::memory::ReturnToOs::new()),
        body_timeout: Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn request(spans: usize, trace_id: u8) -> Bytes {
        let span = Span {
            trace_id: vec![trace_id; 16],
            span_id: vec![1; 8],
            ..Default::default()
        };
        Bytes::from(
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span; spans],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        )
    }

    fn intake(overflow: Overflow, max_spans: usize) -> Intake {
        test_intake(overflow, max_spans)
    }

    fn has(text: &str, line: &str) {
        assert!(text.contains(line), "{line} not in {text}");
    }

    #[test]
    fn refuses_or_drops_past_the_bound_and_counts_each_span() {
        let refuse = intake(Overflow::Refuse, 5);
        refuse.accept(request(3, 7), "grpc").unwrap();
        assert!(matches!(
            refuse.accept(request(3, 7), "grpc"),
            Err(IntakeError::Full)
        ));
        let text = refuse.metrics.encode(false);
        has(
            &text,
            "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3",
        );
        has(
            &text,
            "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3",
        );
        has(
            &text,
            "otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp\"} 3",
        );

        let drop = intake(Overflow::Drop, 5);
        drop.accept(request(3, 7), "http").unwrap();
        drop.accept(request(3, 7), "http").unwrap();
        let text = drop.metrics.encode(false);
        has(
            &text,
            "otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp\"} 3",
        );
        assert_eq!(drop.queue.usage().spans, 3);
    }

    #[test]
    fn an_invalid_or_oversized_request_is_refused_whole_and_counted() {
        let intake = intake(Overflow::Refuse, 5);
        let bad = request(4, 0);
        assert!(matches!(
            intake.accept(bad, "http"),
            Err(IntakeError::Invalid(Invalid::ZeroId { .. }))
        ));
        assert!(matches!(
            intake.accept(request(6, 7), "http"),
            Err(IntakeError::TooLarge { spans: 6, .. })
        ));
        assert_eq!(intake.queue.usage().spans, 0);
        has(
            &intake.metrics.encode(false),
            "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"http\"} 10",
        );
    }
}
