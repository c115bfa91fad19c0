//! `certs`, `central`, `remote` and `all`: build the plan, then print it or run it.

use std::io::IsTerminal;
use std::time::Instant;

use crate::engine::{PlainProgress, Progress, TerminalProgress, run_plan};
use crate::error::DeployerError;
use crate::plan::describe::render_plan;
use crate::plan::{Target, build_plan, required_tools};
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
        print!("{}", render_plan(&plan, settings, title));
        // stderr, so the plan on stdout stays byte-for-byte stable.
        eprintln!(
            "planned in {:.2} ms",
            planning.elapsed().as_secs_f64() * 1000.0
        );
        return Ok(());
    }
    // Everything the run needs is checked before the first step starts.
    for step in plan.steps() {
        for path in step.action.input_files() {
            if !path.exists() {
                return Err(DeployerError::MissingInput { path });
            }
        }
    }
    let toolbox = Toolbox::find_on_path(required_tools(&plan, settings))?
        .with_kubeconfig(settings.kubeconfig.clone());
    check_versions(&toolbox).await?;
    super::doctor::preflight(settings, target).await?;
    let deployer = Deployer::new(settings.clone(), toolbox);
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        Box::new(TerminalProgress::new())
    } else {
        Box::new(PlainProgress::new())
    };
    let result = run_plan(&plan, &deployer, progress.as_ref()).await;
    for warning in deployer.take_warnings() {
        eprintln!("warning: {warning}");
    }
    let summary = match result {
        Ok(summary) => summary,
        Err(failed) => {
            let diagnoses = crate::diagnose::diagnose_failures(&plan, &deployer, &failed).await;
            return Err(DeployerError::StepsFailed { failed, diagnoses });
        }
    };
    println!(
        "deployer {title}: done in {:.1}s; {}",
        summary.elapsed.as_secs_f64(),
        summary.report()
    );
    if matches!(target, Target::All | Target::Central) {
        let ingress = super::summary::ingress_address(settings).await;
        print!("{}", super::summary::render(settings, ingress.as_deref()));
    }
    Ok(())
}
