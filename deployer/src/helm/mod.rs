//! helm commands as data: chart repositories and releases with pinned versions.
//!
//! The stack (issue 6) describes its charts as [`HelmRepo`] and [`HelmRelease`] values; the plan turns
//! them into steps, and these functions into command lines. What is deployed and whether it
//! differs: [`release_state`]; the values helm would store for a release: [`values`].

pub mod release_state;
pub mod values;

pub use release_state::{
    Drift, HelmOutputError, ListedRelease, drift_from_list, get_values, list_release, parse_list,
    parse_values,
};
pub use values::{ValuesError, desired_values, differences};

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::format_duration;
use crate::tools::{CommandSpec, Tool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRepo {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    /// `<repo>/<chart>`, the repo being one of the plan's [`HelmRepo`]s.
    pub chart: String,
    /// Always pinned: a re-run must install what the first run installed.
    pub version: String,
    pub values_files: Vec<PathBuf>,
    pub set: Vec<(String, String)>,
    pub set_file: Vec<(String, PathBuf)>,
    pub wait: bool,
    /// None: the deployer's --wait-timeout.
    pub timeout: Option<Duration>,
    /// `--take-ownership` (helm >= 3.17): adopt objects that exist without helm's ownership
    /// annotations, e.g. CRDs another chart's `crds/` folder created on an earlier run.
    pub take_ownership: bool,
}

impl HelmRelease {
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        chart: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        HelmRelease {
            name: name.into(),
            namespace: namespace.into(),
            chart: chart.into(),
            version: version.into(),
            values_files: Vec::new(),
            set: Vec::new(),
            set_file: Vec::new(),
            wait: true,
            timeout: None,
            take_ownership: false,
        }
    }

    /// The repo part of `chart`, if it names one.
    pub fn repo(&self) -> Option<&str> {
        self.chart.split_once('/').map(|(repo, _)| repo)
    }

    /// The chart's own name (`mimir-distributed` of `grafana/mimir-distributed`), which is what
    /// `helm list` shows, followed by the version.
    pub fn chart_name(&self) -> &str {
        self.chart.rsplit('/').next().unwrap_or(&self.chart)
    }
}

/// `--force-update` makes adding an existing repo a no-op, so the step can be re-run.
pub fn repo_add(repo: &HelmRepo) -> CommandSpec {
    CommandSpec::new(
        Tool::Helm,
        ["repo", "add", "--force-update", &repo.name, &repo.url],
        format!("add the {} chart repository", repo.name),
    )
    .timeout(Duration::from_secs(120))
    .hint(format!("check that {} is reachable", repo.url))
}

/// One update for all repos: each index is downloaded once per run.
pub fn repo_update(repos: &[HelmRepo]) -> CommandSpec {
    let mut args = vec!["repo".to_string(), "update".to_string()];
    args.extend(repos.iter().map(|r| r.name.clone()));
    CommandSpec::new(Tool::Helm, args, "update the chart repositories")
        .timeout(Duration::from_secs(300))
}

pub fn upgrade_install(
    release: &HelmRelease,
    kube_context: &str,
    default_timeout: Duration,
) -> CommandSpec {
    let timeout = release.timeout.unwrap_or(default_timeout);
    let mut args: Vec<String> = [
        "upgrade",
        "--install",
        &release.name,
        &release.chart,
        "--version",
        &release.version,
        "--namespace",
        &release.namespace,
        "--create-namespace",
        "--kube-context",
        kube_context,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for file in &release.values_files {
        args.push("--values".into());
        args.push(file.display().to_string());
    }
    for (key, value) in &release.set {
        args.push("--set".into());
        args.push(format!("{key}={value}"));
    }
    for (key, file) in &release.set_file {
        args.push("--set-file".into());
        args.push(format!("{key}={}", file.display()));
    }
    if release.take_ownership {
        args.push("--take-ownership".into());
    }
    if release.wait {
        args.push("--wait".into());
    }
    args.push("--timeout".into());
    args.push(format_duration(timeout));
    CommandSpec::new(
        Tool::Helm,
        args,
        format!("install or upgrade {} in {kube_context}", release.name),
    )
    // helm's own --timeout covers the wait; this only catches a hung helm.
    .timeout(timeout + Duration::from_secs(120))
    .hint(format!(
        "see `helm status {} -n {} --kube-context {kube_context}` and the pods in namespace {}",
        release.name, release.namespace, release.namespace
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_upgrade_install() {
        let mut release = HelmRelease::new(
            "linkerd-crds",
            "linkerd",
            "linkerd/linkerd-crds",
            "2026.8.3",
        );
        release
            .values_files
            .push("manifests/central/linkerd.yaml".into());
        release.set.push(("a.b".into(), "c".into()));
        release.set_file.push((
            "identityTrustAnchorsPEM".into(),
            ".lgtm-state/certs/trust-anchor.crt".into(),
        ));
        release.timeout = Some(Duration::from_secs(600));
        let command = upgrade_install(&release, "lgtm-central", Duration::from_secs(300));
        assert_eq!(
            command.to_string(),
            "helm upgrade --install linkerd-crds linkerd/linkerd-crds --version 2026.8.3 \
             --namespace linkerd --create-namespace --kube-context lgtm-central \
             --values manifests/central/linkerd.yaml --set a.b=c \
             --set-file identityTrustAnchorsPEM=.lgtm-state/certs/trust-anchor.crt --wait --timeout 600s"
        );
        assert_eq!(release.repo(), Some("linkerd"));
    }

    #[test]
    fn builds_repo_commands() {
        let repo = HelmRepo {
            name: "linkerd".into(),
            url: "https://helm.linkerd.io/edge".into(),
        };
        assert_eq!(
            repo_add(&repo).to_string(),
            "helm repo add --force-update linkerd https://helm.linkerd.io/edge"
        );
        assert_eq!(repo_update(&[repo]).to_string(), "helm repo update linkerd");
    }
}
