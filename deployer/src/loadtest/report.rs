//! The end of a run as the user reads it (text) or a machine does (JSON): the loadgen's summary,
//! then the pipeline's checks over the same window.

use std::fmt::Write;

use serde_json::{Value, json};

use super::checks::{Check, Verdict, worst};
use super::summary::LoadgenSummary;

pub struct RunReport<'a> {
    pub job: &'a str,
    /// Seconds from the loadgen's start to the last check.
    pub window_seconds: u64,
    pub summary: &'a LoadgenSummary,
    /// The summary exactly as the loadgen printed it.
    pub raw_summary: &'a Value,
    pub checks: &'a [Check],
}

impl RunReport<'_> {
    pub fn verdict(&self) -> Verdict {
        worst(self.checks)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "job": self.job,
            "window_seconds": self.window_seconds,
            "loadgen": self.raw_summary,
            "checks": self.checks,
            "verdict": self.verdict(),
            "passed": self.summary.passed && self.verdict() != Verdict::Fail,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        summary_text(&mut out, self.job, self.summary);
        let _ = writeln!(
            out,
            "\nPipeline over the same window ({}s):",
            self.window_seconds
        );
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in self.checks {
            check_text(&mut out, check, width);
        }
        let _ = writeln!(out, "\n{}", self.result_line());
        out
    }

    fn result_line(&self) -> String {
        let count = |v: Verdict| self.checks.iter().filter(|c| c.verdict == v).count();
        let (warned, failed) = (count(Verdict::Warn), count(Verdict::Fail));
        let loadgen = if self.summary.passed {
            "loadgen passed"
        } else {
            "loadgen FAILED (error ratio)"
        };
        format!(
            "Result: {loadgen}; pipeline: {failed} failed, {warned} warned, {} passed",
            count(Verdict::Pass)
        )
    }
}

fn summary_text(out: &mut String, job: &str, s: &LoadgenSummary) {
    let target = match s.rate.target {
        Some(rate) => format!("{rate} requests/s ({} loop)", s.mode),
        None => format!("as fast as it goes ({} loop)", s.mode),
    };
    let _ = writeln!(
        out,
        "Load test {job}: {:.1}s at {target} against {}",
        s.duration_s,
        s.targets.join(", ")
    );
    let r = &s.requests;
    let _ = writeln!(
        out,
        "  requests    intended {}, sent {}, completed {}, missed {}",
        r.intended, r.sent, r.completed, r.missed
    );
    let _ = writeln!(
        out,
        "  rate        achieved {:.1}/s, completed {:.1}/s",
        s.rate.achieved, s.rate.completed
    );
    let errors = s
        .errors_by_kind()
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>();
    let max = s
        .max_error_ratio
        .map_or("none".to_string(), |m| m.to_string());
    let _ = writeln!(
        out,
        "  outcomes    2xx {}, errors: {} (error ratio {:.4}, max {max}: {})",
        s.outcomes.get("2xx").copied().unwrap_or(0),
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(", ")
        },
        s.error_ratio,
        if s.passed { "passed" } else { "FAILED" }
    );
    let l = &s.latency_ms;
    let _ = writeln!(
        out,
        "  latency ms  p50 {}, p90 {}, p99 {}, p99.9 {}, max {} (min {}, mean {})",
        l.p50, l.p90, l.p99, l.p99_9, l.max, l.min, l.mean
    );
    for (name, op) in &s.operations {
        let _ = writeln!(
            out,
            "  {name:<11} {} completed, {} errors, p50 {} ms, p99 {} ms",
            op.completed, op.errors, op.p50_ms, op.p99_ms
        );
    }
}

fn check_text(out: &mut String, check: &Check, width: usize) {
    let _ = writeln!(
        out,
        "  {:<4}  {:<width$}  {}",
        check.verdict.to_string(),
        check.name,
        check.detail
    );
    if check.verdict == Verdict::Pass {
        return;
    }
    if let Some(hint) = &check.hint {
        let _ = writeln!(out, "        hint: {hint}");
    }
    if let Some(query) = &check.query {
        let _ = writeln!(out, "        ran:  {query}");
    }
}
