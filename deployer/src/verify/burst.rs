//! A short burst of requests to the demo app, so fresh metrics, logs and traces are on their way
//! when the checks start (the steady loadgen also sends some; the burst makes it sure and quick).

use tokio::time::Instant;

use super::hints;
use super::http::{BackendClient, QueryError};
use super::report::{CheckKind, CheckResult, Status};

/// The app's list endpoint (demo-app/src/serve/app.rs): app calls db, so one request touches both.
pub const LIST_PATH: &str = "/api/links";
/// Requests in flight at once: quick, without flooding a PoC cluster.
const CONCURRENCY: usize = 4;

/// Sends `count` requests to the app; passes if any succeeded (the demo may inject failures on
/// purpose, so a few errors are expected). `None` or a count of 0 skips.
/// Its latency is how long the burst took.
pub async fn run_burst(app: Option<&BackendClient>, count: u32) -> CheckResult {
    let params = [("limit", "10".to_string())];
    let Some(app) = app.filter(|_| count > 0) else {
        return CheckResult::not_passed(
            None,
            CheckKind::Burst,
            Status::Skip,
            format!("GET {LIST_PATH}"),
            "no burst: relying on the steady loadgen".to_string(),
            None,
        );
    };
    let query = format!("{} x{count}", app.describe(LIST_PATH, &params));
    let began = Instant::now();
    let outcomes = send_all(app, &params, count).await;
    let took = began.elapsed();
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let last_error = outcomes.iter().rev().find_map(|o| o.as_ref().err());
    let detail = match last_error {
        None => format!("{ok} of {count} answered 2xx"),
        Some(error) => format!("{ok} of {count} answered 2xx; last error: {error}"),
    };
    if ok > 0 {
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
    }
}

async fn send_all(
    app: &BackendClient,
    params: &[(&str, String)],
    count: u32,
) -> Vec<Result<(), QueryError>> {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .map(|_| async move { app.get(LIST_PATH, params).await.map(drop) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}
