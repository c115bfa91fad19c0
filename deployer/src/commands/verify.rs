//! `verify`: opens port-forwards to the central Mimir, Loki and Tempo and to the remote demo app,
//! runs the checks of [`crate::verify`] through them, prints the report, and fails if any check
//! failed.

use std::fmt::Write as _;

use crate::cli::{OutputFormat, VerifyArgs};
use crate::error::DeployerError;
use crate::settings::{Role, Settings};
use crate::verify::{Endpoints, TenantPlan, VerifyOptions, VerifyReport};

/// A Service port `verify` forwards a local port to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTarget {
    pub cluster: Role,
    pub namespace: &'static str,
    pub service: &'static str,
    pub port: u16,
}

/// mimir-distributed (release `mimir`): the query-frontend's HTTP port; the Prometheus API is
/// under /prometheus there (Grafana's data sources in manifests/central/monitor.yaml use it too).
pub const MIMIR_QUERY_FRONTEND: ForwardTarget = ForwardTarget {
    cluster: Role::Central,
    namespace: "mimir",
    service: "mimir-query-frontend",
    port: 8080,
};

/// loki (release `loki`, SimpleScalable): the read path, which answers queries.
pub const LOKI_READ: ForwardTarget = ForwardTarget {
    cluster: Role::Central,
    namespace: "loki",
    service: "loki-read",
    port: 3100,
};

/// tempo-distributed (release `tempo`): the query-frontend's HTTP port.
pub const TEMPO_QUERY_FRONTEND: ForwardTarget = ForwardTarget {
    cluster: Role::Central,
    namespace: "tempo",
    service: "tempo-query-frontend",
    port: 3200,
};

/// The demo's front (manifests/remote/demo.yaml), for the burst.
pub const DEMO_APP: ForwardTarget = ForwardTarget {
    cluster: Role::Remote,
    namespace: "demo",
    service: "app",
    port: 8080,
};

pub async fn verify(
    settings: &Settings,
    args: &VerifyArgs,
    dry_run: bool,
) -> Result<(), DeployerError> {
    let options = options_from(args);
    if dry_run {
        print!("{}", dry_run_listing(settings, &options));
        return Ok(());
    }
    // The forwards must live until the checks are done: dropping one closes it.
    let (endpoints, _forwards) = open_endpoints(settings, options.burst > 0).await?;
    let report = crate::verify::verify(&endpoints, &options).await;
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text()),
        OutputFormat::Json => println!("{}", report.to_json()),
    }
    outcome(&report)
}

/// The checks' options from the command line.
pub fn options_from(args: &VerifyArgs) -> VerifyOptions {
    let mut tenants: Vec<TenantPlan> = Vec::new();
    for plan in args
        .tenants
        .iter()
        .filter_map(|t| TenantPlan::for_tenant(t))
    {
        // `--tenant remote01 --tenant remote01` checks it once.
        if !tenants.contains(&plan) {
            tenants.push(plan);
        }
    }
    VerifyOptions {
        deadline: args.deadline,
        poll_interval: args.poll_interval,
        burst: args.burst,
        ..VerifyOptions::new(tenants)
    }
}

/// Ok if no check failed; otherwise the error that makes the exit code non-zero.
pub fn outcome(report: &VerifyReport) -> Result<(), DeployerError> {
    if report.passed {
        Ok(())
    } else {
        Err(DeployerError::VerifyFailed {
            failed: report.failed_names(),
        })
    }
}

/// What `verify` forwards: the three backends, and the app when there is a burst.
pub fn forward_targets(with_app: bool) -> Vec<ForwardTarget> {
    let mut targets = vec![MIMIR_QUERY_FRONTEND, LOKI_READ, TEMPO_QUERY_FRONTEND];
    if with_app {
        targets.push(DEMO_APP);
    }
    targets
}

pub fn dry_run_listing(settings: &Settings, options: &VerifyOptions) -> String {
    let mut out = String::new();
    for target in forward_targets(options.burst > 0) {
        let _ = writeln!(
            out,
            "forward a free local port to service {}/{}:{} in context {}",
            target.namespace,
            target.service,
            target.port,
            settings.cluster(target.cluster).context()
        );
    }
    if options.burst > 0 {
        let _ = writeln!(
            out,
            "send {} requests to GET {} on the demo app",
            options.burst,
            crate::verify::burst::LIST_PATH
        );
    }
    for plan in &options.tenants {
        for line in plan.describe() {
            let _ = writeln!(out, "check {line}");
        }
    }
    let _ = writeln!(
        out,
        "poll every {}s until the data shows up, for at most {}s",
        options.poll_interval.as_secs(),
        options.deadline.as_secs()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// STUB, to be wired to `crate::k8s::PortForward` (being written on another branch): open one
// forward per `forward_targets(with_app)` entry with
// `PortForward::to_service(&client_of(target.cluster), target.namespace, target.service,
// target.port, 127.0.0.1:0)`, then fill `Endpoints` with each forward's `http://<local_addr>`
// (base URLs, no path: the checks add /prometheus for Mimir). Delete this alias, import the real
// type, and drop `DeployerError::PortForwardNotWired`.
// ---------------------------------------------------------------------------------------------
type PortForward = std::convert::Infallible;

/// Opens the port-forwards `verify` needs and returns the URLs to reach them; keep the returned
/// forwards alive while checking.
pub async fn open_endpoints(
    settings: &Settings,
    with_app: bool,
) -> Result<(Endpoints, Vec<PortForward>), DeployerError> {
    let _ = with_app;
    Err(DeployerError::PortForwardNotWired {
        what: format!(
            "service {}/{} in context {}",
            MIMIR_QUERY_FRONTEND.namespace,
            MIMIR_QUERY_FRONTEND.service,
            settings.cluster(MIMIR_QUERY_FRONTEND.cluster).context()
        ),
    })
}
