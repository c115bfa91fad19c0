//! The chart pins of `manifests/charts.yaml`: one file names every chart's repository and version,
//! compiled in so the deployer and the CI checks can never disagree about a version.

use serde::Deserialize;

use crate::helm::{HelmRelease, HelmRepo};

/// The pins file, as written in the repository.
pub const CHARTS_YAML: &str = include_str!("../../manifests/charts.yaml");

#[derive(Debug, Clone, Deserialize)]
pub struct ChartPins {
    pub kubernetes: KubernetesPin,
    /// Manifests published as release assets (applied by URL).
    pub releases: Vec<ReleasePin>,
    pub repos: Vec<RepoPin>,
    pub charts: Vec<ChartPin>,
}

/// The Kubernetes version the profiles are created with, and the oldest the charts accept.
#[derive(Debug, Clone, Deserialize)]
pub struct KubernetesPin {
    /// `v1.35.1`: what `minikube start --kubernetes-version` gets.
    pub version: String,
    /// `v1.32.0`: the highest `kubeVersion` floor of the pinned charts.
    pub minimum: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleasePin {
    pub name: String,
    pub version: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepoPin {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChartPin {
    pub name: String,
    pub repo: String,
    pub version: String,
}

impl ChartPins {
    /// The compiled-in pins. A broken file fails every test, so this cannot fail in a release.
    pub fn pinned() -> Self {
        serde_saphyr::from_str(CHARTS_YAML).expect("manifests/charts.yaml is valid (tested)")
    }

    pub fn chart(&self, name: &str) -> &ChartPin {
        self.charts
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("chart {name} is not pinned in manifests/charts.yaml"))
    }

    pub fn manifest_release(&self, name: &str) -> &ReleasePin {
        self.releases
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("release {name} is not pinned in manifests/charts.yaml"))
    }

    pub fn helm_repos(&self) -> Vec<HelmRepo> {
        self.repos
            .iter()
            .map(|r| HelmRepo {
                name: r.name.clone(),
                url: r.url.clone(),
            })
            .collect()
    }

    /// A release of a pinned chart, with its version from the pins.
    pub fn release(&self, name: &str, namespace: &str, chart: &str) -> HelmRelease {
        let pin = self.chart(chart);
        HelmRelease::new(
            name,
            namespace,
            format!("{}/{}", pin.repo, pin.name),
            pin.version.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_names_a_listed_repo() {
        let pins = ChartPins::pinned();
        for chart in &pins.charts {
            assert!(
                pins.repos.iter().any(|r| r.name == chart.repo),
                "{} names repo {}",
                chart.name,
                chart.repo
            );
        }
        assert_eq!(
            pins.release("monitor", "observability", "kube-prometheus-stack")
                .chart,
            "prometheus-community/kube-prometheus-stack"
        );
        let gateway_api = pins.manifest_release("gateway-api");
        assert!(gateway_api.url.contains(&gateway_api.version));
    }
}
