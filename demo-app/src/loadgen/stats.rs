//! Counting what happened: outcomes per request, an HDR latency histogram (microseconds,
//! measured from the intended send time), the live progress line, and the end summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::workload::Operation;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Outcome {
    Status2xx,
    Status3xx,
    Status4xx,
    Status5xx,
    Timeout,
    ConnectError,
    OtherError,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Status2xx,
        Outcome::Status3xx,
        Outcome::Status4xx,
        Outcome::Status5xx,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::OtherError,
    ];

    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Status2xx,
            300..=399 => Outcome::Status3xx,
            400..=499 => Outcome::Status4xx,
            _ => Outcome::Status5xx,
        }
    }

    /// The key in the JSON summary and the `outcome` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Status2xx => "2xx",
            Outcome::Status3xx => "3xx",
            Outcome::Status4xx => "4xx",
            Outcome::Status5xx => "5xx",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::OtherError => "other_error",
        }
    }

    /// Everything but 2xx and 3xx counts against `--max-error-ratio`.
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Status2xx | Outcome::Status3xx)
    }
}

/// One finished request, sent from the request tasks to the collector.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub operation: Operation,
    pub outcome: Outcome,
    pub latency: Duration,
}

/// Live counters the scheduler updates (the collector only reads them).
#[derive(Debug, Default)]
pub struct Counters {
    pub intended: AtomicU64,
    pub sent: AtomicU64,
    pub missed: AtomicU64,
    /// Due before the run ended but never started: the scheduler was behind (the rate is above
    /// what this machine can schedule).
    pub behind_schedule: AtomicU64,
    pub in_flight: AtomicU64,
    /// Sent, but their task panicked: no outcome. The summary cannot pass with any.
    pub lost: AtomicU64,
}

/// Everything recorded from completed requests.
pub struct Recorder {
    latency_us: Histogram<u64>,
    per_operation: BTreeMap<&'static str, (Histogram<u64>, u64)>,
    outcomes: BTreeMap<&'static str, u64>,
    completed: u64,
    errors: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits; values above are clamped, never lost.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency_us: histogram(),
            per_operation: BTreeMap::new(),
            outcomes: Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect(),
            completed: 0,
            errors: 0,
        }
    }
}

impl Recorder {
    pub fn record(&mut self, s: &Sample) {
        let us = u64::try_from(s.latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency_us.saturating_record(us);
        let (h, errors) = self
            .per_operation
            .entry(s.operation.as_str())
            .or_insert_with(|| (histogram(), 0));
        h.saturating_record(us);
        let outcome = self.outcomes.entry(s.outcome.as_str()).or_default();
        *outcome = outcome.saturating_add(1);
        self.completed = self.completed.saturating_add(1);
        if s.outcome.is_error() {
            self.errors = self.errors.saturating_add(1);
            *errors = errors.saturating_add(1);
        }
    }

    pub fn completed(&self) -> u64 {
        self.completed
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1e3
        }
    }

    /// The live progress line (no newline).
    pub fn progress_line(&self, elapsed: Duration, counters: &Counters) -> String {
        let sent = counters.sent.load(Ordering::Relaxed);
        format!(
            "[{:>6.1}s] {:>9.1} req/s sent | done {} | errors {} | missed {} | in flight {} | p50 {:.2} ms p99 {:.2} ms",
            elapsed.as_secs_f64(),
            sent as f64 / elapsed.as_secs_f64().max(1e-9),
            self.completed,
            self.errors,
            counters.missed.load(Ordering::Relaxed),
            counters.in_flight.load(Ordering::Relaxed),
            Self::quantile_ms(&self.latency_us, 0.5),
            Self::quantile_ms(&self.latency_us, 0.99),
        )
    }

    /// The same numbers as one info log line (`message: "progress"`), for logs without a
    /// terminal (a pod's log followed by `deployer loadtest`).
    pub fn log_progress(&self, elapsed: Duration, counters: &Counters) {
        let sent = counters.sent.load(Ordering::Relaxed);
        tracing::info!(
            elapsed_s = round3(elapsed.as_secs_f64()),
            sent,
            completed = self.completed,
            errors = self.errors,
            missed = counters.missed.load(Ordering::Relaxed),
            in_flight = counters.in_flight.load(Ordering::Relaxed),
            p50_ms = Self::quantile_ms(&self.latency_us, 0.5),
            p99_ms = Self::quantile_ms(&self.latency_us, 0.99),
            "progress"
        );
    }

    /// The end-of-run summary.
    pub fn summary(&self, run: RunInfo, counters: &Counters) -> Summary {
        let secs = run.duration.as_secs_f64().max(1e-9);
        let sent = counters.sent.load(Ordering::Relaxed);
        let h = &self.latency_us;
        let error_ratio = if self.completed == 0 {
            0.0
        } else {
            self.errors as f64 / self.completed as f64
        };
        let lost = counters.lost.load(Ordering::Relaxed);
        // A run that measured nothing, or lost requests to a failed task, proves nothing: it
        // never passes, whatever the error ratio of what little completed.
        let measured = self.completed > 0 && lost == 0;
        Summary {
            schema: SUMMARY_SCHEMA_ID.to_owned(),
            targets: run.targets,
            mode: run.mode,
            duration_s: round3(secs),
            requests: Requests {
                intended: counters.intended.load(Ordering::Relaxed),
                sent,
                completed: self.completed,
                missed: counters.missed.load(Ordering::Relaxed),
                behind_schedule: counters.behind_schedule.load(Ordering::Relaxed),
                lost,
            },
            rate: Rates {
                target: run.target_rate,
                achieved: round3(sent as f64 / secs),
                completed: round3(self.completed as f64 / secs),
            },
            outcomes: self
                .outcomes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            error_ratio: round6(error_ratio),
            max_error_ratio: run.max_error_ratio,
            passed: measured && run.max_error_ratio.is_none_or(|max| error_ratio <= max),
            latency_ms: LatencyMs {
                min: if h.is_empty() {
                    0.0
                } else {
                    h.min() as f64 / 1e3
                },
                mean: round3(h.mean() / 1e3),
                p50: Self::quantile_ms(h, 0.5),
                p90: Self::quantile_ms(h, 0.9),
                p99: Self::quantile_ms(h, 0.99),
                p99_9: Self::quantile_ms(h, 0.999),
                p99_99: Self::quantile_ms(h, 0.9999),
                max: if h.is_empty() {
                    0.0
                } else {
                    h.max() as f64 / 1e3
                },
            },
            operations: self
                .per_operation
                .iter()
                .map(|(op, (h, errors))| {
                    let summary = OperationSummary {
                        completed: h.len(),
                        errors: *errors,
                        p50_ms: Self::quantile_ms(h, 0.5),
                        p99_ms: Self::quantile_ms(h, 0.99),
                    };
                    ((*op).to_owned(), summary)
                })
                .collect(),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Facts about the run that the recorder does not see.
pub struct RunInfo {
    pub targets: Vec<String>,
    pub mode: Mode,
    pub target_rate: Option<f64>,
    pub duration: Duration,
    pub max_error_ratio: Option<f64>,
}

/// Identifies the summary format; bumped only on incompatible changes.
pub const SUMMARY_SCHEMA_ID: &str = "demo-app/loadgen-summary/v1";

/// The JSON Schema of [`Summary`] (also documented in the README).
pub const SUMMARY_SCHEMA: &str = include_str!("summary.schema.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Constant arrival rate (`--rate N`).
    Open,
    /// As fast as the connections allow (`--rate max`).
    Closed,
}

/// `--output json`: a stable, documented shape (see `summary.schema.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub targets: Vec<String>,
    pub mode: Mode,
    pub duration_s: f64,
    pub requests: Requests,
    pub rate: Rates,
    pub outcomes: BTreeMap<String, u64>,
    pub error_ratio: f64,
    pub max_error_ratio: Option<f64>,
    pub passed: bool,
    pub latency_ms: LatencyMs,
    pub operations: BTreeMap<String, OperationSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Requests {
    pub intended: u64,
    pub sent: u64,
    pub completed: u64,
    pub missed: u64,
    pub behind_schedule: u64,
    pub lost: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    pub target: Option<f64>,
    pub achieved: f64,
    pub completed: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyMs {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationSummary {
    pub completed: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    /// The human summary printed at the end of a run.
    pub fn write_human(&self, out: &mut impl Write) -> std::io::Result<()> {
        let r = &self.requests;
        writeln!(out, "Load test against {}", self.targets.join(", "))?;
        let target = self
            .rate
            .target
            .map_or("max (closed loop)".to_owned(), |t| format!("{t} req/s"));
        writeln!(
            out,
            "  duration {:.1} s, target rate {target}, achieved {:.1} req/s",
            self.duration_s, self.rate.achieved
        )?;
        writeln!(
            out,
            "  requests: intended {} sent {} completed {} missed {}",
            r.intended, r.sent, r.completed, r.missed
        )?;
        if r.behind_schedule > 0 {
            writeln!(
                out,
                "  behind schedule: {} due sends never started before the end (the rate is above \
                 what this machine can send; lower --rate or run more load generators)",
                r.behind_schedule
            )?;
        }
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            out,
            "  outcomes: {} (error ratio {:.4})",
            outcomes.join(", "),
            self.error_ratio
        )?;
        let l = &self.latency_ms;
        writeln!(
            out,
            "  latency ms (from intended send time): min {} p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}",
            l.min, l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max
        )?;
        for (op, s) in &self.operations {
            writeln!(
                out,
                "  {op:>5}: {} done, {} errors, p50 {} ms, p99 {} ms",
                s.completed, s.errors, s.p50_ms, s.p99_ms
            )?;
        }
        if r.completed == 0 {
            writeln!(out, "  FAIL: no request completed, so nothing was measured")?;
        }
        if r.lost > 0 {
            writeln!(
                out,
                "  FAIL: {} request(s) lost to a failed task (see the error log)",
                r.lost
            )?;
        }
        if let Some(max) = self.max_error_ratio {
            let verdict = if self.error_ratio <= max {
                "PASS"
            } else {
                "FAIL"
            };
            writeln!(
                out,
                "  {verdict}: error ratio {:.4} (max {max})",
                self.error_ratio
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_outcomes_and_quantiles() {
        let mut rec = Recorder::default();
        for i in 1..=100u64 {
            rec.record(&Sample {
                operation: Operation::List,
                outcome: if i % 10 == 0 {
                    Outcome::Status5xx
                } else {
                    Outcome::Status2xx
                },
                latency: Duration::from_millis(i),
            });
        }
        let counters = Counters::default();
        counters.sent.store(100, Ordering::Relaxed);
        counters.intended.store(101, Ordering::Relaxed);
        counters.missed.store(1, Ordering::Relaxed);
        let s = rec.summary(
            RunInfo {
                targets: vec!["http://x".into()],
                mode: Mode::Open,
                target_rate: Some(20.0),
                duration: Duration::from_secs(5),
                max_error_ratio: Some(0.05),
            },
            &counters,
        );
        assert_eq!(s.outcomes["2xx"], 90);
        assert_eq!(s.outcomes["5xx"], 10);
        assert_eq!(s.outcomes["timeout"], 0);
        assert_eq!(s.error_ratio, 0.1);
        assert!(!s.passed);
        assert_eq!(s.rate.achieved, 20.0);
        assert!(
            (s.latency_ms.p50 - 50.0).abs() < 0.1,
            "{}",
            s.latency_ms.p50
        );
        assert!((s.latency_ms.max - 100.0).abs() < 0.1);
        assert_eq!(s.operations["list"].completed, 100);
        let mut human = Vec::new();
        s.write_human(&mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(
            human.contains("FAIL") && human.contains("missed 1"),
            "{human}"
        );
    }

    fn run_info() -> RunInfo {
        RunInfo {
            targets: vec!["http://x".into()],
            mode: Mode::Open,
            target_rate: Some(20.0),
            duration: Duration::from_secs(1),
            max_error_ratio: None,
        }
    }

    #[test]
    fn a_run_that_completed_nothing_never_passes() {
        let counters = Counters::default();
        counters.sent.store(3, Ordering::Relaxed);
        let s = Recorder::default().summary(run_info(), &counters);
        assert_eq!(s.requests.completed, 0);
        assert!(!s.passed, "nothing measured must not pass: {s:?}");
        let mut human = Vec::new();
        s.write_human(&mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(human.contains("FAIL: no request completed"), "{human}");
    }

    #[test]
    fn a_request_lost_to_a_failed_task_fails_the_run() {
        let mut rec = Recorder::default();
        rec.record(&Sample {
            operation: Operation::List,
            outcome: Outcome::Status2xx,
            latency: Duration::from_millis(1),
        });
        let counters = Counters::default();
        counters.sent.store(2, Ordering::Relaxed);
        counters.lost.store(1, Ordering::Relaxed);
        let s = rec.summary(run_info(), &counters);
        assert_eq!((s.requests.completed, s.requests.lost), (1, 1));
        assert!(!s.passed);
    }
}
