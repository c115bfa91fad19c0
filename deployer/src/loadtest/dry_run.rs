//! `deployer loadtest --dry-run`: the Job it would apply and every scrape and query it would run.

use std::fmt::Write;
use std::time::Duration;

use super::agent::AGENT_SERVICE;
use super::backends::{self, LOKI, MIMIR, TEMPO, TEMPO_SEARCH_LIMIT, TENANT};
use super::job::{CONTAINER, loadgen_job};
use super::prometheus::{self, PROMETHEUS_SERVICE};
use super::{LoadtestSpec, NAMESPACE};
use crate::k8s::FIELD_MANAGER;

pub fn describe(
    spec: &LoadtestSpec,
    remote_context: &str,
    central_context: &str,
    settle: Duration,
) -> String {
    let job = loadgen_job(spec);
    let yaml = serde_saphyr::to_string(&job)
        .unwrap_or_else(|e| format!("(the Job does not render as YAML: {e})\n"));
    // The real window is the run's measured length; the planned one is the best guess.
    let window = spec.duration;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "1. scrape {}/service/{}:{}/metrics in context {remote_context} (the agent's span counters, before)",
        AGENT_SERVICE.0, AGENT_SERVICE.1, AGENT_SERVICE.2
    );
    let _ = writeln!(
        out,
        "2. apply (server-side, field manager {FIELD_MANAGER}) in context {remote_context}:\n---\n{yaml}---"
    );
    let _ = writeln!(
        out,
        "3. follow the log of its pod (container {CONTAINER}, namespace {NAMESPACE}) until it ends; \
         read the loadgen's JSON summary from it"
    );
    let _ = writeln!(out, "4. scrape the agent again, after its queue drains");
    let _ = writeln!(
        out,
        "5. query {}/service/{}:{} in context {remote_context}:",
        PROMETHEUS_SERVICE.0, PROMETHEUS_SERVICE.1, PROMETHEUS_SERVICE.2
    );
    for query in [
        prometheus::failed_query(window),
        prometheus::retried_query(window),
        prometheus::LAG_QUERY.to_string(),
    ] {
        let _ = writeln!(out, "   {query}");
    }
    let _ = writeln!(
        out,
        "6. in context {central_context}, tenant {TENANT}, until each passes or {}s after the run:",
        settle.as_secs()
    );
    let _ = writeln!(
        out,
        "   {}/service/{}:{}{}/api/v1/query  {}",
        MIMIR.0,
        MIMIR.1,
        MIMIR.2,
        MIMIR.3,
        backends::mimir_query(window)
    );
    let _ = writeln!(
        out,
        "   {}/service/{}:{}/loki/api/v1/query  {}",
        LOKI.0,
        LOKI.1,
        LOKI.2,
        backends::loki_query(window)
    );
    let _ = writeln!(
        out,
        "   {}/service/{}:{}/api/search  {} (limit {TEMPO_SEARCH_LIMIT})",
        TEMPO.0,
        TEMPO.1,
        TEMPO.2,
        backends::tempo_query(&spec.job_name)
    );
    let _ = writeln!(
        out,
        "(windows shown for the planned {}s; a run uses its measured length)",
        window.as_secs()
    );
    out
}
