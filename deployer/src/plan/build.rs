//! From a command and the stack to the list of steps.

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::{Plan, PlanError, Step};
use crate::settings::{ClusterSpec, Role, Settings};
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

/// The step after which `image` is in `cluster`'s node (built there or copied there).
pub fn image_step(cluster: &ClusterSpec, image: &ImageBuild) -> String {
    format!("image {}/{}", cluster.context(), image.tag)
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
    let uses_releases = clusters.iter().any(|(_, w)| {
        w.workloads
            .iter()
            .any(|w| matches!(w, Workload::Release(_)))
    });
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
    // engine will most likely run it.
    for (cluster, workloads) in &clusters {
        steps.extend(cluster_steps(cluster, workloads));
    }
    // Images next: they need only a running node, so they build while the charts install.
    let (image_steps, image_ready) = image_steps(settings, &clusters);
    steps.extend(image_steps);
    let mut cluster_done = Vec::new();
    for (cluster, workloads) in &clusters {
        let ready = image_ready.get(&cluster.profile).cloned();
        let added = workload_steps(cluster, workloads, have_repos, ready);
        cluster_done.push(match added.last() {
            Some(last) => last.name.clone(),
            None => infrastructure_done(cluster, workloads),
        });
        steps.extend(added);
    }
    if stack.link && target == Target::All {
        steps.push(link_clusters(settings, cluster_done));
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

fn cluster_steps(cluster: &ClusterSpec, workloads: &ClusterWorkloads) -> Vec<Step<Action>> {
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
        ),
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
    workloads.workloads.iter().find_map(|w| match w {
        Workload::Image(image) => Some(image),
        _ => None,
    })
}

/// The demo-app image is built once and copied into every other cluster that runs it: a build
/// compiles the workspace (minutes the first time), a copy moves an archive (seconds). It is built
/// in the remote cluster when the plan has it (the demo runs there; the central cluster needs it
/// only for its agent), otherwise in the one cluster deployed. Returns the steps and, per
/// profile, the step after which the image is there.
fn image_steps(
    settings: &Settings,
    clusters: &[(&ClusterSpec, &ClusterWorkloads)],
) -> (Vec<Step<Action>>, HashMap<String, String>) {
    let needing: Vec<(&ClusterSpec, &ImageBuild)> = clusters
        .iter()
        .filter_map(|(cluster, workloads)| image_of(workloads).map(|image| (*cluster, image)))
        .collect();
    let Some(&(builder, image)) = needing
        .iter()
        .find(|(cluster, _)| cluster.role == Role::Remote)
        .or(needing.first())
    else {
        return (Vec::new(), HashMap::new());
    };
    let built = image_step(builder, image);
    let mut steps = vec![
        Step::new(
            built.clone(),
            Action::BuildImage {
                profile: builder.profile.clone(),
                image: image.clone(),
            },
            // A cached rebuild; the first one takes minutes.
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
                    archive: settings
                        .state_dir
                        .join("images")
                        .join(image.archive_file_name()),
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

/// Workloads go one after the other: a later chart may need an earlier one's CRDs. The image is
/// not a step of the chain (see [`image_steps`]): the workload after it in the list waits for
/// `image_ready` as well.
fn workload_steps(
    cluster: &ClusterSpec,
    workloads: &ClusterWorkloads,
    have_repos: bool,
    image_ready: Option<String>,
) -> Vec<Step<Action>> {
    let context = cluster.context().to_string();
    let mut previous = infrastructure_done(cluster, workloads);
    let mut waits_for_image = None;
    let mut steps = Vec::new();
    for workload in &workloads.workloads {
        let (name, action, estimate, needs_repos) = match workload {
            Workload::Image(_) => {
                waits_for_image = image_ready.clone();
                continue;
            }
            Workload::Manifest(manifest) => (
                format!("manifest {context}/{}", manifest.name),
                Action::ApplyManifest {
                    context: context.clone(),
                    manifest: manifest.clone(),
                },
                Duration::from_secs(3),
                false,
            ),
            Workload::Secret(secret) => (
                format!("secret {context}/{}/{}", secret.namespace, secret.name),
                Action::ApplySecret {
                    context: context.clone(),
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
                    context: context.clone(),
                    dashboards: dashboards.clone(),
                },
                Duration::from_secs(1),
                false,
            ),
            Workload::Release(release) => (
                format!("release {context}/{}", release.name),
                Action::InstallRelease {
                    context: context.clone(),
                    release: release.clone(),
                },
                Duration::from_secs(60),
                have_repos,
            ),
        };
        let mut after = vec![
            previous.clone(),
            metallb_step(cluster),
            CERTIFICATES.to_string(),
        ];
        if needs_repos {
            after.push(HELM_REPOS.to_string());
        }
        after.extend(waits_for_image.take());
        after.sort();
        after.dedup();
        steps.push(Step::new(name.clone(), action, estimate).after(after));
        previous = name;
    }
    steps
}
