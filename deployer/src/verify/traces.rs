//! Tempo checks: a trace id seen in the logs or exemplars is found and spans the expected
//! services; or, for a tenant with no trace ids elsewhere, a search finds any trace.

use super::hints;
use super::http::{Backend, BackendClient, QueryError};
use super::poll::{Attempt, GaveUp, Waiting};
use super::report::{CheckKind, CheckResult, Status};
use super::scope::TenantScope;
use super::tempo::{SEARCH_PATH, TraceSummary, parse_search, parse_trace, trace_path};

/// Trace ids tried per look: the newest ones may not be in Tempo yet, older ones are.
const MAX_CANDIDATES: usize = 10;
/// Traces a search asks for.
const SEARCH_LIMIT: u32 = 20;

/// Looks up `candidates` until one spans all `services`.
pub async fn check_trace_by_id(
    tempo: &BackendClient,
    scope: &TenantScope<'_>,
    candidates: &[String],
    services: &[String],
) -> CheckResult {
    let candidates: Vec<&String> = candidates.iter().take(MAX_CANDIDATES).collect();
    let query = match candidates.first() {
        Some(first) => format!(
            "{} (and up to {} more trace ids from the logs and exemplars)",
            tempo.describe(&trace_path(first), &[]),
            candidates.len() - 1
        ),
        None => tempo.describe(&trace_path("<trace id>"), &[]),
    };
    if candidates.is_empty() {
        return scope.skip(CheckKind::Trace, query, hints::no_trace_ids_to_look_up());
    }
    let looked = scope
        .poller
        .poll(|| find_complete_trace(tempo, &candidates, services, scope.tenant))
        .await;
    match looked {
        Ok(((id, summary), latency)) => scope.pass(
            CheckKind::Trace,
            query,
            latency,
            format!("trace {id}: {}", describe(&summary)),
        ),
        Err(gave_up) => scope.gave_up(
            CheckKind::Trace,
            query,
            Backend::Tempo,
            &gave_up,
            Status::Fail,
        ),
    }
}

/// One look at every candidate; the best partial trace is reported if none is complete.
async fn find_complete_trace(
    tempo: &BackendClient,
    candidates: &[&String],
    services: &[String],
    tenant: &str,
) -> Attempt<(String, TraceSummary)> {
    let mut partial: Option<(&String, TraceSummary, Vec<String>)> = None;
    for id in candidates {
        let summary = match fetch_trace(tempo, id).await {
            Ok(Some(summary)) => summary,
            Ok(None) => continue,
            Err(error) => return Attempt::Failed(error),
        };
        let missing: Vec<String> = services
            .iter()
            .filter(|s| !summary.services.contains(*s))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Attempt::Ready(((*id).clone(), summary));
        }
        if partial
            .as_ref()
            .is_none_or(|(_, _, m)| missing.len() < m.len())
        {
            partial = Some((id, summary, missing));
        }
    }
    match partial {
        Some((id, summary, missing)) => Attempt::NotYet(Waiting::new(
            format!(
                "trace {id}: {}; missing {}",
                describe(&summary),
                missing.join(", ")
            ),
            hints::services_missing(&missing),
        )),
        None => Attempt::NotYet(Waiting::new(
            format!("none of {} trace ids found", candidates.len()),
            hints::trace_not_found(tenant),
        )),
    }
}

/// A trace by id; `None` when Tempo does not have it (yet).
async fn fetch_trace(tempo: &BackendClient, id: &str) -> Result<Option<TraceSummary>, QueryError> {
    let path = trace_path(id);
    match tempo.get(&path, &[]).await {
        Ok(body) => parse_trace(&body)
            .map(Some)
            .map_err(|reason| QueryError::Shape {
                url: tempo.url(&path, &[]),
                reason,
            }),
        // Tempo answers 404 "trace not found" until the spans are in an ingester.
        Err(QueryError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Searches for any trace, then fetches one by id. Finding none is `Warn` unless `required`;
/// a failing request is `Fail` either way (that is Tempo or the forward, not a quiet tenant).
pub async fn check_trace_search(
    tempo: &BackendClient,
    scope: &TenantScope<'_>,
    traceql: &str,
    required: bool,
) -> CheckResult {
    let shown = [
        ("q", traceql.to_string()),
        ("limit", SEARCH_LIMIT.to_string()),
    ];
    let query = format!(
        "{} {}, then {}",
        tempo.describe(SEARCH_PATH, &shown),
        scope.window_text(),
        tempo.describe(&trace_path("<first id>"), &[])
    );
    match scope
        .poller
        .poll(|| search_and_fetch(tempo, scope, traceql))
        .await
    {
        Ok(((id, summary), latency)) => scope.pass(
            CheckKind::Trace,
            query,
            latency,
            format!("trace {id}: {}", describe(&summary)),
        ),
        Err(gave_up) => {
            let quiet = matches!(gave_up, GaveUp::Deadline(_));
            let status = if quiet && !required {
                Status::Warn
            } else {
                Status::Fail
            };
            scope.gave_up(CheckKind::Trace, query, Backend::Tempo, &gave_up, status)
        }
    }
}

async fn search_and_fetch(
    tempo: &BackendClient,
    scope: &TenantScope<'_>,
    traceql: &str,
) -> Attempt<(String, TraceSummary)> {
    let (start, end) = scope.window();
    let params = [
        ("q", traceql.to_string()),
        ("limit", SEARCH_LIMIT.to_string()),
        ("start", start.as_secs().to_string()),
        ("end", end.as_secs().to_string()),
    ];
    let ids = match tempo.get(SEARCH_PATH, &params).await {
        Ok(body) => match parse_search(&body) {
            Ok(ids) => ids,
            Err(reason) => {
                return Attempt::Failed(QueryError::Shape {
                    url: tempo.url(SEARCH_PATH, &params),
                    reason,
                });
            }
        },
        Err(error) => return Attempt::Failed(error),
    };
    for id in ids.iter().take(MAX_CANDIDATES) {
        match fetch_trace(tempo, id).await {
            Ok(Some(summary)) => return Attempt::Ready((id.clone(), summary)),
            Ok(None) => continue,
            Err(error) => return Attempt::Failed(error),
        }
    }
    let seen = if ids.is_empty() {
        "the search found no trace in the window".to_string()
    } else {
        format!(
            "the search found {} traces, none fetchable by id",
            ids.len()
        )
    };
    Attempt::NotYet(Waiting::new(
        seen,
        hints::no_trace_found_by_search(scope.tenant),
    ))
}

fn describe(summary: &TraceSummary) -> String {
    let services: Vec<&str> = summary.services.iter().map(String::as_str).collect();
    format!("{} spans from {}", summary.spans, services.join(", "))
}
