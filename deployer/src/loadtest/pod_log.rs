//! The loadgen pod's log, taken apart. The log API merges the container's stdout and stderr, so
//! the summary (pretty-printed JSON on stdout, many lines) arrives among the loadgen's JSON log
//! lines (stderr, one object per line), possibly interleaved with them.
//!
//! A line that is a whole JSON object on its own is a log line; a summary line never is (it is
//! `{`, `"key": value,` or `}`). What remains is searched for a JSON object whose `schema` is the
//! summary's.

use serde_json::{Map, Value};

use super::summary::{LoadgenSummary, SCHEMA, SummaryError};

/// One line of the loadgen's log output.
#[derive(Debug, Clone, PartialEq)]
pub enum LogLine {
    /// A structured log line (`timestamp`, `level`, `target`, `message`, fields).
    Json(Map<String, Value>),
    /// Anything else the container wrote (e.g. `demo-app loadgen: cannot reach ...`).
    Text(String),
}

impl LogLine {
    pub fn parse(line: &str) -> LogLine {
        match serde_json::from_str::<Value>(line.trim()) {
            Ok(Value::Object(fields)) if fields.get("schema").is_none() => LogLine::Json(fields),
            _ => LogLine::Text(line.trim_end().to_string()),
        }
    }

    /// `INFO load test started rate=PerSecond(50.0) seed=7`: the line as a person reads it.
    pub fn readable(&self) -> String {
        let fields = match self {
            LogLine::Text(text) => return text.clone(),
            LogLine::Json(fields) => fields,
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("message") == "progress" {
            return progress_text(fields);
        }
        let mut out = format!("{} {}", text("level"), text("message"));
        const SHOWN: [&str; 6] = [
            "timestamp",
            "level",
            "target",
            "message",
            "trace_id",
            "span_id",
        ];
        for (key, value) in fields.iter().filter(|(k, _)| !SHOWN.contains(&k.as_str())) {
            match value {
                Value::String(s) => out.push_str(&format!(" {key}={s}")),
                other => out.push_str(&format!(" {key}={other}")),
            }
        }
        out.trim().to_string()
    }
}

/// The loadgen's periodic progress line (demo-app/src/loadgen/stats.rs `log_progress`) as the
/// terminal line reads: `[  10.0s] sent 500, completed 498, errors 0, ...`.
fn progress_text(fields: &Map<String, Value>) -> String {
    let number = |key: &str| fields.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    format!(
        "[{:>6.1}s] sent {}, completed {}, errors {}, missed {}, in flight {}, p50 {} ms, p99 {} ms",
        number("elapsed_s"),
        number("sent"),
        number("completed"),
        number("errors"),
        number("missed"),
        number("in_flight"),
        number("p50_ms"),
        number("p99_ms"),
    )
}

/// Which followed lines are worth showing as progress: everything but the pretty-printed summary
/// (from a line `{` to a line `}`), which the report shows at the end anyway.
#[derive(Debug, Default)]
pub struct ProgressFilter {
    in_summary: bool,
}

impl ProgressFilter {
    pub fn shows(&mut self, line: &LogLine) -> bool {
        let LogLine::Text(text) = line else {
            return true;
        };
        match text.as_str() {
            "{" if !self.in_summary => {
                self.in_summary = true;
                false
            }
            "}" if self.in_summary => {
                self.in_summary = false;
                false
            }
            _ => !self.in_summary,
        }
    }
}

/// The log lines and, if the loadgen printed one, its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PodLog {
    pub lines: Vec<LogLine>,
    /// The summary object as printed (kept whole for `--output json`).
    pub summary: Option<Value>,
}

/// Why no usable summary came out of the log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PodLogError {
    #[error("the loadgen printed no JSON summary (schema {SCHEMA}); its last lines:\n{last_lines}")]
    NoSummary { last_lines: String },
    #[error(transparent)]
    Summary(#[from] SummaryError),
}

/// Splits a whole pod log into log lines and the summary.
pub fn split(log: &str) -> PodLog {
    // Every line in order; text lines also go into `rest`, with where each starts there.
    let mut parsed = Vec::new();
    let mut rest = String::new();
    for line in log.lines() {
        let line = LogLine::parse(line);
        let at = match &line {
            LogLine::Json(_) => None,
            LogLine::Text(text) => {
                let at = rest.len();
                rest.push_str(text);
                rest.push('\n');
                Some(at)
            }
        };
        parsed.push((at, line));
    }
    let summary = find_summary(&rest);
    // Text lines outside the summary still matter (e.g. an error message before exit 2).
    let in_summary = |at: usize| summary.is_some_and(|(start, end)| at >= start && at < end);
    let lines = parsed
        .into_iter()
        .filter(|(at, line)| match (at, line) {
            (Some(at), LogLine::Text(text)) => !in_summary(*at) && !text.trim().is_empty(),
            _ => true,
        })
        .map(|(_, line)| line)
        .collect();
    PodLog {
        lines,
        summary: summary.and_then(|(start, end)| serde_json::from_str(&rest[start..end]).ok()),
    }
}

/// The byte range of the last JSON object in `text` whose `schema` is the summary's. Objects
/// start on a line beginning with `{`.
fn find_summary(text: &str) -> Option<(usize, usize)> {
    let mut found = None;
    let starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|&i| text[i..].starts_with('{'));
    for start in starts {
        let mut objects = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(value)) = objects.next()
            && value.get("schema").is_some()
        {
            found = Some((start, start + objects.byte_offset()));
        }
    }
    found
}

impl PodLog {
    /// The parsed summary, or why there is none (with the log's last lines, which say why).
    pub fn parsed_summary(&self) -> Result<LoadgenSummary, PodLogError> {
        match &self.summary {
            Some(value) => Ok(LoadgenSummary::from_value(value)?),
            None => Err(PodLogError::NoSummary {
                last_lines: self.last_lines(5),
            }),
        }
    }

    /// The last `n` log lines, readable, one per line (or a note that there were none).
    pub fn last_lines(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        let shown: Vec<String> = self.lines[start..]
            .iter()
            .map(|l| format!("  {}", l.readable()))
            .collect();
        if shown.is_empty() {
            "  (the log is empty)".to_string()
        } else {
            shown.join("\n")
        }
    }
}
