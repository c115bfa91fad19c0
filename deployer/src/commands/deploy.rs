//! `certs`, `central`, `remote` and `all`: build the plan, then print it or run it.
//!
//! A real run is one `tracing` span (the root of the deploy's trace, exported when an OTLP
//! endpoint is set: see `telemetry`), with the steps' spans under it; the duration of every step
//! that finished goes to `.state/last-run.json` for the next dry run.

use std::io::IsTerminal;
use std::time::Instant;

use tracing::{Instrument, Span, field};

use crate::engine::{PlainProgress, Progress, StepResult, TerminalProgress, run_plan};
use crate::error::DeployerError;
use crate::last_run::{self, LastRun};
use crate::plan::describe::render_plan_with;
use crate::plan::{DeployPlan, Target, build_plan, required_tools};
use crate::settings::Settings;
use crate::stack::Stack;
use crate::steps::Deployer;
use crate::tools::{Toolbox, check_versions};

pub async fn deploy(
    settings: &Settings,
    target: Target,
    title: &str,
    dry_run: bool,
) -> Result<(), DeployerError> {
    let planning = Instant::now();
    let plan = build_plan(settings, &Stack::current(settings), target)?;
    if dry_run {
        let measured = measured_durations(settings);
        print!(
            "{}",
            render_plan_with(&plan, settings, title, measured.as_ref())
        );
        // stderr, so the plan on stdout stays byte-for-byte stable.
        eprintln!(
            "planned in {:.2} ms",
            planning.elapsed().as_secs_f64() * 1000.0
        );
        return Ok(());
    }
    let span = deploy_span(title, &plan);
    // On Ctrl-C the run is dropped, which kills the commands in progress (`kill_on_drop`), and
    // the deploy ends as an error: its trace is still flushed, with the root span saying why.
    let result = tokio::select! {
        result = run(settings, target, title, &plan).instrument(span.clone()) => result,
        () = ctrl_c() => Err(DeployerError::Interrupted { command: title.to_owned() }),
    };
    if let Err(error) = &result {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", error.to_string());
    }
    result
}

/// Resolves on Ctrl-C (SIGINT); never, when the handler cannot be installed, so the deploy
/// then runs on as it would without one.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The root of the deploy's trace.
fn deploy_span(title: &str, plan: &DeployPlan) -> Span {
    tracing::info_span!(
        parent: None,
        "deploy",
        otel.name = format!("deployer {title}"),
        deployer.command = title,
        deployer.steps = count_attribute(plan.steps().len()),
        deployer.steps_changed = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    )
}

/// A count as a span attribute: as i64, because tracing-opentelemetry has no `record_u64` and
/// would send a `usize` field as a string.
fn count_attribute(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the last runs measured; a file that cannot be read is reported and left out, so the dry
/// run falls back on the estimates instead of failing.
fn measured_durations(settings: &Settings) -> Option<LastRun> {
    LastRun::load(&settings.state_dir).unwrap_or_else(|error| {
        eprintln!("warning: {error}; using the estimates (the next deploy rewrites it)");
        None
    })
}

async fn run(
    settings: &Settings,
    target: Target,
    title: &str,
    plan: &DeployPlan,
) -> Result<(), DeployerError> {
    // Everything the run needs is checked before the first step starts.
    for step in plan.steps() {
        for path in step.action.input_files() {
            if !path.exists() {
                return Err(DeployerError::MissingInput { path });
            }
        }
    }
    let toolbox = Toolbox::find_on_path(required_tools(plan, settings))?
        .with_kubeconfig(settings.kubeconfig.clone());
    check_versions(&toolbox).await?;
    super::doctor::preflight(settings, target).await?;
    let deployer = Deployer::new(settings.clone(), toolbox);
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        Box::new(TerminalProgress::new())
    } else {
        Box::new(PlainProgress::new())
    };
    let result = run_plan(plan, &deployer, progress.as_ref()).await;
    for warning in deployer.take_warnings() {
        eprintln!("warning: {warning}");
    }
    let summary = match result {
        Ok(summary) => summary,
        Err(failed) => {
            remember_durations(settings, title, false, &failed.completed);
            let diagnoses = crate::diagnose::diagnose_failures(plan, &deployer, &failed).await;
            return Err(DeployerError::StepsFailed { failed, diagnoses });
        }
    };
    remember_durations(settings, title, true, &summary.results);
    Span::current().record("deployer.steps_changed", count_attribute(summary.changed()));
    println!(
        "deployer {title}: done in {:.1}s; {}",
        summary.elapsed.as_secs_f64(),
        summary.report()
    );
    print!("{}", super::summary::slowest_steps(plan, &summary.results));
    if matches!(target, Target::All | Target::Central) {
        let ingress = super::summary::ingress_address(settings).await;
        print!("{}", super::summary::render(settings, ingress.as_deref()));
    }
    Ok(())
}

/// Timings are a convenience: failing to keep them is a warning, never a failed deploy.
fn remember_durations(settings: &Settings, title: &str, succeeded: bool, finished: &[StepResult]) {
    if let Err(error) = last_run::record(&settings.state_dir, title, succeeded, finished) {
        eprintln!("warning: {error}; the next dry run uses the estimates");
    }
}
