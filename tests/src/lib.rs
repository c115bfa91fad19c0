//! Real peers for the project's end-to-end tests (this crate is the workspace's `tests/`):
//!
//! - [`otlp`]: an OTLP trace receiver (gRPC and HTTP/protobuf) on port 0 that keeps every
//!   span it gets, with the request headers, for assertions.
//! - [`prometheus`]: a real Prometheus server (Debian's `prometheus` binary) scraping targets,
//!   with its HTTP API for queries and exemplars.
//! - [`process`]: runs one of the project's binaries, collects its JSON log lines from stdout
//!   and finds the address it listens on.

pub mod otlp;
pub mod process;
pub mod prometheus;

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
