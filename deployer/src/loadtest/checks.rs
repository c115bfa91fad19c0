//! One judgement about the pipeline: what was measured, a verdict, and a hint when it is not a
//! pass.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// Worth a look, or could not be measured; does not fail the run.
    Warn,
    /// The pipeline lost or refused data; the run fails.
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Short name, e.g. "agent: spans forwarded".
    pub name: String,
    pub verdict: Verdict,
    /// What was measured, e.g. "12034 of 12040 accepted spans sent (99.9%)".
    pub detail: String,
    /// What to look at when it is not a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The query or scrape it ran, so a person can repeat it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl Check {
    pub fn new(name: &str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Check {
            name: name.to_string(),
            verdict,
            detail: detail.into(),
            hint: None,
            query: None,
        }
    }

    /// Adds the hint, shown only when the verdict is not a pass; a hint already set (e.g. why
    /// it could not be measured) stays.
    pub fn hint(mut self, hint: &str) -> Self {
        if self.verdict != Verdict::Pass && self.hint.is_none() {
            self.hint = Some(hint.to_string());
        }
        self
    }

    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// A check that could not be measured: a warning, never a failure (the load test itself ran).
    pub fn unmeasured(name: &str, why: impl std::fmt::Display, hint: &str) -> Self {
        Check::new(name, Verdict::Warn, format!("not measured: {why}")).hint(hint)
    }
}

/// `part / whole` as a ratio; a zero whole gives None (nothing to compare against).
pub fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// Pass at or above `pass`, warn above zero, fail at zero.
pub fn proportion_verdict(ratio: f64, pass: f64) -> Verdict {
    if ratio >= pass {
        Verdict::Pass
    } else if ratio > 0.0 {
        Verdict::Warn
    } else {
        Verdict::Fail
    }
}

/// The worst verdict of all checks (Pass when there are none).
pub fn worst(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
}
