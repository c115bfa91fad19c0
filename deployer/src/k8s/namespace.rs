//! Namespaces, meshed by default: Linkerd injects its proxy into every pod of an annotated namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::ObjectMeta;

use super::KubeError;
use super::apply::{Applied, apply_typed};

pub const INJECT_ANNOTATION: &str = "linkerd.io/inject";

pub fn meshed_namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(BTreeMap::from([(
                INJECT_ANNOTATION.to_string(),
                "enabled".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

pub async fn ensure_namespace(client: &Client, name: &str) -> Result<Applied, KubeError> {
    apply_typed(client, &meshed_namespace(name), "default").await
}
