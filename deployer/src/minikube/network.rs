//! Two profiles on one container network, the way minikube really places them.
//!
//! minikube (docker/podman drivers, pkg/drivers/kic/kic.go at v1.38.1) gives the primary node of
//! every profile the network's gateway + 1 (`IndexFromMachineName` is 1 for any profile name
//! without an `-mNN` suffix). The second profile started on an existing network therefore asks
//! for the first one's address and fails with "can't create with that IP, address already in
//! use", which minikube never retries (minikube issue 14799). Two starts at once also race to
//! create the network, and the loser silently falls back to the engine's default bridge. So the
//! profiles start one after the other, and the second gets a `--static-ip` in the first one's
//! subnet, chosen here once and kept in the state folder: minikube ignores a different static IP
//! for an existing profile ("You cannot change the static IP of an existing minikube cluster").

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::settings::Role;

/// Where the static IP chosen for `profile` is kept.
pub fn static_ip_file(state_dir: &Path, profile: &str) -> PathBuf {
    state_dir
        .join("network")
        .join(format!("{profile}.static-ip"))
}

/// The address for a node that joins the subnet `peer` is on: the next one up that minikube
/// accepts as a static IP (last octet 2 to 254, `validateStaticIP` in cmd/minikube/cmd/start.go)
/// and that is not in either MetalLB pool, searching down when the top of the subnet is reached.
pub fn static_ip_beside(peer: Ipv4Addr) -> Option<Ipv4Addr> {
    let [a, b, c, own] = peer.octets();
    let usable = |octet: u8| {
        (2..=254).contains(&octet)
            && octet != own
            && ![Role::Central, Role::Remote].iter().any(|role| {
                let (from, to) = role.pool_octets();
                (from..=to).contains(&octet)
            })
    };
    let up = (own.saturating_add(1)..=254).find(|&o| usable(o));
    let down = (2..own).rev().find(|&o| usable(o));
    up.or(down).map(|octet| Ipv4Addr::new(a, b, c, octet))
}

/// minikube creates its networks as /24s (`network.FreeSubnet`), and the MetalLB pools are
/// carved from the node's /24 as well.
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a.octets()[..3] == b.octets()[..3]
}

/// A static IP kept from an earlier start; none when the file does not exist.
pub fn kept_static_ip(state_dir: &Path, profile: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
    let path = static_ip_file(state_dir, profile);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(NetworkError::State { path, source }),
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| NetworkError::BadStateFile {
            path,
            text: text.trim().to_string(),
        })
}

pub fn keep_static_ip(state_dir: &Path, profile: &str, ip: Ipv4Addr) -> Result<(), NetworkError> {
    let path = static_ip_file(state_dir, profile);
    let write = || -> std::io::Result<()> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&path, format!("{ip}\n"))
    };
    write().map_err(|source| NetworkError::State {
        path: path.clone(),
        source,
    })
}

/// Forgets the static IP of a deleted profile: a new profile of that name may take any address.
pub fn forget_static_ip(state_dir: &Path, profile: &str) -> std::io::Result<()> {
    match std::fs::remove_file(static_ip_file(state_dir, profile)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One entry of `<engine> container inspect --format '{{json .NetworkSettings.Networks}}'`
/// (the same shape from docker and podman).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
}

/// The networks a node container is attached to, by name, with its address on each.
pub fn parse_attachments(json: &str) -> Result<BTreeMap<String, Attachment>, NetworkError> {
    serde_json::from_str(json.trim()).map_err(|e| NetworkError::Inspect {
        reason: e.to_string(),
        output: json.trim().chars().take(200).collect(),
    })
}

/// A node as the checks see it: what `minikube ip` says and what the engine says.
#[derive(Debug, Clone)]
pub struct Node {
    pub profile: String,
    pub ip: Ipv4Addr,
    pub attachments: BTreeMap<String, Attachment>,
}

/// Both nodes must be on `network` with the address minikube reports, in one subnet; otherwise
/// no packet of the link, the gateway or the pools crosses between the clusters.
pub fn check_shared_network(network: &str, nodes: &[Node]) -> Result<String, NetworkError> {
    for node in nodes {
        let on_network = node.attachments.get(network);
        if on_network.map(|a| a.ip_address.as_str()) != Some(node.ip.to_string().as_str()) {
            return Err(NetworkError::NotOnNetwork {
                profile: node.profile.clone(),
                network: network.to_string(),
                ip: node.ip,
                found: node
                    .attachments
                    .iter()
                    .map(|(name, a)| format!("{name} ({})", a.ip_address))
                    .collect(),
            });
        }
    }
    if let [first, rest @ ..] = nodes
        && let Some(other) = rest.iter().find(|n| !same_subnet(first.ip, n.ip))
    {
        return Err(NetworkError::Subnets {
            first: (first.profile.clone(), first.ip),
            second: (other.profile.clone(), other.ip),
        });
    }
    let listed: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {}", n.profile, n.ip))
        .collect();
    Ok(format!("{network}: {}", listed.join(", ")))
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "{profile}'s node ({ip}) is not on network `{network}` (attached to: {}), so the clusters cannot reach each other",
        if .found.is_empty() { "nothing".to_string() } else { .found.join(", ") }
    )]
    NotOnNetwork {
        profile: String,
        network: String,
        ip: Ipv4Addr,
        found: Vec<String>,
    },
    #[error(
        "{}'s node is at {} and {}'s at {}: not one subnet, so neither reaches the other's gateway or LoadBalancer pool",
        .first.0, .first.1, .second.0, .second.1
    )]
    Subnets {
        first: (String, Ipv4Addr),
        second: (String, Ipv4Addr),
    },
    #[error("no free static IP beside {peer} on its /24")]
    NoFreeAddress { peer: Ipv4Addr },
    #[error("cannot read the node's networks from the container engine ({reason}): {output}")]
    Inspect { reason: String, output: String },
    #[error("{} holds `{text}`, not an IPv4 address", .path.display())]
    BadStateFile { path: PathBuf, text: String },
    #[error("cannot keep the static IP in {}: {source}", .path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    pub fn help(&self) -> String {
        match self {
            NetworkError::NotOnNetwork { profile, .. }
            | NetworkError::Subnets {
                second: (profile, _),
                ..
            } => format!(
                "minikube could not put the node on the shared network (two profiles started at \
                 once, or a profile made before this deployer pinned a --static-ip): delete it with \
                 `minikube delete -p {profile}` and run `deployer all` again, which starts the \
                 profiles one after the other"
            ),
            NetworkError::NoFreeAddress { .. } => {
                "free an address on the shared network, or use another --network".to_string()
            }
            NetworkError::Inspect { .. } => {
                "check that the container engine answers (`docker ps` or `podman ps`)".to_string()
            }
            NetworkError::BadStateFile { path, .. } => format!(
                "delete {} (the next start chooses the address again)",
                path.display()
            ),
            NetworkError::State { .. } => "check the state folder's permissions".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn a_static_ip_goes_beside_the_peer_and_avoids_the_pools() {
        assert_eq!(
            static_ip_beside(ip("192.168.49.2")),
            Some(ip("192.168.49.3"))
        );
        assert_eq!(
            static_ip_beside(ip("192.168.58.200")),
            Some(ip("192.168.58.221"))
        );
        assert_eq!(static_ip_beside(ip("10.0.0.254")), Some(ip("10.0.0.253")));
        assert_eq!(static_ip_beside(ip("10.0.0.220")), Some(ip("10.0.0.221")));
    }

    #[test]
    fn reads_attachments_as_docker_prints_them() {
        let json = r#"{"lgtm":{"IPAMConfig":{"IPv4Address":"192.168.49.3"},"Links":null,"Aliases":null,"MacAddress":"02:42:c0:a8:31:03","NetworkID":"5b0d","EndpointID":"9c1e","Gateway":"192.168.49.1","IPAddress":"192.168.49.3","IPPrefixLen":24,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DriverOpts":null,"DNSNames":["lgtm-remote","9f3b"]}}"#;
        let attachments = parse_attachments(json).unwrap();
        assert_eq!(attachments["lgtm"].ip_address, "192.168.49.3");
        assert!(parse_attachments("Error: No such container: x").is_err());
    }

    #[test]
    fn a_node_on_the_default_bridge_fails_the_check() {
        let node = |profile: &str, address: &str, network: &str| Node {
            profile: profile.to_string(),
            ip: ip(address),
            attachments: BTreeMap::from([(
                network.to_string(),
                Attachment {
                    ip_address: address.to_string(),
                },
            )]),
        };
        let good = [
            node("lgtm-central", "192.168.49.2", "lgtm"),
            node("lgtm-remote", "192.168.49.3", "lgtm"),
        ];
        assert!(check_shared_network("lgtm", &good).is_ok());
        let fell_back = [
            node("lgtm-central", "192.168.49.2", "lgtm"),
            node("lgtm-remote", "172.17.0.2", "bridge"),
        ];
        let error = check_shared_network("lgtm", &fell_back).unwrap_err();
        assert!(
            error.to_string().contains(
                "lgtm-remote's node (172.17.0.2) is not on network `lgtm` (attached to: bridge (172.17.0.2))"
            ),
            "{error}"
        );
        let split = [
            node("lgtm-central", "192.168.49.2", "lgtm"),
            node("lgtm-remote", "192.168.58.3", "lgtm"),
        ];
        assert!(matches!(
            check_shared_network("lgtm", &split),
            Err(NetworkError::Subnets { .. })
        ));
    }

    #[test]
    fn keeps_and_forgets_the_static_ip() {
        let state = tempfile::tempdir().unwrap();
        assert_eq!(kept_static_ip(state.path(), "lgtm-remote").unwrap(), None);
        keep_static_ip(state.path(), "lgtm-remote", ip("192.168.49.3")).unwrap();
        assert_eq!(
            kept_static_ip(state.path(), "lgtm-remote").unwrap(),
            Some(ip("192.168.49.3"))
        );
        forget_static_ip(state.path(), "lgtm-remote").unwrap();
        forget_static_ip(state.path(), "lgtm-remote").unwrap();
        assert_eq!(kept_static_ip(state.path(), "lgtm-remote").unwrap(), None);
    }
}
