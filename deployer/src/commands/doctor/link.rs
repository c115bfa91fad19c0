//! The link's checks: the remote has a Link to the central cluster, mirrors its exported
//! services, and can reach the central gateway. The last is read from the mirrored services'
//! Endpoints: Linkerd's service mirror probes the gateway from the remote and, while the probe
//! fails, moves the gateway's address from `addresses` to `notReadyAddresses`
//! (linkerd2 multicluster/service-mirror/cluster_watcher.go, `updateReadiness`).

use k8s_openapi::api::core::v1::Endpoints;
use kube::{Api, Client};

use crate::k8s::health::ClusterHealth;
use crate::preflight::Check;
use crate::settings::{ClusterSpec, Role};

pub fn link_checks(cluster: &ClusterSpec, health: &ClusterHealth) -> Vec<Check> {
    if cluster.role != Role::Remote {
        return Vec::new();
    }
    match &health.links {
        None => vec![Check::fail(
            "link",
            "Linkerd multicluster is not installed",
            "`deployer all` installs it and links the clusters",
        )],
        Some(links) if links.is_empty() => vec![Check::fail(
            "link",
            "no Link to the central cluster",
            "`deployer all` links the clusters (step `link ... to ...`)",
        )],
        Some(links) => {
            let mut checks = vec![Check::pass("link", links.join(", "))];
            checks.push(if health.mirrored.is_empty() {
                Check::fail(
                    "mirrored services",
                    "none: the central cluster's exported services are not mirrored",
                    "check the Link and the central services' label mirror.linkerd.io/exported=true \
                     (`linkerd --context lgtm-remote multicluster check`)",
                )
            } else {
                let names: Vec<String> = health
                    .mirrored
                    .iter()
                    .map(|s| format!("{}/{}", s.namespace, s.name))
                    .collect();
                Check::pass("mirrored services", names.join(", "))
            });
            checks
        }
    }
}

/// Ready and not-ready addresses of one mirrored service.
#[derive(Debug, Default)]
struct Addresses {
    ready: Vec<String>,
    not_ready: Vec<String>,
}

fn addresses(endpoints: &Endpoints) -> Addresses {
    let mut found = Addresses::default();
    for subset in endpoints.subsets.iter().flatten() {
        let ips = |list: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| -> Vec<String> {
            list.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        found.ready.extend(ips(&subset.addresses));
        found.not_ready.extend(ips(&subset.not_ready_addresses));
    }
    found
}

pub async fn mirror_endpoint_checks(client: &Client, health: &ClusterHealth) -> Vec<Check> {
    if health.mirrored.is_empty() {
        return Vec::new();
    }
    let (mut empty, mut unreachable, mut gateway) = (Vec::new(), Vec::new(), Vec::new());
    for service in &health.mirrored {
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &service.namespace);
        let name = format!("{}/{}", service.namespace, service.name);
        let found = match api.get_opt(&service.name).await {
            Ok(endpoints) => endpoints.as_ref().map(addresses).unwrap_or_default(),
            Err(error) => {
                return vec![Check::fail(
                    "mirrored endpoints",
                    format!("cannot read the endpoints of {name}: {error}"),
                    "see `deployer status`",
                )];
            }
        };
        if !found.not_ready.is_empty() && found.ready.is_empty() {
            gateway.extend(found.not_ready);
            unreachable.push(name);
        } else if found.ready.is_empty() {
            empty.push(name);
        } else {
            gateway.extend(found.ready);
        }
    }
    gateway.sort();
    gateway.dedup();
    let mut checks = Vec::new();
    if !unreachable.is_empty() {
        checks.push(Check::fail(
            "gateway",
            format!(
                "lgtm-remote's probe of the central gateway ({}) fails: the service mirror marked \
                 the endpoints of {} not ready",
                gateway.join(", "),
                unreachable.join(", ")
            ),
            "the remote must reach the central gateway's LoadBalancer address: both profiles on the \
             same network (`docker network inspect lgtm`), the address in lgtm-central's MetalLB pool \
             (`deployer status`); then `linkerd --context lgtm-remote multicluster gateways`",
        ));
    }
    if !empty.is_empty() {
        checks.push(Check::fail(
            "mirrored endpoints",
            format!("no endpoints: {}", empty.join(", ")),
            "the service mirror sets them to the central gateway's address: check the Link and \
             `linkerd --context lgtm-remote multicluster check`",
        ));
    }
    if checks.is_empty() {
        checks.push(Check::pass(
            "gateway",
            format!(
                "reachable from lgtm-remote ({}): every mirrored service has ready endpoints",
                gateway.join(", ")
            ),
        ));
    }
    checks
}
