//! The deploy as data: which steps a command needs ([`build`]), what each step does ([`Action`])
//! and how a dry run shows it ([`describe`]). Executing the actions is [`crate::steps`].

pub mod build;
pub mod describe;

use std::path::PathBuf;

use crate::helm::{HelmRelease, HelmRepo};
use crate::settings::{ClusterSpec, Settings};
use crate::stack::{Dashboards, GeneratedSecret, ImageBuild, ManifestFile, RemoteManifest};
use crate::tools::Tool;

pub use build::{Target, build_plan};

pub type DeployPlan = crate::engine::Plan<Action>;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Trust anchor and issuers in the state folder.
    Certificates {
        force: bool,
    },
    /// `minikube start`, unless the profile already runs (then its Kubernetes version is checked
    /// against the charts' floor).
    StartCluster {
        cluster: ClusterSpec,
    },
    /// Both nodes are on the shared network, in one subnet, as minikube and the container engine
    /// report them.
    CheckNetwork {
        clusters: Vec<ClusterSpec>,
    },
    /// The MetalLB pool from the node IP.
    ConfigureMetallb {
        cluster: ClusterSpec,
    },
    Namespaces {
        context: String,
        names: Vec<String>,
    },
    ApplyManifest {
        context: String,
        manifest: ManifestFile,
    },
    /// A Secret with credentials generated once into the state folder.
    ApplySecret {
        context: String,
        secret: GeneratedSecret,
    },
    /// A manifest applied by URL through `minikube kubectl`.
    ApplyRemoteManifest {
        profile: String,
        manifest: RemoteManifest,
    },
    /// The image built by the container engine on this machine and saved to `archive` for the
    /// nodes to load.
    BuildImage {
        image: ImageBuild,
        archive: PathBuf,
    },
    /// `archive` loaded into the profile's node, unless it has that very image already.
    LoadImage {
        profile: String,
        image: ImageBuild,
        archive: PathBuf,
    },
    /// `minikube image build` into the profile's node (`--image-builder cluster`).
    BuildImageInCluster {
        profile: String,
        image: ImageBuild,
    },
    /// The image built in profile `from`, saved to `archive` and loaded into profile `to`,
    /// unless `to` already has the same image.
    CopyImage {
        from: String,
        to: String,
        image: ImageBuild,
        archive: PathBuf,
    },
    /// The dashboards folder as one ConfigMap for Grafana's sidecar.
    ApplyDashboards {
        context: String,
        dashboards: Dashboards,
    },
    AddHelmRepos {
        repos: Vec<HelmRepo>,
    },
    InstallRelease {
        context: String,
        release: HelmRelease,
    },
    /// `linkerd multicluster link-gen` against `target`, applied to `source`: `source` then
    /// mirrors `target`'s exported services.
    LinkClusters {
        source: ClusterSpec,
        target: ClusterSpec,
    },
}

impl Action {
    /// The external tools this action calls.
    pub fn tools(&self, settings: &Settings) -> Vec<Tool> {
        match self {
            Action::Certificates { .. } => vec![],
            Action::StartCluster { .. }
            | Action::CheckNetwork { .. }
            | Action::LoadImage { .. } => {
                vec![Tool::Minikube, settings.driver.tool()]
            }
            Action::BuildImage { .. } => vec![settings.driver.tool()],
            Action::ConfigureMetallb { .. }
            | Action::ApplyRemoteManifest { .. }
            | Action::BuildImageInCluster { .. }
            | Action::CopyImage { .. } => {
                vec![Tool::Minikube]
            }
            Action::Namespaces { .. }
            | Action::ApplyManifest { .. }
            | Action::ApplySecret { .. }
            | Action::ApplyDashboards { .. } => vec![],
            Action::AddHelmRepos { .. } | Action::InstallRelease { .. } => vec![Tool::Helm],
            Action::LinkClusters { .. } => vec![Tool::Minikube, Tool::Linkerd],
        }
    }

    /// The cluster (minikube profile, which is also its kubeconfig context) the action works
    /// on; None for actions on this machine only.
    pub fn cluster(&self) -> Option<String> {
        match self {
            Action::Certificates { .. }
            | Action::BuildImage { .. }
            | Action::AddHelmRepos { .. } => None,
            Action::StartCluster { cluster } | Action::ConfigureMetallb { cluster } => {
                Some(cluster.profile.clone())
            }
            Action::CheckNetwork { clusters } => Some(
                clusters
                    .iter()
                    .map(|c| c.profile.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Action::Namespaces { context, .. }
            | Action::ApplyManifest { context, .. }
            | Action::ApplySecret { context, .. }
            | Action::ApplyDashboards { context, .. }
            | Action::InstallRelease { context, .. } => Some(context.clone()),
            Action::ApplyRemoteManifest { profile, .. }
            | Action::LoadImage { profile, .. }
            | Action::BuildImageInCluster { profile, .. } => Some(profile.clone()),
            // Where the result lands.
            Action::CopyImage { to, .. } => Some(to.clone()),
            Action::LinkClusters { source, .. } => Some(source.profile.clone()),
        }
    }

    /// Files the action reads that must exist before anything starts.
    pub fn input_files(&self) -> Vec<PathBuf> {
        match self {
            Action::ApplyManifest { manifest, .. } => vec![manifest.path.clone()],
            Action::ApplyDashboards { dashboards, .. } => vec![dashboards.dir.clone()],
            Action::InstallRelease { release, .. } => release.values_files.clone(),
            _ => vec![],
        }
    }
}

/// Every tool the plan needs, each once, in a stable order.
pub fn required_tools(plan: &DeployPlan, settings: &Settings) -> Vec<Tool> {
    let mut tools: Vec<Tool> = plan
        .steps()
        .iter()
        .flat_map(|s| s.action.tools(settings))
        .collect();
    tools.sort();
    tools.dedup();
    tools
}
