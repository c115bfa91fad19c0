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
    // The trace check waits only for what gives it trace ids, not for the series checks, which
    // may poll until the deadline.
    let (series, (exemplar, logs, trace)) = futures::join!(
        check_series(&clients.mimir, scope, &plan.metrics),
        exemplars_logs_and_trace(clients, scope, plan),
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
) -> (Option<CheckResult>, CheckResult, CheckResult) {
    let exemplars = async {
        match &plan.metrics.exemplars {
            Some(selector) => Some(check_exemplars(&clients.mimir, scope, selector).await),
            None => None,
        }
    };
    let (exemplars, (logs, log_trace_ids)) =
        futures::join!(exemplars, check_logs(&clients.loki, scope, &plan.logs));
    // Trace ids from the logs first: a log line's trace is the one this check promises to find.
    let mut candidates = log_trace_ids;
    let exemplar = exemplars.map(|(row, exemplar_ids)| {
        for id in exemplar_ids {
            if !candidates.contains(&id) {
                candidates.push(id);
            }
        }
        row
    });
    let trace = trace_check(clients, scope, &plan.traces, &candidates).await;
    (exemplar, logs, trace)
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
