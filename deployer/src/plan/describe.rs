//! The dry run: every step with every command and manifest it would run or apply, in order,
//! built by the same functions the real run uses.

use std::fmt::Write;
use std::time::Duration;

use crate::certs::{PemPair, issuer_common_name};
use crate::container;
use crate::helm;
use crate::k8s::dashboards as k8s_dashboards;
use crate::k8s::{FIELD_MANAGER, metallb, namespace, secret};
use crate::last_run::LastRun;
use crate::linkerd;
use crate::minikube;
use crate::settings::Settings;
use crate::tools::CommandSpec;

use super::{Action, DeployPlan};

/// One thing a step does.
#[derive(Debug, Clone)]
pub enum PlannedItem {
    Command {
        command: CommandSpec,
        /// When the command runs only under a condition.
        only: Option<String>,
    },
    Manifest {
        context: String,
        yaml: String,
    },
    /// A values file a release is installed with, shown whole: retention, limits and requests
    /// are read there, not in the command line.
    Values {
        path: std::path::PathBuf,
        yaml: String,
    },
    Note(String),
}

pub fn planned_items(action: &Action, settings: &Settings) -> Vec<PlannedItem> {
    let run = |command: CommandSpec| PlannedItem::Command {
        command,
        only: None,
    };
    match action {
        Action::Certificates { force } => certificate_items(settings, *force),
        Action::StartCluster { cluster } => start_items(cluster, settings),
        Action::CheckNetwork { clusters } => {
            let mut items = Vec::new();
            for cluster in clusters {
                items.push(run(minikube::ip(&cluster.profile)));
                items.push(run(container::node_networks(
                    settings.driver,
                    &cluster.profile,
                )));
            }
            items.push(PlannedItem::Note(format!(
                "every node must be attached to network {} with the address `minikube ip` reports, \
                 all in one /24",
                settings.network
            )));
            items
        }
        Action::ConfigureMetallb { cluster } => {
            let (from, to) = cluster.role.pool_octets();
            let addresses = format!("<node network>.{from}-<node network>.{to}");
            vec![
                run(minikube::ip(&cluster.profile)),
                PlannedItem::Manifest {
                    context: cluster.context().to_string(),
                    yaml: to_yaml(&metallb::config_map(&addresses)),
                },
            ]
        }
        Action::Namespaces { context, names } => names
            .iter()
            .map(|name| PlannedItem::Manifest {
                context: context.clone(),
                yaml: to_yaml(&namespace::meshed_namespace(name)),
            })
            .collect(),
        Action::ApplyManifest { context, manifest } => {
            let yaml = std::fs::read_to_string(&manifest.path)
                .unwrap_or_else(|e| format!("# cannot read {}: {e}\n", manifest.path.display()));
            let jobs = crate::k8s::apply::job_names(&yaml);
            let mut items = vec![PlannedItem::Manifest {
                context: context.clone(),
                yaml,
            }];
            if !jobs.is_empty() {
                items.push(PlannedItem::Note(format!(
                    "wait (up to {}s) until Job {} completes",
                    settings.wait_timeout.as_secs(),
                    jobs.join(", ")
                )));
            }
            items
        }
        Action::ApplySecret { context, secret } => {
            let state_dir = crate::credentials::credentials_dir(&settings.state_dir);
            let described = secret::generated_secret(secret, |name| {
                Ok::<_, std::convert::Infallible>(format!(
                    "<generated once, kept in {}>",
                    state_dir.join(name).display()
                ))
            });
            let yaml = match described {
                Ok(object) => to_yaml(&object),
                Err(never) => match never {},
            };
            vec![PlannedItem::Manifest {
                context: context.clone(),
                yaml,
            }]
        }
        Action::ApplyRemoteManifest { profile, manifest } => vec![
            run(minikube::diff_url(profile, &manifest.url)),
            PlannedItem::Command {
                command: minikube::apply_url(profile, &manifest.url),
                only: Some("only when the diff finds differences or fails".to_string()),
            },
        ],
        Action::BuildImage { image, archive } => {
            let changed = Some(format!(
                "only when the ID of {} changed or {} is missing",
                image.tag,
                archive.display()
            ));
            vec![
                run(container::image_id(settings.driver, &image.tag)),
                run(container::build(
                    settings.driver,
                    &image.tag,
                    &image.context,
                )),
                run(container::image_id(settings.driver, &image.tag)),
                PlannedItem::Command {
                    command: container::save(settings.driver, &image.tag, archive),
                    only: changed,
                },
            ]
        }
        Action::LoadImage {
            profile,
            image,
            archive,
        } => vec![
            run(minikube::image_list(profile)),
            PlannedItem::Command {
                command: minikube::image_load(profile, archive),
                only: Some(format!(
                    "only when {profile} does not have the {} last built (the ID loaded is \
                     kept in {})",
                    image.tag,
                    crate::steps::loaded_image_file(archive, profile).display()
                )),
            },
            run(minikube::image_list(profile)),
        ],
        Action::BuildImageInCluster { profile, image } => vec![
            run(minikube::image_list(profile)),
            run(minikube::image_build(profile, &image.tag, &image.context)),
            PlannedItem::Note(format!(
                "{} must be listed by `minikube -p {profile} image ls` afterwards (minikube exits 0 \
                 even when a build fails); unchanged when its ID is the one listed before",
                image.tag
            )),
        ],
        Action::CopyImage {
            from,
            to,
            image,
            archive,
        } => {
            let only = Some(format!(
                "only when {to} does not have the image ID {from} has"
            ));
            vec![
                run(minikube::image_list(from)),
                run(minikube::image_list(to)),
                PlannedItem::Command {
                    command: minikube::image_save(from, &image.tag, archive),
                    only: only.clone(),
                },
                PlannedItem::Command {
                    command: minikube::image_load(to, archive),
                    only,
                },
            ]
        }
        Action::ApplyDashboards {
            context,
            dashboards,
        } => {
            let files = k8s_dashboards::dashboard_files(&dashboards.dir).unwrap_or_default();
            let described = k8s_dashboards::config_map(dashboards, &files, |file| {
                Ok::<_, std::convert::Infallible>(format!("<contents of {}>", file.display()))
            });
            let yaml = match described {
                Ok(object) => to_yaml(&object),
                Err(never) => match never {},
            };
            vec![PlannedItem::Manifest {
                context: context.clone(),
                yaml,
            }]
        }
        Action::AddHelmRepos { repos } => {
            let mut items: Vec<PlannedItem> =
                repos.iter().map(|r| run(helm::repo_add(r))).collect();
            items.push(run(helm::repo_update(repos)));
            items
        }
        Action::LinkClusters { source, target } => vec![
            PlannedItem::Note(format!(
                "wait (up to {}s) until service {}/{} in {} has a LoadBalancer IP: link-gen \
                 refuses a gateway without one, and helm --wait does not wait for it",
                settings.wait_timeout.as_secs(),
                linkerd::GATEWAY_NAMESPACE,
                linkerd::GATEWAY_SERVICE,
                target.context()
            )),
            run(minikube::ip(&target.profile)),
            run(linkerd::link_gen(
                target,
                &format!("<ip of {}>", target.profile),
            )),
            PlannedItem::Note(format!(
                "apply its output (server-side, field manager {FIELD_MANAGER}) to context {}",
                source.context()
            )),
        ],
        Action::InstallRelease { context, release } => {
            let mut items = release_items(context, release, settings);
            items.extend(release.values_files.iter().map(|path| {
                PlannedItem::Values {
                    path: path.clone(),
                    yaml: std::fs::read_to_string(path)
                        .unwrap_or_else(|e| format!("# cannot read {}: {e}\n", path.display())),
                }
            }));
            items
        }
    }
}

fn release_items(
    context: &str,
    release: &crate::helm::HelmRelease,
    settings: &Settings,
) -> Vec<PlannedItem> {
    let run = |command: CommandSpec| PlannedItem::Command {
        command,
        only: None,
    };
    vec![
        run(helm::list_release(release, context)),
        PlannedItem::Command {
            command: helm::get_values(release, context),
            only: Some(format!(
                "only when {} is deployed with chart {}-{}",
                release.name,
                release.chart_name(),
                release.version
            )),
        },
        PlannedItem::Command {
            command: helm::upgrade_install(release, context, settings.wait_timeout),
            only: Some(
                "only when the release is missing, failed or pending, or its chart version \
                     or values differ"
                    .to_string(),
            ),
        },
    ]
}

/// The peer lookups happen only when there is no static IP kept and this profile must start.
fn start_items(cluster: &crate::settings::ClusterSpec, settings: &Settings) -> Vec<PlannedItem> {
    let peer = settings.peer(cluster);
    let kept = minikube::network::static_ip_file(&settings.state_dir, &cluster.profile);
    let not_running = format!("only when {} is not running", cluster.profile);
    vec![
        PlannedItem::Command {
            command: minikube::status(&cluster.profile),
            only: None,
        },
        PlannedItem::Note(format!(
            "static IP ({not_running}): the one kept in {}, else the next free address beside {}'s \
             node when {} runs (`minikube status -p {}`, `minikube ip -p {}`; then kept), else none: \
             the first profile on network {} takes its gateway + 1",
            kept.display(),
            peer.profile,
            peer.profile,
            peer.profile,
            peer.profile,
            settings.network
        )),
        PlannedItem::Command {
            command: minikube::start(cluster, settings, Some("<static IP>")),
            only: Some(format!("{not_running}; --static-ip only when there is one")),
        },
        PlannedItem::Note(format!(
            "the API server's version must be {} or newer (the charts' floor; see kubernetes in \
             manifests/charts.yaml)",
            settings.kubernetes_minimum
        )),
    ]
}

fn certificate_items(settings: &Settings, force: bool) -> Vec<PlannedItem> {
    let dir = settings.certs_dir();
    let anchor = PemPair::anchor(&dir);
    let mut items = vec![PlannedItem::Note(format!(
        "trust anchor {} + {} (CN root.linkerd.cluster.local, ECDSA P-256, CA pathlen 1){}",
        anchor.cert.display(),
        anchor.key.display(),
        if force {
            ", replaced (--force)"
        } else {
            ", kept when it exists"
        }
    ))];
    for cluster in settings.clusters() {
        let pair = PemPair::issuer(&dir, &cluster.profile);
        items.push(PlannedItem::Note(format!(
            "issuer {} + {} (CN {}, CA pathlen 0), kept when valid",
            pair.cert.display(),
            pair.key.display(),
            issuer_common_name(&cluster.domain)
        )));
    }
    items
}

fn to_yaml<T: serde::Serialize>(object: &T) -> String {
    serde_saphyr::to_string(object).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// The full dry-run text, by estimates.
pub fn render_plan(plan: &DeployPlan, settings: &Settings, title: &str) -> String {
    render_plan_with(plan, settings, title, None)
}

/// The full dry-run text; the estimate takes the duration each step had in the last run that
/// finished it, where `measured` knows one.
pub fn render_plan_with(
    plan: &DeployPlan,
    settings: &Settings,
    title: &str,
    measured: Option<&LastRun>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for `deployer {title}` ({} steps):",
        plan.steps().len()
    );
    for (number, step) in plan.steps().iter().enumerate() {
        let _ = writeln!(out);
        let _ = write!(out, "{}. {}", number + 1, step.name);
        if !step.depends_on.is_empty() {
            let _ = write!(out, "  (after: {})", step.depends_on.join(", "));
        }
        let _ = writeln!(out);
        for item in planned_items(&step.action, settings) {
            render_item(&mut out, &item);
        }
    }
    let _ = writeln!(out);
    let duration = |step: &crate::engine::Step<Action>| {
        measured
            .and_then(|m| m.duration_of(&step.name))
            .unwrap_or(step.estimate)
    };
    let critical = plan.critical_path_with(duration);
    let _ = write!(
        out,
        "Estimate: {} one step after another (like the original scripts), {} with independent steps side by side",
        human(plan.serial_with(duration)),
        human(critical.total)
    );
    let known = plan
        .steps()
        .iter()
        .filter(|s| measured.is_some_and(|m| m.duration_of(&s.name).is_some()))
        .count();
    if known > 0 {
        let _ = write!(
            out,
            " (measured durations from the last run where known: {known} of {} steps, see {})",
            plan.steps().len(),
            crate::last_run::path(&settings.state_dir).display()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Critical path: {}", critical.steps.join(" -> "));
    out
}

fn render_item(out: &mut String, item: &PlannedItem) {
    match item {
        PlannedItem::Command { command, only } => {
            let _ = write!(out, "   $ {command}");
            if let Some(only) = only {
                let _ = write!(out, "    # {only}");
            }
            let _ = writeln!(out);
        }
        PlannedItem::Manifest { context, yaml } => {
            let _ = writeln!(
                out,
                "   apply (server-side, field manager {FIELD_MANAGER}) to context {context}:"
            );
            let _ = writeln!(out, "     ---");
            for line in yaml.lines() {
                let _ = writeln!(out, "     {line}");
            }
        }
        PlannedItem::Values { path, yaml } => {
            let _ = writeln!(out, "   with values {}:", path.display());
            for line in yaml.lines() {
                let _ = writeln!(out, "     {line}");
            }
        }
        PlannedItem::Note(note) => {
            let _ = writeln!(out, "   - {note}");
        }
    }
}

/// `14m 03s`, or `42s` under a minute.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}
