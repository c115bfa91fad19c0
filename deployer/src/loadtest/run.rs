//! Running the Job: apply it, wait for its pod's loadgen container to start, follow its log
//! while it runs, then read how it ended. Every wait polls with a deadline.

use std::time::{Duration, SystemTime};

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{DeleteParams, ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

use super::job::CONTAINER;
use super::pod_log::LogLine;
use super::{LoadtestError, NAMESPACE};
use crate::k8s::KubeError;
use crate::k8s::apply::apply_typed;

/// How often the waits look again.
const POLL: Duration = Duration::from_millis(500);
/// While the loadgen is quiet, a line saying it still runs this often.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Waiting reasons after which the container will not start by itself.
const STUCK: &[&str] = &[
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What the caller is told while the Job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Applied { job: String },
    PodStarted { pod: String },
    Line(LogLine),
    StillRunning { elapsed: Duration },
}

/// How the Job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub pod: String,
    /// When the loadgen container started: the start of the window the checks look at.
    pub started: SystemTime,
    /// The whole log of the loadgen container (stdout and stderr, as the API merges them).
    pub log: String,
    pub exit_code: Option<i32>,
    /// The Job's Failed condition, reason and message, when it failed.
    pub failure: Option<String>,
}

/// Runs `job` to its end. `wait_timeout` bounds the pod's start and, after the log ends, the
/// Job's final status; the run itself takes as long as the loadgen does.
pub async fn run_job(
    client: &Client,
    job: &Job,
    wait_timeout: Duration,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Finished, LoadtestError> {
    let name = job.name_any();
    apply_typed(client, job, NAMESPACE).await?;
    progress(Progress::Applied { job: name.clone() });
    let pod = wait_for_pod(client, &name, wait_timeout).await?;
    let started = SystemTime::now();
    progress(Progress::PodStarted { pod: pod.clone() });
    let followed = follow_log(client, &pod, progress).await?;
    let failure = wait_for_end(client, &name, wait_timeout).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    // The whole log once more: a follow can be cut short (API server restart, idle timeout).
    let log = match pods.logs(&pod, &log_params(false)).await {
        Ok(log) if log.len() >= followed.len() => log,
        _ => followed,
    };
    let final_pod = pods
        .get(&pod)
        .await
        .map_err(KubeError::api(format!("read pod {NAMESPACE}/{pod}")))?;
    Ok(Finished {
        exit_code: loadgen_status(&final_pod)
            .and_then(|s| s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)),
        pod,
        started,
        log,
        failure,
    })
}

fn log_params(follow: bool) -> LogParams {
    LogParams {
        container: Some(CONTAINER.to_string()),
        follow,
        ..LogParams::default()
    }
}

/// The Job's pod whose loadgen container runs or ran, if any.
async fn started_pod(client: &Client, job: &str) -> Result<Option<String>, LoadtestError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let listed = pods.list(&selector).await.map_err(KubeError::api(format!(
        "list the pods of job {NAMESPACE}/{job}"
    )))?;
    for pod in &listed.items {
        if let Some(started) = container_started(pod)? {
            return Ok(Some(started));
        }
    }
    Ok(None)
}

/// Waits until the Job's pod has started its loadgen container (running or already done).
async fn wait_for_pod(
    client: &Client,
    job: &str,
    timeout: Duration,
) -> Result<String, LoadtestError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(started) = started_pod(client, job).await? {
            return Ok(started);
        }
        // Only now: a loadgen that exits at once fails the Job, and its log still matters. The
        // pod may have run and ended between the look above and this one, so look once more
        // before saying that none ran.
        if let Some(failure) = job_failure(client, job).await? {
            if let Some(started) = started_pod(client, job).await? {
                return Ok(started);
            }
            return Err(LoadtestError::JobFailed {
                job: job.to_string(),
                reason: Some(failure),
                exit_code: None,
                last_lines: "  (no pod ran)".into(),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(KubeError::Timeout {
                what: format!("the loadgen pod of job {NAMESPACE}/{job} to start"),
                after: timeout,
            }
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn loadgen_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == CONTAINER)
}

/// Some(pod name) once the loadgen container runs or ran; an error when it is stuck.
fn container_started(pod: &Pod) -> Result<Option<String>, LoadtestError> {
    let Some(state) = loadgen_status(pod).and_then(|s| s.state.as_ref()) else {
        return Ok(None);
    };
    if state.running.is_some() || state.terminated.is_some() {
        return Ok(Some(pod.name_any()));
    }
    match &state.waiting {
        Some(waiting) if STUCK.contains(&waiting.reason.as_deref().unwrap_or_default()) => {
            Err(LoadtestError::PodNotStarted {
                pod: pod.name_any(),
                reason: waiting.reason.clone().unwrap_or_default(),
                message: waiting.message.clone(),
            })
        }
        _ => Ok(None),
    }
}

/// Streams the loadgen's log until the container ends; returns the text seen.
async fn follow_log(
    client: &Client,
    pod: &str,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<String, LoadtestError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let stream = pods
        .log_stream(pod, &log_params(true))
        .await
        .map_err(|source| LoadtestError::Logs {
            pod: pod.to_string(),
            source,
        })?;
    let mut lines = Box::pin(stream.lines());
    let mut text = String::new();
    let began = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval_at(began + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    text.push_str(&line);
                    text.push('\n');
                    progress(Progress::Line(LogLine::parse(&line)));
                    heartbeat.reset();
                }
                Some(Err(error)) => {
                    tracing::warn!(%pod, %error, "the log stream broke off; reading the rest at the end");
                    break;
                }
                None => break,
            },
            _ = heartbeat.tick() => progress(Progress::StillRunning { elapsed: began.elapsed() }),
        }
    }
    Ok(text)
}

/// Waits for the Job's Complete or Failed condition; returns the failure, if any.
async fn wait_for_end(
    client: &Client,
    job: &str,
    timeout: Duration,
) -> Result<Option<String>, LoadtestError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
        let current = jobs
            .get(job)
            .await
            .map_err(KubeError::api(format!("read job {NAMESPACE}/{job}")))?;
        if let Some(failure) = failed_condition(&current) {
            return Ok(Some(failure));
        }
        if has_condition(&current, "Complete") {
            return Ok(None);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(KubeError::Timeout {
                what: format!("job {NAMESPACE}/{job} to finish after its log ended"),
                after: timeout,
            }
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn job_failure(client: &Client, job: &str) -> Result<Option<String>, LoadtestError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let current = jobs
        .get_opt(job)
        .await
        .map_err(KubeError::api(format!("read job {NAMESPACE}/{job}")))?;
    Ok(current.as_ref().and_then(failed_condition))
}

fn has_condition(job: &Job, kind: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// "BackoffLimitExceeded: Job has reached the specified backoff limit", from the Failed
/// condition.
pub fn failed_condition(job: &Job) -> Option<String> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let failed = conditions
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    Some(
        [failed.reason.as_deref(), failed.message.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": "),
    )
}

/// Deletes the Job and, in the background, its pod: stopping the load when the user stops
/// waiting for it.
pub async fn delete_job(client: &Client, job: &str) -> Result<(), KubeError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    jobs.delete(job, &DeleteParams::background())
        .await
        .map_err(KubeError::api(format!("delete job {NAMESPACE}/{job}")))?;
    Ok(())
}
