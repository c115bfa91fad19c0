//! The MetalLB address pool, written as the ConfigMap the minikube addon's interactive
//! `minikube addons configure metallb` would write (MetalLB v0.9 legacy format).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::ObjectMeta;

use super::KubeError;
use super::apply::{Applied, apply_typed};

pub const NAMESPACE: &str = "metallb-system";
pub const NAME: &str = "config";

/// A range of addresses on the node's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl AddressPool {
    /// The pool `x.y.z.<from>-x.y.z.<to>` on the /24 of the node IP (what `minikube ip` prints).
    pub fn beside_node(node_ip: Ipv4Addr, (from, to): (u8, u8)) -> Self {
        let [a, b, c, _] = node_ip.octets();
        AddressPool {
            first: Ipv4Addr::new(a, b, c, from),
            last: Ipv4Addr::new(a, b, c, to),
        }
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// The `config` key, exactly as the addon's template renders it.
pub fn config_text(addresses: &str) -> String {
    format!("address-pools:\n- name: default\n  protocol: layer2\n  addresses:\n  - {addresses}\n")
}

/// `addresses` is usually an [`AddressPool`]; a dry run passes a description instead.
pub fn config_map(addresses: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            namespace: Some(NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "config".to_string(),
            config_text(addresses),
        )])),
        ..ConfigMap::default()
    }
}

/// What the `config` ConfigMap holds: the pool the deployer wrote, or something else, e.g. the
/// addon's own rendering with no addresses configured (`- -`), which a manual `minikube start`
/// writes back when it re-enables the addon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolState {
    Missing,
    Pool(AddressPool),
    Unusable(String),
}

/// Reads the first address range of the `config` key.
pub fn parse_pool(config: &str) -> PoolState {
    let Some(range) = config
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "addresses:")
        .nth(1)
        .and_then(|l| l.strip_prefix('-'))
        .map(str::trim)
    else {
        return PoolState::Unusable(config.trim().to_string());
    };
    let parsed = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((first, last)) => PoolState::Pool(AddressPool { first, last }),
        None => PoolState::Unusable(range.to_string()),
    }
}

pub async fn read_pool(client: &Client) -> Result<PoolState, KubeError> {
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), NAMESPACE);
    let found = api
        .get_opt(NAME)
        .await
        .map_err(KubeError::api(format!("read configmap {NAMESPACE}/{NAME}")))?;
    Ok(
        match found
            .and_then(|c| c.data)
            .and_then(|d| d.get("config").cloned())
        {
            Some(config) => parse_pool(&config),
            None => PoolState::Missing,
        },
    )
}

pub async fn apply_pool(client: &Client, pool: AddressPool) -> Result<Applied, KubeError> {
    apply_typed(client, &config_map(&pool.to_string()), NAMESPACE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pool_and_the_addons_placeholder() {
        let ours = config_text("192.168.49.201-192.168.49.210");
        assert_eq!(
            parse_pool(&ours),
            PoolState::Pool(AddressPool::beside_node(
                Ipv4Addr::new(192, 168, 49, 2),
                (201, 210)
            ))
        );
        // The addon's template with LoadBalancerStartIP/EndIP unset.
        assert_eq!(
            parse_pool(&config_text("-")),
            PoolState::Unusable("-".into())
        );
    }

    #[test]
    fn pool_beside_the_node() {
        let pool = AddressPool::beside_node(Ipv4Addr::new(192, 168, 49, 2), (201, 210));
        assert_eq!(pool.to_string(), "192.168.49.201-192.168.49.210");
    }

    #[test]
    fn renders_like_the_addon_template() {
        let template = "address-pools:\n- name: default\n  protocol: layer2\n  addresses:\n  - {{ .LoadBalancerStartIP }}-{{ .LoadBalancerEndIP }}\n";
        let rendered = template
            .replace("{{ .LoadBalancerStartIP }}", "10.0.0.1")
            .replace("{{ .LoadBalancerEndIP }}", "10.0.0.9");
        assert_eq!(config_text("10.0.0.1-10.0.0.9"), rendered);
    }
}
