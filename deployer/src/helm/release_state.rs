//! What is deployed: `helm list` and `helm get values` (helm >= 3.16, and helm 4) as data, and
//! whether a release needs `helm upgrade --install` ([`Drift`]). `helm upgrade` always makes a new
//! revision and re-applies every object, so skipping it when nothing differs is what makes a
//! second `deployer all` fast and truthful.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::HelmRelease;
use crate::tools::{CommandSpec, Tool};

/// The release's latest revision, if it is deployed, failed or pending. Listing the states
/// explicitly gives the same answer on helm 3 (which lists deployed and failed by default) and
/// helm 4 (which lists all by default and has no `--all`). An uninstalled release is not
/// listed, and is installed again.
pub fn list_release(release: &HelmRelease, kube_context: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Helm,
        [
            "list",
            "--namespace",
            &release.namespace,
            "--kube-context",
            kube_context,
            "--filter",
            &format!("^{}$", release.name.replace('.', "\\.")),
            "--deployed",
            "--failed",
            "--pending",
            "--output",
            "json",
        ],
        format!("look up release {} in {kube_context}", release.name),
    )
    .timeout(Duration::from_secs(120))
    .hint(format!(
        "is the {kube_context} cluster running? see `minikube status -p {kube_context}`"
    ))
}

/// The user-supplied values helm stored with the release. They may hold secrets (the issuer
/// key is passed with --set-file), so the output is only compared, never printed or logged.
pub fn get_values(release: &HelmRelease, kube_context: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Helm,
        [
            "get",
            "values",
            &release.name,
            "--namespace",
            &release.namespace,
            "--kube-context",
            kube_context,
            "--output",
            "json",
        ],
        format!(
            "read the values of release {} in {kube_context}",
            release.name
        ),
    )
    .timeout(Duration::from_secs(120))
    .hint(format!(
        "see `helm status {} -n {} --kube-context {kube_context}`",
        release.name, release.namespace
    ))
}

/// One entry of `helm list --output json` (the same fields in helm 3 and 4).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ListedRelease {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub revision: String,
    /// deployed, failed, pending-install, pending-upgrade, pending-rollback, ...
    pub status: String,
    /// `<chart name>-<chart version>`.
    pub chart: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`helm {command} --output json` printed something the deployer cannot read: {message}")]
pub struct HelmOutputError {
    pub command: &'static str,
    /// serde's message: where parsing stopped, never the output itself (it may hold secrets).
    pub message: String,
}

pub fn parse_list(stdout: &str) -> Result<Vec<ListedRelease>, HelmOutputError> {
    serde_json::from_str(stdout.trim()).map_err(|e| HelmOutputError {
        command: "list",
        message: e.to_string(),
    })
}

/// A release without user-supplied values prints `null`.
pub fn parse_values(stdout: &str) -> Result<Value, HelmOutputError> {
    let values: Value = serde_json::from_str(stdout.trim()).map_err(|e| HelmOutputError {
        command: "get values",
        message: e.to_string(),
    })?;
    Ok(if values.is_null() {
        Value::Object(Default::default())
    } else {
        values
    })
}

/// Why a release needs `helm upgrade --install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    NotInstalled,
    /// failed or pending-*: upgrading is how helm recovers a failed release, and a pending one
    /// is left by an interrupted run; helm itself refuses if another operation really runs.
    NotDeployed {
        status: String,
    },
    ChartVersion {
        deployed: String,
        wanted: String,
    },
    /// The dotted keys whose values differ (never the values: they may be secrets).
    Values {
        keys: Vec<String>,
    },
    /// The desired values could not be worked out exactly, so they are applied.
    ValuesUnknown {
        reason: String,
    },
}

/// How many differing keys a progress line names.
const KEYS_SHOWN: usize = 5;

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::NotInstalled => f.write_str("installed"),
            Drift::NotDeployed { status } => write!(f, "upgraded (release was {status})"),
            Drift::ChartVersion { deployed, wanted } => {
                write!(f, "upgraded (chart version {deployed} -> {wanted})")
            }
            Drift::Values { keys } => {
                let shown: Vec<&str> = keys.iter().take(KEYS_SHOWN).map(String::as_str).collect();
                let more = keys.len().saturating_sub(KEYS_SHOWN);
                write!(f, "upgraded (values differ at {}", shown.join(", "))?;
                if more > 0 {
                    write!(f, " and {more} more")?;
                }
                f.write_str(")")
            }
            Drift::ValuesUnknown { reason } => write!(f, "upgraded ({reason})"),
        }
    }
}

/// What `helm list` alone decides: None when the release is deployed with the wanted chart
/// version (its values are compared next).
pub fn drift_from_list(release: &HelmRelease, listed: &[ListedRelease]) -> Option<Drift> {
    let Some(deployed) = listed
        .iter()
        .find(|r| r.name == release.name && r.namespace == release.namespace)
    else {
        return Some(Drift::NotInstalled);
    };
    if deployed.status != "deployed" {
        return Some(Drift::NotDeployed {
            status: deployed.status.clone(),
        });
    }
    let deployed_version = deployed
        .chart
        .strip_prefix(release.chart_name())
        .and_then(|rest| rest.strip_prefix('-'));
    match deployed_version {
        Some(version) if same_version(version, &release.version) => None,
        _ => Some(Drift::ChartVersion {
            deployed: deployed.chart.clone(),
            wanted: format!("{}-{}", release.chart_name(), release.version),
        }),
    }
}

/// `--version 1.2.3` installs a chart whose own version is `v1.2.3` (cert-manager's style), so
/// a leading `v` does not count.
fn same_version(a: &str, b: &str) -> bool {
    a.trim_start_matches('v') == b.trim_start_matches('v')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What helm 4.1 prints for `helm list --output json` (pkg/cmd/list.go releaseElement).
    const LISTED: &str = r#"[{"name":"mimir","namespace":"mimir","revision":"3","updated":"2026-11-27 20:01:02.123456 +0000 UTC","status":"deployed","chart":"mimir-distributed-6.1.0","app_version":"3.0.0"}]"#;

    fn mimir(version: &str) -> HelmRelease {
        HelmRelease::new("mimir", "mimir", "grafana/mimir-distributed", version)
    }

    #[test]
    fn reads_the_list_and_decides_from_status_and_chart() {
        let listed = parse_list(LISTED).unwrap();
        assert_eq!(drift_from_list(&mimir("6.1.0"), &listed), None);
        assert_eq!(
            drift_from_list(&mimir("6.2.0"), &listed),
            Some(Drift::ChartVersion {
                deployed: "mimir-distributed-6.1.0".into(),
                wanted: "mimir-distributed-6.2.0".into()
            })
        );
        let failed = LISTED.replace("\"deployed\"", "\"failed\"");
        assert_eq!(
            drift_from_list(&mimir("6.1.0"), &parse_list(&failed).unwrap()),
            Some(Drift::NotDeployed {
                status: "failed".into()
            })
        );
        assert_eq!(
            drift_from_list(&mimir("6.1.0"), &parse_list("[]").unwrap()),
            Some(Drift::NotInstalled)
        );
        assert!(parse_list("Error: oops").is_err());
    }

    #[test]
    fn a_leading_v_is_the_same_version() {
        let listed = parse_list(
            r#"[{"name":"cert-manager","namespace":"cert-manager","revision":"1","status":"deployed","chart":"cert-manager-v1.21.1","app_version":"v1.21.1"}]"#,
        )
        .unwrap();
        let release = HelmRelease::new(
            "cert-manager",
            "cert-manager",
            "jetstack/cert-manager",
            "v1.21.1",
        );
        assert_eq!(drift_from_list(&release, &listed), None);
    }

    #[test]
    fn values_may_be_null() {
        assert_eq!(parse_values("null\n").unwrap(), serde_json::json!({}));
        let error = parse_values("{\"secret\": \"hunter2\"").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn says_what_differed_without_values() {
        let keys = (1..=7).map(|i| format!("k{i}")).collect();
        assert_eq!(
            Drift::Values { keys }.to_string(),
            "upgraded (values differ at k1, k2, k3, k4, k5 and 2 more)"
        );
    }

    #[test]
    fn builds_the_commands() {
        assert_eq!(
            list_release(&mimir("6.1.0"), "lgtm-central").to_string(),
            "helm list --namespace mimir --kube-context lgtm-central --filter '^mimir$' \
             --deployed --failed --pending --output json"
        );
        assert_eq!(
            get_values(&mimir("6.1.0"), "lgtm-central").to_string(),
            "helm get values mimir --namespace mimir --kube-context lgtm-central --output json"
        );
    }
}
