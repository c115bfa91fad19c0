//! Did the central Mimir, Loki and Tempo receive the run's data, in proportion to the requests
//! sent? Queried through port-forwards to the central cluster's read paths, tenant `remote01`.
//!
//! Kept in this one file on purpose: `deployer verify` (module `verify`, written alongside) has
//! fuller Mimir/Loki/Tempo clients; when they land, these three queries can move onto them.
//!
//! The services are the ones Grafana's data sources use (manifests/central/monitor.yaml).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::checks::{Check, Verdict, proportion_verdict, ratio};
use super::http::Http;
use super::prometheus::{self, QueryError};

/// Data from lgtm-remote is this tenant (DESIGN.md section 1).
pub const TENANT: &str = "remote01";
/// The `cluster` label the remote Prometheus and log shipper add (manifests/remote/monitor.yaml,
/// manifests/remote/vector.yaml).
pub const REMOTE_CLUSTER_LABEL: &str = "lgtm-remote";

/// (namespace, service, port, path prefix of the API) on lgtm-central.
pub type Backend = (&'static str, &'static str, u16, &'static str);
pub const MIMIR: Backend = ("mimir", "mimir-query-frontend", 8080, "/prometheus");
pub const LOKI: Backend = ("loki", "loki-read", 3100, "");
pub const TEMPO: Backend = ("tempo", "tempo-query-frontend", 3200, "");

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

/// Where to query each backend (port-forward URLs, with the API prefix).
pub struct BackendUrls {
    pub mimir: String,
    pub loki: String,
    pub tempo: String,
}

/// The run, as the backends should have seen it.
#[derive(Debug, Clone)]
pub struct RunWindow {
    pub job_name: String,
    pub started: SystemTime,
    pub requests_sent: u64,
}

/// Measures the three backends, each until it passes or `settle` has passed since the run ended
/// (data takes a scrape interval plus remote write to reach Mimir, a batch to reach Loki).
pub async fn measure(
    http: &Http,
    urls: &BackendUrls,
    run: &RunWindow,
    settle: Duration,
) -> Vec<Check> {
    let deadline = tokio::time::Instant::now() + settle;
    let (mimir, loki, tempo) = futures::join!(
        until_pass(deadline, || mimir_check(http, &urls.mimir, run)),
        until_pass(deadline, || loki_check(http, &urls.loki, run)),
        until_pass(deadline, || tempo_check(http, &urls.tempo, run)),
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

async fn mimir_check(http: &Http, base: &str, run: &RunWindow) -> Check {
    let query = mimir_query(window_since(run.started));
    let value = prometheus::instant(http, base, &query, Some(TENANT)).await;
    judge_count("mimir: app requests counted", value, run.requests_sent)
        .hint(
            "Mimir has fewer of the app's requests than were sent: see the prometheus checks \
             above; check the link (`deployer status`) and that remote01 is accepted",
        )
        .query(format!("{query}  (tenant {TENANT})"))
}

async fn loki_check(http: &Http, base: &str, run: &RunWindow) -> Check {
    let query = loki_query(window_since(run.started));
    let value = loki_instant(http, base, &query).await;
    judge_count("loki: app log lines", value, run.requests_sent)
        .hint(
            "Loki has fewer request lines than requests sent: check the log shipper \
             (log-shipper in observability) and loki-write-lgtm-central (`deployer status`)",
        )
        .query(format!("{query}  (tenant {TENANT})"))
}

async fn loki_instant(http: &Http, base: &str, logql: &str) -> Result<Option<f64>, QueryError> {
    let url = format!("{base}/loki/api/v1/query");
    let answer = http
        .get_json(&url, &[("query", logql.to_string())], Some(TENANT))
        .await?;
    prometheus::instant_value(&answer)
}

async fn tempo_check(http: &Http, base: &str, run: &RunWindow) -> Check {
    let query = tempo_query(&run.job_name);
    let found = tempo_search(http, base, &query, run.started).await;
    let expected = run.requests_sent.min(TEMPO_SEARCH_LIMIT);
    judge_count("tempo: the run's traces", found, expected)
        .hint(
            "Tempo has fewer of the run's traces than expected: see the agent checks above, \
             then tempo-distributor's logs on the central cluster",
        )
        .query(format!(
            "search {query} (limit {TEMPO_SEARCH_LIMIT}, tenant {TENANT})"
        ))
}

/// How many traces a TraceQL search finds since `started` (Tempo's /api/search answer).
async fn tempo_search(
    http: &Http,
    base: &str,
    traceql: &str,
    started: SystemTime,
) -> Result<Option<f64>, QueryError> {
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let params = [
        ("q", traceql.to_string()),
        ("start", unix(started).to_string()),
        ("end", (unix(SystemTime::now()) + 1).to_string()),
        ("limit", TEMPO_SEARCH_LIMIT.to_string()),
    ];
    let answer = http
        .get_json(&format!("{base}/api/search"), &params, Some(TENANT))
        .await?;
    traces_found(&answer)
}

/// The number of traces in a Tempo search answer (`{"traces": [...], "metrics": {...}}`).
pub fn traces_found(answer: &Value) -> Result<Option<f64>, QueryError> {
    match &answer["traces"] {
        Value::Array(traces) => Ok(Some(traces.len() as f64)),
        // Tempo leaves `traces` out when nothing matched.
        Value::Null if answer.get("metrics").is_some() => Ok(Some(0.0)),
        _ => Err(QueryError::Shape(
            "a Tempo search answer has `traces` or `metrics`".into(),
        )),
    }
}

/// A count against what was expected: pass at [`PASS_SHARE`], warn above zero, fail at zero.
pub fn judge_count(name: &str, value: Result<Option<f64>, QueryError>, expected: u64) -> Check {
    let hint = "is the central cluster up? `deployer status`";
    let count = match value {
        Err(error) => return Check::unmeasured(name, error, hint),
        Ok(count) => count.unwrap_or(0.0),
    };
    let detail = format!("{count:.0} for {expected} requests sent");
    match ratio(count, expected as f64) {
        None => Check::new(name, Verdict::Warn, format!("{detail}: nothing to compare")),
        Some(share) => Check::new(name, proportion_verdict(share, PASS_SHARE), detail),
    }
}
