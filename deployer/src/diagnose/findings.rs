//! What is wrong with one object, read from the objects themselves (no API calls here), so the
//! same reading serves a failed step's diagnosis, `deployer status` and `deployer doctor`.
//!
//! The fields read are those of the Kubernetes API reference (Pod `status.conditions`,
//! `status.containerStatuses[].state|lastState`, core/v1 Event `reason`/`message`); the messages
//! quoted in hints are the scheduler's and kubelet's own (FailedScheduling, ErrImageNeverPull,
//! BackOff, Unhealthy), which the deployer passes on rather than paraphrases.

use k8s_openapi::api::core::v1::{ContainerStatus, Event, PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;
use serde::Serialize;

use super::hints::{HintContext, hint_for};

/// Why an object is not fine, in kinds a hint can be chosen by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Pending: the scheduler found no node (its FailedScheduling message).
    Unschedulable,
    /// ImagePullBackOff, ErrImagePull, ErrImageNeverPull, InvalidImageName.
    Image,
    /// CrashLoopBackOff or a container that exited with an error.
    Crash,
    /// Exited because it ran out of its memory limit.
    OutOfMemory,
    /// Running, but a probe fails.
    NotReady,
    /// Waiting for another reason (ContainerCreating, CreateContainerConfigError, ...).
    Waiting,
    /// A PersistentVolumeClaim without a volume.
    ClaimPending,
    /// A Job that gave up.
    JobFailed,
    /// A LoadBalancer Service without an address.
    NoAddress,
}

/// One problem, in a few lines: what, why (the cluster's own words), and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// "pod", "claim", "job", "service".
    pub object: &'static str,
    pub namespace: String,
    pub name: String,
    pub kind: Kind,
    /// One line: the reason and the cluster's message.
    pub problem: String,
    pub hint: String,
    /// The container whose log explains it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Whether that container has a previous (crashed) instance.
    #[serde(skip)]
    pub previous: bool,
    /// The last lines of that log, filled in when the log could be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// Ready, or a finished Job pod (Succeeded), which is never ready and is fine.
pub fn pod_ok(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) == Some("Succeeded") {
        return true;
    }
    status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Events about one object, oldest first (as `kubectl describe` lists them).
pub fn events_about<'a>(events: &'a [Event], kind: &str, name: &str) -> Vec<&'a Event> {
    let mut about: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .collect();
    about.sort_by_key(|e| event_time(e));
    about
}

fn event_time(event: &Event) -> String {
    // RFC 3339 in UTC sorts as text. Newer servers fill eventTime, older ones lastTimestamp.
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default()
}

/// The newest message of an event with one of `reasons`.
fn latest<'a>(events: &[&'a Event], reasons: &[&str]) -> Option<&'a str> {
    latest_where(events, reasons, |_| true)
}

fn latest_where<'a>(
    events: &[&'a Event],
    reasons: &[&str],
    keep: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    events
        .iter()
        .rev()
        .filter(|e| e.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
        .filter_map(|e| e.message.as_deref())
        .find(|m| keep(m))
}

/// What is wrong with a pod that is not ok, or None for a fine one.
pub fn pod_finding(pod: &Pod, events: &[Event], context: &HintContext) -> Option<Finding> {
    if pod_ok(pod) {
        return None;
    }
    let name = pod.name_any();
    let about = events_about(events, "Pod", &name);
    let (kind, problem, container, previous) = pod_problem(pod, &about);
    let mut finding = Finding {
        object: "pod",
        namespace: pod.namespace().unwrap_or_default(),
        name,
        hint: String::new(),
        kind,
        problem,
        container,
        previous,
        log: Vec::new(),
    };
    finding.hint = hint_for(&finding, context);
    Some(finding)
}

type Problem = (Kind, String, Option<String>, bool);

fn pod_problem(pod: &Pod, events: &[&Event]) -> Problem {
    let status = pod.status.clone().unwrap_or_default();
    let unscheduled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unscheduled {
        // The event carries the newest message; the condition the one it was set with.
        let message = latest(events, &["FailedScheduling"])
            .or(condition.message.as_deref())
            .unwrap_or("no node fits");
        return (
            Kind::Unschedulable,
            format!("Pending: {message}"),
            None,
            false,
        );
    }
    let containers: Vec<&ContainerStatus> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let mut fallback = None;
    for container in &containers {
        if let Some(problem) = container_problem(container, events) {
            match problem.0 {
                // A crash or a missing image explains more than a probe; keep looking.
                Kind::NotReady | Kind::Waiting => {
                    fallback.get_or_insert(problem);
                }
                _ => return problem,
            }
        }
    }
    fallback.unwrap_or_else(|| {
        let phase = status.phase.unwrap_or_else(|| "Unknown".into());
        let message = status.message.or(status.reason).unwrap_or_default();
        let line = if message.is_empty() {
            format!("{phase}, not ready")
        } else {
            format!("{phase}: {message}")
        };
        (Kind::Waiting, line, None, false)
    })
}

fn container_problem(container: &ContainerStatus, events: &[&Event]) -> Option<Problem> {
    let name = container.name.clone();
    let state = container.state.clone().unwrap_or_default();
    let restarts = container.restart_count;
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        match reason.as_str() {
            "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName" => {
                // BackOff's own message only says "Back-off pulling image"; the Failed event
                // says why the pull failed.
                // The kubelet also records "Error: ImagePullBackOff" as Failed: not the cause.
                let why = latest_where(events, &["Failed", "ErrImageNeverPull"], |m| {
                    !m.starts_with("Error: ")
                })
                .map(str::to_string)
                .unwrap_or(message);
                let line = format!(
                    "{reason}: image {} of container {name}: {why}",
                    container.image
                );
                return Some((Kind::Image, line, None, false));
            }
            "CrashLoopBackOff" => {
                let last = container
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref());
                let exit = last.map(|t| t.exit_code);
                let why = last.and_then(|t| t.reason.clone());
                let kind = if why.as_deref() == Some("OOMKilled") {
                    Kind::OutOfMemory
                } else {
                    Kind::Crash
                };
                let line = format!(
                    "CrashLoopBackOff: container {name} {}, {restarts} restarts",
                    exited(exit, why.as_deref())
                );
                return Some((kind, line, Some(name), restarts > 0));
            }
            "ContainerCreating" | "PodInitializing" => {}
            _ => {
                let line = format!("{reason}: container {name}: {message}");
                return Some((Kind::Waiting, line, None, false));
            }
        }
    }
    if let Some(terminated) = &state.terminated
        && terminated.exit_code != 0
    {
        let why = terminated.reason.as_deref();
        let kind = if why == Some("OOMKilled") {
            Kind::OutOfMemory
        } else {
            Kind::Crash
        };
        let line = format!(
            "container {name} {}",
            exited(Some(terminated.exit_code), why)
        );
        return Some((kind, line, Some(name), false));
    }
    if state.running.is_some() && !container.ready {
        let probe =
            latest(events, &["Unhealthy"]).unwrap_or("its readiness probe has not passed yet");
        let line = format!("Running but not ready: container {name}: {probe}");
        return Some((Kind::NotReady, line, Some(name), restarts > 0));
    }
    if state.waiting.is_some() {
        let line = format!("container {name} is being created");
        return Some((Kind::Waiting, line, None, false));
    }
    None
}

fn exited(code: Option<i32>, reason: Option<&str>) -> String {
    match (code, reason) {
        (Some(code), Some(reason)) => format!("exited with code {code} ({reason})"),
        (Some(code), None) => format!("exited with code {code}"),
        (None, _) => "keeps exiting".to_string(),
    }
}

/// A claim still Pending, with the newest event saying why.
pub fn claim_finding(
    claim: &PersistentVolumeClaim,
    events: &[Event],
    context: &HintContext,
) -> Option<Finding> {
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Pending") {
        return None;
    }
    let name = claim.name_any();
    let about = events_about(events, "PersistentVolumeClaim", &name);
    let message = latest(
        &about,
        &[
            "ProvisioningFailed",
            "FailedBinding",
            "ExternalProvisioning",
        ],
    )
    .unwrap_or("no volume bound yet");
    Some(finish(
        "claim",
        claim.namespace().unwrap_or_default(),
        name,
        Kind::ClaimPending,
        format!("Pending: {message}"),
        context,
    ))
}

/// A Job whose Failed condition is true (its pod's finding carries the log).
pub fn job_finding(
    job: &k8s_openapi::api::batch::v1::Job,
    context: &HintContext,
) -> Option<Finding> {
    let failed = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    let problem = format!(
        "Failed: {}: {}",
        failed.reason.as_deref().unwrap_or("Failed"),
        failed.message.as_deref().unwrap_or("the Job gave up")
    );
    Some(finish(
        "job",
        job.namespace().unwrap_or_default(),
        job.name_any(),
        Kind::JobFailed,
        problem,
        context,
    ))
}

/// A LoadBalancer Service MetalLB has given no address.
pub fn service_finding(service: &Service, context: &HintContext) -> Option<Finding> {
    let is_lb = service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    if !is_lb || crate::k8s::services::load_balancer_address(service).is_some() {
        return None;
    }
    Some(finish(
        "service",
        service.namespace().unwrap_or_default(),
        service.name_any(),
        Kind::NoAddress,
        "LoadBalancer without an address (EXTERNAL-IP <pending>)".to_string(),
        context,
    ))
}

fn finish(
    object: &'static str,
    namespace: String,
    name: String,
    kind: Kind,
    problem: String,
    context: &HintContext,
) -> Finding {
    let mut finding = Finding {
        object,
        namespace,
        name,
        kind,
        problem,
        hint: String::new(),
        container: None,
        previous: false,
        log: Vec::new(),
    };
    finding.hint = hint_for(&finding, context);
    finding
}
