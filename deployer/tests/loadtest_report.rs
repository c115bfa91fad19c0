//! loadtest's reading and judging, from a recorded loadgen run and recorded agent metrics
//! (tests/data/loadtest/README.md says how they were made).

use deployer::loadtest::agent::{SpanCounters, judge};
use deployer::loadtest::checks::{Check, Verdict};
use deployer::loadtest::pod_log::{self, LogLine, PodLogError};
use deployer::loadtest::prometheus::{judge_failed, judge_lag, judge_retried};
use deployer::loadtest::report::RunReport;
use deployer::loadtest::summary::{LoadgenSummary, SummaryError};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/loadtest/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn counters(name: &str) -> SpanCounters {
    SpanCounters::from_exposition(&data(name)).unwrap()
}

#[test]
fn the_recorded_summary_matches_the_loadgen_schema_and_parses() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../demo-app/src/loadgen/summary.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&data("loadgen-summary.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&recorded), "the recording is stale");
    let summary = LoadgenSummary::from_value(&recorded).unwrap();
    assert_eq!(summary.requests.sent, 1000);
    assert_eq!(summary.errors_by_kind(), vec![("5xx", 14)]);
}

#[test]
fn the_summary_is_found_among_the_pod_log_lines() {
    let log = pod_log::split(&data("loadgen-pod.log"));
    let summary = log.parsed_summary().unwrap();
    assert_eq!(summary.outcomes["2xx"], 986);
    assert_eq!(log.lines.len(), 7, "{:?}", log.lines);
    assert!(log.lines.iter().all(|l| matches!(l, LogLine::Json(_))));
    assert_eq!(
        log.lines[4].readable(),
        "[   6.0s] sent 600, completed 600, errors 8, missed 0, in flight 0, p50 5.763 ms, p99 14.071 ms"
    );
    assert_eq!(
        log.lines[6].readable(),
        "INFO load test finished completed=1000 error_ratio=0.014 missed=0 sent=1000"
    );
}

#[test]
fn log_lines_interleaved_with_the_summary_are_separated() {
    // stdout and stderr are merged line by line: a log line can land inside the summary.
    let summary = data("loadgen-summary.json");
    let mut lines: Vec<&str> = summary.lines().collect();
    let late = r#"{"timestamp":"2026-11-27T20:51:05Z","level":"WARN","target":"x","message":"late export"}"#;
    lines.insert(10, late);
    let mixed = format!("demo-app: a plain stderr line\n{}\n", lines.join("\n"));
    let log = pod_log::split(&mixed);
    assert_eq!(log.parsed_summary().unwrap().requests.completed, 1000);
    let readable: Vec<String> = log.lines.iter().map(LogLine::readable).collect();
    assert_eq!(
        readable,
        vec!["demo-app: a plain stderr line", "WARN late export"]
    );
}

#[test]
fn a_log_without_a_summary_says_so_with_its_last_lines() {
    let log = pod_log::split(
        "{\"level\":\"ERROR\",\"message\":\"load test not started\"}\n\
         demo-app loadgen: cannot reach http://app.demo.svc:8080/: connection refused\n",
    );
    let error = log.parsed_summary().unwrap_err();
    assert!(matches!(error, PodLogError::NoSummary { .. }));
    let text = error.to_string();
    assert!(text.contains("printed no JSON summary"), "{text}");
    assert!(
        text.contains("cannot reach http://app.demo.svc:8080/"),
        "{text}"
    );
}

#[test]
fn a_truncated_or_foreign_summary_is_a_clear_error() {
    let truncated: String = data("loadgen-summary.json")
        .lines()
        .take(12)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(matches!(
        pod_log::split(&truncated).parsed_summary(),
        Err(PodLogError::NoSummary { .. })
    ));
    let other = "{\n  \"schema\": \"demo-app/loadgen-summary/v9\"\n}\n";
    assert_eq!(
        pod_log::split(other).parsed_summary(),
        Err(PodLogError::Summary(SummaryError::Schema(
            "demo-app/loadgen-summary/v9".into()
        )))
    );
    let missing_field = "{\n  \"schema\": \"demo-app/loadgen-summary/v1\",\n  \"targets\": []\n}\n";
    let error = pod_log::split(missing_field).parsed_summary().unwrap_err();
    assert!(error.to_string().contains("missing field"), "{error}");
}

#[test]
fn agent_deltas_from_recorded_scrapes() {
    let before = counters("agent-before.prom");
    let after = counters("agent-after.prom");
    assert_eq!(before.accepted, 238.0);
    let increase = after.increase_since(&before).unwrap();
    assert_eq!(increase.accepted, 3978.0);
    assert_eq!(increase.sent, 3978.0);
    assert_eq!(increase.lost(), 0.0);
    let checks = judge(Some(&increase), 1000);
    assert!(
        checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{checks:#?}"
    );
}

#[test]
fn spans_still_queued_are_a_warning_and_drops_a_failure() {
    let before = counters("agent-before.prom");
    let queued = counters("agent-after-queued.prom")
        .increase_since(&before)
        .unwrap();
    let checks = judge(Some(&queued), 1000);
    assert_eq!(checks[1].verdict, Verdict::Warn, "{checks:#?}");
    assert!(
        checks[1].detail.contains("613 still queued"),
        "{}",
        checks[1].detail
    );

    // Recorded from a fresh agent: no counter has a sample yet, which reads as zero.
    let before = counters("agent-overflow-before.prom");
    assert_eq!(before, SpanCounters::default());
    let dropped = counters("agent-overflow-after.prom")
        .increase_since(&before)
        .unwrap();
    assert_eq!(dropped.enqueue_failed, 500.0);
    let checks = judge(Some(&dropped), 500);
    let verdicts: Vec<Verdict> = checks.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, vec![Verdict::Pass, Verdict::Fail, Verdict::Fail]);
    assert!(checks[2].hint.as_deref().unwrap().contains("queue"));
}

#[test]
fn an_agent_restart_between_scrapes_is_a_warning_not_a_delta() {
    let before = counters("agent-after.prom");
    let after = counters("agent-before.prom");
    assert_eq!(after.increase_since(&before), None);
    let checks = judge(None, 1000);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].verdict, Verdict::Warn);
    assert!(checks[0].detail.contains("restarted"));
}

#[test]
fn metrics_that_are_not_the_agents_are_rejected() {
    let error = SpanCounters::from_exposition("up 1\n").unwrap_err();
    assert!(error.to_string().contains("telemetry agent"), "{error}");
    let error = SpanCounters::from_exposition("<html>502 Bad Gateway</html>\n").unwrap_err();
    assert!(error.to_string().contains("line 1"), "{error}");
}

fn recorded_report_checks() -> Vec<Check> {
    let before = counters("agent-before.prom");
    let queued = counters("agent-after-queued.prom").increase_since(&before);
    let mut checks = judge(queued.as_ref(), 1000);
    checks.push(judge_failed(Ok(Some(0.0))).query("sum(increase(...failed...))"));
    checks.push(judge_retried(Ok(Some(42.0))).query("sum(increase(...retried...))"));
    checks.push(judge_lag(Ok(Some(3.2))).query("max(...) - max(...)"));
    checks
}

#[test]
fn the_text_report_shows_the_summary_and_the_checks() {
    let raw: serde_json::Value = serde_json::from_str(&data("loadgen-summary.json")).unwrap();
    let summary = LoadgenSummary::from_value(&raw).unwrap();
    let checks = recorded_report_checks();
    let report = RunReport {
        job: "loadtest-20261127-205100",
        window_seconds: 31,
        summary: &summary,
        raw_summary: &raw,
        checks: &checks,
    };
    assert_eq!(report.verdict(), Verdict::Warn);
    insta::assert_snapshot!("loadtest_text_report", report.to_text());
}

#[test]
fn the_json_report_keeps_the_loadgen_summary_whole() {
    let raw: serde_json::Value = serde_json::from_str(&data("loadgen-summary.json")).unwrap();
    let summary = LoadgenSummary::from_value(&raw).unwrap();
    let mut checks = recorded_report_checks();
    checks.push(judge_failed(Ok(Some(7.0))));
    let report = RunReport {
        job: "loadtest-20261127-205100",
        window_seconds: 31,
        summary: &summary,
        raw_summary: &raw,
        checks: &checks,
    };
    let json = report.to_json();
    assert_eq!(json["loadgen"], raw);
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["passed"], false);
    assert_eq!(json["checks"][1]["verdict"], "warn");
    assert!(json["checks"][0].get("hint").is_none(), "no hint on a pass");
}

#[test]
fn the_loadgen_progress_line_reads_like_its_terminal_line() {
    let line = LogLine::parse(
        r#"{"timestamp":"2026-11-27T21:20:05Z","level":"INFO","target":"demo_app::loadgen::stats","message":"progress","elapsed_s":10.001,"sent":500,"completed":498,"errors":1,"missed":0,"in_flight":2,"p50_ms":2.1,"p99_ms":9.75}"#,
    );
    assert_eq!(
        line.readable(),
        "[  10.0s] sent 500, completed 498, errors 1, missed 0, in flight 2, p50 2.1 ms, p99 9.75 ms"
    );
}

#[test]
fn progress_shows_log_lines_but_not_the_summary_being_printed() {
    let mut filter = pod_log::ProgressFilter::default();
    let shown: Vec<String> = data("loadgen-pod.log")
        .lines()
        .chain(["demo-app: a line after the summary"])
        .map(LogLine::parse)
        .filter(|line| filter.shows(line))
        .map(|line| line.readable())
        .collect();
    assert_eq!(shown.len(), 8, "{shown:#?}");
    assert!(shown.iter().all(|l| !l.contains("schema")), "{shown:#?}");
    assert_eq!(shown[7], "demo-app: a line after the summary");
}
