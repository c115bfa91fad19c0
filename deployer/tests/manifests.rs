//! Checks of the Kubernetes objects under manifests/ that need no cluster: every file parses,
//! every core object survives a trip through its k8s-openapi type (a misspelled or misplaced
//! field would be dropped), and every custom resource validates against its CRD.

mod support;

use std::path::PathBuf;

use k8s_openapi::api::{apps, batch, core, rbac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use support::repo::{documents, is_object_file, relative, upstream_dir, yaml_files};

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files();
    assert!(files.len() > 20, "found only {files:?}");
    for file in files {
        documents(&file);
    }
}

/// Every object of every manifest file, with the file it came from.
fn objects() -> Vec<(PathBuf, Value)> {
    yaml_files()
        .into_iter()
        .flat_map(|file| {
            let docs = documents(&file);
            if is_object_file(&docs) {
                docs.into_iter().map(|d| (file.clone(), d)).collect()
            } else {
                Vec::new()
            }
        })
        .collect()
}

fn round_trip<K: Serialize + DeserializeOwned>(object: &Value) -> Result<Value, String> {
    let typed: K = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// The object as its k8s-openapi type sees it, or None for kinds that are not core ones.
fn typed_round_trip(object: &Value) -> Option<Result<Value, String>> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    Some(match (api_version, kind) {
        ("v1", "Service") => round_trip::<core::v1::Service>(object),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(object),
        ("v1", "Secret") => round_trip::<core::v1::Secret>(object),
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(object),
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(object),
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(object),
        ("apps/v1", "DaemonSet") => round_trip::<apps::v1::DaemonSet>(object),
        ("batch/v1", "Job") => round_trip::<batch::v1::Job>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            round_trip::<rbac::v1::ClusterRole>(object)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object)
        }
        _ => return None,
    })
}

#[test]
fn core_objects_round_trip_through_their_types_without_losing_a_field() {
    let mut checked = 0;
    for (file, object) in objects() {
        let Some(result) = typed_round_trip(&object) else {
            continue;
        };
        let back = result.unwrap_or_else(|e| {
            panic!(
                "{}: {} does not deserialize: {e}",
                relative(&file),
                name(&object)
            )
        });
        let lost = differences(&object, &back, "");
        assert!(
            lost.is_empty(),
            "{}: {} lost or changed fields on the way through its type (misspelled?): {lost:?}",
            relative(&file),
            name(&object)
        );
        checked += 1;
    }
    assert!(checked >= 15, "checked only {checked} core objects");
}

#[test]
fn every_object_kind_is_checked_one_way_or_the_other() {
    for (file, object) in objects() {
        let known = typed_round_trip(&object).is_some() || crd_schema(&object).is_some();
        assert!(
            known,
            "{}: {} is neither a core kind the tests know nor a CRD in ../shared/upstream/crds",
            relative(&file),
            name(&object)
        );
    }
}

#[test]
fn custom_resources_validate_against_their_crds() {
    let mut checked = 0;
    for (file, object) in objects() {
        let Some(schema) = crd_schema(&object) else {
            continue;
        };
        let validator = jsonschema::validator_for(&schema).expect("the CRD schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&object)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {}: {errors:#?}",
            relative(&file),
            name(&object)
        );
        let unknown = unknown_fields(&object["spec"], &schema["properties"]["spec"], "spec");
        assert!(
            unknown.is_empty(),
            "{}: {}: fields the CRD does not define (the API server would prune them): {unknown:?}",
            relative(&file),
            name(&object)
        );
        checked += 1;
    }
    assert!(checked >= 8, "checked only {checked} custom resources");
}

/// Paths where `after` differs from `before` (a field dropped, added or changed).
fn differences(before: &Value, after: &Value, at: &str) -> Vec<String> {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let path = format!("{at}.{k}");
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => differences(x, y, &path),
                        _ => vec![path],
                    }
                })
                .collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .flat_map(|(i, (x, y))| differences(x, y, &format!("{at}[{i}]")))
            .collect(),
        (a, b) if a == b => Vec::new(),
        _ => vec![at.to_string()],
    }
}

/// Fields of `value` that a structural schema does not define (unless it keeps unknown fields).
fn unknown_fields(value: &Value, schema: &Value, at: &str) -> Vec<String> {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return Vec::new();
    }
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            map.iter()
                .flat_map(|(key, child)| {
                    let path = format!("{at}.{key}");
                    match properties.and_then(|p| p.get(key)) {
                        Some(child_schema) => unknown_fields(child, child_schema, &path),
                        None if additional.is_object() => unknown_fields(child, additional, &path),
                        None if properties.is_some() => vec![path],
                        None => Vec::new(),
                    }
                })
                .collect()
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| unknown_fields(item, &schema["items"], &format!("{at}[{i}]")))
            .collect(),
        _ => Vec::new(),
    }
}

/// The openAPIV3Schema of the object's kind and version from ../shared/upstream/crds.
fn crd_schema(object: &Value) -> Option<Value> {
    let (group, version) = object["apiVersion"].as_str()?.split_once('/')?;
    let kind = object["kind"].as_str()?;
    let crds_dir = upstream_dir().join("crds");
    for file in support::repo::files_under(&crds_dir, &["yaml"]) {
        for crd in documents(&file) {
            if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
                continue;
            }
            let versions = crd["spec"]["versions"].as_array()?;
            return versions
                .iter()
                .find(|v| v["name"] == version)
                .map(|v| v["schema"]["openAPIV3Schema"].clone());
        }
    }
    None
}

fn name(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}
