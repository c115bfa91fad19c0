//! Waiting for the cluster to catch up, always with a deadline. The waits watch the object
//! (kube-rs `await_condition`), so they return as soon as the condition holds.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

use super::KubeError;
use super::services::load_balancer_address;

/// A Deployment's rollout is complete when the controller has seen the latest spec and every
/// replica is updated and available. (kube's `is_deployment_completed` looks only at the
/// Progressing condition, which still says "done" for the previous spec right after an apply.)
pub fn rollout_complete(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let Some(status) = &deployment.status else {
        return false;
    };
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let generation = deployment.metadata.generation.unwrap_or(0);
    status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) == wanted
        && status.replicas.unwrap_or(0) == wanted
}

/// The Job's terminal condition, `Complete` or `Failed` (status True), with its message.
pub fn job_outcome(job: &Job) -> Option<(&str, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            let message = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            (c.type_.as_str(), message)
        })
}

pub fn job_finished(job: Option<&Job>) -> bool {
    job.and_then(job_outcome).is_some()
}

pub fn has_load_balancer_address(service: Option<&Service>) -> bool {
    service.and_then(load_balancer_address).is_some()
}

pub async fn wait_for_rollout(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let what = format!("the rollout of deployment {namespace}/{name}");
    with_deadline(&what, timeout, await_condition(api, name, rollout_complete)).await?;
    Ok(())
}

/// Until the Job completes; a failed Job is an error (it is not retried: its pods are done).
pub async fn wait_for_job(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), KubeError> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let what = format!("job {namespace}/{name} to complete");
    let job = with_deadline(&what, timeout, await_condition(api, name, job_finished)).await?;
    match job.as_ref().and_then(job_outcome) {
        Some(("Complete", _)) => Ok(()),
        outcome => Err(KubeError::JobFailed {
            namespace: namespace.to_string(),
            name: name.to_string(),
            message: outcome.map(|(_, m)| m).unwrap_or_default(),
        }),
    }
}

/// Returns the address MetalLB assigned.
pub async fn wait_for_load_balancer_ip(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, KubeError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let what = format!("a LoadBalancer IP for service {namespace}/{name}");
    let service = with_deadline(
        &what,
        timeout,
        await_condition(api, name, has_load_balancer_address),
    )
    .await?;
    service
        .as_ref()
        .and_then(load_balancer_address)
        .ok_or(KubeError::Timeout {
            what,
            after: timeout,
        })
}

async fn with_deadline<T>(
    what: &str,
    timeout: Duration,
    wait: impl Future<Output = Result<T, kube::runtime::wait::Error>>,
) -> Result<T, KubeError> {
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| KubeError::Timeout {
            what: what.to_string(),
            after: timeout,
        })?
        .map_err(|source| KubeError::Wait {
            what: what.to_string(),
            source,
        })
}
