//! The Prometheus HTTP API's answers as Mimir gives them: instant queries (`/api/v1/query`,
//! result type `vector`) and exemplar queries (`/api/v1/query_exemplars`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Mimir serves the Prometheus API under this prefix.
pub const PROMETHEUS_PREFIX: &str = "/prometheus";
pub const QUERY_PATH: &str = "/prometheus/api/v1/query";
pub const EXEMPLARS_PATH: &str = "/prometheus/api/v1/query_exemplars";

/// `{"status": "success" | "error", "data": ..., "errorType": ..., "error": ...}`
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<VectorSample>,
}

/// One series of an instant vector: its labels and `[unix seconds, "value"]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VectorSample {
    pub metric: BTreeMap<String, String>,
    pub value: (f64, String),
}

impl VectorSample {
    /// The sample value; Prometheus writes it as a string (`"NaN"`, `"+Inf"` included).
    pub fn number(&self) -> Option<f64> {
        self.value.1.parse().ok()
    }
}

/// The exemplars of one series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExemplarSeries {
    #[serde(rename = "seriesLabels")]
    pub series_labels: BTreeMap<String, String>,
    pub exemplars: Vec<Exemplar>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Exemplar {
    pub labels: BTreeMap<String, String>,
    pub value: String,
    pub timestamp: f64,
}

fn parse_envelope<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    let envelope: Envelope<T> =
        serde_json::from_str(body).map_err(|e| format!("not Prometheus API JSON: {e}"))?;
    match (envelope.status.as_str(), envelope.data) {
        ("success", Some(data)) => Ok(data),
        ("success", None) => Err("status success without data".to_string()),
        (status, _) => Err(format!(
            "status {status}: {}",
            envelope.error.unwrap_or_default()
        )),
    }
}

/// The series of an instant query's answer; any result type but `vector` is an error.
pub fn parse_instant_vector(body: &str) -> Result<Vec<VectorSample>, String> {
    let data: QueryData = parse_envelope(body)?;
    if data.result_type != "vector" {
        return Err(format!("result type {}, expected vector", data.result_type));
    }
    Ok(data.result)
}

pub fn parse_exemplars(body: &str) -> Result<Vec<ExemplarSeries>, String> {
    parse_envelope(body)
}

/// The sum of the samples' values (the counters' total across series).
pub fn total(samples: &[VectorSample]) -> f64 {
    samples.iter().filter_map(VectorSample::number).sum()
}

/// The `trace_id`s of the exemplars, newest first, without repeats.
pub fn exemplar_trace_ids(series: &[ExemplarSeries]) -> Vec<String> {
    let mut exemplars: Vec<&Exemplar> = series.iter().flat_map(|s| &s.exemplars).collect();
    exemplars.sort_by(|a, b| b.timestamp.total_cmp(&a.timestamp));
    let mut ids: Vec<String> = Vec::new();
    for id in exemplars
        .iter()
        .filter_map(|e| e.labels.get("trace_id"))
        .filter(|id| !id.is_empty())
    {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented examples' shapes (prometheus.io/docs/prometheus/latest/querying/api/).
    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1435781451.781,"1"]},
        {"metric":{"__name__":"up","job":"node","instance":"localhost:9100"},"value":[1435781451.781,"0"]}]}}"#;

    const EXEMPLARS: &str = r#"{"status":"success","data":[
        {"seriesLabels":{"__name__":"test_exemplar_metric_total","instance":"localhost:8090","job":"prometheus","service":"bar"},
         "exemplars":[{"labels":{"trace_id":"EpTxMJ40fUus7aGY"},"value":"6","timestamp":1600096945.479}]},
        {"seriesLabels":{"__name__":"test_exemplar_metric_total","instance":"localhost:8090","job":"prometheus","service":"foo"},
         "exemplars":[{"labels":{"trace_id":"Olp9XHlq763ccsfa"},"value":"19","timestamp":1600096955.479},
                      {"labels":{"trace_id":"hCtjygkIHwAN9vs4"},"value":"20","timestamp":1600096965.489}]}]}"#;

    #[test]
    fn reads_an_instant_vector() {
        let samples = parse_instant_vector(VECTOR).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].metric["job"], "prometheus");
        assert_eq!(samples[0].number(), Some(1.0));
        assert_eq!(total(&samples), 1.0);
    }

    #[test]
    fn an_empty_vector_is_no_series() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_instant_vector(body).unwrap(), vec![]);
    }

    #[test]
    fn other_result_types_and_errors_are_refused() {
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[]}}"#;
        assert!(parse_instant_vector(scalar).unwrap_err().contains("scalar"));
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(
            parse_instant_vector(error).unwrap_err(),
            "status error: parse error at char 3"
        );
        assert!(parse_instant_vector("no org id").is_err());
    }

    #[test]
    fn reads_exemplars_newest_first() {
        let series = parse_exemplars(EXEMPLARS).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[1].series_labels["service"], "foo");
        assert_eq!(
            exemplar_trace_ids(&series),
            ["hCtjygkIHwAN9vs4", "Olp9XHlq763ccsfa", "EpTxMJ40fUus7aGY"]
        );
    }

    #[test]
    fn exemplars_without_trace_id_give_none() {
        let body = r#"{"status":"success","data":[{"seriesLabels":{},"exemplars":[
            {"labels":{"span_id":"1"},"value":"1","timestamp":1}]}]}"#;
        assert!(exemplar_trace_ids(&parse_exemplars(body).unwrap()).is_empty());
    }
}
