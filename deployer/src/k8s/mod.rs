//! Kubernetes through kube-rs (named `k8s` so it does not shadow the `kube` crate).
//!
//! - [`clients`]: one client per kube context (a context is named after its minikube profile),
//! - [`apply`]: server-side apply of objects and multi-document YAML, kinds resolved by discovery,
//! - [`namespace`], [`metallb`]: the objects the deployer itself writes,
//! - [`labels`]: adding labels to existing objects,
//! - [`wait`]: waiting with a timeout for a rollout or a LoadBalancer IP,
//! - [`services`]: reading service addresses,
//! - [`port_forward`]: local ports forwarded to a service's pod (verify, loadtest, grafana),
//! - [`health`]: what `deployer status` shows.

pub mod apply;
pub mod clients;
pub mod dashboards;
mod error;
pub mod health;
pub mod labels;
pub mod metallb;
pub mod namespace;
pub mod port_forward;
pub mod secret;
pub mod services;
pub mod wait;

pub use apply::{Applied, Change, apply_object, apply_yaml};
pub use clients::Clients;
pub use error::KubeError;
pub use port_forward::PortForward;

/// Every object the deployer applies is owned by this field manager, so re-applies are no-ops and
/// other managers' fields (e.g. a controller's) are left alone.
pub const FIELD_MANAGER: &str = "lgtm-deployer";
