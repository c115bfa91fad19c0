use crate::engine::Outcome;
use crate::k8s::Change;
use crate::k8s::metallb::{AddressPool, apply_pool};
use crate::minikube;
use crate::settings::ClusterSpec;

use super::{Deployer, StepError};

/// Starting is skipped when the profile runs: `minikube start` on a running profile would
/// restart components and take minutes.
pub async fn start(deployer: &Deployer, cluster: &ClusterSpec) -> Result<Outcome, StepError> {
    let status = deployer.run(&minikube::status(&cluster.profile)).await?;
    if minikube::is_running(&status.stdout) {
        return Ok(Outcome::Unchanged(format!(
            "{} already runs",
            cluster.profile
        )));
    }
    let settings = &deployer.settings;
    deployer
        .run(&minikube::start(
            cluster,
            settings.driver.as_deref(),
            &settings.network,
            settings.start_timeout,
        ))
        .await?;
    Ok(Outcome::Changed(format!("{} started", cluster.profile)))
}

pub async fn configure_metallb(
    deployer: &Deployer,
    cluster: &ClusterSpec,
) -> Result<Outcome, StepError> {
    let output = deployer.run(&minikube::ip(&cluster.profile)).await?;
    let node_ip = minikube::parse_ip(&output.stdout)?;
    let pool = AddressPool::beside_node(node_ip, cluster.role.pool_octets());
    let client = deployer.clients.client(cluster.context()).await?;
    let applied = apply_pool(&client, pool).await?;
    let detail = format!("pool {pool}");
    Ok(match applied.change {
        Change::Unchanged => Outcome::Unchanged(detail),
        Change::Created | Change::Changed => Outcome::Changed(detail),
    })
}
