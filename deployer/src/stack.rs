//! What goes into each cluster, as data. The plan turns this into steps; adding a chart or a
//! manifest to the stack is adding a value here (issue 6 fills in the charts and workloads).

use std::path::PathBuf;

use crate::helm::{HelmRelease, HelmRepo};

/// A file of Kubernetes objects (multi-document YAML), applied server-side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Short name for the step ("grafana-dashboards").
    pub name: String,
    pub path: PathBuf,
    /// For namespaced objects that name none.
    pub namespace: String,
}

/// One thing installed into a cluster, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    Manifest(ManifestFile),
    Release(HelmRelease),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterWorkloads {
    /// Created first, annotated for Linkerd injection.
    pub namespaces: Vec<String>,
    /// Installed one after the other, after the namespaces.
    pub workloads: Vec<Workload>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    pub repos: Vec<HelmRepo>,
    pub central: ClusterWorkloads,
    pub remote: ClusterWorkloads,
    /// Link the remote to the central cluster (`deployer all` only) once both have their
    /// workloads; needs linkerd-multicluster in both, which the stack's charts install.
    pub link: bool,
}

impl Stack {
    /// The stack as far as it is built today: the namespaces of DESIGN.md section 1.
    ///
    /// The remote needs the namespaces of the central's exported services too: the Linkerd service
    /// mirror creates `<service>-<cluster>` in the namespace of the same name.
    pub fn current() -> Self {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Stack {
            repos: Vec::new(),
            central: ClusterWorkloads {
                namespaces: names(&["mimir", "loki", "tempo"]),
                workloads: Vec::new(),
            },
            remote: ClusterWorkloads {
                namespaces: names(&["demo", "mimir", "loki", "tempo"]),
                workloads: Vec::new(),
            },
            link: false,
        }
    }
}
