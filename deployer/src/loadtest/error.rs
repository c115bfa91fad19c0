//! What can make `deployer loadtest` fail, each with help and an exit code of its own, so a
//! script can tell "the app erred too much" (3) from "the pipeline lost data" (4).

use crate::k8s::KubeError;

use super::pod_log::PodLogError;

/// The loadgen's own code for "error ratio above --max-error-ratio", kept for the same case.
pub const EXIT_TOO_MANY_ERRORS: u8 = 3;
pub const EXIT_PIPELINE_FAILED: u8 = 4;
/// 128 + SIGINT, as shells report a process stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("the loadgen pod {pod} did not start: {reason}{}", message_suffix(.message))]
    PodNotStarted {
        pod: String,
        reason: String,
        message: Option<String>,
    },
    #[error("cannot follow the log of pod {pod}: {source}")]
    Logs {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("job {job} failed{}{}; the loadgen's last lines:\n{last_lines}",
        exit_suffix(.exit_code), message_suffix(.reason))]
    JobFailed {
        job: String,
        reason: Option<String>,
        exit_code: Option<i32>,
        last_lines: String,
    },
    #[error("job {job}: {0}", .source)]
    Summary {
        job: String,
        #[source]
        source: PodLogError,
    },
    #[error("the app's error ratio {error_ratio:.4} is above --max-error-ratio {max_error_ratio}")]
    TooManyErrors {
        error_ratio: f64,
        max_error_ratio: f64,
    },
    #[error("pipeline check(s) failed: {}", .failed.join(", "))]
    ChecksFailed { failed: Vec<String> },
    #[error("interrupted: job {job} was deleted, which stops the load")]
    Interrupted { job: String },
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
}

fn message_suffix(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

fn exit_suffix(code: &Option<i32>) -> String {
    code.map(|c| format!(": the loadgen exited with {c}"))
        .unwrap_or_default()
}

impl LoadtestError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadtestError::TooManyErrors { .. } => EXIT_TOO_MANY_ERRORS,
            LoadtestError::ChecksFailed { .. } => EXIT_PIPELINE_FAILED,
            LoadtestError::Interrupted { .. } => EXIT_INTERRUPTED,
            _ => 1,
        }
    }

    pub fn help(&self) -> Option<String> {
        match self {
            LoadtestError::Kube(error) => error.help().map(str::to_string),
            LoadtestError::PodNotStarted { reason, .. } if reason.contains("Image") => Some(
                "the demo-app image is not on the remote node: run `deployer remote` (it builds \
                 lgtm-demo-app into the node), then try again"
                    .into(),
            ),
            LoadtestError::PodNotStarted { .. } => Some(
                "look at the pod's events in namespace demo; the remote cluster may be short of \
                 CPU or memory (--remote-cpus, --remote-memory)"
                    .into(),
            ),
            LoadtestError::Logs { .. } => {
                Some("is the remote cluster reachable? see `deployer status`".into())
            }
            LoadtestError::JobFailed {
                exit_code: Some(2), ..
            } => Some(
                "exit 2 is bad input or an unreachable target: is the app ready? \
                 (`deployer status`, namespace demo)"
                    .into(),
            ),
            LoadtestError::JobFailed { .. } => Some(
                "the Job and its pod stay for an hour after they finish: their events and \
                 log show what happened"
                    .into(),
            ),
            LoadtestError::Summary { .. } => Some(
                "the loadgen and the deployer disagree on the summary's format: rebuild the \
                 image with `deployer remote` so both come from the same source"
                    .into(),
            ),
            LoadtestError::TooManyErrors { .. } => Some(
                "the app answered with errors or timeouts: see the outcomes above; lower \
                 --rate, or raise --max-error-ratio if that is expected (e.g. chaos is on)"
                    .into(),
            ),
            LoadtestError::ChecksFailed { .. } => {
                Some("each failed check above has its own hint and the query it ran".into())
            }
            LoadtestError::Interrupted { .. } | LoadtestError::Signal(_) => None,
        }
    }
}
