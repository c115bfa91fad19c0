//! `status`: per cluster, whether its profile runs and what the cluster says about itself.

use std::fmt::Write;

use crate::error::DeployerError;
use crate::k8s::Clients;
use crate::k8s::health::{ClusterHealth, cluster_health};
use crate::k8s::services::ServiceAddress;
use crate::minikube;
use crate::settings::{ClusterSpec, Settings};
use crate::tools::{Tool, Toolbox, runner};

pub async fn status(settings: &Settings, dry_run: bool) -> Result<(), DeployerError> {
    if dry_run {
        for cluster in settings.clusters() {
            println!("$ {}", minikube::status(&cluster.profile));
            println!(
                "read nodes, pods, LoadBalancer services, Linkerd links and mirrored services from context {}",
                cluster.context()
            );
        }
        return Ok(());
    }
    let toolbox =
        Toolbox::find_on_path([Tool::Minikube])?.with_kubeconfig(settings.kubeconfig.clone());
    let clients = Clients::new(settings.kubeconfig.clone());
    let (central, remote) = futures::join!(
        cluster_report(&toolbox, &clients, &settings.central),
        cluster_report(&toolbox, &clients, &settings.remote)
    );
    print!("{}\n{}", central?, remote?);
    Ok(())
}

async fn cluster_report(
    toolbox: &Toolbox,
    clients: &Clients,
    cluster: &ClusterSpec,
) -> Result<String, DeployerError> {
    let mut out = format!("{} ({})\n", cluster.profile, cluster.domain);
    let status = runner::run(toolbox, &minikube::status(&cluster.profile)).await?;
    if !minikube::is_running(&status.stdout) {
        out.push_str("  profile: not running\n");
        return Ok(out);
    }
    out.push_str("  profile: running\n");
    let health = async {
        let client = clients.client(cluster.context()).await?;
        cluster_health(&client).await
    };
    match health.await {
        Ok(health) => render_health(&mut out, &health),
        Err(error) => {
            let _ = writeln!(out, "  cannot read the cluster: {error}");
        }
    }
    Ok(out)
}

fn render_health(out: &mut String, health: &ClusterHealth) {
    let _ = writeln!(
        out,
        "  nodes ready: {}/{}",
        health.nodes_ready, health.nodes_total
    );
    if health.pods_not_ready.is_empty() {
        let _ = writeln!(out, "  pods not ready: none");
    } else {
        let _ = writeln!(out, "  pods not ready:");
        for (namespace, pods) in &health.pods_not_ready {
            let _ = writeln!(out, "    {namespace}: {}", pods.join(", "));
        }
    }
    let _ = writeln!(out, "  LoadBalancer services:");
    if health.load_balancers.is_empty() {
        let _ = writeln!(out, "    none");
    }
    for service in &health.load_balancers {
        let _ = writeln!(out, "    {}", service_line(service));
    }
    match &health.links {
        None => {
            let _ = writeln!(out, "  link: Linkerd multicluster not installed");
        }
        Some(links) if links.is_empty() => {
            let _ = writeln!(out, "  link: none");
        }
        Some(links) => {
            let _ = writeln!(out, "  links: {}", links.join(", "));
            let _ = writeln!(out, "  mirrored services:");
            if health.mirrored.is_empty() {
                let _ = writeln!(out, "    none");
            }
            for service in &health.mirrored {
                let _ = writeln!(out, "    {}/{}", service.namespace, service.name);
            }
        }
    }
}

fn service_line(service: &ServiceAddress) -> String {
    let ports: Vec<String> = service.ports.iter().map(|p| p.to_string()).collect();
    format!(
        "{}/{} {} (ports {})",
        service.namespace,
        service.name,
        service.external.as_deref().unwrap_or("<pending>"),
        ports.join(",")
    )
}
