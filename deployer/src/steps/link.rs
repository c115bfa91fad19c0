use crate::engine::Outcome;
use crate::k8s::apply::{apply_object, parse_documents, summarize};
use crate::k8s::wait::wait_for_load_balancer_ip;
use crate::settings::ClusterSpec;
use crate::{linkerd, minikube};

use super::{Deployer, StepError};

/// The namespace of the Link and its credentials, for documents that name none.
const MULTICLUSTER_NAMESPACE: &str = "linkerd-multicluster";

/// link-gen prints the same objects on every run for an unchanged cluster (once minikube's
/// timestamp is taken out, see [`linkerd::without_last_update`]), and server-side apply of the
/// same objects changes nothing, so re-running the step is safe. link-gen reads the gateway's LoadBalancer address and refuses a gateway without one, which
/// MetalLB assigns after the chart is installed (helm's `--wait` does not wait for it).
pub async fn link(
    deployer: &Deployer,
    source: &ClusterSpec,
    target: &ClusterSpec,
) -> Result<Outcome, StepError> {
    let target_client = deployer.clients.client(target.context()).await?;
    wait_for_load_balancer_ip(
        &target_client,
        linkerd::GATEWAY_NAMESPACE,
        linkerd::GATEWAY_SERVICE,
        deployer.settings.wait_timeout,
    )
    .await?;
    let ip = deployer.run(&minikube::ip(&target.profile)).await?;
    let node_ip = minikube::parse_ip(&ip.stdout)?;
    let generated = deployer
        .run(&linkerd::link_gen(target, &node_ip.to_string()))
        .await?;
    let client = deployer.clients.client(source.context()).await?;
    let mut applied = Vec::new();
    for object in linkerd::without_last_update(parse_documents(&generated.stdout)?) {
        applied.push(apply_object(&client, object, MULTICLUSTER_NAMESPACE).await?);
    }
    Ok(match summarize(&applied) {
        (true, detail) => Outcome::Changed(detail),
        (false, detail) => Outcome::Unchanged(detail),
    })
}
