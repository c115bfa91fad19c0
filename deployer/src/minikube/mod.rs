//! minikube commands as data, and reading their answers. Images: the `image` submodule.

mod image;
pub mod network;
pub mod rules;

pub use image::{ImageListError, image_build, image_id, image_list, image_load, image_save};

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{ClusterSpec, Settings};
use crate::tools::{CommandSpec, Tool};

/// The addons every cluster gets: metrics-server for `kubectl top`/HPA, metallb for LoadBalancer IPs.
/// Passed as one `--addons` flag each, the form minikube's addon list flag always accepts.
pub const ADDONS: [&str; 2] = ["metrics-server", "metallb"];

/// `minikube start` for a profile that does not run. `static_ip` is given to a profile that joins
/// a network another profile is already on: minikube would otherwise give it the network's
/// gateway + 1 as well (pkg/drivers/kic/kic.go) and fail with "can't create with that IP, address
/// already in use".
pub fn start(cluster: &ClusterSpec, settings: &Settings, static_ip: Option<&str>) -> CommandSpec {
    let mut args = vec![
        "start".to_string(),
        "-p".to_string(),
        cluster.profile.clone(),
        format!("--driver={}", settings.driver),
        format!("--kubernetes-version={}", settings.kubernetes_version),
        format!("--cpus={}", cluster.cpus),
        format!("--memory={}", cluster.memory),
        format!("--disk-size={}", cluster.disk_size),
        format!("--dns-domain={}", cluster.domain),
        format!("--network={}", settings.network),
    ];
    if let Some(ip) = static_ip {
        args.push(format!("--static-ip={ip}"));
    }
    args.push("--container-runtime=containerd".to_string());
    args.extend(ADDONS.iter().map(|addon| format!("--addons={addon}")));
    args.push("--embed-certs".to_string());
    CommandSpec::new(Tool::Minikube, args, format!("start the {} cluster", cluster.profile))
        .timeout(settings.start_timeout)
        .hint(format!(
            "see `minikube logs -p {0}`; if the profile is broken, `minikube delete -p {0}` and run again \
             (check that {1} has {2} CPUs and {3} of memory to give)",
            cluster.profile, settings.driver, cluster.cpus, cluster.memory
        ))
}

/// Exits non-zero for a stopped or missing profile, which is an answer here.
pub fn status(profile: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        ["status", "-p", profile, "-o", "json"],
        format!("check whether {profile} runs"),
    )
    .allow_failure()
    .timeout(Duration::from_secs(60))
}

pub fn ip(profile: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        ["ip", "-p", profile],
        format!("read the node IP of {profile}"),
    )
    .timeout(Duration::from_secs(60))
    .hint(format!(
        "is the {profile} cluster running? see `minikube status -p {profile}`"
    ))
}

/// Server-side apply of a manifest by URL with minikube's own kubectl (downloaded by minikube on
/// first use, matching the cluster's version).
pub fn apply_url(profile: &str, url: &str) -> CommandSpec {
    server_side_kubectl(profile, "apply", url, format!("apply {url} to {profile}"))
        .hint(format!("check that {url} is reachable from this machine"))
}

/// What a server-side apply of the manifest at `url` would change, by kubectl's exit status (which
/// `minikube kubectl` passes on): 0 nothing, 1 something, above 1 kubectl or its `diff` program
/// failed. It downloads the manifest once more, which is cheaper than re-applying CRDs.
pub fn diff_url(profile: &str, url: &str) -> CommandSpec {
    server_side_kubectl(
        profile,
        "diff",
        url,
        format!("compare {url} with what {profile} has"),
    )
    .allow_failure()
}

/// `minikube -p P kubectl -- --context=P <verb> --server-side --field-manager=lgtm-deployer -f
/// URL`. minikube's kubectl uses the kubeconfig's current context unless told, and that may be
/// the other cluster.
fn server_side_kubectl(profile: &str, verb: &str, url: &str, summary: String) -> CommandSpec {
    let context = format!("--context={profile}");
    CommandSpec::new(
        Tool::Minikube,
        [
            "-p",
            profile,
            "kubectl",
            "--",
            &context,
            verb,
            "--server-side",
            "--field-manager=lgtm-deployer",
            "-f",
            url,
        ],
        summary,
    )
    .timeout(Duration::from_secs(300))
}

pub fn delete(profile: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        ["delete", "-p", profile],
        format!("delete the {profile} cluster"),
    )
    .timeout(Duration::from_secs(300))
}

/// One node of `minikube status -o json` (a single object, or a list for multi-node profiles).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub kubelet: String,
    #[serde(rename = "APIServer", default)]
    pub api_server: String,
}

impl NodeStatus {
    fn running(&self) -> bool {
        self.host == "Running" && self.kubelet == "Running"
    }
}

/// True when every node's host and kubelet run and the control plane's API server runs.
/// Anything unreadable (a missing profile prints no JSON) counts as not running.
pub fn is_running(status_json: &str) -> bool {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(NodeStatus),
        Many(Vec<NodeStatus>),
    }
    let nodes = match serde_json::from_str::<OneOrMany>(status_json.trim()) {
        Ok(OneOrMany::One(node)) => vec![node],
        Ok(OneOrMany::Many(nodes)) => nodes,
        Err(_) => return false,
    };
    !nodes.is_empty()
        && nodes.iter().all(NodeStatus::running)
        && nodes.first().is_some_and(|n| n.api_server == "Running")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`minikube ip` printed `{0}`, not an IPv4 address")]
pub struct NotAnIp(pub String);

pub fn parse_ip(stdout: &str) -> Result<Ipv4Addr, NotAnIp> {
    // minikube may print warnings before the address; the address is the last line.
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    line.trim()
        .parse()
        .map_err(|_| NotAnIp(stdout.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status() {
        let running = r#"{"Name":"lgtm-central","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#;
        assert!(is_running(running));
        let stopped = r#"{"Name":"lgtm-central","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped"}"#;
        assert!(!is_running(stopped));
        assert!(!is_running(""));
        let many = format!("[{running},{running}]");
        assert!(is_running(&many));
    }

    #[test]
    fn reads_ip() {
        assert_eq!(
            parse_ip("! a warning\n192.168.49.2\n"),
            Ok(Ipv4Addr::new(192, 168, 49, 2))
        );
        assert!(parse_ip("oops").is_err());
    }
}
