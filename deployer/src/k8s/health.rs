//! What `deployer status` reports about one cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DynamicObject, ListParams};
use kube::discovery;
use kube::error::DiscoveryError;
use kube::{Api, Client, ResourceExt};

use super::KubeError;
use super::services::{ServiceAddress, load_balancers, mirrored_services};

pub const MULTICLUSTER_GROUP: &str = "multicluster.linkerd.io";

#[derive(Debug, Clone, Default)]
pub struct ClusterHealth {
    pub nodes_ready: usize,
    pub nodes_total: usize,
    /// Namespace -> names of pods that are neither ready nor finished.
    pub pods_not_ready: BTreeMap<String, Vec<String>>,
    pub load_balancers: Vec<ServiceAddress>,
    /// None when Linkerd multicluster is not installed (no Link kind).
    pub links: Option<Vec<String>>,
    pub mirrored: Vec<ServiceAddress>,
}

pub async fn cluster_health(client: &Client) -> Result<ClusterHealth, KubeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let nodes = nodes
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list nodes"))?;
    let pods: Api<Pod> = Api::all(client.clone());
    let pods = pods
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list pods"))?;
    let mut pods_not_ready: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods.items.iter().filter(|p| !pod_ok(p)) {
        pods_not_ready
            .entry(pod.namespace().unwrap_or_default())
            .or_default()
            .push(pod.name_any());
    }
    let links = links(client).await?;
    let mirrored = if links.is_some() {
        mirrored_services(client).await?
    } else {
        Vec::new()
    };
    Ok(ClusterHealth {
        nodes_ready: nodes.items.iter().filter(|n| node_ready(n)).count(),
        nodes_total: nodes.items.len(),
        pods_not_ready,
        load_balancers: load_balancers(client).await?,
        links,
        mirrored,
    })
}

fn node_ready(node: &Node) -> bool {
    condition_true(
        node.status.as_ref().and_then(|s| s.conditions.as_ref()),
        |c| (c.type_.as_str(), c.status.as_str()),
    )
}

/// Ready, or a finished Job pod (Succeeded), which is never ready and is fine.
fn pod_ok(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) == Some("Succeeded") {
        return true;
    }
    condition_true(status.and_then(|s| s.conditions.as_ref()), |c| {
        (c.type_.as_str(), c.status.as_str())
    })
}

fn condition_true<C>(conditions: Option<&Vec<C>>, fields: impl Fn(&C) -> (&str, &str)) -> bool {
    conditions
        .map(|cs| cs.iter().any(|c| fields(c) == ("Ready", "True")))
        .unwrap_or(false)
}

/// Names of Link objects, or None when the Link kind does not exist in this cluster.
async fn links(client: &Client) -> Result<Option<Vec<String>>, KubeError> {
    let group = match discovery::group(client, MULTICLUSTER_GROUP).await {
        Ok(group) => group,
        // The group is unknown until linkerd-multicluster is installed.
        Err(kube::Error::Discovery(DiscoveryError::MissingApiGroup(_))) => return Ok(None),
        Err(source) => {
            return Err(KubeError::Api {
                action: "discover Linkerd multicluster".to_string(),
                source,
            });
        }
    };
    let Some((resource, _)) = group.recommended_kind("Link") else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let links = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list links"))?;
    Ok(Some(
        links
            .items
            .iter()
            .map(|l| format!("{}/{}", l.namespace().unwrap_or_default(), l.name_any()))
            .collect(),
    ))
}
