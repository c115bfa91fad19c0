//! Every values file sets only keys the pinned chart has (its values.yaml and its subcharts'),
//! except under keys the chart documents as free-form; charts that ship a values.schema.json
//! accept the defaults with our values merged in. The chart and version of each values file come
//! from the stack itself, so the check follows manifests/charts.yaml.

mod support;

use std::path::{Path, PathBuf};

use clap::Parser;
use deployer::settings::Settings;
use deployer::stack::Stack;
use serde_json::{Map, Value};
use support::repo::{relative, repo_root, single_document, upstream_dir};

/// Keys a chart documents as free-form although its values.yaml does not list them (or lists them
/// only in a comment). Keys whose default is `{}`, `[]`, a scalar or null are free-form already.
const DOCUMENTED_FREE_FORM: &[(&str, &str)] = &[
    // Listed in a comment above `loki.storage.type` ("bucketNames: chunks, ruler").
    ("loki", "loki.storage.bucketNames"),
    // Rendered with toYaml into the s3 block of tempo.yaml by the chart's `config` template.
    ("tempo-distributed", "storage.trace.s3"),
    // The grafana subchart shows `# ingressClassName: nginx` under ingress.
    ("kube-prometheus-stack", "grafana.ingress.ingressClassName"),
    // linkerd-control-plane documents these in comments ("#destinationResources:" ...) and its
    // templates read them (destination.yaml, identity.yaml, proxy-injector.yaml, heartbeat.yaml).
    ("linkerd-control-plane", "destinationResources"),
    ("linkerd-control-plane", "spValidatorResources"),
    ("linkerd-control-plane", "identityResources"),
    ("linkerd-control-plane", "proxyInjectorResources"),
    ("linkerd-control-plane", "heartbeatResources"),
    // mimir-distributed's defaults list only `requests`; each component's template writes the
    // whole `resources` block with toYaml, so `limits` beside it reaches the container (the
    // rendered record in manifests/rendered shows them).
    ("mimir-distributed", "distributor.resources.limits"),
    ("mimir-distributed", "ingester.resources.limits"),
    ("mimir-distributed", "store_gateway.resources.limits"),
    ("mimir-distributed", "querier.resources.limits"),
    ("mimir-distributed", "query_frontend.resources.limits"),
    ("mimir-distributed", "query_scheduler.resources.limits"),
    ("mimir-distributed", "compactor.resources.limits"),
];

struct ValuesFile {
    path: PathBuf,
    chart: String,
    version: String,
}

fn values_files() -> Vec<ValuesFile> {
    let cli = deployer::Cli::parse_from(["deployer", "all"]);
    let stack = Stack::current(&Settings::from_args(&cli.global));
    let mut files = Vec::new();
    for cluster in [&stack.central, &stack.remote] {
        for release in cluster.releases() {
            let chart = release.chart.split_once('/').unwrap().1.to_string();
            for path in &release.values_files {
                files.push(ValuesFile {
                    path: repo_root().join(path),
                    chart: chart.clone(),
                    version: release.version.clone(),
                });
            }
        }
    }
    files
}

fn chart_dir(chart: &str, version: &str) -> PathBuf {
    let dir = upstream_dir()
        .join("charts")
        .join(format!("{chart}-{version}"));
    assert!(
        dir.join("values.yaml").exists(),
        "no upstream defaults for {chart} {version} in {}: pin a version whose values.yaml is there",
        dir.display()
    );
    dir
}

/// The chart's defaults with each subchart's defaults under its key (merged with what the parent
/// sets there), as helm sees them.
fn defaults_with_subcharts(dir: &Path) -> Value {
    let mut defaults = single_document(&dir.join("values.yaml"));
    let subcharts = dir.join("subcharts");
    if let Ok(entries) = std::fs::read_dir(&subcharts) {
        for entry in entries {
            let path = entry.unwrap().path();
            let key = path.file_name().unwrap().to_string_lossy().to_string();
            let values = path.join("values.yaml");
            if !values.exists() || std::fs::metadata(&values).unwrap().len() == 0 {
                continue;
            }
            let mut merged = single_document(&values);
            if let Some(parent) = defaults.get(&key) {
                merge(&mut merged, parent);
            }
            if let Some(global) = merged.get("global").cloned() {
                let mut parent_global = defaults.get("global").cloned().unwrap_or(Value::Null);
                merge(&mut parent_global, &global);
                defaults["global"] = parent_global;
            }
            defaults[key.as_str()] = merged;
        }
    }
    defaults
}

/// `overlay` into `base`, maps merged key by key, anything else replaced (helm's rule).
fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

fn unknown_keys(chart: &str, ours: &Map<String, Value>, defaults: &Value, at: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    for (key, value) in ours {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        if DOCUMENTED_FREE_FORM.contains(&(chart, path.as_str())) {
            continue;
        }
        match (defaults.get(key), value) {
            (None, _) => unknown.push(path),
            (Some(Value::Object(default)), Value::Object(ours)) if !default.is_empty() => {
                unknown.extend(unknown_keys(chart, ours, &defaults[key.as_str()], &path));
            }
            // A scalar, list, null or empty map default: the value is ours to choose.
            _ => {}
        }
    }
    unknown
}

#[test]
fn values_files_set_only_keys_the_pinned_charts_have() {
    let files = values_files();
    assert!(files.len() >= 17, "{} values files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let defaults = defaults_with_subcharts(&chart_dir(&file.chart, &file.version));
        let ours = single_document(&file.path);
        let ours = ours.as_object().cloned().unwrap_or_default();
        for key in unknown_keys(&file.chart, &ours, &defaults, "") {
            problems.push(format!(
                "{}: `{key}` is not a key of {} {}",
                relative(&file.path),
                file.chart,
                file.version
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn charts_with_a_values_schema_accept_our_values() {
    let mut checked = 0;
    for file in values_files() {
        let dir = chart_dir(&file.chart, &file.version);
        let schema_path = dir.join("values.schema.json");
        let Ok(text) = std::fs::read_to_string(&schema_path) else {
            continue;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the chart's schema compiles");
        let mut values = single_document(&dir.join("values.yaml"));
        merge(&mut values, &single_document(&file.path));
        let errors: Vec<String> = validator
            .iter_errors(&values)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} against {}: {errors:#?}",
            relative(&file.path),
            schema_path.display()
        );
        checked += 1;
    }
    assert!(checked >= 3, "checked {checked} files against a schema");
}

#[test]
fn the_check_finds_a_misspelled_key() {
    let defaults = serde_json::json!({"a": {"b": 1, "free": {}}, "list": []});
    let ours = serde_json::json!({"a": {"bb": 1, "free": {"x": 1}}, "list": [1]});
    assert_eq!(
        unknown_keys("x", ours.as_object().unwrap(), &defaults, ""),
        ["a.bb"]
    );
}
