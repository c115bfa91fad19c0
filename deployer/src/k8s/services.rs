//! Reading where services can be reached.

use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::KubeError;

/// A service and the address it is reachable at from outside the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    pub namespace: String,
    pub name: String,
    /// Empty while MetalLB has not assigned one.
    pub external: Option<String>,
    pub ports: Vec<i32>,
}

/// The first LoadBalancer ingress address (IP, else hostname).
pub fn load_balancer_address(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    ingress
        .iter()
        .find_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
}

fn address_of(service: &Service) -> ServiceAddress {
    ServiceAddress {
        namespace: service.namespace().unwrap_or_default(),
        name: service.name_any(),
        external: load_balancer_address(service),
        ports: service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|ports| ports.iter().map(|p| p.port).collect())
            .unwrap_or_default(),
    }
}

pub async fn service_address(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<ServiceAddress, KubeError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = api
        .get(name)
        .await
        .map_err(KubeError::api(format!("read service {namespace}/{name}")))?;
    Ok(address_of(&service))
}

/// Every service of type LoadBalancer in the cluster.
pub async fn load_balancers(client: &Client) -> Result<Vec<ServiceAddress>, KubeError> {
    let api: Api<Service> = Api::all(client.clone());
    let services = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list services"))?;
    Ok(services
        .items
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .map(address_of)
        .collect())
}

/// Services the Linkerd service mirror created from another cluster's exported ones.
pub async fn mirrored_services(client: &Client) -> Result<Vec<ServiceAddress>, KubeError> {
    let api: Api<Service> = Api::all(client.clone());
    let params = ListParams::default().labels("mirror.linkerd.io/mirrored-service=true");
    let services = api
        .list(&params)
        .await
        .map_err(KubeError::api("list mirrored services"))?;
    Ok(services.items.iter().map(address_of).collect())
}
