//! One hint per cause, naming the deployer's own flags and files, so the fix is one step away.

use crate::settings::{ClusterSpec, Role};

use super::findings::{Finding, Kind};

/// What a hint needs to know about the cluster the problem is in.
#[derive(Debug, Clone)]
pub struct HintContext {
    pub profile: String,
    /// "central" or "remote": the flags are `--central-memory`, ...
    pub role: &'static str,
    pub memory: String,
    pub cpus: u16,
    /// The values file or manifest that configures what failed, when known.
    pub source: Option<String>,
}

impl HintContext {
    pub fn for_cluster(cluster: &ClusterSpec) -> Self {
        HintContext {
            profile: cluster.profile.clone(),
            role: match cluster.role {
                Role::Central => "central",
                Role::Remote => "remote",
            },
            memory: cluster.memory.clone(),
            cpus: cluster.cpus,
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    fn config(&self) -> String {
        self.source
            .clone()
            .unwrap_or_else(|| format!("manifests/{}/", self.role))
    }
}

pub fn hint_for(finding: &Finding, context: &HintContext) -> String {
    let profile = &context.profile;
    let role = context.role;
    match finding.kind {
        Kind::Unschedulable if finding.problem.contains("Insufficient memory") => format!(
            "the node has too little memory for the pods' requests: raise --{role}-memory (now {}); \
             minikube sizes a profile only when it creates it, so then `deployer destroy && deployer all`; \
             or lower the requests in {}",
            context.memory,
            context.config()
        ),
        Kind::Unschedulable if finding.problem.contains("Insufficient cpu") => format!(
            "the node has too few CPUs for the pods' requests: raise --{role}-cpus (now {}), then \
             `deployer destroy && deployer all`; or lower the requests in {}",
            context.cpus,
            context.config()
        ),
        Kind::Unschedulable if finding.problem.contains("PersistentVolumeClaim") => {
            "the pod waits for its volume: see the claim's line".to_string()
        }
        Kind::Unschedulable => format!(
            "no node fits the pod (message above); check its nodeSelector, tolerations and requests in {}",
            context.config()
        ),
        Kind::Image if finding.problem.starts_with("ErrImageNeverPull") => format!(
            "the image is not in the node: `minikube -p {profile} image ls` should list it; \
             `deployer all` builds and loads the demo-app image, so run it again"
        ),
        Kind::Image => format!(
            "the node cannot pull the image: check its name and tag in {}, and that the node \
             reaches the registry (`minikube -p {profile} ssh -- curl -sI https://registry-1.docker.io/v2/`; \
             a proxy needs HTTPS_PROXY when the profile is created)",
            context.config()
        ),
        Kind::OutOfMemory => format!(
            "the container used more than its memory limit: raise `resources.limits.memory` for it \
             in {} (and --{role}-memory if the node is full)",
            context.config()
        ),
        Kind::Crash => format!(
            "the container keeps exiting: its log (above, and in the bundle) says why; fix the \
             configuration in {} and run the same command again",
            context.config()
        ),
        Kind::NotReady => {
            "the container runs but its probe fails (message above): usually something it needs \
             (storage, another service) is not up yet; look at the other findings first"
                .to_string()
        }
        Kind::Waiting if finding.problem.starts_with("CreateContainerConfigError") => {
            "a Secret or ConfigMap the pod refers to is missing: the steps before this one create \
             them; run the same command again, or check the names in the values"
                .to_string()
        }
        Kind::Waiting => {
            "the pod is still starting; if it stays so, see its events in the bundle".to_string()
        }
        Kind::ClaimPending => format!(
            "no volume for the claim: minikube's storage-provisioner addon serves storage class \
             `standard` (`minikube -p {profile} addons enable storage-provisioner`); check the \
             claim's storageClassName in {}",
            context.config()
        ),
        Kind::JobFailed => "the Job's pod log (below or in the bundle) says why it failed; \
             fix the cause and run the same command again"
            .to_string(),
        Kind::NoAddress => format!(
            "MetalLB gave no address: check that the metallb addon runs (`minikube -p {profile} \
             addons list`) and that its pool is set (`deployer status`; the `metallb {profile}` \
             step writes it)"
        ),
    }
}
