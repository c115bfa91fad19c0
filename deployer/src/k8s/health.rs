//! What `deployer status` reports about one cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use kube::api::{DynamicObject, ListParams};
use kube::discovery;
use kube::error::DiscoveryError;
use kube::{Api, Client, ResourceExt};

use super::KubeError;
use super::services::{ServiceAddress, load_balancers, mirrored_services};
use crate::diagnose::findings::{Finding, claim_finding, pod_finding, pod_ok};
use crate::diagnose::hints::HintContext;

pub const MULTICLUSTER_GROUP: &str = "multicluster.linkerd.io";

#[derive(Debug, Clone)]
pub struct ClusterHealth {
    pub nodes_ready: usize,
    pub nodes_total: usize,
    /// Namespace -> names of pods that are neither ready nor finished.
    pub pods_not_ready: BTreeMap<String, Vec<String>>,
    /// Why each of those pods is not ready, and claims without a volume, each with its fix.
    pub problems: Vec<Finding>,
    pub load_balancers: Vec<ServiceAddress>,
    pub metallb: super::metallb::PoolState,
    /// None when Linkerd multicluster is not installed (no Link kind).
    pub links: Option<Vec<String>>,
    pub mirrored: Vec<ServiceAddress>,
}

pub async fn cluster_health(
    client: &Client,
    hints: &HintContext,
) -> Result<ClusterHealth, KubeError> {
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
    let problems = problems(client, &pods.items, hints).await?;
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
        problems,
        load_balancers: load_balancers(client).await?,
        metallb: super::metallb::read_pool(client).await?,
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

/// Why pods are not ready (read with the cluster's events) and which claims have no volume.
async fn problems(
    client: &Client,
    pods: &[Pod],
    hints: &HintContext,
) -> Result<Vec<Finding>, KubeError> {
    let events: Api<Event> = Api::all(client.clone());
    let events = events
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list events"))?
        .items;
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let claims = claims
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list persistent volume claims"))?
        .items;
    // Events are matched by kind and name; the namespace keeps two namespaces' pods apart.
    let in_namespace = |namespace: Option<String>| -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.involved_object.namespace == namespace)
            .cloned()
            .collect()
    };
    let mut found: Vec<Finding> = claims
        .iter()
        .filter_map(|c| claim_finding(c, &in_namespace(c.namespace()), hints))
        .collect();
    found.extend(
        pods.iter()
            .filter_map(|p| pod_finding(p, &in_namespace(p.namespace()), hints)),
    );
    Ok(found)
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
