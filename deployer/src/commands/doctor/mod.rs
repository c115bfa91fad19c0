//! `doctor`: every check of this machine and, when the clusters exist, of the clusters, as
//! PASS/WARN/FAIL lines with their fixes (the model is `linkerd check`); exit 1 on a FAIL. Also the
//! preflight of `deployer all|central|remote`, which runs the machine's checks and stops only on
//! a FAIL.

mod link;

use crate::diagnose::HintContext;
use crate::error::DeployerError;
use crate::k8s::Clients;
use crate::k8s::health::{ClusterHealth, cluster_health};
use crate::minikube;
use crate::plan::Target;
use crate::preflight::{
    Check, Level, Machine, PreflightFailed, blockers, ignoring, machine_checks,
};
use crate::settings::{ClusterSpec, Settings};
use crate::tools::{Tool, Toolbox, check_versions, runner};

/// Before a deploy: warnings are printed and the run goes on; a FAIL stops it before anything
/// starts.
pub async fn preflight(settings: &Settings, target: Target) -> Result<(), DeployerError> {
    let clusters: Vec<&ClusterSpec> = match target {
        Target::Certs { .. } => return Ok(()),
        Target::Central => vec![&settings.central],
        Target::Remote => vec![&settings.remote],
        Target::All => settings.clusters().to_vec(),
    };
    let checks = ignoring(
        machine_checks(settings, &clusters, &Machine::this_one()).await,
        &settings.ignore_preflight_errors,
    );
    for check in checks.iter().filter(|c| c.level == Level::Warn) {
        eprintln!("warning: {}", check.line().replacen("WARN ", "", 1));
    }
    match blockers(&checks) {
        Some(failed) => Err(PreflightFailed {
            failed: failed.into_iter().cloned().collect(),
        }
        .into()),
        None => Ok(()),
    }
}

pub async fn doctor(settings: &Settings, dry_run: bool) -> Result<(), DeployerError> {
    if dry_run {
        println!(
            "check the tools (minikube, helm, linkerd) and their versions; the container engine's CPUs and \
             memory; inotify limits (Linux); free disk; then per running cluster its nodes, pods, \
             LoadBalancer addresses, the link and the mirrored services' endpoints"
        );
        return Ok(());
    }
    let mut checks = tool_checks(settings).await;
    checks.extend(machine_checks(settings, &settings.clusters(), &Machine::this_one()).await);
    print_section("this machine", &checks);
    let mut failed = count_failed(&checks);
    match Toolbox::find_on_path([Tool::Minikube]) {
        Ok(toolbox) => {
            let toolbox = toolbox.with_kubeconfig(settings.kubeconfig.clone());
            let clients = Clients::new(settings.kubeconfig.clone());
            for cluster in settings.clusters() {
                let checks = cluster_checks(&toolbox, &clients, cluster).await;
                print_section(&cluster.profile, &checks);
                failed += count_failed(&checks);
            }
        }
        Err(_) => println!("clusters\n  not checked: minikube is not on PATH (see above)"),
    }
    if failed > 0 {
        return Err(DeployerError::DoctorFailed { failed });
    }
    println!("\nno FAIL: the machine and the clusters look fine");
    Ok(())
}

fn print_section(title: &str, checks: &[Check]) {
    println!("{title}");
    for check in checks {
        for line in check.line().lines() {
            println!("  {line}");
        }
    }
}

fn count_failed(checks: &[Check]) -> usize {
    checks.iter().filter(|c| c.level == Level::Fail).count()
}

/// Each tool found, and recent enough.
async fn tool_checks(settings: &Settings) -> Vec<Check> {
    let tools = [
        Tool::Minikube,
        Tool::Helm,
        Tool::Linkerd,
        settings.driver.tool(),
    ];
    let mut checks = Vec::new();
    for tool in tools {
        let name = tool.program();
        let check = match Toolbox::find_on_path([tool]) {
            Err(_) => Check::fail(
                name,
                "not found on PATH",
                format!(
                    "install {tool} (>= {}): {}",
                    tool.minimum_version(),
                    tool.install_hint()
                ),
            ),
            Ok(toolbox) => match check_versions(&toolbox).await {
                Ok(()) => Check::pass(name, format!("{}", toolbox.path(tool).display())),
                Err(outdated) => Check::fail(name, outdated.to_string(), outdated.help()),
            },
        };
        checks.push(check);
    }
    checks
}

async fn cluster_checks(toolbox: &Toolbox, clients: &Clients, cluster: &ClusterSpec) -> Vec<Check> {
    let profile = &cluster.profile;
    let running = runner::run(toolbox, &minikube::status(profile))
        .await
        .is_ok_and(|answer| minikube::is_running(&answer.stdout));
    if !running {
        return vec![Check::warn(
            "profile",
            format!("{profile} is not running"),
            "`deployer all` creates it (or `minikube start -p` it if it was stopped)",
        )];
    }
    let mut checks = vec![Check::pass("profile", format!("{profile} runs"))];
    let health = async {
        let client = clients.client(cluster.context()).await?;
        cluster_health(&client, &HintContext::for_cluster(cluster)).await
    };
    match health.await {
        Ok(health) => {
            checks.extend(health_checks(cluster, &health));
            if let Ok(client) = clients.client(cluster.context()).await {
                checks.extend(link::mirror_endpoint_checks(&client, &health).await);
            }
        }
        Err(error) => checks.push(Check::fail(
            "API server",
            error.to_string(),
            format!("`minikube -p {profile} status`; `minikube -p {profile} update-context` rewrites its kube context"),
        )),
    }
    checks
}

/// The same reading as `status`, as checks.
pub fn health_checks(cluster: &ClusterSpec, health: &ClusterHealth) -> Vec<Check> {
    let mut checks = Vec::new();
    let nodes = format!("{}/{} ready", health.nodes_ready, health.nodes_total);
    checks.push(
        if health.nodes_ready == health.nodes_total && health.nodes_total > 0 {
            Check::pass("nodes", nodes)
        } else {
            Check::fail(
                "nodes",
                nodes,
                format!(
                    "`minikube -p {} logs` says why the node is not ready",
                    cluster.profile
                ),
            )
        },
    );
    if health.problems.is_empty() {
        checks.push(Check::pass("pods", "all ready (or finished)"));
    }
    for finding in &health.problems {
        let name = format!("{} {}/{}", finding.object, finding.namespace, finding.name);
        checks.push(Check::fail(
            name,
            finding.problem.clone(),
            finding.hint.clone(),
        ));
    }
    for service in &health.load_balancers {
        let name = format!("LoadBalancer {}/{}", service.namespace, service.name);
        checks.push(match &service.external {
            Some(address) => Check::pass(name, address.clone()),
            None => Check::fail(
                name,
                "no address",
                format!(
                    "MetalLB's pool: see `deployer status`; the `metallb {}` step writes it",
                    cluster.profile
                ),
            ),
        });
    }
    checks.extend(link::link_checks(cluster, health));
    checks
}
