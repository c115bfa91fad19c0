//! Starting a minikube profile on the shared network, checking that both nodes really share it,
//! and the MetalLB pool beside each node.

use std::net::Ipv4Addr;

use crate::container;
use crate::engine::Outcome;
use crate::k8s::metallb::{AddressPool, apply_pool};
use crate::k8s::{Change, KubeError};
use crate::minikube::{self, network};
use crate::settings::ClusterSpec;
use crate::tools::is_older;

use super::{Deployer, StepError};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "{profile} runs Kubernetes {found}, older than {minimum}, the oldest the pinned charts accept"
    )]
    KubernetesTooOld {
        profile: String,
        found: String,
        minimum: String,
        pinned: String,
    },
}

impl ClusterError {
    pub fn help(&self) -> String {
        match self {
            ClusterError::KubernetesTooOld {
                profile, pinned, ..
            } => format!(
                "the profile was made by an older minikube or deployer; delete it and let the \
                 deployer make it again with Kubernetes {pinned}: `minikube delete -p {profile}` \
                 (or `deployer destroy` for both clusters), then `deployer all`"
            ),
        }
    }
}

/// Starting is skipped when the profile runs: `minikube start` on a running profile would
/// restart components and take minutes. Either way the API server's version is checked, so a
/// profile made with an older Kubernetes fails here, not in the middle of a chart install.
pub async fn start(deployer: &Deployer, cluster: &ClusterSpec) -> Result<Outcome, StepError> {
    let status = deployer.run(&minikube::status(&cluster.profile)).await?;
    let outcome = if minikube::is_running(&status.stdout) {
        Outcome::Unchanged(format!("{} already runs", cluster.profile))
    } else {
        let static_ip = static_ip_for(deployer, cluster).await?;
        let settings = &deployer.settings;
        let flag = static_ip.map(|ip| ip.to_string());
        deployer
            .run(&minikube::start(cluster, settings, flag.as_deref()))
            .await?;
        Outcome::Changed(match static_ip {
            Some(ip) => format!("{} started at {ip}", cluster.profile),
            None => format!("{} started", cluster.profile),
        })
    };
    check_kubernetes_version(deployer, cluster).await?;
    Ok(outcome)
}

/// The static IP to start `cluster` with: the one kept from an earlier start when it is still in
/// the peer's subnet (minikube keeps a profile's static IP for good), else the next free address
/// beside the peer's node when the peer runs (then kept), else none: the first profile on the
/// network takes its gateway + 1.
async fn static_ip_for(
    deployer: &Deployer,
    cluster: &ClusterSpec,
) -> Result<Option<Ipv4Addr>, StepError> {
    let state_dir = &deployer.settings.state_dir;
    let kept = network::kept_static_ip(state_dir, &cluster.profile)?;
    let peer = deployer.settings.peer(cluster);
    let Some(peer_ip) = running_node_ip(deployer, &peer.profile).await? else {
        return Ok(kept);
    };
    if let Some(kept) = kept.filter(|&ip| network::same_subnet(ip, peer_ip) && ip != peer_ip) {
        return Ok(Some(kept));
    }
    let chosen = network::static_ip_beside(peer_ip)
        .ok_or(network::NetworkError::NoFreeAddress { peer: peer_ip })?;
    network::keep_static_ip(state_dir, &cluster.profile, chosen)?;
    Ok(Some(chosen))
}

async fn running_node_ip(
    deployer: &Deployer,
    profile: &str,
) -> Result<Option<Ipv4Addr>, StepError> {
    let status = deployer.run(&minikube::status(profile)).await?;
    if !minikube::is_running(&status.stdout) {
        return Ok(None);
    }
    let output = deployer.run(&minikube::ip(profile)).await?;
    Ok(Some(minikube::parse_ip(&output.stdout)?))
}

async fn check_kubernetes_version(
    deployer: &Deployer,
    cluster: &ClusterSpec,
) -> Result<(), StepError> {
    let client = deployer.clients.client(cluster.context()).await?;
    let info = client
        .apiserver_version()
        .await
        .map_err(KubeError::api(format!(
            "read the Kubernetes version of {}",
            cluster.profile
        )))?;
    let settings = &deployer.settings;
    if is_older(&info.git_version, &settings.kubernetes_minimum) == Some(true) {
        return Err(ClusterError::KubernetesTooOld {
            profile: cluster.profile.clone(),
            found: info.git_version,
            minimum: settings.kubernetes_minimum.clone(),
            pinned: settings.kubernetes_version.clone(),
        }
        .into());
    }
    Ok(())
}

/// minikube reports success even when the node fell back to the engine's default bridge (two
/// starts racing to create the network), so the engine is asked where each node really is.
pub async fn check_network(
    deployer: &Deployer,
    clusters: &[ClusterSpec],
) -> Result<Outcome, StepError> {
    let settings = &deployer.settings;
    let mut nodes = Vec::new();
    for cluster in clusters {
        let ip = deployer.run(&minikube::ip(&cluster.profile)).await?;
        let inspected = deployer
            .run(&container::node_networks(settings.driver, &cluster.profile))
            .await?;
        nodes.push(network::Node {
            profile: cluster.profile.clone(),
            ip: minikube::parse_ip(&ip.stdout)?,
            attachments: network::parse_attachments(&inspected.stdout)?,
        });
    }
    let detail = network::check_shared_network(&settings.network, &nodes)?;
    Ok(Outcome::Unchanged(detail))
}

pub async fn configure_metallb(
    deployer: &Deployer,
    cluster: &ClusterSpec,
) -> Result<Outcome, StepError> {
    let output = deployer.run(&minikube::ip(&cluster.profile)).await?;
    let node_ip = minikube::parse_ip(&output.stdout)?;
    let pool = AddressPool::beside_node(node_ip, cluster.role.pool_octets());
    let client = deployer.clients.client(cluster.context()).await?;
    let applied = apply_pool(&client, pool).await?;
    let detail = format!("pool {pool}");
    Ok(match applied.change {
        Change::Unchanged => Outcome::Unchanged(detail),
        Change::Created | Change::Changed => Outcome::Changed(detail),
    })
}
