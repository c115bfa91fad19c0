//! `loadtest`: runs the loadgen as a Job in the remote cluster, shows its progress, then its
//! summary with the pipeline's health over the same window (see [`crate::loadtest`]).

use std::time::SystemTime;

use crate::cli::{LoadtestArgs, OutputFormat};
use crate::error::DeployerError;
use crate::k8s::Clients;
use crate::loadtest::backends::RunWindow;
use crate::loadtest::checks::{Check, Verdict};
use crate::loadtest::job::{job_name, loadgen_job};
use crate::loadtest::pod_log::{self, PodLog, ProgressFilter};
use crate::loadtest::report::RunReport;
use crate::loadtest::run::{Finished, Progress, delete_job, run_job};
use crate::loadtest::summary::LoadgenSummary;
use crate::loadtest::{LoadtestError, LoadtestSpec, dry_run, pipeline};
use crate::settings::Settings;
use crate::stack::ImageBuild;

pub async fn loadtest(
    settings: &Settings,
    args: &LoadtestArgs,
    dry_run: bool,
) -> Result<(), DeployerError> {
    let spec = LoadtestSpec {
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        max_error_ratio: args.max_error_ratio,
        job_name: job_name(time::OffsetDateTime::now_utc()),
        image: ImageBuild::demo_app().tag,
    };
    let (remote_context, central_context) = (settings.remote.context(), settings.central.context());
    if dry_run {
        print!(
            "{}",
            dry_run::describe(&spec, remote_context, central_context, args.settle)
        );
        return Ok(());
    }
    let clients = Clients::new(settings.kubeconfig.clone());
    let remote = clients.client(remote_context).await?;

    let agent_before = pipeline::scrape_agent(&remote).await;
    let job = loadgen_job(&spec);
    let mut filter = ProgressFilter::default();
    let mut progress = |p: Progress| show_progress(&p, &spec, &mut filter);
    let run = run_job(&remote, &job, settings.wait_timeout, &mut progress);
    // Ctrl-C stops the load too: the Job would otherwise run on in the cluster, unwatched.
    let finished = tokio::select! {
        finished = run => finished?,
        signal = tokio::signal::ctrl_c() => {
            signal.map_err(LoadtestError::Signal)?;
            eprintln!("loadtest: interrupted; deleting job demo/{}", spec.job_name);
            delete_job(&remote, &spec.job_name).await?;
            return Err(LoadtestError::Interrupted { job: spec.job_name }.into());
        }
    };
    let log = pod_log::split(&finished.log);
    let summary = outcome(&spec.job_name, &finished, &log)?;

    eprintln!("loadtest: the loadgen finished; measuring the pipeline");
    let window = SystemTime::now()
        .duration_since(finished.started)
        .unwrap_or_default();
    let agent_after = pipeline::scrape_agent_drained(&remote).await;
    let mut checks = pipeline::agent_checks(&agent_before, &agent_after, summary.requests.sent);
    checks.extend(pipeline::prometheus_checks(&remote, window).await);
    let run = RunWindow {
        job_name: spec.job_name.clone(),
        started: finished.started,
        requests_sent: summary.requests.sent,
    };
    let central = clients.client(central_context).await;
    checks.extend(pipeline::backend_checks(central, &run, args.settle).await);

    let raw = log.summary.clone().unwrap_or_default();
    let report = RunReport {
        job: &spec.job_name,
        window_seconds: SystemTime::now()
            .duration_since(finished.started)
            .unwrap_or_default()
            .as_secs(),
        summary: &summary,
        raw_summary: &raw,
        checks: &checks,
    };
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text()),
        OutputFormat::Json => println!("{:#}", report.to_json()),
    }
    verdict(&summary, &checks)
}

/// The loadgen's summary when it ran to the end (exit 0, or 3 for too many errors, which is
/// still worth a report); otherwise why the Job failed.
fn outcome(job: &str, finished: &Finished, log: &PodLog) -> Result<LoadgenSummary, LoadtestError> {
    match finished.exit_code {
        Some(0 | 3) => log
            .parsed_summary()
            .map_err(|source| LoadtestError::Summary {
                job: job.to_string(),
                source,
            }),
        exit_code => Err(LoadtestError::JobFailed {
            job: job.to_string(),
            reason: finished.failure.clone(),
            exit_code,
            last_lines: log.last_lines(10),
        }),
    }
}

fn verdict(summary: &LoadgenSummary, checks: &[Check]) -> Result<(), DeployerError> {
    if !summary.passed {
        return Err(LoadtestError::TooManyErrors {
            error_ratio: summary.error_ratio,
            max_error_ratio: summary.max_error_ratio.unwrap_or(0.0),
        }
        .into());
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(LoadtestError::ChecksFailed { failed }.into())
    }
}

/// Progress goes to stderr, so stdout holds only the report (JSON stays parseable).
fn show_progress(progress: &Progress, spec: &LoadtestSpec, filter: &mut ProgressFilter) {
    match progress {
        Progress::Applied { job } => {
            eprintln!("loadtest: job demo/{job} applied; waiting for its pod to start")
        }
        Progress::PodStarted { pod } => eprintln!(
            "loadtest: pod {pod} started: {} requests/s for {}s",
            spec.rate,
            spec.duration.as_secs()
        ),
        Progress::Line(line) if filter.shows(line) => eprintln!("  loadgen: {}", line.readable()),
        Progress::Line(_) => {}
        Progress::StillRunning { elapsed } => eprintln!(
            "  ... running, {}s of {}s",
            elapsed.as_secs(),
            spec.duration.as_secs()
        ),
    }
}
