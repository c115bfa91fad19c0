//! `verify`: opens port-forwards to the central Mimir, Loki and Tempo and to the remote demo app,
//! runs the checks of [`crate::verify`] through them, prints the report, and fails if any check
//! failed.

use std::fmt::Write as _;

use crate::cli::{OutputFormat, VerifyArgs};
use crate::error::DeployerError;
use crate::k8s::{Clients, PortForward};
use crate::settings::Settings;
use crate::stack::endpoints::{
    DEMO_APP, LOKI_READ, MIMIR_QUERY_FRONTEND, ServicePort, TEMPO_QUERY_FRONTEND,
};
use crate::verify::{Endpoints, TenantPlan, VerifyOptions, VerifyReport};

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
pub fn forward_targets(with_app: bool) -> Vec<ServicePort> {
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
            "forward a free local port to {target} in context {}",
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

/// Opens the port-forwards `verify` needs and returns the URLs to reach them; keep the returned
/// forwards alive while checking (dropping one closes it).
pub async fn open_endpoints(
    settings: &Settings,
    with_app: bool,
) -> Result<(Endpoints, Vec<PortForward>), DeployerError> {
    let clients = Clients::new(settings.kubeconfig.clone());
    let forward = |target: ServicePort| {
        let clients = &clients;
        async move {
            let client = clients
                .client(settings.cluster(target.cluster).context())
                .await?;
            Ok::<_, DeployerError>(target.forward(&client).await?)
        }
    };
    let app = async {
        match with_app {
            true => forward(DEMO_APP).await.map(Some),
            false => Ok(None),
        }
    };
    // Independent API round trips: open them side by side.
    let (mimir, loki, tempo, app) = futures::try_join!(
        forward(MIMIR_QUERY_FRONTEND),
        forward(LOKI_READ),
        forward(TEMPO_QUERY_FRONTEND),
        app
    )?;
    let endpoints = Endpoints {
        mimir: mimir.url(),
        loki: loki.url(),
        tempo: tempo.url(),
        app: app.as_ref().map(PortForward::url),
    };
    let forwards = [Some(mimir), Some(loki), Some(tempo), app]
        .into_iter()
        .flatten()
        .collect();
    Ok((endpoints, forwards))
}
