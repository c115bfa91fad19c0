//! Reading request bodies within one global budget: the bytes buffered across every request
//! in flight, whatever the number of connections or HTTP/2 streams, never exceed it, and a
//! body that does not arrive within a deadline is given up. A request that finds the budget
//! spent is refused at once with a retry hint (HTTP 503 / gRPC RESOURCE_EXHAUSTED with
//! RetryInfo) instead of waiting, so stalled clients cannot queue up memory.

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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;

use super::memory::ReturnToOs;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the agent is buffering as many request bytes as it may ({budget}); retry later")]
    Busy { budget: usize },
    #[error("the body did not arrive within {0:?}")]
    Stalled(Duration),
    #[error("request body: {0}")]
    Broken(String),
}

/// How long a request refused for a spent budget is asked to wait.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The bytes all request bodies may hold at once.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
    /// Told when a large request's buffers are freed.
    memory: Arc<ReturnToOs>,
}

impl BodyBudget {
    pub fn new(limit: usize, memory: Arc<ReturnToOs>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            memory,
        })
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }
}

/// Budget held by one body; given back when dropped (after the request is queued or
/// refused), which is also when the request's buffers are freed: a large request then asks
/// for its memory to go back to the OS.
#[derive(Debug)]
pub struct Held {
    budget: Arc<BodyBudget>,
    bytes: usize,
    /// The largest buffer made from this body (inflated or re-encoded), when larger.
    largest_copy: usize,
}

impl Held {
    /// Records a buffer made from this body (its inflated or re-encoded copy), so that its
    /// size counts in deciding whether the request was large.
    pub fn made_copy(&mut self, bytes: usize) {
        self.largest_copy = self.largest_copy.max(bytes);
    }

    fn grow(&mut self, bytes: usize) -> Result<(), BodyError> {
        if !self.budget.take(bytes) {
            return Err(BodyError::Busy {
                budget: self.budget.limit,
            });
        }
        // Cannot overflow: `take` kept the sum of all holdings within the limit.
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.memory.freed(self.bytes.max(self.largest_copy));
    }
}

/// Limits for reading one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Reads `body` whole, holding budget for every byte of buffer capacity it uses.
/// `declared` is the Content-Length, when the client sent one.
pub async fn read(
    body: Body,
    declared: Option<usize>,
    limits: BodyLimits,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Held), BodyError> {
    let too_large = BodyError::TooLarge {
        limit: limits.max_bytes,
    };
    let mut held = Held {
        budget: budget.clone(),
        bytes: 0,
        largest_copy: 0,
    };
    let mut buf = Vec::new();
    if let Some(n) = declared {
        if n > limits.max_bytes {
            return Err(too_large);
        }
        held.grow(n)?;
        buf.reserve_exact(n);
    }
    let collect = async {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let needed = buf.len().saturating_add(data.len());
            if needed > limits.max_bytes {
                return Err(too_large.clone());
            }
            if needed > buf.capacity() {
                // Grow by doubling up to the limit, and hold budget for the capacity itself.
                let capacity = needed
                    .max(buf.capacity().saturating_mul(2))
                    .min(limits.max_bytes);
                held.grow(capacity.saturating_sub(buf.capacity()))?;
                buf.reserve_exact(capacity.saturating_sub(buf.len()));
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.timeout, collect).await {
        Ok(result) => result?,
        Err(_) => return Err(BodyError::Stalled(limits.timeout)),
    }
    Ok((Bytes::from(buf), held))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BodyLimits = BodyLimits {
        max_bytes: 100,
        timeout: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn holds_budget_until_dropped_and_refuses_past_it() {
        let budget = BodyBudget::new(150, ReturnToOs::new());
        let (first, held) = read(Body::from(vec![1u8; 80]), Some(80), LIMITS, &budget)
            .await
            .unwrap();
        assert_eq!(first.len(), 80);
        assert_eq!(
            read(Body::from(vec![1u8; 80]), Some(80), LIMITS, &budget)
                .await
                .unwrap_err(),
            BodyError::Busy { budget: 150 }
        );
        assert_eq!(
            read(Body::from(vec![1u8; 80]), None, LIMITS, &budget)
                .await
                .unwrap_err(),
            BodyError::Busy { budget: 150 },
            "without a Content-Length too"
        );
        drop(held);
        assert!(
            read(Body::from(vec![1u8; 80]), None, LIMITS, &budget)
                .await
                .is_ok()
        );
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert_eq!(
            read(Body::from(vec![1u8; 101]), None, LIMITS, &budget)
                .await
                .unwrap_err(),
            BodyError::TooLarge { limit: 100 }
        );
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_gives_its_budget_back() {
        let budget = BodyBudget::new(1000, ReturnToOs::new());
        use futures::StreamExt;
        let chunk: Result<Bytes, std::io::Error> = Ok(Bytes::from_static(b"partial"));
        let body =
            Body::from_stream(futures::stream::iter([chunk]).chain(futures::stream::pending()));
        let limits = BodyLimits {
            max_bytes: 100,
            timeout: Duration::from_millis(50),
        };
        let err = read(body, Some(90), limits, &budget).await.unwrap_err();
        assert_eq!(err, BodyError::Stalled(Duration::from_millis(50)));
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }
}
