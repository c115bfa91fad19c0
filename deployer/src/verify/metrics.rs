//! Mimir checks: the tenant's counter series exist, they grow while we watch (fresh samples keep
//! arriving), and an exemplar points to a trace.

use super::hints;
use super::http::{Backend, BackendClient, QueryError};
use super::options::MetricSpec;
use super::poll::{Attempt, Waiting};
use super::prometheus::{
    EXEMPLARS_PATH, QUERY_PATH, VectorSample, exemplar_trace_ids, parse_exemplars,
    parse_instant_vector, total,
};
use super::report::{CheckKind, CheckResult, Status};
use super::scope::TenantScope;

/// The rows for "series exist" and "series grow".
pub async fn check_series(
    mimir: &BackendClient,
    scope: &TenantScope<'_>,
    spec: &MetricSpec,
) -> [CheckResult; 2] {
    let params = [("query", spec.counter.clone())];
    let query = mimir.describe(QUERY_PATH, &params);
    let present = scope
        .poller
        .poll(|| series_total(mimir, &params, scope.tenant))
        .await;
    let (series, baseline) = match present {
        Ok(((series, baseline), latency)) => {
            let detail = format!("{series} series, total {baseline}");
            (
                scope.pass(CheckKind::MetricsPresent, query.clone(), latency, detail),
                baseline,
            )
        }
        Err(gave_up) => {
            let failed = scope.gave_up(
                CheckKind::MetricsPresent,
                query.clone(),
                Backend::Mimir,
                &gave_up,
                Status::Fail,
            );
            let skipped = scope.skip(
                CheckKind::MetricsGrowing,
                query,
                "no series to watch".to_string(),
            );
            return [failed, skipped];
        }
    };
    let growing = scope
        .poller
        .poll(|| growth_since(mimir, &params, baseline, scope.tenant))
        .await;
    let growing = match growing {
        Ok((now, latency)) => scope.pass(
            CheckKind::MetricsGrowing,
            query,
            latency,
            format!("total went from {baseline} to {now}"),
        ),
        Err(gave_up) => scope.gave_up(
            CheckKind::MetricsGrowing,
            query,
            Backend::Mimir,
            &gave_up,
            Status::Fail,
        ),
    };
    [series, growing]
}

/// One look: how many series match, and their total.
async fn series_total(
    mimir: &BackendClient,
    params: &[(&str, String)],
    tenant: &str,
) -> Attempt<(usize, f64)> {
    let samples = match query_vector(mimir, params).await {
        Ok(samples) => samples,
        Err(attempt) => return attempt,
    };
    if samples.is_empty() {
        return Attempt::NotYet(Waiting::new(
            "the query returned no series",
            hints::no_series(tenant),
        ));
    }
    Attempt::Ready((samples.len(), total(&samples)))
}

/// One look: has the total changed since `baseline`? A counter reset (a pod restarted) also
/// means fresh samples arrived, so any change counts.
async fn growth_since(
    mimir: &BackendClient,
    params: &[(&str, String)],
    baseline: f64,
    tenant: &str,
) -> Attempt<f64> {
    let samples = match query_vector(mimir, params).await {
        Ok(samples) => samples,
        Err(attempt) => return attempt,
    };
    let now = total(&samples);
    if now != baseline {
        return Attempt::Ready(now);
    }
    Attempt::NotYet(Waiting::new(
        format!("total stayed at {baseline}"),
        hints::not_growing(tenant),
    ))
}

async fn query_vector<T>(
    mimir: &BackendClient,
    params: &[(&str, String)],
) -> Result<Vec<VectorSample>, Attempt<T>> {
    let body = mimir
        .get(QUERY_PATH, params)
        .await
        .map_err(Attempt::Failed)?;
    parse_instant_vector(&body).map_err(|reason| {
        Attempt::Failed(QueryError::Shape {
            url: mimir.url(QUERY_PATH, params),
            reason,
        })
    })
}

/// The exemplar row, and the trace ids the exemplars point to (newest first).
pub async fn check_exemplars(
    mimir: &BackendClient,
    scope: &TenantScope<'_>,
    selector: &str,
) -> (CheckResult, Vec<String>) {
    let shown = [("query", selector.to_string())];
    let query = format!(
        "{} {}",
        mimir.describe(EXEMPLARS_PATH, &shown),
        scope.window_text()
    );
    match scope
        .poller
        .poll(|| exemplar_ids(mimir, scope, selector))
        .await
    {
        Ok((ids, latency)) => {
            let newest = ids.first().map(String::as_str).unwrap_or("-");
            let detail = format!("{} exemplars with a trace_id, newest {newest}", ids.len());
            (scope.pass(CheckKind::Exemplar, query, latency, detail), ids)
        }
        Err(gave_up) => (
            scope.gave_up(
                CheckKind::Exemplar,
                query,
                Backend::Mimir,
                &gave_up,
                Status::Fail,
            ),
            Vec::new(),
        ),
    }
}

/// One look: the trace ids of the exemplars in the window; ready when there is at least one.
async fn exemplar_ids(
    mimir: &BackendClient,
    scope: &TenantScope<'_>,
    selector: &str,
) -> Attempt<Vec<String>> {
    let (start, end) = scope.window();
    let params = [
        ("query", selector.to_string()),
        ("start", format!("{:.3}", start.as_secs_f64())),
        ("end", format!("{:.3}", end.as_secs_f64())),
    ];
    let body = match mimir.get(EXEMPLARS_PATH, &params).await {
        Ok(body) => body,
        Err(error) => return Attempt::Failed(error),
    };
    let series = match parse_exemplars(&body) {
        Ok(series) => series,
        Err(reason) => {
            return Attempt::Failed(QueryError::Shape {
                url: mimir.url(EXEMPLARS_PATH, &params),
                reason,
            });
        }
    };
    let ids = exemplar_trace_ids(&series);
    if ids.is_empty() {
        let count: usize = series.iter().map(|s| s.exemplars.len()).sum();
        return Attempt::NotYet(Waiting::new(
            format!("{count} exemplars, none with a trace_id"),
            hints::no_exemplar(),
        ));
    }
    Attempt::Ready(ids)
}
