//! Where to look after a step failed: the namespaces its action wrote to, in which cluster, the
//! helm release if it was one, and the minikube profiles whose logs belong in the bundle.

use std::path::PathBuf;

use crate::helm::HelmRelease;
use crate::plan::Action;
use crate::settings::{ClusterSpec, Settings};

use super::hints::HintContext;

/// One namespace of one cluster.
#[derive(Debug, Clone)]
pub struct Place {
    pub context: String,
    pub namespace: String,
    pub hints: HintContext,
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub places: Vec<Place>,
    pub release: Option<(String, HelmRelease)>,
    pub profiles: Vec<String>,
    /// Files of ours the step read (values files, manifests), copied masked into the bundle.
    pub inputs: Vec<PathBuf>,
    /// Profiles whose node images matter (the image steps): `minikube image ls` goes in too.
    pub image_profiles: Vec<String>,
}

/// The namespace of Linkerd's multicluster objects (the Link, the gateway).
const MULTICLUSTER: &str = "linkerd-multicluster";
/// Where the minikube metallb addon runs.
const METALLB: &str = "metallb-system";

pub fn scope_of(action: &Action, settings: &Settings) -> Scope {
    let cluster_of = |context: &str| {
        settings
            .clusters()
            .into_iter()
            .find(|c| c.context() == context)
            .cloned()
    };
    let mut scope = Scope::default();
    match action {
        Action::InstallRelease { context, release } => {
            if let Some(cluster) = cluster_of(context) {
                let source = release
                    .values_files
                    .last()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| format!("the values of release {}", release.name));
                scope.add(&cluster, &release.namespace, Some(source));
            }
            scope.release = Some((context.clone(), release.clone()));
            scope.inputs = release.values_files.clone();
        }
        Action::ApplyManifest { context, manifest } => {
            if let Some(cluster) = cluster_of(context) {
                let source = manifest.path.display().to_string();
                scope.add(&cluster, &manifest.namespace, Some(source));
            }
            scope.inputs = vec![manifest.path.clone()];
        }
        Action::ApplySecret { context, secret } => {
            if let Some(cluster) = cluster_of(context) {
                scope.add(&cluster, &secret.namespace, None);
            }
        }
        Action::ApplyDashboards {
            context,
            dashboards,
        } => {
            if let Some(cluster) = cluster_of(context) {
                scope.add(&cluster, &dashboards.namespace, None);
            }
        }
        Action::ConfigureMetallb { cluster } => scope.add(cluster, METALLB, None),
        Action::LinkClusters { source, target } => {
            scope.add(source, MULTICLUSTER, None);
            scope.add(target, MULTICLUSTER, None);
        }
        Action::StartCluster { cluster } => scope.profiles.push(cluster.profile.clone()),
        Action::CheckNetwork { clusters } => scope
            .profiles
            .extend(clusters.iter().map(|c| c.profile.clone())),
        Action::LoadImage { profile, .. } | Action::BuildImageInCluster { profile, .. } => {
            scope.profiles.push(profile.clone());
            scope.image_profiles.push(profile.clone());
        }
        Action::ApplyRemoteManifest { profile, .. } => scope.profiles.push(profile.clone()),
        Action::CopyImage { from, to, .. } => {
            scope.profiles.extend([from.clone(), to.clone()]);
            scope.image_profiles.extend([from.clone(), to.clone()]);
        }
        Action::Namespaces { context, .. } => scope.profiles.push(context.clone()),
        // Nothing in a cluster to look at: the error says it all (the image builds on the host).
        Action::Certificates { .. } | Action::AddHelmRepos { .. } | Action::BuildImage { .. } => {}
    }
    scope
}

impl Scope {
    fn add(&mut self, cluster: &ClusterSpec, namespace: &str, source: Option<String>) {
        let mut hints = HintContext::for_cluster(cluster);
        if let Some(source) = source {
            hints = hints.with_source(source);
        }
        self.places.push(Place {
            context: cluster.context().to_string(),
            namespace: namespace.to_string(),
            hints,
        });
        if !self.profiles.contains(&cluster.profile) {
            self.profiles.push(cluster.profile.clone());
        }
    }
}
