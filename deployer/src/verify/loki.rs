//! Loki's `/loki/api/v1/query_range` answer for a log query (result type `streams`), and the
//! trace ids in the demo's JSON lines.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const QUERY_RANGE_PATH: &str = "/loki/api/v1/query_range";

#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    data: Option<StreamsData>,
}

#[derive(Debug, Deserialize)]
struct StreamsData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Stream>,
}

/// One stream: its labels and `[["<unix ns>", "<line>"], ...]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Stream {
    pub stream: BTreeMap<String, String>,
    pub values: Vec<(String, String)>,
}

/// A log line with its timestamp (Unix nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub nanos: u128,
    pub line: String,
}

/// The lines of a `streams` answer, newest first.
pub fn parse_streams(body: &str) -> Result<Vec<LogLine>, String> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| format!("not Loki API JSON: {e}"))?;
    if envelope.status != "success" {
        return Err(format!("status {}", envelope.status));
    }
    let data = envelope
        .data
        .ok_or_else(|| "status success without data".to_string())?;
    if data.result_type != "streams" {
        return Err(format!(
            "result type {}, expected streams",
            data.result_type
        ));
    }
    let mut lines: Vec<LogLine> = data
        .result
        .into_iter()
        .flat_map(|stream| stream.values)
        .map(|(nanos, line)| LogLine {
            nanos: nanos.parse().unwrap_or(0),
            line,
        })
        .collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.nanos));
    Ok(lines)
}

/// The top-level `trace_id` of a JSON log line, if it is a valid W3C trace id (32 hex digits,
/// not all zero).
pub fn trace_id_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let id = value.get("trace_id")?.as_str()?;
    is_trace_id(id).then(|| id.to_ascii_lowercase())
}

fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) && id.chars().any(|c| c != '0')
}

/// The distinct trace ids in `lines`, in their order.
pub fn trace_ids(lines: &[LogLine]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in lines.iter().filter_map(|l| trace_id_of(&l.line)) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented shape (grafana.com/docs/loki/latest/reference/loki-http-api/), with the
    // demo's JSON lines as the log shipper sends them (the line unchanged).
    const STREAMS: &str = r#"{"status":"success","data":{"resultType":"streams","result":[
        {"stream":{"cluster":"lgtm-remote","namespace":"demo","app":"app"},
         "values":[["1795773600000000000","{\"timestamp\":\"2026-11-27T18:00:00.000000Z\",\"level\":\"INFO\",\"target\":\"demo\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\",\"message\":\"request served\"}"],
                   ["1795773500000000000","{\"level\":\"INFO\",\"message\":\"listening\"}"]]},
        {"stream":{"cluster":"lgtm-remote","namespace":"demo","app":"db"},
         "values":[["1795773700000000000","{\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"message\":\"request served\"}"]]}],
        "stats":{"summary":{"bytesProcessedPerSecond":1}}}}"#;

    #[test]
    fn reads_lines_of_all_streams_newest_first() {
        let lines = parse_streams(STREAMS).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].nanos, 1_795_773_700_000_000_000);
        assert!(lines[2].line.contains("listening"));
    }

    #[test]
    fn collects_distinct_trace_ids() {
        let lines = parse_streams(STREAMS).unwrap();
        assert_eq!(trace_ids(&lines), ["4bf92f3577b34da6a3ce929d0e0e4736"]);
    }

    #[test]
    fn only_valid_top_level_trace_ids_count() {
        assert_eq!(trace_id_of("plain text trace_id=abc"), None);
        assert_eq!(
            trace_id_of(r#"{"trace_id":"00000000000000000000000000000000"}"#),
            None
        );
        assert_eq!(trace_id_of(r#"{"trace_id":"xyz"}"#), None);
        assert_eq!(
            trace_id_of(r#"{"fields":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#),
            None
        );
    }

    #[test]
    fn empty_and_wrong_answers() {
        let empty = r#"{"status":"success","data":{"resultType":"streams","result":[]}}"#;
        assert!(parse_streams(empty).unwrap().is_empty());
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_streams(matrix).unwrap_err().contains("matrix"));
        assert!(parse_streams("no org id").is_err());
    }
}
