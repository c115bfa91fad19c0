//! The loadgen's `--output json` summary (schema `demo-app/loadgen-summary/v1`,
//! demo-app/src/loadgen/summary.schema.json): the fields the report shows. The schema only adds
//! fields within v1, so unknown ones are ignored; the whole object is kept for `--output json`.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const SCHEMA: &str = "demo-app/loadgen-summary/v1";

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoadgenSummary {
    pub schema: String,
    pub targets: Vec<String>,
    pub mode: String,
    pub duration_s: f64,
    pub requests: Requests,
    pub rate: Rates,
    pub outcomes: BTreeMap<String, u64>,
    pub error_ratio: f64,
    pub max_error_ratio: Option<f64>,
    pub passed: bool,
    pub latency_ms: Latency,
    #[serde(default)]
    pub operations: BTreeMap<String, Operation>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Requests {
    pub intended: u64,
    pub sent: u64,
    pub completed: u64,
    pub missed: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rates {
    pub target: Option<f64>,
    pub achieved: f64,
    pub completed: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Operation {
    pub completed: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Why a JSON object is not a loadgen summary.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryError {
    #[error("the summary names schema `{0}`, not `{SCHEMA}`")]
    Schema(String),
    #[error("the summary does not match schema {SCHEMA}: {0}")]
    Shape(String),
}

impl LoadgenSummary {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, SummaryError> {
        let schema = value["schema"].as_str().unwrap_or_default();
        if schema != SCHEMA {
            return Err(SummaryError::Schema(schema.to_string()));
        }
        serde_json::from_value(value.clone()).map_err(|e| SummaryError::Shape(e.to_string()))
    }

    /// Outcomes other than 2xx and 3xx, by name, for the report.
    pub fn errors_by_kind(&self) -> Vec<(&str, u64)> {
        self.outcomes
            .iter()
            .filter(|(kind, count)| !matches!(kind.as_str(), "2xx" | "3xx") && **count > 0)
            .map(|(kind, count)| (kind.as_str(), *count))
            .collect()
    }
}
