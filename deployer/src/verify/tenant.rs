//! One tenant's checks, in the order their data depends on each other: metrics, exemplars and
//! logs side by side, then the trace, which needs the trace ids the logs and exemplars gave.

use super::http::BackendClient;
use super::logs::check_logs;
use super::metrics::{check_exemplars, check_series};
use super::options::{TenantPlan, TraceSpec};
use super::report::CheckResult;
use super::scope::TenantScope;
use super::traces::{check_trace_by_id, check_trace_search};

/// The three backends, asked as one tenant.
pub struct TenantClients {
    pub mimir: BackendClient,
    pub loki: BackendClient,
    pub tempo: BackendClient,
}

/// `burst_trace_ids`: traces the burst started (at app, not loadgen), never picked as the trace
/// to look up.
pub async fn check_tenant(
    clients: &TenantClients,
    scope: &TenantScope<'_>,
    plan: &TenantPlan,
    burst_trace_ids: &[String],
) -> Vec<CheckResult> {
    // The trace check waits only for what gives it trace ids, not for the series checks, which
    // may poll until the deadline.
    let (series, (exemplar, logs, trace)) = futures::join!(
        check_series(&clients.mimir, scope, &plan.metrics),
        exemplars_logs_and_trace(clients, scope, plan, burst_trace_ids),
    );
    let mut rows: Vec<CheckResult> = series.into_iter().collect();
    rows.extend(exemplar);
    rows.push(logs);
    rows.push(trace);
    rows
}

async fn exemplars_logs_and_trace(
    clients: &TenantClients,
    scope: &TenantScope<'_>,
    plan: &TenantPlan,
    burst_trace_ids: &[String],
) -> (Option<CheckResult>, CheckResult, CheckResult) {
    let exemplars = async {
        match &plan.metrics.exemplars {
            Some(selector) => Some(check_exemplars(&clients.mimir, scope, selector).await),
            None => None,
        }
    };
    let (exemplars, (logs, log_trace_ids)) =
        futures::join!(exemplars, check_logs(&clients.loki, scope, &plan.logs));
    let (exemplar, exemplar_trace_ids) = match exemplars {
        Some((row, ids)) => (Some(row), ids),
        None => (None, Vec::new()),
    };
    let candidates = trace_candidates(log_trace_ids, exemplar_trace_ids, burst_trace_ids);
    let trace = trace_check(clients, scope, &plan.traces, &candidates).await;
    (exemplar, logs, trace)
}

/// The trace ids to look up: the logs' first (a log line's trace is the one this check promises
/// to find), then the exemplars', without repeats and without the burst's own.
fn trace_candidates(
    from_logs: Vec<String>,
    from_exemplars: Vec<String>,
    burst: &[String],
) -> Vec<String> {
    let mut candidates: Vec<String> = Vec::new();
    for id in from_logs.into_iter().chain(from_exemplars) {
        if !candidates.contains(&id) && !burst.contains(&id) {
            candidates.push(id);
        }
    }
    candidates
}

async fn trace_check(
    clients: &TenantClients,
    scope: &TenantScope<'_>,
    spec: &TraceSpec,
    candidates: &[String],
) -> CheckResult {
    match spec {
        TraceSpec::ById { services } => {
            check_trace_by_id(&clients.tempo, scope, candidates, services).await
        }
        TraceSpec::Search { traceql, required } => {
            check_trace_search(&clients.tempo, scope, traceql, *required).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn candidates_put_logs_first_and_leave_out_the_burst() {
        let candidates = trace_candidates(
            ids(&["a", "burst1", "b"]),
            ids(&["b", "c", "burst2"]),
            &ids(&["burst1", "burst2"]),
        );
        assert_eq!(candidates, ["a", "b", "c"]);
    }
}
