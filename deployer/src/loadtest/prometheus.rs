//! The remote cluster's Prometheus (kube-prometheus-stack, release `monitor`, fullnameOverride
//! `monitor`: Service `monitor-prometheus:9090` in observability) writes everything to the central
//! Mimir. Its own remote-write metrics say whether that kept up during the run. The names are
//! those of Prometheus 3.x (the chart pins v3.14.0): `prometheus_remote_storage_*`.

use std::time::Duration;

use super::checks::{Check, Verdict};
use crate::verify::http::BackendClient;
use crate::verify::prometheus::{parse_instant_vector, total};

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

/// The sum of an instant query's vector (Prometheus, Mimir and Loki share the shape), or None
/// when it is empty (no such series). Parsed by `verify`'s Prometheus API reader.
pub fn instant_value(body: &str) -> Result<Option<f64>, String> {
    let samples = parse_instant_vector(body)?;
    if samples.is_empty() {
        return Ok(None);
    }
    if let Some(odd) = samples.iter().find(|s| s.number().is_none()) {
        return Err(format!("sample value {:?} is not a number", odd.value.1));
    }
    Ok(Some(total(&samples)))
}

/// Runs an instant query against `<client's base>/api/v1/query`; errors are the request's (from
/// `verify`'s client, which names the URL and the cause) or the answer's.
pub async fn instant(client: &BackendClient, promql: &str) -> Result<Option<f64>, String> {
    let body = client
        .get("/api/v1/query", &[("query", promql.to_string())])
        .await
        .map_err(|e| e.to_string())?;
    instant_value(&body)
}

/// Every remote-write check, against the remote Prometheus (through a port-forward).
pub async fn measure(prometheus: &BackendClient, window: Duration) -> Vec<Check> {
    let failed_promql = failed_query(window);
    let retried_promql = retried_query(window);
    let (failed, retried, lag) = futures::join!(
        instant(prometheus, &failed_promql),
        instant(prometheus, &retried_promql),
        instant(prometheus, LAG_QUERY),
    );
    vec![
        judge_failed(failed).query(failed_promql),
        judge_retried(retried).query(retried_promql),
        judge_lag(lag).query(LAG_QUERY),
    ]
}

const NOT_MEASURED_HINT: &str = "is the remote Prometheus running? `deployer status` shows its pod";

pub fn judge_failed(value: Result<Option<f64>, String>) -> Check {
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

pub fn judge_retried(value: Result<Option<f64>, String>) -> Check {
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

pub fn judge_lag(value: Result<Option<f64>, String>) -> Check {
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
    fn instant_values_sum_vectors() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "2.5"]}, {"metric": {"a": "b"}, "value": [1.0, "1"]}]}});
        assert_eq!(instant_value(&vector.to_string()), Ok(Some(3.5)));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(instant_value(&empty.to_string()), Ok(None));
    }

    #[test]
    fn errors_and_odd_answers_are_errors() {
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        let message = instant_value(&error.to_string()).unwrap_err();
        assert!(message.contains("parse error"), "{message}");
        let odd = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "many"]}]}});
        let message = instant_value(&odd.to_string()).unwrap_err();
        assert!(message.contains("not a number"), "{message}");
        assert!(instant_value("<html>").is_err());
    }

    #[test]
    fn verdicts_follow_the_thresholds() {
        assert_eq!(judge_failed(Ok(Some(0.0))).verdict, Verdict::Pass);
        assert_eq!(judge_failed(Ok(Some(12.0))).verdict, Verdict::Fail);
        assert_eq!(judge_lag(Ok(Some(5.0))).verdict, Verdict::Pass);
        assert_eq!(judge_lag(Ok(Some(60.0))).verdict, Verdict::Warn);
        assert_eq!(judge_lag(Ok(Some(600.0))).verdict, Verdict::Fail);
        let unreachable = judge_lag(Err("cannot connect".into()));
        assert_eq!(unreachable.verdict, Verdict::Warn);
        assert!(unreachable.hint.is_some());
    }
}
