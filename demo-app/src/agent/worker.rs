//! An exporter worker: takes batches from the queue and sends each until it is delivered,
//! permanently refused or out of retry time; every span ends up counted as sent or failed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::exporter::Exporter;
use super::health::ExportHealth;
use super::memory::ReturnToOs;
use super::metrics::{AgentMetrics, ExporterLabels};
use super::queue::{Batch, BatchLimits, Queue};
use super::retry::{Backoff, BackoffPolicy, SendError};

pub struct Worker {
    pub queue: Arc<Queue>,
    pub exporter: Arc<Exporter>,
    pub metrics: AgentMetrics,
    pub health: Arc<ExportHealth>,
    pub batch: BatchLimits,
    pub backoff: BackoffPolicy,
    /// Cancelled when the shutdown deadline passes: stop waiting between retries.
    pub abandon: CancellationToken,
    /// Told when a large batch was sent (or given up on) and freed.
    pub memory: Arc<ReturnToOs>,
}

/// How one batch ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent { rejected: u64 },
    GaveUp,
    Abandoned,
}

impl Worker {
    pub async fn run(self) {
        while let Some(batch) = self.queue.take_batch(self.batch).await {
            let outcome = self.deliver(&batch).await;
            let labels = ExporterLabels {
                exporter: self.exporter.kind(),
            };
            let spans = batch.spans as u64;
            match outcome {
                Outcome::Sent { rejected } => {
                    let rejected = rejected.min(spans);
                    self.metrics
                        .sent_spans
                        .get_or_create(&labels)
                        .inc_by(spans - rejected);
                    self.metrics
                        .send_failed_spans
                        .get_or_create(&labels)
                        .inc_by(rejected);
                }
                Outcome::GaveUp => {
                    self.metrics
                        .send_failed_spans
                        .get_or_create(&labels)
                        .inc_by(spans);
                }
                Outcome::Abandoned => {
                    // Left counted in the queue: the shutdown report counts it once.
                    return;
                }
            }
            self.queue.release(&batch);
            self.update_gauges();
            let bytes = batch.bytes;
            drop(batch);
            self.memory.freed(bytes);
        }
    }

    fn update_gauges(&self) {
        let labels = ExporterLabels {
            exporter: self.exporter.kind(),
        };
        let usage = self.queue.usage();
        self.metrics
            .queue_size
            .get_or_create(&labels)
            .set(i64::try_from(usage.spans).unwrap_or(i64::MAX));
        self.metrics
            .queue_size_bytes
            .get_or_create(&labels)
            .set(i64::try_from(usage.bytes).unwrap_or(i64::MAX));
    }

    async fn deliver(&self, batch: &Batch) -> Outcome {
        let mut backoff = Backoff::new(self.backoff);
        let started = tokio::time::Instant::now();
        let labels = ExporterLabels {
            exporter: self.exporter.kind(),
        };
        loop {
            let result = tokio::select! {
                r = self.exporter.send(batch) => r,
                () = self.abandon.cancelled() => return Outcome::Abandoned,
            };
            let error = match result {
                Ok(delivered) => {
                    self.health.record_success();
                    if delivered.rejected_spans > 0 {
                        tracing::warn!(
                            rejected_spans = delivered.rejected_spans,
                            reason = %delivered.message,
                            "upstream rejected part of a batch"
                        );
                    }
                    return Outcome::Sent {
                        rejected: delivered.rejected_spans,
                    };
                }
                Err(e) => e,
            };
            self.health.record_failure();
            let (reason, hint) = match error {
                SendError::Permanent { reason } => {
                    tracing::error!(spans = batch.spans, %reason, "export failed permanently; batch dropped, not retried");
                    return Outcome::GaveUp;
                }
                SendError::Retryable {
                    reason,
                    retry_after,
                } => (reason, retry_after),
            };
            let delay = backoff.next_delay(hint);
            if started.elapsed() + delay > backoff.max_elapsed() {
                tracing::error!(spans = batch.spans, %reason, "export retries exhausted; batch dropped");
                return Outcome::GaveUp;
            }
            self.metrics.send_retries.get_or_create(&labels).inc();
            tracing::warn!(spans = batch.spans, %reason, retry_in_ms = delay.as_millis() as u64, "export failed; will retry");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.abandon.cancelled() => return Outcome::Abandoned,
            }
        }
    }
}
