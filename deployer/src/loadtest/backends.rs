//! Did the central Mimir, Loki and Tempo receive the run's data, in proportion to the requests
//! sent? Queried through port-forwards to the central cluster's read paths, tenant `remote01`.
//!
//! The requests and the answers' parsing are `verify`'s ([`crate::verify::http`],
//! [`crate::verify::prometheus`], [`crate::verify::tempo`]); this file has only what loadtest asks
//! and how it judges the counts. The services are the ones Grafana's data sources use
//! (manifests/central/monitor.yaml).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::checks::{Check, Verdict, proportion_verdict, ratio};
use super::prometheus;
use crate::verify::http::{Backend as BackendKind, BackendClient, QueryError};
use crate::verify::options::REMOTE_TENANT;

/// Data from lgtm-remote is this tenant (DESIGN.md section 1).
pub const TENANT: &str = REMOTE_TENANT;
/// The `cluster` label the remote Prometheus and log shipper add (manifests/remote/monitor.yaml,
/// manifests/remote/vector.yaml).
pub use crate::verify::options::REMOTE_CLUSTER_LABEL;

/// At least this share of the expected count passes (increase() extrapolates at the window's
/// edges, and the last seconds may still be on their way).
const PASS_SHARE: f64 = 0.9;
/// Most traces one Tempo search returns; the check compares against min(sent, this).
pub const TEMPO_SEARCH_LIMIT: u64 = 200;

/// The app's request counter in Mimir over the last `window`. The demo's steady loadgen adds its
/// own requests, so the increase is at least the run's.
pub fn mimir_query(window: Duration) -> String {
    format!(
        "sum(increase(http_server_request_duration_seconds_count{{cluster=\"{REMOTE_CLUSTER_LABEL}\",namespace=\"demo\",job=\"app\"}}[{}s]))",
        window.as_secs().max(1)
    )
}

/// The app's "request served" log lines (one per request) in Loki over the last `window`.
pub fn loki_query(window: Duration) -> String {
    format!(
        "sum(count_over_time({{cluster=\"{REMOTE_CLUSTER_LABEL}\",namespace=\"demo\",app=\"app\"}} |= \"request served\" [{}s]))",
        window.as_secs().max(1)
    )
}

/// The run's own traces: every span of the Job's loadgen carries `loadtest.run=<job>`.
pub fn tempo_query(job_name: &str) -> String {
    format!(
        "{{ resource.{}=\"{job_name}\" }}",
        super::job::RUN_ATTRIBUTE
    )
}

/// A client per backend, each with the tenant header, on its port-forward's URL.
pub struct BackendClients {
    pub mimir: BackendClient,
    pub loki: BackendClient,
    pub tempo: BackendClient,
}

/// The run, as the backends should have seen it.
#[derive(Debug, Clone)]
pub struct RunWindow {
    pub job_name: String,
    pub started: SystemTime,
    pub requests_sent: u64,
}

/// A count that could not be had: why, and what to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmeasured {
    pub why: String,
    pub hint: String,
}

impl Unmeasured {
    fn request(error: QueryError, backend: BackendKind) -> Self {
        Unmeasured {
            hint: error.hint(backend, TENANT),
            why: error.to_string(),
        }
    }

    fn answer(why: String, backend: BackendKind) -> Self {
        Unmeasured {
            why,
            hint: format!(
                "the answer is not the documented API shape: is the forward really to {}?",
                backend.service()
            ),
        }
    }
}

type Count = Result<Option<f64>, Unmeasured>;

/// Measures the three backends, each until it passes or `settle` has passed since the run ended
/// (data takes a scrape interval plus remote write to reach Mimir, a batch to reach Loki).
pub async fn measure(clients: &BackendClients, run: &RunWindow, settle: Duration) -> Vec<Check> {
    let deadline = tokio::time::Instant::now() + settle;
    let (mimir, loki, tempo) = futures::join!(
        until_pass(deadline, || mimir_check(&clients.mimir, run)),
        until_pass(deadline, || loki_check(&clients.loki, run)),
        until_pass(deadline, || tempo_check(&clients.tempo, run)),
    );
    vec![mimir, loki, tempo]
}

/// Polls `check` every few seconds until it passes or the deadline; returns the last result.
async fn until_pass<F, Fut>(deadline: tokio::time::Instant, mut check: F) -> Check
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check>,
{
    loop {
        let result = check().await;
        let next = tokio::time::Instant::now() + Duration::from_secs(5);
        if result.verdict == Verdict::Pass || next > deadline {
            return result;
        }
        tokio::time::sleep_until(next).await;
    }
}

fn window_since(started: SystemTime) -> Duration {
    // Rounded up, so the window covers the first request.
    SystemTime::now()
        .duration_since(started)
        .unwrap_or_default()
        .saturating_add(Duration::from_secs(1))
}

/// An instant query (Mimir's Prometheus API and Loki's share the answer's shape).
async fn instant(client: &BackendClient, path: &str, query: &str, backend: BackendKind) -> Count {
    let body = client
        .get(path, &[("query", query.to_string())])
        .await
        .map_err(|e| Unmeasured::request(e, backend))?;
    prometheus::instant_value(&body).map_err(|why| Unmeasured::answer(why, backend))
}

async fn mimir_check(client: &BackendClient, run: &RunWindow) -> Check {
    let query = mimir_query(window_since(run.started));
    let value = instant(client, "/api/v1/query", &query, BackendKind::Mimir).await;
    judge_count("mimir: app requests counted", value, run.requests_sent)
        .hint(
            "Mimir has fewer of the app's requests than were sent: see the prometheus checks \
             above; check the link (`deployer status`) and that remote01 is accepted",
        )
        .query(client.describe("/api/v1/query", &[("query", query)]))
}

async fn loki_check(client: &BackendClient, run: &RunWindow) -> Check {
    let query = loki_query(window_since(run.started));
    let value = instant(client, "/loki/api/v1/query", &query, BackendKind::Loki).await;
    judge_count("loki: app log lines", value, run.requests_sent)
        .hint(
            "Loki has fewer request lines than requests sent: check the log shipper \
             (log-shipper in observability) and loki-write-lgtm-central (`deployer status`)",
        )
        .query(client.describe("/loki/api/v1/query", &[("query", query)]))
}

async fn tempo_check(client: &BackendClient, run: &RunWindow) -> Check {
    let params = tempo_params(&run.job_name, run.started);
    let found = tempo_search(client, &params).await;
    let expected = run.requests_sent.min(TEMPO_SEARCH_LIMIT);
    judge_count("tempo: the run's traces", found, expected)
        .hint(
            "Tempo has fewer of the run's traces than expected: see the agent checks above, \
             then tempo-distributor's logs on the central cluster",
        )
        .query(client.describe("/api/search", &params))
}

/// A TraceQL search for the run's traces since it started.
fn tempo_params(job_name: &str, started: SystemTime) -> Vec<(&'static str, String)> {
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    vec![
        ("q", tempo_query(job_name)),
        ("start", unix(started).to_string()),
        ("end", (unix(SystemTime::now()) + 1).to_string()),
        ("limit", TEMPO_SEARCH_LIMIT.to_string()),
    ]
}

/// How many traces the search found (Tempo's /api/search answer, read by `verify`).
async fn tempo_search(client: &BackendClient, params: &[(&str, String)]) -> Count {
    let body = client
        .get("/api/search", params)
        .await
        .map_err(|e| Unmeasured::request(e, BackendKind::Tempo))?;
    let traces = crate::verify::tempo::parse_search(&body)
        .map_err(|why| Unmeasured::answer(why, BackendKind::Tempo))?;
    Ok(Some(traces.len() as f64))
}

/// A count against what was expected: pass at `PASS_SHARE` (90%), warn above zero, fail at zero.
pub fn judge_count(name: &str, value: Count, expected: u64) -> Check {
    let count = match value {
        Err(unmeasured) => return Check::unmeasured(name, unmeasured.why, &unmeasured.hint),
        Ok(count) => count.unwrap_or(0.0),
    };
    let detail = format!("{count:.0} for {expected} requests sent");
    match ratio(count, expected as f64) {
        None => Check::new(name, Verdict::Warn, format!("{detail}: nothing to compare")),
        Some(share) => Check::new(name, proportion_verdict(share, PASS_SHARE), detail),
    }
}
