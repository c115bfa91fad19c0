//! The remote cluster's Prometheus (kube-prometheus-stack, release `monitor`, fullnameOverride
//! `monitor`: Service `monitor-prometheus:9090` in observability) writes everything to the central
//! Mimir. Its own remote-write metrics say whether that kept up during the run. The names are
//! those of Prometheus 3.x (the chart pins v3.14.0): `prometheus_remote_storage_*`.

use std::time::Duration;

use serde_json::Value;

use super::checks::{Check, Verdict};
use super::http::{Http, HttpError};

pub const PROMETHEUS_SERVICE: (&str, &str, u16) = ("observability", "monitor-prometheus", 9090);

/// Lag (newest sample appended minus newest sample sent) below this passes...
const LAG_PASS_SECONDS: f64 = 30.0;
/// ...and above this fails: Mimir is minutes behind.
const LAG_FAIL_SECONDS: f64 = 120.0;

/// The PromQL of each remote-write check over a window of `seconds`.
pub fn failed_query(window: Duration) -> String {
    format!(
        "sum(increase(prometheus_remote_storage_samples_failed_total[{}s]))",
        window.as_secs().max(1)
    )
}

pub fn retried_query(window: Duration) -> String {
    format!(
        "sum(increase(prometheus_remote_storage_samples_retried_total[{}s]))",
        window.as_secs().max(1)
    )
}

/// `highest_timestamp_in_seconds` has no per-queue labels, the sent timestamp has; `max` on both
/// sides leaves two label-less values to subtract.
pub const LAG_QUERY: &str = "max(prometheus_remote_storage_highest_timestamp_in_seconds) - \
     max(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)";

/// Why an instant-query answer could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the query failed: {0}")]
    Failed(String),
    #[error("unexpected answer: {0}")]
    Shape(String),
}

/// The sum of an instant query's result (Prometheus, Mimir and Loki share this shape), or None
/// when the result is empty (no such series).
pub fn instant_value(answer: &Value) -> Result<Option<f64>, QueryError> {
    if answer["status"] != "success" {
        let error = answer["error"].as_str().unwrap_or("no error message");
        return Err(QueryError::Failed(error.to_string()));
    }
    let data = &answer["data"];
    let values: Vec<&Value> = match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or_else(|| QueryError::Shape("`data.result` is not a list".into()))?
            .iter()
            .map(|series| &series["value"][1])
            .collect(),
        Some("scalar") => vec![&data["result"][1]],
        other => return Err(QueryError::Shape(format!("result type {other:?}"))),
    };
    if values.is_empty() {
        return Ok(None);
    }
    let mut total = 0.0;
    for value in values {
        let number = value
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| QueryError::Shape(format!("sample value {value} is not a number")))?;
        total += number;
    }
    Ok(Some(total))
}

/// Runs an instant query against `<base>/api/v1/query`.
pub async fn instant(
    http: &Http,
    base: &str,
    promql: &str,
    tenant: Option<&str>,
) -> Result<Option<f64>, QueryError> {
    let url = format!("{base}/api/v1/query");
    let answer = http
        .get_json(&url, &[("query", promql.to_string())], tenant)
        .await?;
    instant_value(&answer)
}

/// Every remote-write check, against Prometheus at `base` (a port-forward URL).
pub async fn measure(http: &Http, base: &str, window: Duration) -> Vec<Check> {
    let failed_promql = failed_query(window);
    let retried_promql = retried_query(window);
    let (failed, retried, lag) = futures::join!(
        instant(http, base, &failed_promql, None),
        instant(http, base, &retried_promql, None),
        instant(http, base, LAG_QUERY, None),
    );
    vec![
        judge_failed(failed).query(failed_promql),
        judge_retried(retried).query(retried_promql),
        judge_lag(lag).query(LAG_QUERY),
    ]
}

const NOT_MEASURED_HINT: &str = "is the remote Prometheus running? `deployer status` shows its pod";

pub fn judge_failed(value: Result<Option<f64>, QueryError>) -> Check {
    let name = "prometheus: remote-write failures";
    match value {
        Err(error) => Check::unmeasured(name, error, NOT_MEASURED_HINT),
        Ok(None) => Check::unmeasured(
            name,
            "no remote-write series (is remoteWrite configured?)",
            "manifests/remote/monitor.yaml sets prometheus.prometheusSpec.remoteWrite",
        ),
        Ok(Some(failed)) => {
            let verdict = if failed > 0.0 {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            Check::new(name, verdict, format!("{failed:.0} samples failed")).hint(
                "Mimir rejected samples (not retried): look at the Prometheus logs for the \
                 status, e.g. 400 out-of-order or per-tenant limits for remote01 in Mimir",
            )
        }
    }
}

pub fn judge_retried(value: Result<Option<f64>, QueryError>) -> Check {
    let name = "prometheus: remote-write retries";
    match value {
        Err(error) => Check::unmeasured(name, error, NOT_MEASURED_HINT),
        Ok(None) => Check::new(name, Verdict::Pass, "no retries recorded"),
        Ok(Some(retried)) => {
            let verdict = if retried > 0.0 {
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            Check::new(name, verdict, format!("{retried:.0} samples retried")).hint(
                "Mimir answered 5xx or 429 for a while: the link or mimir-distributor was \
                 slow or rate-limiting",
            )
        }
    }
}

pub fn judge_lag(value: Result<Option<f64>, QueryError>) -> Check {
    let name = "prometheus: remote-write lag";
    match value {
        Err(error) => Check::unmeasured(name, error, NOT_MEASURED_HINT),
        Ok(None) => Check::unmeasured(
            name,
            "no remote-write timestamps (is remoteWrite configured?)",
            "manifests/remote/monitor.yaml sets prometheus.prometheusSpec.remoteWrite",
        ),
        Ok(Some(lag)) => {
            let verdict = if lag <= LAG_PASS_SECONDS {
                Verdict::Pass
            } else if lag <= LAG_FAIL_SECONDS {
                Verdict::Warn
            } else {
                Verdict::Fail
            };
            Check::new(name, verdict, format!("{lag:.1}s behind")).hint(
                "remote write is falling behind: check the link to the central cluster \
                 (`deployer status`) and mimir-distributor's load",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instant_values_sum_vectors_and_read_scalars() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "2.5"]}, {"metric": {"a": "b"}, "value": [1.0, "1"]}]}});
        assert_eq!(instant_value(&vector), Ok(Some(3.5)));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(instant_value(&empty), Ok(None));
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "4"]}});
        assert_eq!(instant_value(&scalar), Ok(Some(4.0)));
    }

    #[test]
    fn errors_and_odd_answers_are_errors() {
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert_eq!(
            instant_value(&error),
            Err(QueryError::Failed("parse error".into()))
        );
        let odd = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "many"]}]}});
        assert!(matches!(instant_value(&odd), Err(QueryError::Shape(_))));
    }

    #[test]
    fn verdicts_follow_the_thresholds() {
        assert_eq!(judge_failed(Ok(Some(0.0))).verdict, Verdict::Pass);
        assert_eq!(judge_failed(Ok(Some(12.0))).verdict, Verdict::Fail);
        assert_eq!(judge_lag(Ok(Some(5.0))).verdict, Verdict::Pass);
        assert_eq!(judge_lag(Ok(Some(60.0))).verdict, Verdict::Warn);
        assert_eq!(judge_lag(Ok(Some(600.0))).verdict, Verdict::Fail);
        let unreachable = judge_lag(Err(QueryError::Failed("x".into())));
        assert_eq!(unreachable.verdict, Verdict::Warn);
        assert!(unreachable.hint.is_some());
    }
}
