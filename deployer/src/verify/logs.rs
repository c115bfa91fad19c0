//! The Loki check: the tenant's log lines arrived (with a trace_id where the plan wants one).

use super::hints;
use super::http::{Backend, BackendClient, QueryError};
use super::loki::{LogLine, QUERY_RANGE_PATH, parse_streams, trace_ids};
use super::options::LogSpec;
use super::poll::{Attempt, Waiting};
use super::report::{CheckKind, CheckResult, Status};
use super::scope::TenantScope;

/// Lines fetched per look; enough to find trace ids among other lines.
const LIMIT: u32 = 200;

/// The row, and the trace ids in the lines (newest first) for the trace check.
pub async fn check_logs(
    loki: &BackendClient,
    scope: &TenantScope<'_>,
    spec: &LogSpec,
) -> (CheckResult, Vec<String>) {
    let shown = [
        ("query", spec.selector.clone()),
        ("limit", LIMIT.to_string()),
        ("direction", "backward".to_string()),
    ];
    let query = format!(
        "{} {}",
        loki.describe(QUERY_RANGE_PATH, &shown),
        scope.window_text()
    );
    match scope.poller.poll(|| look(loki, scope, spec)).await {
        Ok(((lines, ids), latency)) => {
            let detail = if spec.require_trace_id {
                format!("{} lines, {} distinct trace ids", lines.len(), ids.len())
            } else {
                format!("{} lines", lines.len())
            };
            (scope.pass(CheckKind::Logs, query, latency, detail), ids)
        }
        Err(gave_up) => (
            scope.gave_up(
                CheckKind::Logs,
                query,
                Backend::Loki,
                &gave_up,
                Status::Fail,
            ),
            Vec::new(),
        ),
    }
}

/// One look at the newest lines in the window.
async fn look(
    loki: &BackendClient,
    scope: &TenantScope<'_>,
    spec: &LogSpec,
) -> Attempt<(Vec<LogLine>, Vec<String>)> {
    let (start, end) = scope.window();
    let params = [
        ("query", spec.selector.clone()),
        ("limit", LIMIT.to_string()),
        ("direction", "backward".to_string()),
        ("start", start.as_nanos().to_string()),
        ("end", end.as_nanos().to_string()),
    ];
    let body = match loki.get(QUERY_RANGE_PATH, &params).await {
        Ok(body) => body,
        Err(error) => return Attempt::Failed(error),
    };
    let lines = match parse_streams(&body) {
        Ok(lines) => lines,
        Err(reason) => {
            return Attempt::Failed(QueryError::Shape {
                url: loki.url(QUERY_RANGE_PATH, &params),
                reason,
            });
        }
    };
    judge(lines, spec, scope.tenant)
}

/// Whether the lines are what the plan wants.
fn judge(
    lines: Vec<LogLine>,
    spec: &LogSpec,
    tenant: &str,
) -> Attempt<(Vec<LogLine>, Vec<String>)> {
    if lines.is_empty() {
        return Attempt::NotYet(Waiting::new(
            "no log lines in the window",
            hints::no_log_lines(tenant),
        ));
    }
    let ids = trace_ids(&lines);
    if spec.require_trace_id && ids.is_empty() {
        let example = lines.first().map(|l| shorten(&l.line)).unwrap_or_default();
        return Attempt::NotYet(Waiting::new(
            format!(
                "{} lines, none with a trace_id; newest: {example}",
                lines.len()
            ),
            hints::no_trace_id_in_logs(),
        ));
    }
    Attempt::Ready((lines, ids))
}

fn shorten(line: &str) -> String {
    const MAX: usize = 120;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            nanos: 1,
            line: text.to_string(),
        }
    }

    fn spec(require_trace_id: bool) -> LogSpec {
        LogSpec {
            selector: "{}".into(),
            require_trace_id,
        }
    }

    #[test]
    fn lines_without_trace_id_wait_when_one_is_required() {
        let lines = vec![line(r#"{"message":"listening"}"#)];
        match judge(lines.clone(), &spec(true), "remote01") {
            Attempt::NotYet(waiting) => {
                assert!(
                    waiting.seen.contains("none with a trace_id"),
                    "{}",
                    waiting.seen
                );
                assert!(waiting.hint.contains("log shipper"), "{}", waiting.hint);
            }
            _ => panic!("expected to wait"),
        }
        assert!(matches!(
            judge(lines, &spec(false), "_local"),
            Attempt::Ready(_)
        ));
    }

    #[test]
    fn no_lines_name_the_log_shipper_and_tenant() {
        match judge(Vec::new(), &spec(false), "_local") {
            Attempt::NotYet(waiting) => assert!(waiting.hint.contains("`_local`")),
            _ => panic!("expected to wait"),
        }
    }
}
