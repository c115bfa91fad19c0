//! linkerd CLI commands as data.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;

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

/// link-gen copies the target cluster's kubeconfig entry into the credentials Secret, minikube's
/// `extensions` included, whose `last-update` timestamp minikube rewrites on every start
/// (multicluster/cmd/link-gen.go `getKubeconfig` keeps the loaded cluster entry as it is). That
/// line is dropped, so the Secret is the same on every run; nothing reads it.
pub fn without_last_update(objects: Vec<DynamicObject>) -> Vec<DynamicObject> {
    objects.into_iter().map(drop_last_update).collect()
}

fn drop_last_update(object: DynamicObject) -> DynamicObject {
    let is_secret = object.types.as_ref().is_some_and(|t| t.kind == "Secret");
    let Some(mut secret) = is_secret
        .then(|| serde_json::to_value(&object).ok())
        .flatten()
        .and_then(|v| serde_json::from_value::<Secret>(v).ok())
    else {
        return object;
    };
    let Some(ByteString(kubeconfig)) = secret.data.as_mut().and_then(|d| d.get_mut("kubeconfig"))
    else {
        return object;
    };
    let text = String::from_utf8_lossy(kubeconfig);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("last-update:"))
        .collect();
    *kubeconfig = format!("{}\n", kept.join("\n")).into_bytes();
    serde_json::to_value(&secret)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A credentials Secret as link-gen prints it (kubeconfig as minikube wrote it, base64).
    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-credentials-lgtm-central\n  namespace: linkerd-multicluster\ntype: mirror.linkerd.io/remote-kubeconfig\ndata:\n  kubeconfig: YXBpVmVyc2lvbjogdjEKY2x1c3RlcnM6Ci0gY2x1c3RlcjoKICAgIGV4dGVuc2lvbnM6CiAgICAtIGV4dGVuc2lvbjoKICAgICAgICBsYXN0LXVwZGF0ZTogU3VuLCAyOSBOb3YgMjAyNiAyMDowMDowMCBVVEMKICAgICAgICBwcm92aWRlcjogbWluaWt1YmUuc2lncy5rOHMuaW8KICAgICAgbmFtZTogY2x1c3Rlcl9pbmZvCiAgICBzZXJ2ZXI6IGh0dHBzOi8vMTkyLjE2OC40OS4yOjg0NDMKICBuYW1lOiBsZ3RtLWNlbnRyYWwK\n";

    fn kubeconfig(objects: &[DynamicObject]) -> String {
        let secret: Secret =
            serde_json::from_value(serde_json::to_value(&objects[0]).unwrap()).unwrap();
        String::from_utf8(secret.data.unwrap()["kubeconfig"].0.clone()).unwrap()
    }

    #[test]
    fn drops_minikubes_timestamp_from_the_credentials_only() {
        let objects = crate::k8s::apply::parse_documents(SECRET).unwrap();
        assert!(kubeconfig(&objects).contains("last-update: Sun, 29 Nov 2026"));
        let cleaned = without_last_update(objects);
        let text = kubeconfig(&cleaned);
        assert!(!text.contains("last-update"), "{text}");
        assert!(text.contains("provider: minikube.sigs.k8s.io"), "{text}");
        assert!(text.contains("server: https://192.168.49.2:8443"), "{text}");
        assert_eq!(
            cleaned[0].metadata.name.as_deref(),
            Some("cluster-credentials-lgtm-central")
        );
        let link = "apiVersion: multicluster.linkerd.io/v1alpha3\nkind: Link\nmetadata:\n  name: lgtm-central\nspec:\n  gatewayAddress: 192.168.49.202\n";
        let objects = crate::k8s::apply::parse_documents(link).unwrap();
        assert_eq!(without_last_update(objects.clone()), objects);
    }
}
