//! `deployer loadtest --dry-run`: the Job it would apply and every scrape and query it would run.

use std::fmt::Write;
use std::time::Duration;

use super::backends::{self, TEMPO_SEARCH_LIMIT, TENANT};
use super::job::{CONTAINER, loadgen_job};
use super::prometheus;
use super::{LoadtestSpec, NAMESPACE};
use crate::k8s::FIELD_MANAGER;
use crate::stack::endpoints::{
    LOKI_READ, MIMIR_QUERY_FRONTEND, REMOTE_AGENT_ADMIN, REMOTE_PROMETHEUS, TEMPO_QUERY_FRONTEND,
};
use crate::verify::prometheus::PROMETHEUS_PREFIX;

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
        "1. scrape {REMOTE_AGENT_ADMIN}/metrics in context {remote_context} (the agent's span counters, before)"
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
        "5. query {REMOTE_PROMETHEUS} in context {remote_context}:"
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
        "   {MIMIR_QUERY_FRONTEND}{PROMETHEUS_PREFIX}/api/v1/query  {}",
        backends::mimir_query(window)
    );
    let _ = writeln!(
        out,
        "   {LOKI_READ}/loki/api/v1/query  {}",
        backends::loki_query(window)
    );
    let _ = writeln!(
        out,
        "   {TEMPO_QUERY_FRONTEND}/api/search  {} (limit {TEMPO_SEARCH_LIMIT})",
        backends::tempo_query(&spec.job_name)
    );
    let _ = writeln!(
        out,
        "(windows shown for the planned {}s; a run uses its measured length)",
        window.as_secs()
    );
    out
}
