//! When a step fails: what the cluster says about what that step created, and a folder to attach
//! to a bug report.
//!
//! - [`findings`]: reading pods, claims, Jobs and Services into problems (no API calls),
//! - [`hints`]: one fix per cause, naming the deployer's flags and files,
//! - [`look`]: one look at a namespace through kube-rs,
//! - [`scope`]: which namespaces, release and profiles a failed step touched,
//! - [`bundle`]: `.state/diagnostics/<UTC time>-<step>/`, written through [`mask`],
//! - [`render`]: the lines the user reads under the error.
//!
//! A diagnosis never hides the error it explains: it runs after the step failed, within one
//! bound (`--diagnose-timeout`), and whatever it cannot do is reported as part of it.

pub mod bundle;
mod commands;
pub mod findings;
pub mod hints;
pub mod look;
pub mod mask;
pub mod render;
pub mod scope;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::plan::Action;
use crate::steps::{Deployer, StepError};

pub use findings::{Finding, Kind};
pub use hints::HintContext;
use look::Look;
use scope::{Place, Scope, scope_of};

/// What a look at one namespace gave.
#[derive(Debug, Clone)]
pub struct PlaceOutcome {
    pub context: String,
    pub namespace: String,
    pub result: Result<Look, String>,
}

/// The diagnosis of one failed step.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub step: String,
    pub places: Vec<PlaceOutcome>,
    pub elapsed: Duration,
    /// The folder written, or why it could not be.
    pub bundle: Result<PathBuf, String>,
}

impl Diagnosis {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.places
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .flat_map(|look| look.findings.iter())
    }
}

/// Looks at what the failed step touched and writes the bundle; takes at most about
/// `settings.diagnose_timeout` whatever the cluster does.
pub async fn diagnose_failure(
    deployer: &Deployer,
    step: &str,
    action: &Action,
    error: &StepError,
) -> Diagnosis {
    let started = Instant::now();
    let bound = deployer.settings.diagnose_timeout;
    let scope = scope_of(action, &deployer.settings);
    let (mut places, outputs) = futures::join!(
        look_at_places(deployer, &scope, bound),
        commands::collect(deployer, &scope, bound)
    );
    // The terminal gets the same masking as the bundle: log tails can print credentials.
    let masker = mask::Masker::from_state(&deployer.settings.state_dir);
    for look in places.iter_mut().filter_map(|p| p.result.as_mut().ok()) {
        for finding in &mut look.findings {
            finding.problem = masker.text(&finding.problem);
            finding.log = finding.log.iter().map(|l| masker.text(l)).collect();
        }
    }
    let mut diagnosis = Diagnosis {
        step: step.to_string(),
        places,
        elapsed: started.elapsed(),
        bundle: Err(String::new()),
    };
    diagnosis.bundle = bundle::write(
        &deployer.settings.state_dir,
        &bundle::Contents {
            diagnosis: &diagnosis,
            error: &error.to_string(),
            command: error.command(),
            outputs: &outputs,
            inputs: &scope.inputs,
        },
    )
    .map_err(|e| e.to_string());
    diagnosis
}

async fn look_at_places(deployer: &Deployer, scope: &Scope, bound: Duration) -> Vec<PlaceOutcome> {
    let looks = scope
        .places
        .iter()
        .map(|place| look_at(deployer, place, bound));
    futures::future::join_all(looks).await
}

async fn look_at(deployer: &Deployer, place: &Place, bound: Duration) -> PlaceOutcome {
    let work = async {
        let client = deployer.clients.client(&place.context).await?;
        look::look(&client, &place.namespace, &place.hints).await
    };
    let result = match tokio::time::timeout(bound, work).await {
        Ok(Ok(look)) => Ok(look),
        Ok(Err(error)) => Err(format!("could not look: {error}")),
        Err(_) => Err(format!(
            "gave up after {}s: the API server of {} did not answer (is the cluster up? \
             `minikube -p {} status`)",
            bound.as_secs(),
            place.context,
            place.hints.profile
        )),
    };
    PlaceOutcome {
        context: place.context.clone(),
        namespace: place.namespace.clone(),
        result,
    }
}

/// Diagnoses every failed step of a run that has something in a cluster to look at, side by
/// side (each within the bound).
pub async fn diagnose_failures(
    plan: &crate::plan::DeployPlan,
    deployer: &Deployer,
    failed: &crate::engine::PlanFailed<StepError>,
) -> Vec<Diagnosis> {
    let runs = failed.failures.iter().filter_map(|failure| {
        let step = plan.steps().iter().find(|s| s.name == failure.step)?;
        let scope = scope_of(&step.action, &deployer.settings);
        if scope.places.is_empty() && scope.profiles.is_empty() {
            return None;
        }
        eprintln!(
            "diagnosing `{}` (at most {}s)...",
            failure.step,
            deployer.settings.diagnose_timeout.as_secs()
        );
        Some(diagnose_failure(
            deployer,
            &failure.step,
            &step.action,
            &failure.error,
        ))
    });
    futures::future::join_all(runs).await
}
