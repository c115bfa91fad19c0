//! Labels on existing objects, e.g. `mirror.linkerd.io/exported=true` on a chart's service.
//! A merge patch touches only the labels, leaving ownership of everything else alone.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};

use super::{FIELD_MANAGER, KubeError};

pub async fn add_labels(
    client: &Client,
    gvk: &GroupVersionKind,
    namespace: Option<&str>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), KubeError> {
    let what = format!("{} {name}", gvk.kind);
    let (resource, capabilities) = discovery::pinned_kind(client, gvk)
        .await
        .map_err(KubeError::api(format!("look up kind {}", gvk.kind)))?;
    let api: Api<DynamicObject> = match (capabilities.scope, namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    let patch = serde_json::json!({ "metadata": { "labels": labels } });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api(format!("label {what}")))?;
    Ok(())
}
