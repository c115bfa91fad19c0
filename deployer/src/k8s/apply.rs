//! Server-side apply with the deployer's field manager. Every object goes through
//! [`apply_object`]: its kind is resolved by discovery, so any manifest (CRDs' objects included)
//! can be applied without compiled-in types.

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::{FIELD_MANAGER, KubeError};

/// What an apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Changed,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: Change,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Splits multi-document YAML into objects; empty documents are skipped.
pub fn parse_documents(yaml: &str) -> Result<Vec<DynamicObject>, KubeError> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| KubeError::Manifest {
            index: 0,
            reason: e.to_string(),
        })?;
    documents
        .into_iter()
        .filter(|d| !d.is_null())
        .enumerate()
        .map(|(index, document)| {
            let object: DynamicObject =
                serde_json::from_value(document).map_err(|e| KubeError::Manifest {
                    index,
                    reason: e.to_string(),
                })?;
            if object.types.is_none() || object.metadata.name.is_none() {
                return Err(KubeError::Manifest {
                    index,
                    reason: "apiVersion, kind and metadata.name are required".to_string(),
                });
            }
            Ok(object)
        })
        .collect()
}

/// The names of the Jobs in `yaml`, as `namespace/name` (`default_namespace` for those that name
/// none): what the manifest step waits for.
pub fn job_names(yaml: &str) -> Vec<String> {
    parse_documents(yaml)
        .unwrap_or_default()
        .iter()
        .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "Job"))
        .map(|o| match &o.metadata.namespace {
            Some(namespace) => format!("{namespace}/{}", o.name_any()),
            None => o.name_any(),
        })
        .collect()
}

/// Applies every document of `yaml`, in order; namespaced objects without a namespace go to
/// `default_namespace`.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    default_namespace: &str,
) -> Result<Vec<Applied>, KubeError> {
    let mut applied = Vec::new();
    for object in parse_documents(yaml)? {
        applied.push(apply_object(client, object, default_namespace).await?);
    }
    Ok(applied)
}

/// Applies a typed object (a k8s-openapi struct) through the same path as YAML.
pub async fn apply_typed<K: Serialize>(
    client: &Client,
    object: &K,
    default_namespace: &str,
) -> Result<Applied, KubeError> {
    let value = serde_json::to_value(object).map_err(|e| KubeError::Manifest {
        index: 0,
        reason: e.to_string(),
    })?;
    let object: DynamicObject = serde_json::from_value(value).map_err(|e| KubeError::Manifest {
        index: 0,
        reason: e.to_string(),
    })?;
    apply_object(client, object, default_namespace).await
}

pub async fn apply_object(
    client: &Client,
    mut object: DynamicObject,
    default_namespace: &str,
) -> Result<Applied, KubeError> {
    let types = object.types.clone().ok_or_else(|| KubeError::Manifest {
        index: 0,
        reason: "apiVersion and kind are required".to_string(),
    })?;
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| KubeError::Manifest {
        index: 0,
        reason: e.to_string(),
    })?;
    let name = object.name_any();
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(KubeError::api(format!("look up kind {}", types.kind)))?;
    let (api, namespace): (Api<DynamicObject>, Option<String>) =
        if capabilities.scope == Scope::Namespaced {
            let namespace = object
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_string());
            object.metadata.namespace = Some(namespace.clone());
            (
                Api::namespaced_with(client.clone(), &namespace, &resource),
                Some(namespace),
            )
        } else {
            (Api::all_with(client.clone(), &resource), None)
        };
    let described = Applied {
        kind: types.kind.clone(),
        namespace,
        name: name.clone(),
        change: Change::Unchanged,
    };
    let before = api
        .get_opt(&name)
        .await
        .map_err(KubeError::api(format!("read {described}")))?;
    // force: the deployer owns what it applies, even fields another manager set before
    // (e.g. the metallb addon's placeholder ConfigMap).
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let after = api
        .patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(KubeError::api(format!("apply {described}")))?;
    let change = match before {
        None => Change::Created,
        Some(old) if old.resource_version() == after.resource_version() => Change::Unchanged,
        Some(_) => Change::Changed,
    };
    tracing::info!(object = %described, ?change, "applied");
    Ok(Applied {
        change,
        ..described
    })
}

/// Sums up a list of applies for a step's outcome line.
pub fn summarize(applied: &[Applied]) -> (bool, String) {
    let changed: Vec<String> = applied
        .iter()
        .filter(|a| a.change != Change::Unchanged)
        .map(|a| {
            format!(
                "{a} {}",
                if a.change == Change::Created {
                    "created"
                } else {
                    "changed"
                }
            )
        })
        .collect();
    if changed.is_empty() {
        (false, format!("{} object(s) unchanged", applied.len()))
    } else {
        (true, changed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_yaml() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n  namespace: x\n";
        let objects = parse_documents(yaml).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].metadata.namespace.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_objects_without_kind() {
        let err = parse_documents("metadata:\n  name: a\n").unwrap_err();
        assert!(matches!(err, KubeError::Manifest { index: 0, .. }), "{err}");
    }
}
