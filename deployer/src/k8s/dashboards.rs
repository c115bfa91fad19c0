//! The ConfigMap that carries the Grafana dashboards (see [`crate::stack::Dashboards`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;

use crate::stack::Dashboards;

/// The label kube-prometheus-stack's Grafana sidecar watches (`grafana.sidecar.dashboards.label`).
pub const SIDECAR_LABEL: (&str, &str) = ("grafana_dashboard", "1");

/// The dashboard files of the folder, sorted, so the ConfigMap is the same on every run.
pub fn dashboard_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The ConfigMap with one key per file, each value from `contents`.
pub fn config_map<E>(
    dashboards: &Dashboards,
    files: &[PathBuf],
    mut contents: impl FnMut(&Path) -> Result<String, E>,
) -> Result<ConfigMap, E> {
    let mut data = BTreeMap::new();
    for file in files {
        let key = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        data.insert(key, contents(file)?);
    }
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(dashboards.name.clone()),
            namespace: Some(dashboards.namespace.clone()),
            labels: Some(BTreeMap::from([(
                SIDECAR_LABEL.0.to_string(),
                SIDECAR_LABEL.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    })
}
