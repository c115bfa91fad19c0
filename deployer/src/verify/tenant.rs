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

pub async fn check_tenant(
    clients: &TenantClients,
    scope: &TenantScope<'_>,
    plan: &TenantPlan,
) -> Vec<CheckResult> {
    let exemplars = async {
        match &plan.metrics.exemplars {
            Some(selector) => Some(check_exemplars(&clients.mimir, scope, selector).await),
            None => None,
        }
    };
    let (series, exemplars, (logs, log_trace_ids)) = futures::join!(
        check_series(&clients.mimir, scope, &plan.metrics),
        exemplars,
        check_logs(&clients.loki, scope, &plan.logs),
    );
    let mut rows: Vec<CheckResult> = series.into_iter().collect();
    // Trace ids from the logs first: a log line's trace is the one this check promises to find.
    let mut candidates = log_trace_ids;
    if let Some((row, exemplar_ids)) = exemplars {
        rows.push(row);
        for id in exemplar_ids {
            if !candidates.contains(&id) {
                candidates.push(id);
            }
        }
    }
    rows.push(logs);
    rows.push(trace_check(clients, scope, &plan.traces, &candidates).await);
    rows
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
