//! Real peers for the project's end-to-end tests (this crate is the workspace's `tests/`):
//!
//! - [`otlp`]: an OTLP trace receiver (gRPC and HTTP/protobuf) on port 0 that keeps every
//!   span it gets, with the request headers, for assertions.
//! - [`prometheus`]: a real Prometheus server (Debian's `prometheus` binary) scraping targets,
//!   with its HTTP API for queries and exemplars.
//! - [`loki`]: a fake Loki push endpoint; [`kube_api`]: a fake Kubernetes API serving Events.
//! - [`cut_proxy`]: a TCP proxy that holds calls in flight and then breaks every connection
//!   at once, like a killed upstream.
//! - [`raw_grpc`]: a tonic codec for sending pre-encoded (or malformed) protobuf as is.
//! - [`process`]: runs one of the project's binaries, collects its JSON log lines from stdout
//!   and finds the address it listens on; [`write_executable`] makes a fake tool.

pub mod cut_proxy;
pub mod kube_api;
pub mod loki;
pub mod otlp;
pub mod process;
pub mod prometheus;
pub mod raw_grpc;

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

/// Sums every sample of a metric family in a Prometheus text exposition (all label sets), or
/// only those whose labels contain `label` (e.g. `transport="grpc"`).
pub fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            if label.is_some_and(|want| !rest.contains(want)) {
                return None;
            }
            rest.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Writes `contents` as an executable at `path` (mode 755), through `install(1)` from a
/// `<path>.source` file beside it. Not written by this process: its descriptor could be
/// inherited by a child a parallel test forks at that moment, and running the file would then
/// fail with ETXTBSY ("Text file busy") until that child execs.
pub fn write_executable(path: &std::path::Path, contents: &str) {
    let mut source = path.as_os_str().to_owned();
    source.push(".source");
    std::fs::write(&source, contents).unwrap();
    let installed = std::process::Command::new("install")
        .args(["-m", "755"])
        .arg(&source)
        .arg(path)
        .status()
        .unwrap();
    assert!(installed.success(), "install {}", path.display());
}
