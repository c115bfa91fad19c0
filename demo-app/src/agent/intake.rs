//! What both receivers do with a decoded request: add the agent's resource attributes, count
//! the spans, re-encode, and put it in the queue, or refuse (or drop) it per the overflow
//! policy, counting every span either way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::metrics::{AgentMetrics, ExporterLabels, ReceiverLabels};
use super::queue::{EnqueueError, Item, Queue};

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
}

pub struct Intake {
    pub queue: Arc<Queue>,
    pub metrics: AgentMetrics,
    pub overflow: Overflow,
    /// Set on every resource, replacing an attribute of the same key.
    pub resource_attributes: Vec<(String, String)>,
    /// The exporter label of the queue metrics.
    pub exporter: &'static str,
}

impl Intake {
    pub fn accept(
        &self,
        mut request: ExportTraceServiceRequest,
        transport: &'static str,
    ) -> Result<(), IntakeError> {
        let spans = count_spans(&request);
        if spans == 0 {
            return Ok(());
        }
        set_resource_attributes(&mut request, &self.resource_attributes);
        let item = Item {
            payload: Bytes::from(request.encode_to_vec()),
            spans,
        };
        let receiver = ReceiverLabels {
            receiver: "otlp",
            transport,
        };
        let exporter = ExporterLabels {
            exporter: self.exporter,
        };
        let n = spans as u64;
        match self.queue.push(item) {
            Ok(()) => {
                self.metrics
                    .accepted_spans
                    .get_or_create(&receiver)
                    .inc_by(n);
                self.update_gauges(&exporter);
                Ok(())
            }
            Err(EnqueueError::Closed) => {
                self.metrics
                    .refused_spans
                    .get_or_create(&receiver)
                    .inc_by(n);
                Err(IntakeError::ShuttingDown)
            }
            Err(EnqueueError::Full { .. }) => {
                self.metrics
                    .enqueue_failed_spans
                    .get_or_create(&exporter)
                    .inc_by(n);
                match self.overflow {
                    Overflow::Refuse => {
                        self.metrics
                            .refused_spans
                            .get_or_create(&receiver)
                            .inc_by(n);
                        Err(IntakeError::Full)
                    }
                    Overflow::Drop => {
                        self.metrics
                            .accepted_spans
                            .get_or_create(&receiver)
                            .inc_by(n);
                        tracing::debug!(spans, "queue full; spans dropped (--overflow drop)");
                        Ok(())
                    }
                }
            }
        }
    }

    fn update_gauges(&self, exporter: &ExporterLabels) {
        let usage = self.queue.usage();
        self.metrics
            .queue_size
            .get_or_create(exporter)
            .set(i64::try_from(usage.spans).unwrap_or(i64::MAX));
        self.metrics
            .queue_size_bytes
            .get_or_create(exporter)
            .set(i64::try_from(usage.bytes).unwrap_or(i64::MAX));
    }
}

pub fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Adds or overrides `attributes` on every resource (a request without one gets one).
pub fn set_resource_attributes(
    request: &mut ExportTraceServiceRequest,
    attributes: &[(String, String)],
) {
    if attributes.is_empty() {
        return;
    }
    for resource_spans in &mut request.resource_spans {
        let resource = resource_spans
            .resource
            .get_or_insert_with(Resource::default);
        for (key, value) in attributes {
            let value = Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.clone())),
            });
            match resource.attributes.iter_mut().find(|kv| &kv.key == key) {
                Some(existing) => existing.value = value,
                None => resource.attributes.push(KeyValue {
                    key: key.clone(),
                    value,
                    ..Default::default()
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request(spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "k8s.cluster.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("from-sdk".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); spans],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn overrides_and_adds_resource_attributes() {
        let mut r = request(1);
        set_resource_attributes(
            &mut r,
            &[
                ("k8s.cluster.name".into(), "lgtm-remote".into()),
                ("env".into(), "poc".into()),
            ],
        );
        let attrs = &r.resource_spans[0].resource.as_ref().unwrap().attributes;
        assert_eq!(attrs.len(), 2);
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue("lgtm-remote".into()))
        );
        assert_eq!(attrs[1].key, "env");
    }

    fn intake(overflow: Overflow, max_spans: usize) -> Intake {
        Intake {
            queue: Arc::new(Queue::new(super::super::queue::QueueLimits {
                max_spans,
                max_bytes: 1 << 20,
            })),
            metrics: AgentMetrics::new(),
            overflow,
            resource_attributes: vec![],
            exporter: "otlp",
        }
    }

    #[test]
    fn refuses_or_drops_past_the_bound_and_counts_each_span() {
        let refuse = intake(Overflow::Refuse, 5);
        refuse.accept(request(3), "grpc").unwrap();
        assert!(matches!(
            refuse.accept(request(3), "grpc"),
            Err(IntakeError::Full)
        ));
        let text = refuse.metrics.encode(false);
        assert!(
            text.contains(
                "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp\"} 3"),
            "{text}"
        );

        let drop = intake(Overflow::Drop, 5);
        drop.accept(request(3), "http").unwrap();
        drop.accept(request(3), "http").unwrap();
        let text = drop.metrics.encode(false);
        assert!(
            text.contains("otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp\"} 3"),
            "{text}"
        );
        assert_eq!(drop.queue.usage().spans, 3);
    }
}
