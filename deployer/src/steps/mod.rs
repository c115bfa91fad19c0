//! Carrying out the plan's actions: [`Deployer`] is the engine's executor.
//!
//! - `certificates.rs`: the certificates step,
//! - `cluster.rs`: starting a minikube profile on the shared network, checking the network, and
//!   the MetalLB pool,
//! - `kubernetes.rs`: namespaces and manifests (waiting for the Jobs they hold),
//! - `charts.rs`: helm repositories and releases,
//! - `image.rs`: building the demo-app image once and loading it into the nodes,
//! - `link.rs`: linking the remote cluster to the central one.
//!
//! Every action is idempotent: it checks or converges, so a re-run resumes where a failed one
//! stopped and a finished setup stays as it is.

mod certificates;
mod charts;
mod cluster;
mod error;
mod image;
mod kubernetes;
mod link;

use std::sync::Mutex;

use crate::engine::{Executor, Outcome};
use crate::k8s::Clients;
use crate::plan::Action;
use crate::settings::Settings;
use crate::tools::{CommandOutput, CommandSpec, RunError, Toolbox, runner};

pub use cluster::ClusterError;
pub use error::StepError;
pub use image::{archived_id_file, loaded_image_file};

pub struct Deployer {
    pub settings: Settings,
    pub toolbox: Toolbox,
    pub clients: Clients,
    /// Things the user should know that did not stop the run (e.g. an issuer expiring soon).
    warnings: Mutex<Vec<String>>,
}

impl Deployer {
    pub fn new(settings: Settings, toolbox: Toolbox) -> Self {
        let clients = Clients::new(settings.kubeconfig.clone());
        Deployer {
            settings,
            toolbox,
            clients,
            warnings: Mutex::new(Vec::new()),
        }
    }

    pub async fn run(&self, command: &CommandSpec) -> Result<CommandOutput, RunError> {
        runner::run(&self.toolbox, command).await
    }

    pub fn warn(&self, warning: String) {
        tracing::debug!("{warning}");
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.push(warning);
        }
    }

    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

impl Executor for Deployer {
    type Action = Action;
    type Error = StepError;

    async fn execute(&self, action: &Action) -> Result<Outcome, StepError> {
        match action {
            Action::Certificates { force } => certificates::ensure(self, *force),
            Action::StartCluster { cluster } => cluster::start(self, cluster).await,
            Action::CheckNetwork { clusters } => cluster::check_network(self, clusters).await,
            Action::ConfigureMetallb { cluster } => cluster::configure_metallb(self, cluster).await,
            Action::Namespaces { context, names } => {
                kubernetes::namespaces(self, context, names).await
            }
            Action::ApplyManifest { context, manifest } => {
                kubernetes::manifest(self, context, manifest).await
            }
            Action::ApplySecret { context, secret } => {
                kubernetes::secret(self, context, secret).await
            }
            Action::ApplyRemoteManifest { profile, manifest } => {
                kubernetes::remote_manifest(self, profile, manifest).await
            }
            Action::BuildImage { image, archive } => {
                image::build_on_host(self, image, archive).await
            }
            Action::LoadImage {
                profile,
                image,
                archive,
            } => image::load(self, profile, image, archive).await,
            Action::BuildImageInCluster { profile, image } => {
                image::build(self, profile, image).await
            }
            Action::CopyImage {
                from,
                to,
                image,
                archive,
            } => image::copy(self, from, to, image, archive).await,
            Action::ApplyDashboards {
                context,
                dashboards,
            } => kubernetes::dashboards(self, context, dashboards).await,
            Action::AddHelmRepos { repos } => charts::add_repos(self, repos).await,
            Action::InstallRelease { context, release } => {
                charts::install(self, context, release).await
            }
            Action::LinkClusters { source, target } => link::link(self, source, target).await,
        }
    }

    fn cluster_of(&self, action: &Action) -> Option<String> {
        action.cluster()
    }
}
