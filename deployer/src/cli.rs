//! Command line: every option is a flag, an environment variable and a default, in that order of
//! precedence. clap resolves all three here, once; the rest of the crate only sees [`Settings`].
//!
//! [`Settings`]: crate::settings::Settings

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::limits;
use crate::loadtest::Rate;
use crate::minikube::rules;
use crate::preflight::Topic;
use crate::retention::{Retention, parse_retention};
use crate::settings::{Driver, ImageBuilder};
use crate::verify::options::{LOCAL_TENANT, REMOTE_TENANT};

/// Sets up the LGTM PoC: Linkerd certificates and two minikube clusters, central and remote.
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    propagate_version = true,
    after_help = "Each option can also be set by its environment variable: a flag wins over the variable, \
                  the variable over the default.\n\
                  `deployer all --dry-run` prints every step with its commands and manifests, and the \
                  critical path against the serial sum of the steps' estimates."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the Linkerd trust anchor and one issuer per cluster in the state folder.
    Certs {
        /// Replace an existing trust anchor. Running proxies keep trusting the old one: afterwards
        /// run `deployer all`, then restart the meshed workloads (the commands are printed).
        #[arg(long)]
        force: bool,
    },
    /// Certificates and the central cluster.
    Central,
    /// Certificates and the remote cluster.
    Remote,
    /// Everything: certificates and both clusters, side by side.
    All,
    /// Show per cluster: profile, nodes, pods not ready and why, LoadBalancer IPs, the link and
    /// mirrored services.
    Status {
        /// `text` for people; `json` for machines (stable field names).
        #[arg(long, env = "LGTM_STATUS_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Check this machine and, when they exist, the clusters: tools, versions, the container
    /// engine's CPUs and memory, inotify limits, disk, pods, the link. Exits non-zero on a FAIL.
    Doctor,
    /// Forward a local port to the central Grafana (for hosts where LoadBalancer IPs are not
    /// reachable, e.g. macOS), until Ctrl-C.
    Grafana {
        /// Local address to listen on.
        #[arg(long, env = "LGTM_GRAFANA_ADDRESS", default_value = "127.0.0.1")]
        address: std::net::IpAddr,
        /// Local port to listen on (0 picks a free one).
        #[arg(long, env = "LGTM_GRAFANA_PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Load-test the demo: run the loadgen as a Job in the remote cluster, follow it, then show
    /// its summary and the pipeline's health over the same window.
    #[command(
        after_help = "The pipeline checks: the telemetry agent's spans (accepted, forwarded, lost), the \
                  remote Prometheus's remote-write failures, retries and lag, and whether Mimir, Loki and \
                  Tempo (tenant remote01) received data in proportion to the requests sent.\n\
                  Exit status: 0 passed (warnings allowed), 1 the Job or a cluster call failed, 3 the \
                  app's error ratio was above --max-error-ratio, 4 a pipeline check failed, 130 \
                  interrupted (Ctrl-C deletes the Job, which stops the load)."
    )]
    Loadtest(LoadtestArgs),
    /// Prove the pipeline end to end: send a burst to the demo app, then query the central Mimir,
    /// Loki and Tempo (through port-forwards) until each tenant's metrics, logs and a trace show
    /// up. Exits non-zero if any check fails.
    Verify(VerifyArgs),
    /// Delete both minikube profiles (the certificates are kept).
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// `text`: a table for people; `json`: for machines (stable field names).
    #[arg(long, env = "LGTM_VERIFY_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Longest time to wait for all the data to show up (e.g. 90s, 2m).
    #[arg(long, env = "LGTM_VERIFY_DEADLINE", default_value = "2m", value_parser = limits::verify_deadline)]
    pub deadline: Duration,

    /// Time between two looks at a backend.
    #[arg(long, env = "LGTM_VERIFY_POLL_INTERVAL", default_value = "2s", value_parser = limits::poll_interval)]
    pub poll_interval: Duration,

    /// Requests sent to the demo app before checking; 0 relies on the steady loadgen.
    #[arg(long, env = "LGTM_VERIFY_BURST", default_value_t = 20)]
    pub burst: u32,

    /// Tenants to check, repeated or comma-separated: remote01 (the remote cluster's data), _local
    /// (the central cluster's own).
    #[arg(
        long = "tenant",
        value_name = "TENANT",
        env = "LGTM_VERIFY_TENANTS",
        value_delimiter = ',',
        default_values = [REMOTE_TENANT, LOCAL_TENANT],
        value_parser = PossibleValuesParser::new([REMOTE_TENANT, LOCAL_TENANT])
    )]
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// Requests per second (open loop), or `max` (closed loop, --connections workers).
    #[arg(long, env = "LGTM_LOADTEST_RATE", default_value = "50")]
    pub rate: Rate,
    /// How long to send (e.g. 60s, 5m).
    #[arg(long, env = "LGTM_LOADTEST_DURATION", default_value = "60s", value_parser = limits::loadtest_duration)]
    pub duration: Duration,
    /// Workers, each with its own connection, for --rate max.
    #[arg(long, env = "LGTM_LOADTEST_CONNECTIONS", default_value_t = 32, value_parser = limits::connections)]
    pub connections: u32,
    /// Fail (exit 3) when the share of failed requests is above this.
    #[arg(long, env = "LGTM_LOADTEST_MAX_ERROR_RATIO", default_value_t = 0.01, value_parser = parse_ratio)]
    pub max_error_ratio: f64,
    /// How long after the run to wait for its data to show up in Mimir, Loki and Tempo.
    #[arg(long, env = "LGTM_LOADTEST_SETTLE", default_value = "90s", value_parser = limits::settle)]
    pub settle: Duration,
    /// text for people, json for machines (progress still goes to stderr).
    #[arg(long, env = "LGTM_LOADTEST_OUTPUT", value_enum, default_value = "text")]
    pub output: OutputFormat,
}

fn parse_driver(text: &str) -> Result<Driver, String> {
    text.parse()
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!(
            "`{text}` is not a ratio: give a number from 0 to 1, e.g. 0.01"
        )),
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Print the plan (every command and manifest, in order) and change nothing.
    #[arg(long, global = true, env = "LGTM_DRY_RUN")]
    pub dry_run: bool,

    /// Folder for certificates and generated files.
    #[arg(long, global = true, env = "LGTM_STATE_DIR", default_value = ".state")]
    pub state_dir: PathBuf,

    /// Kubeconfig to read the cluster contexts from (minikube writes its contexts there).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// minikube profile (and kube context) of the central cluster.
    #[arg(
        long,
        global = true,
        env = "LGTM_CENTRAL_PROFILE",
        default_value = "lgtm-central",
        value_parser = rules::parse_profile
    )]
    pub central_profile: String,

    /// minikube profile (and kube context) of the remote cluster.
    #[arg(
        long,
        global = true,
        env = "LGTM_REMOTE_PROFILE",
        default_value = "lgtm-remote",
        value_parser = rules::parse_profile
    )]
    pub remote_profile: String,

    /// Cluster DNS domain of the central cluster.
    #[arg(
        long,
        global = true,
        env = "LGTM_CENTRAL_DOMAIN",
        default_value = "lgtm-central.cluster.local",
        value_parser = rules::parse_domain
    )]
    pub central_domain: String,

    /// Cluster DNS domain of the remote cluster.
    #[arg(
        long,
        global = true,
        env = "LGTM_REMOTE_DOMAIN",
        default_value = "lgtm-remote.cluster.local",
        value_parser = rules::parse_domain
    )]
    pub remote_domain: String,

    /// CPUs of the central cluster.
    #[arg(long, global = true, env = "LGTM_CENTRAL_CPUS", default_value_t = 6, value_parser = rules::parse_cpus)]
    pub central_cpus: u16,

    /// Memory of the central cluster, in minikube's syntax (e.g. 16g, 8192m).
    #[arg(
        long,
        global = true,
        env = "LGTM_CENTRAL_MEMORY",
        default_value = "16g",
        value_parser = rules::parse_memory
    )]
    pub central_memory: String,

    /// Disk of the central cluster's node, in minikube's syntax (e.g. 40g). Sized for the default
    /// retentions (manifests/README.md, "Disk budget"); raise it with them. minikube cannot
    /// resize an existing profile's disk: it takes effect on a new profile.
    #[arg(
        long,
        global = true,
        env = "LGTM_CENTRAL_DISK_SIZE",
        default_value = "40g",
        value_parser = rules::parse_disk_size
    )]
    pub central_disk_size: String,

    /// CPUs of the remote cluster.
    #[arg(long, global = true, env = "LGTM_REMOTE_CPUS", default_value_t = 2, value_parser = rules::parse_cpus)]
    pub remote_cpus: u16,

    /// Memory of the remote cluster, in minikube's syntax (e.g. 4g, 4096m).
    #[arg(long, global = true, env = "LGTM_REMOTE_MEMORY", default_value = "4g", value_parser = rules::parse_memory)]
    pub remote_memory: String,

    /// Disk of the remote cluster's node, in minikube's syntax (e.g. 20g). It keeps no telemetry
    /// beyond its Prometheus's 6h.
    #[arg(
        long,
        global = true,
        env = "LGTM_REMOTE_DISK_SIZE",
        default_value = "20g",
        value_parser = rules::parse_disk_size
    )]
    pub remote_disk_size: String,

    /// How long Mimir keeps metrics (its compactor deletes older blocks), in days (7d) or hours
    /// that make whole days (168h).
    #[arg(long, global = true, env = "LGTM_METRICS_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub metrics_retention: Retention,

    /// How long Loki keeps logs (its compactor deletes older chunks), in whole days.
    #[arg(long, global = true, env = "LGTM_LOGS_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub logs_retention: Retention,

    /// How long Tempo keeps traces (its compactor deletes older blocks), in whole days.
    #[arg(long, global = true, env = "LGTM_TRACES_RETENTION", default_value = "3d", value_parser = parse_retention)]
    pub traces_retention: Retention,

    /// minikube driver: docker or podman (both clusters join one container network, which only
    /// these drivers have; the same engine builds the demo-app image).
    #[arg(long, global = true, env = "LGTM_DRIVER", default_value = "docker", value_parser = parse_driver)]
    pub driver: Driver,

    /// Where the demo-app image is compiled: `host` (the driver's engine on this machine, then
    /// loaded into each node) or `cluster` (inside lgtm-central's node, then copied).
    #[arg(long, global = true, env = "LGTM_IMAGE_BUILDER", value_enum, default_value_t = ImageBuilder::Host)]
    pub image_builder: ImageBuilder,

    /// minikube network both clusters join, so each reaches the other's gateway and pool.
    #[arg(long, global = true, env = "LGTM_NETWORK", default_value = "lgtm", value_parser = rules::parse_network)]
    pub network: String,

    /// Longest time one `minikube start` may take (e.g. 900s, 15m).
    #[arg(long, global = true, env = "LGTM_START_TIMEOUT", default_value = "15m", value_parser = limits::start_timeout)]
    pub start_timeout: Duration,

    /// Longest time to wait for a rollout or a LoadBalancer IP (also helm --timeout).
    #[arg(long, global = true, env = "LGTM_WAIT_TIMEOUT", default_value = "5m", value_parser = limits::wait_timeout)]
    pub wait_timeout: Duration,

    /// Longest time the diagnosis of a failed step may take (it never hides the step's error).
    #[arg(long, global = true, env = "LGTM_DIAGNOSE_TIMEOUT", default_value = "20s", value_parser = limits::diagnose_timeout)]
    pub diagnose_timeout: Duration,

    /// Machine checks whose FAIL only warns before `all`, `central` and `remote`, for a check
    /// that cannot see the truth here (`disk`: the engine's disk is in a VM or elsewhere).
    /// `deployer doctor` still shows them as FAIL.
    #[arg(
        long,
        global = true,
        env = "LGTM_IGNORE_PREFLIGHT_ERRORS",
        value_enum,
        value_delimiter = ','
    )]
    pub ignore_preflight_errors: Vec<Topic>,

    /// Log every external command and API call (also RUST_LOG).
    #[arg(long, short = 'v', global = true, env = "LGTM_VERBOSE")]
    pub verbose: bool,
}

/// Input that each flag accepts alone but not together: a user error (exit 2), not a bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "--central-profile and --remote-profile are both `{0}`: the two clusters need two \
         minikube profiles"
    )]
    SameProfile(String),
}

impl InputError {
    pub fn help(&self) -> String {
        match self {
            InputError::SameProfile(_) => "give the clusters different profiles, e.g. \
                --central-profile lgtm-central --remote-profile lgtm-remote (or leave both out)"
                .to_string(),
        }
    }
}

impl GlobalArgs {
    /// What no single flag's parser can see: checked before any command runs.
    pub fn check(&self) -> Result<(), InputError> {
        // minikube keeps profiles apart by name only: one name would be one cluster, and both
        // roles' steps (`start <profile>`...) would collide.
        if self.central_profile == self.remote_profile {
            return Err(InputError::SameProfile(self.central_profile.clone()));
        }
        Ok(())
    }
}
