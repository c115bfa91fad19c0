//! linkerd CLI commands as data.

use std::time::Duration;

use crate::settings::ClusterSpec;
use crate::tools::{CommandSpec, Tool};

/// The multicluster gateway that `link-gen` reads its address from (its `--gateway-name` and
/// `--gateway-namespace` defaults in multicluster/cmd/link-gen.go).
pub const GATEWAY_SERVICE: &str = "linkerd-gateway";
pub const GATEWAY_NAMESPACE: &str = "linkerd-multicluster";

/// The port minikube's API server listens on inside the shared network.
pub const API_SERVER_PORT: u16 = 8443;

/// Prints the Link (and its credentials) that lets another cluster mirror `target`'s exported
/// services. The address must be reachable from the other cluster: the node IP on the shared
/// minikube network, not the host-forwarded one in the kubeconfig.
pub fn link_gen(target: &ClusterSpec, target_node_ip: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Linkerd,
        [
            "--context",
            target.context(),
            "multicluster",
            "link-gen",
            "--cluster-name",
            &target.profile,
            "--api-server-address",
            &format!("https://{target_node_ip}:{API_SERVER_PORT}"),
        ],
        format!("generate the link to {}", target.profile),
    )
    .timeout(Duration::from_secs(120))
    .hint(format!(
        "linkerd-multicluster must run in {0}; see `linkerd --context {0} multicluster check`",
        target.profile
    ))
}
