//! A small engine for plans of named steps.
//!
//! - [`plan`]: the steps as data (name, what it depends on, action, estimate), checked once,
//! - [`run`]: runs a plan, each step as soon as what it depends on is done, independent steps
//!   concurrently; stops starting steps after a failure,
//! - [`progress`]: shows each step with its elapsed time (bars on a terminal, lines otherwise).
//!
//! The engine knows nothing about clusters: what an action does is up to an [`Executor`].

pub mod plan;
pub mod progress;
pub mod run;

pub use plan::{CriticalPath, Plan, PlanError, Step};
pub use progress::{PlainProgress, Progress, TerminalProgress};
pub use run::{Executor, Outcome, PlanFailed, RunSummary, StepFailure, StepResult, run_plan};
