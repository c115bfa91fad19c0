//! Measuring the pipeline through port-forwards: the agent's /metrics and the remote Prometheus
//! on lgtm-remote, Mimir/Loki/Tempo on lgtm-central. A measurement that cannot be made becomes a
//! warning naming why; it never hides the load test's own result.

use std::time::Duration;

use kube::Client;

use super::agent::{self, SpanCounters};
use super::backends::{self, BackendClients, RunWindow, TENANT};
use super::checks::Check;
use super::prometheus;
use crate::k8s::{KubeError, PortForward};
use crate::stack::endpoints::{
    LOKI_READ, MIMIR_QUERY_FRONTEND, REMOTE_AGENT_ADMIN, REMOTE_PROMETHEUS, TEMPO_QUERY_FRONTEND,
};
use crate::verify::http::{BackendClient, http_client};
use crate::verify::prometheus::PROMETHEUS_PREFIX;

/// Each request's limit; the forwards are local and the backends answer in seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A client for `base` (a forward's URL plus the API's prefix), as `tenant` when given.
pub fn client(base: &str, tenant: Option<&str>) -> BackendClient {
    BackendClient::new(http_client(REQUEST_TIMEOUT), base, tenant, REQUEST_TIMEOUT)
}

/// How long to wait after the run for the agent to empty its queue before the last scrape.
const AGENT_DRAIN: Duration = Duration::from_secs(15);

/// The agent's span counters now, through a fresh forward (the agent's pod may change).
pub async fn scrape_agent(kube: &Client) -> Result<SpanCounters, String> {
    let forward = REMOTE_AGENT_ADMIN
        .forward(kube)
        .await
        .map_err(|e| e.to_string())?;
    let text = client(&forward.url(), None)
        .get("/metrics", &[])
        .await
        .map_err(|e| e.to_string())?;
    SpanCounters::from_exposition(&text).map_err(|e| e.to_string())
}

/// Scrapes until the agent's queue is empty (or `AGENT_DRAIN` (15 s) has passed), so spans still on
/// their way are not counted as missing.
pub async fn scrape_agent_drained(kube: &Client) -> Result<SpanCounters, String> {
    let deadline = tokio::time::Instant::now() + AGENT_DRAIN;
    loop {
        let counters = scrape_agent(kube).await?;
        if counters.queue_size == 0.0 || tokio::time::Instant::now() >= deadline {
            return Ok(counters);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub fn agent_checks(
    before: &Result<SpanCounters, String>,
    after: &Result<SpanCounters, String>,
    requests_sent: u64,
) -> Vec<Check> {
    match (before, after) {
        (Ok(before), Ok(after)) => {
            agent::judge(after.increase_since(before).as_ref(), requests_sent)
        }
        (Err(error), _) | (_, Err(error)) => vec![Check::unmeasured(
            "agent: spans",
            error,
            "is the telemetry agent running? (`deployer status`, namespace observability)",
        )],
    }
}

pub async fn prometheus_checks(kube: &Client, window: Duration) -> Vec<Check> {
    match REMOTE_PROMETHEUS.forward(kube).await {
        Ok(forward) => prometheus::measure(&client(&forward.url(), None), window).await,
        Err(error) => vec![Check::unmeasured(
            "prometheus: remote write",
            error,
            "is the remote Prometheus running? (`deployer status`, namespace observability)",
        )],
    }
}

/// Mimir, Loki and Tempo on the central cluster; `central` is None when its client could not
/// be made (the error says why).
pub async fn backend_checks(
    central: Result<Client, KubeError>,
    run: &RunWindow,
    settle: Duration,
) -> Vec<Check> {
    let unmeasured = |error: &dyn std::fmt::Display| {
        ["mimir", "loki", "tempo"]
            .iter()
            .map(|name| {
                Check::unmeasured(
                    &format!("{name}: the run's data"),
                    error,
                    "is the central cluster up? `deployer status`",
                )
            })
            .collect()
    };
    let kube = match central {
        Ok(kube) => kube,
        Err(error) => return unmeasured(&error),
    };
    let forwards = futures::try_join!(
        MIMIR_QUERY_FRONTEND.forward(&kube),
        LOKI_READ.forward(&kube),
        TEMPO_QUERY_FRONTEND.forward(&kube),
    );
    let (mimir, loki, tempo) = match forwards {
        Ok(forwards) => forwards,
        Err(error) => return unmeasured(&error),
    };
    let on = |forward: &PortForward, prefix: &str| {
        client(&format!("{}{prefix}", forward.url()), Some(TENANT))
    };
    let clients = BackendClients {
        mimir: on(&mimir, PROMETHEUS_PREFIX),
        loki: on(&loki, ""),
        tempo: on(&tempo, ""),
    };
    backends::measure(&clients, run, settle).await
}
