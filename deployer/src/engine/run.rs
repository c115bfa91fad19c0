//! Running a plan: each step starts once its dependencies succeeded; independent steps run
//! concurrently. After a failure no new step starts, but running ones finish (killing a half-done
//! `minikube start` would leave a broken profile behind).
//!
//! Each step runs inside a `tracing` span named after it, a child of the span current when the
//! plan started (the deploy's), so the commands a step runs are children of its span. The steps
//! share one task (a `FuturesUnordered`), so each future carries its span with `.instrument`.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tracing::{Instrument, Span, field};

use super::plan::Plan;
use super::progress::Progress;

/// What a step did. Both are success; the difference tells a re-run that had nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Changed(String),
    Unchanged(String),
}

impl Outcome {
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Changed(d) | Outcome::Unchanged(d) => d,
        }
    }

    pub fn changed(&self) -> bool {
        matches!(self, Outcome::Changed(_))
    }
}

/// Carries out the actions of a plan.
pub trait Executor {
    type Action;
    type Error: fmt::Display;

    fn execute(&self, action: &Self::Action) -> impl Future<Output = Result<Outcome, Self::Error>>;

    /// The cluster (profile or context) an action works on, for its span; None when it works on
    /// this machine only.
    fn cluster_of(&self, _action: &Self::Action) -> Option<String> {
        None
    }
}

#[derive(Debug)]
pub struct StepFailure<E> {
    pub step: String,
    pub error: E,
}

#[derive(Debug)]
pub struct PlanFailed<E> {
    pub failures: Vec<StepFailure<E>>,
    /// Steps that never started because something before them failed.
    pub not_started: Vec<String>,
    /// Steps that succeeded before the run stopped, in the order they finished.
    pub completed: Vec<StepResult>,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub step: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub results: Vec<StepResult>,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn changed(&self) -> usize {
        self.changed_steps().len()
    }

    pub fn unchanged(&self) -> usize {
        self.results.len() - self.changed()
    }

    /// The steps that changed something, in the order they finished.
    pub fn changed_steps(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.outcome.changed())
            .map(|r| r.step.as_str())
            .collect()
    }

    /// "3 of 41 steps changed something, 38 unchanged", then which ones changed; a re-run of a
    /// finished setup reads "0 of 41 steps changed something, 41 unchanged".
    pub fn report(&self) -> String {
        let mut text = format!(
            "{} of {} steps changed something, {} unchanged",
            self.changed(),
            self.results.len(),
            self.unchanged()
        );
        let changed = self.changed_steps();
        if !changed.is_empty() {
            text.push_str("\nchanged: ");
            text.push_str(&changed.join(", "));
        }
        text
    }
}

pub async fn run_plan<X: Executor>(
    plan: &Plan<X::Action>,
    executor: &X,
    progress: &dyn Progress,
) -> Result<RunSummary, PlanFailed<X::Error>> {
    let started_at = Instant::now();
    // Step spans hang off the caller's span even when the caller's span is not entered at the
    // moment a step is launched.
    let parent = Span::current();
    let steps = plan.steps();
    let mut done: HashSet<usize> = HashSet::new();
    let mut launched: HashSet<usize> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut results = Vec::new();
    let mut failures = Vec::new();

    loop {
        if failures.is_empty() {
            for (index, step) in steps.iter().enumerate() {
                let ready = step
                    .depends_on
                    .iter()
                    .all(|d| plan.index_of(d).is_some_and(|i| done.contains(&i)));
                if ready && launched.insert(index) {
                    progress.started(&step.name);
                    let began = Instant::now();
                    let span = step_span(&parent, &step.name, executor.cluster_of(&step.action));
                    running.push(
                        async move {
                            let result = executor.execute(&step.action).await;
                            record_step_result(&Span::current(), &result);
                            (index, result, began.elapsed())
                        }
                        .instrument(span),
                    );
                }
            }
        }
        let Some((index, result, elapsed)) = running.next().await else {
            break;
        };
        let name = steps[index].name.clone();
        match result {
            Ok(outcome) => {
                progress.finished(&name, &outcome, elapsed);
                done.insert(index);
                results.push(StepResult {
                    step: name,
                    outcome,
                    elapsed,
                });
            }
            Err(error) => {
                progress.failed(&name, &error.to_string(), elapsed);
                failures.push(StepFailure { step: name, error });
            }
        }
    }

    // Reported in plan order, whichever failed first.
    failures.sort_by_key(|f: &StepFailure<X::Error>| plan.index_of(&f.step));
    if failures.is_empty() {
        Ok(RunSummary {
            results,
            elapsed: started_at.elapsed(),
        })
    } else {
        let not_started = steps
            .iter()
            .enumerate()
            .filter(|(i, _)| !launched.contains(i))
            .map(|(_, s)| s.name.clone())
            .collect();
        Err(PlanFailed {
            failures,
            not_started,
            completed: results,
        })
    }
}

/// One step's span: named after the step, with the fields filled in once it ends.
fn step_span(parent: &Span, name: &str, cluster: Option<String>) -> Span {
    tracing::info_span!(
        parent: parent,
        "step",
        otel.name = name,
        deployer.step = name,
        deployer.cluster = cluster.as_deref(),
        deployer.changed = field::Empty,
        deployer.outcome = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    )
}

fn record_step_result<E: fmt::Display>(span: &Span, result: &Result<Outcome, E>) {
    match result {
        Ok(outcome) => {
            span.record("deployer.changed", outcome.changed());
            span.record("deployer.outcome", outcome.detail());
        }
        Err(error) => {
            span.record("otel.status_code", "error");
            span.record("otel.status_description", error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Step;
    use crate::engine::progress::PlainProgress;
    use std::sync::Mutex;

    /// Records start and end of each action; an action named "fail" fails.
    struct Recorder {
        log: Mutex<Vec<String>>,
    }

    impl Executor for Recorder {
        type Action = (&'static str, u64);
        type Error = String;

        async fn execute(&self, action: &Self::Action) -> Result<Outcome, String> {
            let (name, millis) = *action;
            self.log.lock().unwrap().push(format!("start {name}"));
            tokio::time::sleep(Duration::from_millis(millis)).await;
            self.log.lock().unwrap().push(format!("end {name}"));
            if name == "fail" {
                Err("it broke".into())
            } else {
                Ok(Outcome::Changed(name.into()))
            }
        }
    }

    fn step(name: &'static str, millis: u64, after: &[&str]) -> Step<(&'static str, u64)> {
        Step::new(name, (name, millis), Duration::ZERO).after(after.iter().copied())
    }

    #[tokio::test]
    async fn runs_independent_steps_side_by_side() {
        let plan = Plan::new(vec![
            step("a", 50, &[]),
            step("b", 50, &[]),
            step("c", 0, &["a", "b"]),
        ])
        .unwrap();
        let recorder = Recorder {
            log: Mutex::new(Vec::new()),
        };
        let summary = run_plan(&plan, &recorder, &PlainProgress::silent())
            .await
            .unwrap();
        let log = recorder.log.lock().unwrap().clone();
        assert_eq!(&log[..2], ["start a", "start b"], "{log:?}");
        assert_eq!(log.last().unwrap(), "end c");
        assert_eq!(summary.changed(), 3);
        assert_eq!(summary.unchanged(), 0);
        assert!(
            summary
                .report()
                .starts_with("3 of 3 steps changed something, 0 unchanged\nchanged: "),
            "{}",
            summary.report()
        );
    }

    #[tokio::test]
    async fn stops_after_a_failure() {
        let plan = Plan::new(vec![
            step("fail", 0, &[]),
            step("slow", 30, &[]),
            step("after", 0, &["fail"]),
            step("later", 0, &["slow"]),
        ])
        .unwrap();
        let recorder = Recorder {
            log: Mutex::new(Vec::new()),
        };
        let failed = run_plan(&plan, &recorder, &PlainProgress::silent())
            .await
            .unwrap_err();
        assert_eq!(failed.failures.len(), 1);
        assert_eq!(failed.failures[0].step, "fail");
        assert_eq!(failed.not_started, ["after", "later"]);
        let completed: Vec<&str> = failed.completed.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(
            completed,
            ["slow"],
            "a measured duration for each finished step"
        );
        // The running step was allowed to finish.
        assert!(recorder.log.lock().unwrap().contains(&"end slow".into()));
    }
}
