//! `status`: per cluster, whether its profile runs and what the cluster says about itself: each
//! pod that is not ready with its reason and fix, as text or (`--output json`) for machines.

use std::fmt::Write;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::diagnose::render::finding_lines;
use crate::diagnose::{Finding, HintContext};
use crate::error::DeployerError;
use crate::k8s::Clients;
use crate::k8s::health::{ClusterHealth, cluster_health};
use crate::k8s::metallb::PoolState;
use crate::k8s::services::ServiceAddress;
use crate::minikube;
use crate::settings::{ClusterSpec, Settings};
use crate::tools::{Tool, Toolbox, runner};

pub async fn status(
    settings: &Settings,
    output: OutputFormat,
    dry_run: bool,
) -> Result<(), DeployerError> {
    if dry_run {
        for cluster in settings.clusters() {
            println!("$ {}", minikube::status(&cluster.profile));
            println!(
                "read nodes, pods and events (why a pod is not ready), claims, LoadBalancer services, Linkerd links and mirrored services from context {}",
                cluster.context()
            );
        }
        return Ok(());
    }
    let toolbox =
        Toolbox::find_on_path([Tool::Minikube])?.with_kubeconfig(settings.kubeconfig.clone());
    let clients = Clients::new(settings.kubeconfig.clone());
    let (central, remote) = futures::join!(
        cluster_status(&toolbox, &clients, &settings.central),
        cluster_status(&toolbox, &clients, &settings.remote)
    );
    let clusters = [central?, remote?];
    match output {
        OutputFormat::Text => {
            let text: Vec<String> = clusters.iter().map(render_text).collect();
            print!("{}", text.join("\n"));
        }
        OutputFormat::Json => {
            let json = serde_json::json!({ "clusters": clusters });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// What `status` knows about one cluster; the JSON output is this, field for field.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub profile: String,
    pub domain: String,
    pub running: bool,
    /// Why the cluster could not be read, when it runs but its API did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Nodes>,
    pub pods_not_ready: Vec<Finding>,
    pub load_balancers: Vec<LoadBalancer>,
    /// The MetalLB pool (`first-last`), or why there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metallb_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metallb_problem: Option<String>,
    /// None when Linkerd multicluster is not installed.
    pub links: Option<Vec<String>>,
    pub mirrored_services: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Nodes {
    pub ready: usize,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct LoadBalancer {
    pub namespace: String,
    pub name: String,
    /// None while MetalLB has not assigned one.
    pub address: Option<String>,
    pub ports: Vec<i32>,
}

async fn cluster_status(
    toolbox: &Toolbox,
    clients: &Clients,
    cluster: &ClusterSpec,
) -> Result<ClusterStatus, DeployerError> {
    let mut status = ClusterStatus {
        profile: cluster.profile.clone(),
        domain: cluster.domain.clone(),
        running: false,
        error: None,
        nodes: None,
        pods_not_ready: Vec::new(),
        load_balancers: Vec::new(),
        metallb_pool: None,
        metallb_problem: None,
        links: None,
        mirrored_services: Vec::new(),
    };
    let answer = runner::run(toolbox, &minikube::status(&cluster.profile)).await?;
    status.running = minikube::is_running(&answer.stdout);
    if !status.running {
        return Ok(status);
    }
    let health = async {
        let client = clients.client(cluster.context()).await?;
        cluster_health(&client, &HintContext::for_cluster(cluster)).await
    };
    match health.await {
        Ok(health) => fill(&mut status, health),
        Err(error) => status.error = Some(error.to_string()),
    }
    Ok(status)
}

fn fill(status: &mut ClusterStatus, health: ClusterHealth) {
    status.nodes = Some(Nodes {
        ready: health.nodes_ready,
        total: health.nodes_total,
    });
    status.pods_not_ready = health.problems;
    status.load_balancers = health.load_balancers.iter().map(load_balancer).collect();
    match health.metallb {
        PoolState::Pool(pool) => status.metallb_pool = Some(pool.to_string()),
        PoolState::Missing => {
            status.metallb_problem = Some(
                "no pool (metallb-system/config is missing): run `deployer all`, which writes it"
                    .to_string(),
            )
        }
        PoolState::Unusable(found) => {
            status.metallb_problem = Some(format!(
                "the pool is `{found}`, not an address range (a manual `minikube start` re-enables \
                 the addon with its unconfigured template): run `deployer all`, which writes it again"
            ))
        }
    }
    status.links = health.links;
    status.mirrored_services = health
        .mirrored
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect();
}

fn load_balancer(service: &ServiceAddress) -> LoadBalancer {
    LoadBalancer {
        namespace: service.namespace.clone(),
        name: service.name.clone(),
        address: service.external.clone(),
        ports: service.ports.clone(),
    }
}

fn render_text(status: &ClusterStatus) -> String {
    let mut out = format!("{} ({})\n", status.profile, status.domain);
    if !status.running {
        out.push_str("  profile: not running\n");
        return out;
    }
    out.push_str("  profile: running\n");
    if let Some(error) = &status.error {
        let _ = writeln!(out, "  cannot read the cluster: {error}");
        return out;
    }
    if let Some(nodes) = &status.nodes {
        let _ = writeln!(out, "  nodes ready: {}/{}", nodes.ready, nodes.total);
    }
    if status.pods_not_ready.is_empty() {
        let _ = writeln!(out, "  pods not ready: none");
    } else {
        let _ = writeln!(out, "  not ready:");
        for finding in &status.pods_not_ready {
            let _ = writeln!(out, "{}", finding_lines(finding, "    "));
        }
    }
    let _ = writeln!(out, "  LoadBalancer services:");
    if status.load_balancers.is_empty() {
        let _ = writeln!(out, "    none");
    }
    for service in &status.load_balancers {
        let ports: Vec<String> = service.ports.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "    {}/{} {} (ports {})",
            service.namespace,
            service.name,
            service.address.as_deref().unwrap_or("<pending>"),
            ports.join(",")
        );
    }
    match (&status.metallb_pool, &status.metallb_problem) {
        (_, Some(problem)) => {
            let _ = writeln!(out, "  MetalLB: {problem}");
        }
        (Some(pool), None) => {
            let _ = writeln!(out, "  MetalLB pool: {pool}");
        }
        (None, None) => {}
    }
    render_links(&mut out, status);
    out
}

fn render_links(out: &mut String, status: &ClusterStatus) {
    match &status.links {
        None => {
            let _ = writeln!(out, "  link: Linkerd multicluster not installed");
        }
        Some(links) if links.is_empty() => {
            let _ = writeln!(out, "  link: none");
        }
        Some(links) => {
            let _ = writeln!(out, "  links: {}", links.join(", "));
            let _ = writeln!(out, "  mirrored services:");
            if status.mirrored_services.is_empty() {
                let _ = writeln!(out, "    none");
            }
            for service in &status.mirrored_services {
                let _ = writeln!(out, "    {service}");
            }
        }
    }
}
