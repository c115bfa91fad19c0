//! `grafana`: forwards a local port to the central Grafana through the API server, for hosts
//! where the ingress's LoadBalancer address is not reachable (minikube's docker driver on macOS).

use std::net::{IpAddr, SocketAddr};

use super::summary;
use crate::error::DeployerError;
use crate::k8s::{Clients, PortForward};
use crate::settings::Settings;

/// kube-prometheus-stack's Grafana (release `monitor`), its Service and port.
pub const GRAFANA_SERVICE: (&str, &str, u16) = ("observability", "monitor-grafana", 80);

pub async fn grafana(
    settings: &Settings,
    address: IpAddr,
    port: u16,
    dry_run: bool,
) -> Result<(), DeployerError> {
    let (namespace, service, service_port) = GRAFANA_SERVICE;
    let bind = SocketAddr::new(address, port);
    if dry_run {
        println!(
            "forward {bind} to service {namespace}/{service}:{service_port} in context {}, until Ctrl-C",
            settings.central.context()
        );
        return Ok(());
    }
    let clients = Clients::new(settings.kubeconfig.clone());
    let client = clients.client(settings.central.context()).await?;
    let forward = PortForward::to_service(&client, namespace, service, service_port, bind).await?;
    println!(
        "Grafana: http://{} (forwarding to {} in {})",
        forward.local_addr(),
        forward.description(),
        settings.central.context()
    );
    println!("{}", summary::login_line(settings));
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .map_err(DeployerError::Signal)?;
    Ok(())
}
