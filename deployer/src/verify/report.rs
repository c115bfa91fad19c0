//! The outcome of `verify`: one row per check, as a text table for people or JSON for machines.
//! The JSON field names and values are a stable interface (snake_case, durations in ms).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// An optional check found nothing; does not fail the run.
    Warn,
    /// Could not run, because a check it depends on found nothing (that one failed already), or
    /// because it was turned off.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Skip => "skip",
        }
    }
}

/// Which check a row is; the serialized names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Requests sent to the demo app.
    Burst,
    /// Mimir has the tenant's counter series.
    MetricsPresent,
    /// Those counters rose while verify watched.
    MetricsGrowing,
    /// Mimir has an exemplar with a trace_id.
    Exemplar,
    /// Loki has the tenant's log lines (with trace_id where the plan wants it).
    Logs,
    /// Tempo has a trace by id, spanning the expected services.
    Trace,
}

impl CheckKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Burst => "burst",
            CheckKind::MetricsPresent => "metrics_present",
            CheckKind::MetricsGrowing => "metrics_growing",
            CheckKind::Exemplar => "exemplar",
            CheckKind::Logs => "logs",
            CheckKind::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// `None` for the burst, which is not a tenant's.
    pub tenant: Option<String>,
    pub check: CheckKind,
    pub status: Status,
    /// What was asked, as a user could paste it (method, path, query).
    pub query: String,
    /// From the start of the run until the data showed up (passed checks only).
    pub latency_ms: Option<u64>,
    /// What was seen: counts on success, the last answer on failure.
    pub detail: String,
    /// The likely cause and what to look at, on failure.
    pub hint: Option<String>,
}

impl CheckResult {
    pub fn pass(
        tenant: Option<&str>,
        check: CheckKind,
        query: String,
        latency: Duration,
        detail: String,
    ) -> Self {
        CheckResult {
            tenant: tenant.map(str::to_string),
            check,
            status: Status::Pass,
            query,
            latency_ms: Some(millis(latency)),
            detail,
            hint: None,
        }
    }

    pub fn not_passed(
        tenant: Option<&str>,
        check: CheckKind,
        status: Status,
        query: String,
        detail: String,
        hint: Option<String>,
    ) -> Self {
        CheckResult {
            tenant: tenant.map(str::to_string),
            check,
            status,
            query,
            latency_ms: None,
            detail,
            hint,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// No check failed (warnings and skips allowed).
    pub passed: bool,
    pub elapsed_ms: u64,
    pub checks: Vec<CheckResult>,
}

impl VerifyReport {
    pub fn new(checks: Vec<CheckResult>, elapsed: Duration) -> Self {
        VerifyReport {
            passed: !checks.iter().any(CheckResult::failed),
            elapsed_ms: millis(elapsed),
            checks,
        }
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.failed())
    }

    /// `tenant/check` of each failed check, e.g. `remote01/logs`.
    pub fn failed_names(&self) -> Vec<String> {
        self.failures().map(row_name).collect()
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and enums cannot fail; keep an answer anyway.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}"))
    }

    /// A table row per check; query, detail and hint indented below it.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{:<10} {:<16} {:<6} {:>9}\n",
            "TENANT", "CHECK", "STATUS", "LATENCY"
        );
        for check in &self.checks {
            let latency = check
                .latency_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_string());
            let _ = writeln!(
                out,
                "{:<10} {:<16} {:<6} {:>9}",
                check.tenant.as_deref().unwrap_or("-"),
                check.check.name(),
                check.status.label(),
                latency
            );
            let _ = writeln!(out, "{:>12} {}", "query:", check.query);
            let _ = writeln!(out, "{:>12} {}", "seen:", check.detail);
            if let Some(hint) = &check.hint {
                let _ = writeln!(out, "{:>12} {}", "hint:", hint);
            }
        }
        let verdict = if self.passed {
            "the pipeline works"
        } else {
            "the pipeline is broken"
        };
        let _ = writeln!(
            out,
            "\n{} of {} checks passed in {:.1}s: {verdict}",
            self.checks
                .iter()
                .filter(|c| c.status == Status::Pass)
                .count(),
            self.checks.len(),
            self.elapsed_ms as f64 / 1000.0
        );
        out
    }
}

fn row_name(check: &CheckResult) -> String {
    match &check.tenant {
        Some(tenant) => format!("{tenant}/{}", check.check.name()),
        None => check.check.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> VerifyReport {
        VerifyReport::new(
            vec![
                CheckResult::pass(
                    Some("remote01"),
                    CheckKind::Logs,
                    "GET /loki".into(),
                    Duration::from_millis(1500),
                    "3 lines".into(),
                ),
                CheckResult::not_passed(
                    Some("remote01"),
                    CheckKind::Trace,
                    Status::Fail,
                    "GET /api/traces/x".into(),
                    "not found".into(),
                    Some("check the agent".into()),
                ),
            ],
            Duration::from_secs(2),
        )
    }

    #[test]
    fn one_failure_fails_the_report() {
        let report = report();
        assert!(!report.passed);
        assert_eq!(report.failed_names(), ["remote01/trace"]);
    }

    #[test]
    fn warnings_and_skips_do_not_fail_it() {
        let row = |status| {
            CheckResult::not_passed(None, CheckKind::Burst, status, "q".into(), "d".into(), None)
        };
        let report = VerifyReport::new(vec![row(Status::Warn), row(Status::Skip)], Duration::ZERO);
        assert!(report.passed);
    }

    #[test]
    fn text_shows_latency_query_and_hint() {
        let text = report().to_text();
        assert!(
            text.contains("remote01   logs             pass        1.5s"),
            "{text}"
        );
        assert!(text.contains("query: GET /api/traces/x"), "{text}");
        assert!(text.contains("hint: check the agent"), "{text}");
        assert!(text.contains("1 of 2 checks passed"), "{text}");
    }
}
