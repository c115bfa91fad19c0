//! Errors as the user sees them: what failed, and a `help` line on how to fix it.

use std::fmt;

use crate::certs::CertError;
use crate::diagnose::Diagnosis;
use crate::diagnose::render::{bundle_line, render};
use crate::engine::{PlanError, PlanFailed};
use crate::k8s::KubeError;
use crate::loadtest::LoadtestError;
use crate::steps::StepError;
use crate::tools::{MissingTools, OutdatedTools, RunError};

#[derive(Debug, thiserror::Error)]
pub enum DeployerError {
    #[error(transparent)]
    Input(#[from] crate::cli::InputError),
    #[error(transparent)]
    MissingTools(#[from] MissingTools),
    #[error(transparent)]
    OutdatedTools(#[from] OutdatedTools),
    /// The steps' errors, and what the diagnosis of each found (printed after them by [`Report`]).
    #[error("{}", describe_failures(.failed))]
    StepsFailed {
        failed: PlanFailed<StepError>,
        diagnoses: Vec<Diagnosis>,
    },
    #[error(transparent)]
    Preflight(#[from] crate::preflight::PreflightFailed),
    #[error("doctor found {failed} problem(s) that block the PoC (the FAIL lines above)")]
    DoctorFailed { failed: usize },
    #[error("the plan is inconsistent: {0}")]
    Plan(#[from] PlanError),
    #[error("{path} is missing; the plan needs it")]
    MissingInput { path: std::path::PathBuf },
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Command(#[from] RunError),
    #[error("not confirmed; nothing was deleted")]
    NotConfirmed,
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
    /// Ctrl-C during a deploy: the commands in progress were stopped.
    #[error("`deployer {command}` was interrupted (Ctrl-C); the commands in progress were stopped")]
    Interrupted { command: String },
    #[error(transparent)]
    Loadtest(#[from] LoadtestError),
    #[error("cannot ask for confirmation: {0}")]
    Prompt(#[source] std::io::Error),
    #[error("verify failed: {}", .failed.join(", "))]
    VerifyFailed { failed: Vec<String> },
    /// The OTEL_* variables for exporting the deploy's trace are wrong.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

fn describe_failures(failed: &PlanFailed<StepError>) -> String {
    let mut text = String::new();
    for (i, failure) in failed.failures.iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "step `{}` failed: {}",
            failure.step, failure.error
        ));
    }
    if !failed.not_started.is_empty() {
        text.push_str(&format!(
            "\n\nnot started: {}",
            failed.not_started.join(", ")
        ));
    }
    text
}

impl DeployerError {
    pub fn help(&self) -> Option<String> {
        match self {
            DeployerError::Input(e) => Some(e.help()),
            DeployerError::MissingTools(missing) => Some(missing.help()),
            DeployerError::OutdatedTools(outdated) => Some(outdated.help()),
            DeployerError::StepsFailed { failed, .. } => {
                let mut hints: Vec<String> = Vec::new();
                // Steps that failed for the same reason share one hint.
                for hint in failed.failures.iter().filter_map(|f| f.error.help()) {
                    if !hints.contains(&hint) {
                        hints.push(hint);
                    }
                }
                hints.push(
                    "every step is safe to repeat: fix the cause and run the same command again"
                        .to_string(),
                );
                Some(hints.join("\n"))
            }
            DeployerError::Preflight(e) => Some(e.help()),
            DeployerError::DoctorFailed { .. } => Some(
                "fix each FAIL line with the fix under it, then run `deployer doctor` again".into(),
            ),
            DeployerError::Plan(_) => {
                Some("this is a bug in the deployer's stack definition".into())
            }
            DeployerError::MissingInput { .. } => {
                Some("run the deployer from the repository root, where manifests/ is".into())
            }
            DeployerError::Certs(e) => Some(e.help()),
            DeployerError::Kube(e) => e.help().map(str::to_string),
            DeployerError::Command(e) => e.hint().map(str::to_string),
            DeployerError::NotConfirmed => Some("answer `yes`, or pass --yes".into()),
            DeployerError::Signal(_) => None,
            DeployerError::Interrupted { command } => Some(format!(
                "every step is safe to repeat: run `deployer {command}` again to finish (a helm \
                 release it was changing may be left pending; the rerun then names the command \
                 that clears it); `deployer status` shows what is running now"
            )),
            DeployerError::Prompt(_) => Some("pass --yes to delete without asking".into()),
            DeployerError::Loadtest(e) => e.help(),
            DeployerError::VerifyFailed { .. } => Some(
                "each failed check above names its likely cause; `deployer status` shows the pods, \
                 the link and the mirrored services; run `deployer verify` again once fixed"
                    .into(),
            ),
            DeployerError::Telemetry(e) => Some(e.help()),
        }
    }

    /// The process's exit status: 1, 2 for input no flag parser could refuse alone, or what
    /// `loadtest` documents for its own failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            DeployerError::Loadtest(e) => e.exit_code(),
            // Usage errors, like clap's own for a bad flag: nothing ran.
            DeployerError::Telemetry(_) | DeployerError::Input(_) => 2,
            DeployerError::Interrupted { .. } => crate::loadtest::error::EXIT_INTERRUPTED,
            _ => 1,
        }
    }
}

/// `error: ...` then `help: ...`, the way the binary prints a failure. After failed steps: the
/// error first, then each step's diagnosis, the help, and last where the bundles are.
pub struct Report<'a>(pub &'a DeployerError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.0)?;
        let diagnoses = match self.0 {
            DeployerError::StepsFailed { diagnoses, .. } => diagnoses.as_slice(),
            _ => &[],
        };
        for diagnosis in diagnoses {
            write!(f, "\n\n{}\n", render(diagnosis))?;
        }
        if let Some(help) = self.0.help() {
            for line in help.lines() {
                write!(f, "\nhelp: {line}")?;
            }
        }
        for diagnosis in diagnoses {
            write!(f, "\n{}", bundle_line(diagnosis))?;
        }
        Ok(())
    }
}
