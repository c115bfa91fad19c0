//! Secrets with generated values (see [`crate::stack::GeneratedSecret`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use crate::stack::{GeneratedSecret, SecretValue};

/// The Secret, each generated value looked up through `credential` (which makes it when needed;
/// the dry run passes a function that only describes it).
pub fn generated_secret<E>(
    secret: &GeneratedSecret,
    mut credential: impl FnMut(&str) -> Result<String, E>,
) -> Result<Secret, E> {
    let mut data = BTreeMap::new();
    for entry in &secret.entries {
        let value = match &entry.value {
            SecretValue::Fixed(value) => value.clone(),
            SecretValue::Generated(name) => credential(name)?,
        };
        data.insert(entry.key.clone(), value);
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(secret.name.clone()),
            namespace: Some(secret.namespace.clone()),
            ..ObjectMeta::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Secret::default()
    })
}
