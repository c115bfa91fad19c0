//! `grafana`: forwards a local port to the central Grafana through the API server, for hosts
//! where the ingress's LoadBalancer address is not reachable (minikube's docker driver on macOS).

use std::net::{IpAddr, SocketAddr};

use super::summary;
use crate::error::DeployerError;
use crate::k8s::Clients;
use crate::settings::Settings;
use crate::stack::endpoints::GRAFANA;

pub async fn grafana(
    settings: &Settings,
    address: IpAddr,
    port: u16,
    dry_run: bool,
) -> Result<(), DeployerError> {
    let bind = SocketAddr::new(address, port);
    if dry_run {
        println!(
            "forward {bind} to {GRAFANA} in context {}, until Ctrl-C",
            settings.central.context()
        );
        return Ok(());
    }
    let clients = Clients::new(settings.kubeconfig.clone());
    let client = clients.client(settings.central.context()).await?;
    let forward = GRAFANA.forward_from(&client, bind).await?;
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
