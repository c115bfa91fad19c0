//! The deployer: makes the Linkerd certificates and sets up the LGTM PoC's two minikube clusters.
//!
//! Where things are:
//! - [`cli`]: flags, environment variables and defaults (one place); [`settings`]: the result,
//! - [`commands`]: one file per command (`certs`, `central`, `remote`, `all`, `status`, `grafana`,
//!   `verify`, `loadtest`, `doctor`, `destroy`),
//! - [`plan`]: a command as a list of named steps (data) and the dry-run listing,
//! - [`stack`]: what goes into each cluster (namespaces, manifests, helm releases), as data, and
//!   the services the deployer itself talks to through port-forwards ([`stack::endpoints`]),
//! - [`engine`]: runs a plan's steps, independent ones concurrently, with progress,
//! - [`steps`]: what each kind of step does (the engine's executor),
//! - [`certs`]: trust anchor and issuers with rcgen,
//! - [`tools`]: finding minikube/helm/linkerd and the one function that runs them,
//! - [`minikube`], [`helm`], [`linkerd`]: their command lines as data and their answers read
//!   (`minikube::network`: two profiles on one network; `minikube::image`: the demo-app image; `helm::release_state`: what is deployed and whether
//!   it differs; `helm::values`: the values helm would store for a release),
//! - [`container`]: the driver's container engine (building the image, a node's networks),
//! - [`k8s`]: kube-rs: clients per context, server-side apply, waits, service addresses, status,
//!   port-forwards,
//! - [`verify`]: the checks behind `deployer verify` (Mimir, Loki, Tempo queries per tenant),
//!   given plain URLs,
//! - [`loadtest`]: the loadgen Job, its log and summary, and the pipeline checks around it,
//! - [`diagnose`]: after a step fails, what the cluster says about it (pods, events, logs) with a
//!   fix per cause, and the bundle in `.state/diagnostics/`; also the reasons `status` shows,
//! - [`preflight`]: the machine's checks before `deployer all` and in `deployer doctor`,
//! - [`error`]: what the user sees when something fails, with help on how to fix it,
//! - [`telemetry`]: log lines on stderr and the deploy's trace over OTLP; [`last_run`]: how long
//!   each step took (`.state/last-run.json`), for the summary and the next dry run.

pub mod certs;
pub mod cli;
pub mod commands;
pub mod container;
pub mod credentials;
pub mod diagnose;
pub mod duration;
pub mod engine;
pub mod error;
pub mod helm;
pub mod k8s;
pub mod last_run;
pub mod linkerd;
pub mod loadtest;
pub mod minikube;
pub mod pins;
pub mod plan;
pub mod preflight;
pub mod retention;
pub mod settings;
pub mod stack;
pub mod steps;
pub mod telemetry;
pub mod tools;
pub mod verify;

pub use cli::Cli;
pub use error::{DeployerError, Report};

/// Runs the command the user gave.
pub async fn run(cli: &Cli) -> Result<(), DeployerError> {
    commands::run(cli).await
}
