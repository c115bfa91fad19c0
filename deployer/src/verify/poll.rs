//! Asking again until the data shows up or the deadline passes: telemetry arrives seconds after
//! the requests that made it (scrape interval, batching), so one look is not enough, and a fixed
//! sleep would be either too short or wasted time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::http::{Backend, QueryError};

/// What one look found.
pub enum Attempt<T> {
    /// The data is there.
    Ready(T),
    /// Not (yet): what was seen, and the likely cause if it stays so.
    NotYet(Waiting),
    /// The request failed.
    Failed(QueryError),
}

/// The last thing seen before giving up, and why that may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub seen: String,
    pub hint: String,
}

impl Waiting {
    pub fn new(seen: impl Into<String>, hint: impl Into<String>) -> Self {
        Waiting {
            seen: seen.into(),
            hint: hint.into(),
        }
    }
}

/// Why polling stopped without the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// The deadline passed; the last look found this.
    Deadline(Waiting),
    /// A request failed in a way asking again will not fix, or the last look failed.
    Error(QueryError),
}

impl GaveUp {
    /// What to report: the last thing seen, and the likely cause.
    pub fn detail_and_hint(&self, backend: Backend, tenant: &str) -> (String, String) {
        match self {
            GaveUp::Deadline(waiting) => (waiting.seen.clone(), waiting.hint.clone()),
            GaveUp::Error(error) => (error.to_string(), error.hint(backend, tenant)),
        }
    }
}

/// The run's clock: when it started (latencies count from there) and when it must end.
#[derive(Debug, Clone, Copy)]
pub struct Poller {
    started: Instant,
    deadline: Instant,
    interval: Duration,
}

impl Poller {
    pub fn new(started: Instant, deadline: Instant, interval: Duration) -> Self {
        Poller {
            started,
            deadline,
            interval,
        }
    }

    pub fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    /// Calls `attempt` until it is ready, fails for good, or the deadline passes. Returns the
    /// value and the time from the start of the run until it was seen. The first look always
    /// gets at least one interval, so a check that could only start late still looks once.
    pub async fn poll<T, F, Fut>(&self, mut attempt: F) -> Result<(T, Duration), GaveUp>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut limit = self.deadline.max(Instant::now() + self.interval);
        let mut last: Option<GaveUp> = None;
        loop {
            let Ok(outcome) = tokio::time::timeout_at(limit, attempt()).await else {
                // What an earlier look saw says more than "the deadline passed mid-request".
                return Err(
                    last.unwrap_or_else(|| GaveUp::Error(self.deadline_passed_mid_request()))
                );
            };
            last = Some(match outcome {
                Attempt::Ready(value) => return Ok((value, self.since_start())),
                Attempt::Failed(error) if error.is_permanent() => {
                    return Err(GaveUp::Error(error));
                }
                Attempt::Failed(error) => GaveUp::Error(error),
                Attempt::NotYet(waiting) => GaveUp::Deadline(waiting),
            });
            let next = Instant::now() + self.interval;
            if next >= self.deadline {
                return Err(
                    last.unwrap_or_else(|| GaveUp::Error(self.deadline_passed_mid_request()))
                );
            }
            limit = self.deadline;
            tokio::time::sleep_until(next).await;
        }
    }

    fn deadline_passed_mid_request(&self) -> QueryError {
        QueryError::Timeout {
            url: "the backend".to_string(),
            after: self.deadline.saturating_duration_since(self.started),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn poller(deadline_ms: u64) -> Poller {
        let now = Instant::now();
        Poller::new(
            now,
            now + Duration::from_millis(deadline_ms),
            Duration::from_millis(10),
        )
    }

    #[tokio::test]
    async fn asks_again_until_ready() {
        let calls = AtomicU32::new(0);
        let (value, latency) = poller(2000)
            .poll(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Attempt::NotYet(Waiting::new("nothing", "wait"))
                } else {
                    Attempt::Ready(7)
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(latency >= Duration::from_millis(30), "{latency:?}");
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_look() {
        let outcome = poller(100)
            .poll(|| async { Attempt::<()>::NotYet(Waiting::new("empty", "remote_write down")) })
            .await;
        assert_eq!(
            outcome.unwrap_err(),
            GaveUp::Deadline(Waiting::new("empty", "remote_write down"))
        );
    }

    #[tokio::test]
    async fn stops_at_once_on_a_permanent_error() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let outcome = poller(5000)
            .poll(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Attempt::<()>::Failed(QueryError::NotFound {
                    url: "u".into(),
                    body: String::new(),
                })
            })
            .await;
        assert!(matches!(
            outcome,
            Err(GaveUp::Error(QueryError::NotFound { .. }))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_late_check_still_looks_once() {
        let now = Instant::now();
        let late = Poller::new(now, now, Duration::from_millis(50));
        let (value, _) = late.poll(|| async { Attempt::Ready(1) }).await.unwrap();
        assert_eq!(value, 1);
    }

    #[tokio::test]
    async fn a_hung_request_ends_at_the_deadline() {
        let started = Instant::now();
        let outcome = poller(100)
            .poll(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Attempt::Ready(())
            })
            .await;
        assert!(matches!(
            outcome,
            Err(GaveUp::Error(QueryError::Timeout { .. }))
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
