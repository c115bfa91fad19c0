//! From a command and the stack to the list of steps.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{Plan, PlanError, Step};
use crate::settings::{ClusterSpec, ImageBuilder, Role, Settings};
use crate::stack::{ClusterWorkloads, ImageBuild, Stack, Workload};

use super::{Action, DeployPlan};

/// What a command deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Certs { force: bool },
    Central,
    Remote,
    All,
}

pub const CERTIFICATES: &str = "certificates";
pub const HELM_REPOS: &str = "helm repos";

pub fn link_step(source: &ClusterSpec, target: &ClusterSpec) -> String {
    format!("link {} to {}", source.profile, target.profile)
}

pub fn start_step(cluster: &ClusterSpec) -> String {
    format!("start {}", cluster.profile)
}

pub fn metallb_step(cluster: &ClusterSpec) -> String {
    format!("metallb {}", cluster.profile)
}

pub fn namespaces_step(cluster: &ClusterSpec) -> String {
    format!("namespaces {}", cluster.profile)
}

/// The step after which `image` is in `cluster`'s node (loaded, built there or copied there).
pub fn image_step(cluster: &ClusterSpec, image: &ImageBuild) -> String {
    format!("image {}/{}", cluster.context(), image.tag)
}

/// The image built on this machine, before it is loaded into any node.
pub fn host_image_step(image: &ImageBuild) -> String {
    format!("image {}", image.tag)
}

/// The check that both nodes share the network.
pub fn network_step(settings: &Settings) -> String {
    format!("network {}", settings.network)
}

pub fn build_plan(
    settings: &Settings,
    stack: &Stack,
    target: Target,
) -> Result<DeployPlan, PlanError> {
    let force = matches!(target, Target::Certs { force: true });
    let mut steps = vec![Step::new(
        CERTIFICATES,
        Action::Certificates { force },
        Duration::from_secs(1),
    )];
    let clusters: Vec<(&ClusterSpec, &ClusterWorkloads)> = match target {
        Target::Certs { .. } => vec![],
        Target::Central => vec![(&settings.central, &stack.central)],
        Target::Remote => vec![(&settings.remote, &stack.remote)],
        Target::All => vec![
            (&settings.central, &stack.central),
            (&settings.remote, &stack.remote),
        ],
    };
    let uses_releases = clusters.iter().any(|(_, w)| w.releases().next().is_some());
    let have_repos = uses_releases && !stack.repos.is_empty();
    if have_repos {
        steps.push(Step::new(
            HELM_REPOS,
            Action::AddHelmRepos {
                repos: stack.repos.clone(),
            },
            Duration::from_secs(10),
        ));
    }
    // Cluster infrastructure first for both clusters, so the listing reads in the order the
    // engine will most likely run it. The second profile starts only once the first runs: both
    // join one network, and minikube cannot start two profiles on it at once (see
    // `minikube::network`).
    let mut started_first: Option<String> = None;
    for (cluster, workloads) in &clusters {
        steps.extend(cluster_steps(cluster, workloads, started_first.as_deref()));
        started_first.get_or_insert_with(|| start_step(cluster));
    }
    if let [(central, _), (remote, _)] = clusters[..] {
        steps.push(
            Step::new(
                network_step(settings),
                Action::CheckNetwork {
                    clusters: vec![central.clone(), remote.clone()],
                },
                Duration::from_secs(3),
            )
            .after([start_step(central), start_step(remote)]),
        );
    }
    // Images next: they need only a running node, so they build while the charts install.
    let (image_steps, image_ready) = image_steps(settings, &clusters);
    steps.extend(image_steps);
    let mut cluster_done = Vec::new();
    for (cluster, workloads) in &clusters {
        let ready = image_ready.get(&cluster.profile).cloned();
        let (added, done) = workload_steps(cluster, workloads, have_repos, ready);
        cluster_done.extend(done);
        steps.extend(added);
    }
    if stack.link && target == Target::All {
        let mut after = cluster_done;
        after.push(network_step(settings));
        steps.push(link_clusters(settings, after));
    }
    Plan::new(steps)
}

/// The remote links to the central cluster once both have everything else.
fn link_clusters(settings: &Settings, cluster_done: Vec<String>) -> Step<Action> {
    let (source, target) = (&settings.remote, &settings.central);
    let mut after = cluster_done;
    after.extend([metallb_step(source), metallb_step(target)]);
    after.sort();
    after.dedup();
    Step::new(
        link_step(source, target),
        Action::LinkClusters {
            source: source.clone(),
            target: target.clone(),
        },
        Duration::from_secs(10),
    )
    .after(after)
}

fn cluster_steps(
    cluster: &ClusterSpec,
    workloads: &ClusterWorkloads,
    after_start: Option<&str>,
) -> Vec<Step<Action>> {
    let start = start_step(cluster);
    let mut steps = vec![
        Step::new(
            start.clone(),
            Action::StartCluster {
                cluster: cluster.clone(),
            },
            // Rough figures for a fresh profile with its addons; they only feed the
            // critical-path estimate of a dry run.
            match cluster.role {
                crate::settings::Role::Central => Duration::from_secs(150),
                crate::settings::Role::Remote => Duration::from_secs(120),
            },
        )
        .after(after_start),
        Step::new(
            metallb_step(cluster),
            Action::ConfigureMetallb {
                cluster: cluster.clone(),
            },
            Duration::from_secs(3),
        )
        .after([start.clone()]),
    ];
    if !workloads.namespaces.is_empty() {
        steps.push(
            Step::new(
                namespaces_step(cluster),
                Action::Namespaces {
                    context: cluster.context().to_string(),
                    names: workloads.namespaces.clone(),
                },
                Duration::from_secs(2),
            )
            .after([start]),
        );
    }
    steps
}

/// The image a cluster's workloads need, if any.
fn image_of(workloads: &ClusterWorkloads) -> Option<&ImageBuild> {
    workloads.each().find_map(|w| match w {
        Workload::Image(image) => Some(image),
        _ => None,
    })
}

/// The demo-app image is built once and put into every cluster that runs it. By default the
/// container engine on this machine builds it (`--image-builder host`): compiling the workspace
/// needs GiBs and both cores, which the 2-CPU / 4 GiB remote node cannot spare beside its etcd and
/// API server while its charts install. It needs no cluster, so it runs from the start, and each
/// node loads the archive once it runs. `--image-builder cluster` builds inside lgtm-central's
/// node instead (6 CPUs / 16 GiB) and copies the image to the other cluster. Returns the steps
/// and, per profile, the step after which the image is there.
fn image_steps(
    settings: &Settings,
    clusters: &[(&ClusterSpec, &ClusterWorkloads)],
) -> (Vec<Step<Action>>, HashMap<String, String>) {
    let needing: Vec<(&ClusterSpec, &ImageBuild)> = clusters
        .iter()
        .filter_map(|(cluster, workloads)| image_of(workloads).map(|image| (*cluster, image)))
        .collect();
    let Some(&(_, image)) = needing.first() else {
        return (Vec::new(), HashMap::new());
    };
    let archive = settings
        .state_dir
        .join("images")
        .join(image.archive_file_name());
    match settings.image_builder {
        ImageBuilder::Host => host_image_steps(&needing, image, archive),
        ImageBuilder::Cluster => cluster_image_steps(&needing, image, archive),
    }
}

fn host_image_steps(
    needing: &[(&ClusterSpec, &ImageBuild)],
    image: &ImageBuild,
    archive: PathBuf,
) -> (Vec<Step<Action>>, HashMap<String, String>) {
    let built = host_image_step(image);
    let mut steps = vec![Step::new(
        built.clone(),
        Action::BuildImage {
            image: image.clone(),
            archive: archive.clone(),
        },
        // A cached rebuild; the first one takes minutes.
        Duration::from_secs(30),
    )];
    let mut ready = HashMap::new();
    for &(cluster, _) in needing {
        let loaded = image_step(cluster, image);
        steps.push(
            Step::new(
                loaded.clone(),
                Action::LoadImage {
                    profile: cluster.profile.clone(),
                    image: image.clone(),
                    archive: archive.clone(),
                },
                Duration::from_secs(20),
            )
            .after([built.clone(), start_step(cluster)]),
        );
        ready.insert(cluster.profile.clone(), loaded);
    }
    (steps, ready)
}

/// Built in the central node when the plan has it (the larger one), otherwise in the one
/// cluster deployed, and copied as an archive into the others.
fn cluster_image_steps(
    needing: &[(&ClusterSpec, &ImageBuild)],
    image: &ImageBuild,
    archive: PathBuf,
) -> (Vec<Step<Action>>, HashMap<String, String>) {
    let Some(&(builder, _)) = needing
        .iter()
        .find(|(cluster, _)| cluster.role == Role::Central)
        .or(needing.first())
    else {
        return (Vec::new(), HashMap::new());
    };
    let built = image_step(builder, image);
    let mut steps = vec![
        Step::new(
            built.clone(),
            Action::BuildImageInCluster {
                profile: builder.profile.clone(),
                image: image.clone(),
            },
            Duration::from_secs(30),
        )
        .after([start_step(builder)]),
    ];
    let mut ready = HashMap::from([(builder.profile.clone(), built.clone())]);
    for &(cluster, _) in needing.iter().filter(|(c, _)| c.profile != builder.profile) {
        let copied = image_step(cluster, image);
        steps.push(
            Step::new(
                copied.clone(),
                Action::CopyImage {
                    from: builder.profile.clone(),
                    to: cluster.profile.clone(),
                    image: image.clone(),
                    archive: archive.clone(),
                },
                Duration::from_secs(20),
            )
            .after([built.clone(), start_step(cluster)]),
        );
        ready.insert(cluster.profile.clone(), copied);
    }
    (steps, ready)
}

/// The step after which a cluster is ready for workloads.
fn infrastructure_done(cluster: &ClusterSpec, workloads: &ClusterWorkloads) -> String {
    if workloads.namespaces.is_empty() {
        metallb_step(cluster)
    } else {
        namespaces_step(cluster)
    }
}

/// Workloads go one after the other: a later chart may need an earlier one's CRDs. The members
/// of a [`Workload::SideBySide`] go at the same time, after what comes before the group, and what
/// follows waits for all of them. The image is not a step of the chain (see [`image_steps`]):
/// the workload after it in the list waits for `image_ready` as well. Returns the steps and the
/// last ones of the chain.
fn workload_steps(
    cluster: &ClusterSpec,
    workloads: &ClusterWorkloads,
    have_repos: bool,
    image_ready: Option<String>,
) -> (Vec<Step<Action>>, Vec<String>) {
    let mut previous = vec![infrastructure_done(cluster, workloads)];
    let mut waits_for_image = None;
    let mut steps = Vec::new();
    for workload in &workloads.workloads {
        let group = match workload {
            Workload::Image(_) => {
                waits_for_image = image_ready.clone();
                continue;
            }
            Workload::SideBySide(members) => members.as_slice(),
            single => std::slice::from_ref(single),
        };
        let image = waits_for_image.take();
        let mut names = Vec::new();
        for member in group {
            let Some((name, action, estimate, needs_repos)) =
                workload_step(cluster, member, have_repos)
            else {
                continue;
            };
            let mut after = previous.clone();
            after.extend([metallb_step(cluster), CERTIFICATES.to_string()]);
            if needs_repos {
                after.push(HELM_REPOS.to_string());
            }
            after.extend(image.clone());
            after.sort();
            after.dedup();
            steps.push(Step::new(name.clone(), action, estimate).after(after));
            names.push(name);
        }
        if !names.is_empty() {
            previous = names;
        }
    }
    (steps, previous)
}

/// The step of one workload: name, action, estimate and whether it needs the helm repos. None
/// for what is not a step of its own (the image, a group).
fn workload_step(
    cluster: &ClusterSpec,
    workload: &Workload,
    have_repos: bool,
) -> Option<(String, Action, Duration, bool)> {
    let context = cluster.context().to_string();
    Some(match workload {
        Workload::Image(_) | Workload::SideBySide(_) => return None,
        Workload::Manifest(manifest) => (
            format!("manifest {context}/{}", manifest.name),
            Action::ApplyManifest {
                context,
                manifest: manifest.clone(),
            },
            Duration::from_secs(3),
            false,
        ),
        Workload::Secret(secret) => (
            format!("secret {context}/{}/{}", secret.namespace, secret.name),
            Action::ApplySecret {
                context,
                secret: secret.clone(),
            },
            Duration::from_secs(1),
            false,
        ),
        Workload::Remote(manifest) => (
            format!("manifest {context}/{}", manifest.name),
            Action::ApplyRemoteManifest {
                profile: cluster.profile.clone(),
                manifest: manifest.clone(),
            },
            Duration::from_secs(5),
            false,
        ),
        Workload::Dashboards(dashboards) => (
            format!("dashboards {context}/{}", dashboards.name),
            Action::ApplyDashboards {
                context,
                dashboards: dashboards.clone(),
            },
            Duration::from_secs(1),
            false,
        ),
        Workload::Release(release) => (
            format!("release {context}/{}", release.name),
            Action::InstallRelease {
                context,
                release: release.clone(),
            },
            Duration::from_secs(60),
            have_repos,
        ),
    })
}
