//! Tempo's answers: a trace by id in OTLP JSON (`/api/traces/<id>` answers `{"batches": [...]}`,
//! OTLP's own JSON says `resourceSpans`, `/api/v2/traces/<id>` wraps that in `{"trace": ...}`:
//! all three are read), and a search's trace list (`/api/search`).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

pub const SEARCH_PATH: &str = "/api/search";

pub fn trace_path(trace_id: &str) -> String {
    format!("/api/traces/{trace_id}")
}

/// What `verify` needs to know about a trace: which services it spans, and how many spans.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceSummary {
    pub services: BTreeSet<String>,
    pub spans: usize,
}

/// Reads a trace in any of the three shapes. Read through `serde_json::Value` because the
/// shapes differ only in where the resource spans sit, and span fields are not needed.
pub fn parse_trace(body: &str) -> Result<TraceSummary, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let resource_spans = value
        .get("batches")
        .or_else(|| value.get("resourceSpans"))
        .or_else(|| value.pointer("/trace/resourceSpans"))
        .and_then(Value::as_array)
        .ok_or_else(|| "no batches or resourceSpans in the trace".to_string())?;
    let mut summary = TraceSummary::default();
    for batch in resource_spans {
        if let Some(service) = service_name(batch) {
            summary.services.insert(service);
        }
        summary.spans += span_count(batch);
    }
    Ok(summary)
}

/// `resource.attributes[key == "service.name"].value.stringValue`
fn service_name(batch: &Value) -> Option<String> {
    batch
        .pointer("/resource/attributes")?
        .as_array()?
        .iter()
        .find(|attribute| attribute.get("key").and_then(Value::as_str) == Some("service.name"))?
        .pointer("/value/stringValue")?
        .as_str()
        .map(str::to_string)
}

/// Spans under `scopeSpans` (or the older `instrumentationLibrarySpans`).
fn span_count(batch: &Value) -> usize {
    ["scopeSpans", "instrumentationLibrarySpans"]
        .iter()
        .filter_map(|key| batch.get(*key)?.as_array())
        .flatten()
        .filter_map(|scope| scope.get("spans")?.as_array())
        .map(Vec::len)
        .sum()
}

#[derive(Debug, Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    traces: Vec<SearchedTrace>,
}

#[derive(Debug, Deserialize)]
struct SearchedTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
}

/// The trace ids a search found, in Tempo's order.
pub fn parse_search(body: &str) -> Result<Vec<String>, String> {
    let answer: SearchAnswer =
        serde_json::from_str(body).map_err(|e| format!("not a Tempo search answer: {e}"))?;
    Ok(answer.traces.into_iter().map(|t| t.trace_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(service: &str, spans: usize) -> String {
        let spans: Vec<String> = (0..spans)
            .map(|i| format!(r#"{{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAAA{i}=","name":"GET /api/links"}}"#))
            .collect();
        format!(
            r#"{{"resource":{{"attributes":[{{"key":"k8s.cluster.name","value":{{"stringValue":"lgtm-remote"}}}},
                {{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
              "scopeSpans":[{{"scope":{{"name":"demo"}},"spans":[{}]}}]}}"#,
            spans.join(",")
        )
    }

    #[test]
    fn reads_batches() {
        let body = format!(
            r#"{{"batches":[{},{},{}]}}"#,
            resource("loadgen", 1),
            resource("app", 2),
            resource("db", 1)
        );
        let summary = parse_trace(&body).unwrap();
        assert_eq!(
            summary.services.iter().collect::<Vec<_>>(),
            ["app", "db", "loadgen"]
        );
        assert_eq!(summary.spans, 4);
    }

    #[test]
    fn reads_resource_spans_and_the_v2_wrapper() {
        let otlp = format!(r#"{{"resourceSpans":[{}]}}"#, resource("app", 1));
        assert!(parse_trace(&otlp).unwrap().services.contains("app"));
        let v2 = format!(
            r#"{{"trace":{{"resourceSpans":[{}]}},"status":"complete"}}"#,
            resource("db", 3)
        );
        assert_eq!(parse_trace(&v2).unwrap().spans, 3);
    }

    #[test]
    fn older_instrumentation_library_spans_count() {
        let body = r#"{"batches":[{"resource":{"attributes":[]},
            "instrumentationLibrarySpans":[{"spans":[{"name":"a"},{"name":"b"}]}]}]}"#;
        let summary = parse_trace(body).unwrap();
        assert_eq!(summary.spans, 2);
        assert!(summary.services.is_empty());
    }

    #[test]
    fn other_json_is_refused() {
        assert!(parse_trace(r#"{"data":[]}"#).is_err());
        assert!(parse_trace("trace not found").is_err());
    }

    #[test]
    fn reads_search_results() {
        let body = r#"{"traces":[{"traceID":"2f3e0cee77ae5dc9c17ade3689eb2e54","rootServiceName":"linkerd-proxy",
            "rootTraceName":"GET","startTimeUnixNano":"1684778327699392724","durationMs":557}],
            "metrics":{"inspectedBytes":"1"}}"#;
        assert_eq!(
            parse_search(body).unwrap(),
            ["2f3e0cee77ae5dc9c17ade3689eb2e54"]
        );
        assert!(parse_search(r#"{"metrics":{}}"#).unwrap().is_empty());
    }
}
