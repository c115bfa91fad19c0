//! A short burst of requests to the demo app, so fresh metrics, logs and traces are on their way
//! when the checks start (the steady loadgen also sends some; the burst makes it sure and quick).
//!
//! Each request carries a sampled `traceparent` with a trace id of ours. Those traces start at
//! app, not at loadgen, so the trace check must not pick them when it looks for a trace that
//! spans loadgen -> app -> db: [`Burst::trace_ids`] says which ones to leave out.

use tokio::time::Instant;

use super::hints;
use super::http::{BackendClient, QueryError};
use super::report::{CheckKind, CheckResult, Status};

/// The app's list endpoint (demo-app/src/serve/app.rs): app calls db, so one request touches both.
pub const LIST_PATH: &str = "/api/links";
/// Requests in flight at once: quick, without flooding a PoC cluster.
const CONCURRENCY: usize = 4;

/// The burst's row, and the trace ids its requests started.
#[derive(Debug, Clone)]
pub struct Burst {
    pub row: CheckResult,
    pub trace_ids: Vec<String>,
}

/// Sends `count` requests to the app; passes if any succeeded (the demo may inject failures on
/// purpose, so a few errors are expected). `None` or a count of 0 skips. The row's latency is
/// how long the burst took.
pub async fn run_burst(app: Option<&BackendClient>, count: u32) -> Burst {
    let params = [("limit", "10".to_string())];
    let Some(app) = app.filter(|_| count > 0) else {
        return Burst {
            row: CheckResult::not_passed(
                None,
                CheckKind::Burst,
                Status::Skip,
                format!("GET {LIST_PATH}"),
                "no burst: relying on the steady loadgen".to_string(),
                None,
            ),
            trace_ids: Vec::new(),
        };
    };
    let query = format!(
        "{} x{count}, each with a sampled traceparent",
        app.describe(LIST_PATH, &params)
    );
    let trace_ids: Vec<String> = (0..count).map(|_| new_trace_id()).collect();
    let began = Instant::now();
    let outcomes = send_all(app, &params, &trace_ids).await;
    let took = began.elapsed();
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let last_error = outcomes.iter().rev().find_map(|o| o.as_ref().err());
    let detail = match last_error {
        None => format!("{ok} of {count} answered 2xx"),
        Some(error) => format!("{ok} of {count} answered 2xx; last error: {error}"),
    };
    let row = if ok > 0 {
        CheckResult::pass(None, CheckKind::Burst, query, took, detail)
    } else {
        CheckResult::not_passed(
            None,
            CheckKind::Burst,
            Status::Fail,
            query,
            detail,
            Some(hints::app_unreachable()),
        )
    };
    Burst { row, trace_ids }
}

async fn send_all(
    app: &BackendClient,
    params: &[(&str, String)],
    trace_ids: &[String],
) -> Vec<Result<(), QueryError>> {
    use futures::StreamExt;
    futures::stream::iter(trace_ids)
        .map(|trace_id| async move {
            let traceparent = traceparent(trace_id);
            app.get_with(LIST_PATH, params, Some(("traceparent", &traceparent)))
                .await
                .map(drop)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// 32 lowercase hex digits, never all zero (W3C trace context calls that invalid).
fn new_trace_id() -> String {
    format!("{:032x}", rand::random::<u128>().max(1))
}

/// W3C `traceparent`: version 00, our trace id, a random parent span id, flags 01 (sampled).
fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{:016x}-01", rand::random::<u64>().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_sampled_w3c_headers() {
        let id = new_trace_id();
        assert_eq!(id.len(), 32);
        let header = traceparent(&id);
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], id);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
    }
}
