//! The bounded sending queue between the receivers and the exporter workers.
//!
//! Items are encoded `ExportTraceServiceRequest`s. The queue is bounded twice, by spans and by
//! encoded bytes, and both bounds also cover batches taken out but not yet sent (being sent or
//! retried): memory stays bounded during an outage, because nothing new is accepted while
//! retried batches still hold their share. `take_batch` forms batches by count, bytes and
//! time; the batch is a plain concatenation of encoded requests, which is itself a valid
//! request (the message's only field is the repeated `resource_spans`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One accepted export request, already re-encoded with the agent's resource attributes.
#[derive(Debug, Clone)]
pub struct Item {
    pub payload: Bytes,
    pub spans: usize,
}

/// Requests taken together for one export call.
#[derive(Debug, Default)]
pub struct Batch {
    pub parts: Vec<Bytes>,
    pub spans: usize,
    pub bytes: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_spans: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Send as soon as this many spans wait.
    pub max_spans: usize,
    /// Never put more than this many bytes in one export call (one request may exceed it alone).
    pub max_bytes: usize,
    /// Send what waits once the oldest item has waited this long.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    #[error("the sending queue is full ({spans} spans / {bytes} bytes in use)")]
    Full { spans: usize, bytes: usize },
    #[error("the agent is shutting down")]
    Closed,
}

pub struct Queue {
    limits: QueueLimits,
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<(Instant, Item)>,
    waiting_spans: usize,
    waiting_bytes: usize,
    /// Waiting plus taken-but-unreleased: what the bounds apply to.
    used_spans: usize,
    used_bytes: usize,
    closed: bool,
}

/// What the queue holds right now (for gauges and the shutdown report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub spans: usize,
    pub bytes: usize,
}

impl Queue {
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            state: Mutex::default(),
            arrived: Notify::new(),
        }
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters half-updated (each update
        // is a few additions), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an item, or refuses it when it would cross either bound (nothing is evicted:
    /// the caller decides whether that means "retry later" or "drop and count").
    pub fn push(&self, item: Item) -> Result<(), EnqueueError> {
        self.reserve(item.spans, item.payload.len())?.commit(item);
        Ok(())
    }

    /// Holds room for an item before it is built, so that building it (an allocation of
    /// `bytes`) already counts against the bound. Dropping the reservation gives it back.
    pub fn reserve(&self, spans: usize, bytes: usize) -> Result<Reservation<'_>, EnqueueError> {
        let mut s = self.lock();
        if s.closed {
            return Err(EnqueueError::Closed);
        }
        let fits = s
            .used_spans
            .checked_add(spans)
            .is_some_and(|n| n <= self.limits.max_spans)
            && s.used_bytes
                .checked_add(bytes)
                .is_some_and(|n| n <= self.limits.max_bytes);
        if !fits {
            return Err(EnqueueError::Full {
                spans: s.used_spans,
                bytes: s.used_bytes,
            });
        }
        s.used_spans += spans;
        s.used_bytes += bytes;
        Ok(Reservation {
            queue: self,
            spans,
            bytes,
        })
    }

    /// Whether an item this large could ever be queued (else it is refused for good).
    pub fn could_ever_hold(&self, spans: usize, bytes: usize) -> bool {
        spans <= self.limits.max_spans && bytes <= self.limits.max_bytes
    }

    /// Waits for the next batch: full by count or bytes, or whatever waits once the oldest
    /// item is `timeout` old, or at once after `close`. `None` when closed and empty.
    pub async fn take_batch(&self, limits: BatchLimits) -> Option<Batch> {
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait_until = match self.try_take(limits) {
                Decision::Take(batch) => return Some(batch),
                Decision::Finished => return None,
                Decision::WaitUntil(due) => due,
            };
            match wait_until {
                Some(due) => {
                    let _ = tokio::time::timeout_at(due, notified).await;
                }
                None => notified.await,
            }
        }
    }

    fn try_take(&self, limits: BatchLimits) -> Decision {
        let mut s = self.lock();
        let Some((oldest, _)) = s.waiting.front() else {
            return if s.closed {
                Decision::Finished
            } else {
                Decision::WaitUntil(None)
            };
        };
        let due = *oldest + limits.timeout;
        let full = s.waiting_spans >= limits.max_spans || s.waiting_bytes >= limits.max_bytes;
        if !(full || s.closed || Instant::now() >= due) {
            return Decision::WaitUntil(Some(due));
        }
        let batch = pop_batch(&mut s, limits);
        let more = !s.waiting.is_empty();
        drop(s);
        if more {
            // Another worker may take the rest at once.
            self.arrived.notify_one();
        }
        Decision::Take(batch)
    }

    /// Gives back the room a batch held, once it was sent or given up on.
    pub fn release(&self, batch: &Batch) {
        let mut s = self.lock();
        s.used_spans = s.used_spans.saturating_sub(batch.spans);
        s.used_bytes = s.used_bytes.saturating_sub(batch.bytes);
    }

    /// Refuses new items and lets workers take what waits without waiting for batches to fill.
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_waiters();
    }

    pub fn usage(&self) -> Usage {
        let s = self.lock();
        Usage {
            spans: s.used_spans,
            bytes: s.used_bytes,
        }
    }
}

/// Room held in the queue for one item (see [`Queue::reserve`]).
pub struct Reservation<'q> {
    queue: &'q Queue,
    spans: usize,
    bytes: usize,
}

impl Reservation<'_> {
    /// Queues the item in the room held (the counts are corrected to the item's real size).
    pub fn commit(self, item: Item) {
        let this = std::mem::ManuallyDrop::new(self);
        {
            let mut s = this.queue.lock();
            // What the bound counts must match what `release` will give back.
            s.used_spans = s.used_spans - this.spans + item.spans;
            s.used_bytes = s.used_bytes - this.bytes + item.payload.len();
            s.waiting_spans += item.spans;
            s.waiting_bytes += item.payload.len();
            s.waiting.push_back((Instant::now(), item));
        }
        this.queue.arrived.notify_one();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = self.queue.lock();
        s.used_spans = s.used_spans.saturating_sub(self.spans);
        s.used_bytes = s.used_bytes.saturating_sub(self.bytes);
    }
}

enum Decision {
    Take(Batch),
    Finished,
    /// Until the oldest item is due, or until something arrives (`None`).
    WaitUntil(Option<Instant>),
}

fn pop_batch(s: &mut State, limits: BatchLimits) -> Batch {
    let mut batch = Batch::default();
    while let Some((_, item)) = s.waiting.front() {
        let fits = batch.parts.is_empty()
            || (batch.spans + item.spans <= limits.max_spans
                && batch.bytes + item.payload.len() <= limits.max_bytes);
        if !fits {
            break;
        }
        let Some((_, item)) = s.waiting.pop_front() else {
            break;
        };
        s.waiting_spans -= item.spans;
        s.waiting_bytes -= item.payload.len();
        batch.spans += item.spans;
        batch.bytes += item.payload.len();
        batch.parts.push(item.payload);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(spans: usize, bytes: usize) -> Item {
        Item {
            payload: Bytes::from(vec![0u8; bytes]),
            spans,
        }
    }

    const LIMITS: BatchLimits = BatchLimits {
        max_spans: 10,
        max_bytes: 1000,
        timeout: Duration::from_millis(50),
    };

    #[test]
    fn refuses_past_either_bound_and_counts_taken_batches_until_released() {
        let q = Queue::new(QueueLimits {
            max_spans: 10,
            max_bytes: 100,
        });
        q.push(item(6, 10)).unwrap();
        assert!(matches!(
            q.push(item(5, 10)),
            Err(EnqueueError::Full { .. })
        ));
        assert!(matches!(
            q.push(item(1, 91)),
            Err(EnqueueError::Full { .. })
        ));
        q.push(item(4, 90)).unwrap();
        assert_eq!(
            q.usage(),
            Usage {
                spans: 10,
                bytes: 100
            }
        );
        q.close();
        assert_eq!(q.push(item(1, 1)), Err(EnqueueError::Closed));
    }

    #[tokio::test]
    async fn batches_by_count_then_by_time() {
        let q = Queue::new(QueueLimits {
            max_spans: 100,
            max_bytes: 10_000,
        });
        for _ in 0..12 {
            q.push(item(1, 10)).unwrap();
        }
        let full = q.take_batch(LIMITS).await.unwrap();
        assert_eq!((full.spans, full.parts.len(), full.bytes), (10, 10, 100));
        let started = Instant::now();
        let rest = q.take_batch(LIMITS).await.unwrap();
        assert_eq!(rest.spans, 2);
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Still counted until released.
        assert_eq!(q.usage().spans, 12);
        q.release(&full);
        q.release(&rest);
        assert_eq!(q.usage(), Usage { spans: 0, bytes: 0 });
    }

    #[tokio::test]
    async fn batches_by_bytes_and_close_flushes_at_once() {
        let q = Queue::new(QueueLimits {
            max_spans: 100,
            max_bytes: 10_000,
        });
        q.push(item(1, 600)).unwrap();
        q.push(item(1, 600)).unwrap();
        let first = q.take_batch(LIMITS).await.unwrap();
        assert_eq!(first.parts.len(), 1);
        q.close();
        let started = Instant::now();
        let second = q.take_batch(LIMITS).await.unwrap();
        assert_eq!(second.parts.len(), 1);
        assert!(started.elapsed() < Duration::from_millis(40));
        assert!(q.take_batch(LIMITS).await.is_none());
    }
}
