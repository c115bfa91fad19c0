//! One look at a namespace through kube-rs: pods, events, claims, Jobs and Services, then the
//! logs of the containers that explain a problem. The caller bounds it in time.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

use crate::k8s::KubeError;

use super::findings::{Finding, claim_finding, job_finding, pod_finding, pod_ok, service_finding};
use super::hints::HintContext;

/// Lines of a log kept for the bundle; the terminal shows the last [`SHOWN_LOG_LINES`].
const BUNDLE_LOG_LINES: i64 = 200;
pub const SHOWN_LOG_LINES: usize = 20;

/// What was seen in one namespace.
#[derive(Debug, Clone, Default)]
pub struct Look {
    pub findings: Vec<Finding>,
    pub events: Vec<Event>,
    /// The pods that are not fine, as the API returned them.
    pub pods: Vec<Pod>,
    pub logs: Vec<ContainerLog>,
}

#[derive(Debug, Clone)]
pub struct ContainerLog {
    pub pod: String,
    pub container: String,
    pub previous: bool,
    pub text: String,
}

pub async fn look(
    client: &Client,
    namespace: &str,
    context: &HintContext,
) -> Result<Look, KubeError> {
    let params = ListParams::default();
    let events = list::<Event>(client, namespace, "events", &params).await?;
    let pods = list::<Pod>(client, namespace, "pods", &params).await?;
    let claims = list::<PersistentVolumeClaim>(client, namespace, "claims", &params).await?;
    let jobs = list::<Job>(client, namespace, "jobs", &params).await?;
    let services = list::<Service>(client, namespace, "services", &params).await?;

    let mut findings: Vec<Finding> = Vec::new();
    findings.extend(
        claims
            .iter()
            .filter_map(|c| claim_finding(c, &events, context)),
    );
    findings.extend(jobs.iter().filter_map(|j| job_finding(j, context)));
    findings.extend(pods.iter().filter_map(|p| pod_finding(p, &events, context)));
    findings.extend(services.iter().filter_map(|s| service_finding(s, context)));

    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut logs = Vec::new();
    for finding in findings.iter_mut() {
        let Some(container) = finding.container.clone() else {
            continue;
        };
        // The previous instance is the one that crashed; the current one may have just started.
        let mut instances = vec![false];
        if finding.previous {
            instances.insert(0, true);
        }
        for previous in instances {
            if let Some(text) = container_log(&api, &finding.name, &container, previous).await {
                if finding.log.is_empty() && !text.trim().is_empty() {
                    finding.log = last_lines(&text, SHOWN_LOG_LINES);
                    if previous {
                        finding.problem.push_str(" (log: previous instance)");
                    }
                }
                logs.push(ContainerLog {
                    pod: finding.name.clone(),
                    container: container.clone(),
                    previous,
                    text,
                });
            }
        }
    }
    Ok(Look {
        findings,
        events,
        pods: pods.into_iter().filter(|p| !pod_ok(p)).collect(),
        logs,
    })
}

async fn list<K>(
    client: &Client,
    namespace: &str,
    what: &str,
    params: &ListParams,
) -> Result<Vec<K>, KubeError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok(api
        .list(params)
        .await
        .map_err(KubeError::api(format!("list {what} in {namespace}")))?
        .items)
}

/// A missing previous instance is an answer (400 from the API), not an error of the look.
async fn container_log(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    previous: bool,
) -> Option<String> {
    let params = LogParams {
        container: Some(container.to_string()),
        previous,
        tail_lines: Some(BUNDLE_LOG_LINES),
        ..LogParams::default()
    };
    match api.logs(pod, &params).await {
        Ok(text) => Some(text),
        Err(error) => {
            tracing::debug!(pod, container, previous, %error, "no log");
            None
        }
    }
}

pub fn last_lines(text: &str, count: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    lines[start..].iter().map(|l| l.to_string()).collect()
}
