use crate::engine::Outcome;
use crate::k8s::apply::{apply_typed, apply_yaml, summarize};
use crate::k8s::dashboards::{config_map, dashboard_files};
use crate::k8s::namespace::ensure_namespace;
use crate::k8s::secret::generated_secret;
use crate::k8s::wait::wait_for_job;
use crate::stack::{Dashboards, GeneratedSecret, ManifestFile, RemoteManifest};

use super::{Deployer, StepError};

pub async fn namespaces(
    deployer: &Deployer,
    context: &str,
    names: &[String],
) -> Result<Outcome, StepError> {
    let client = deployer.clients.client(context).await?;
    let mut applied = Vec::new();
    for name in names {
        applied.push(ensure_namespace(&client, name).await?);
    }
    Ok(outcome(&applied))
}

pub async fn manifest(
    deployer: &Deployer,
    context: &str,
    manifest: &ManifestFile,
) -> Result<Outcome, StepError> {
    let yaml = std::fs::read_to_string(&manifest.path).map_err(|source| StepError::Input {
        path: manifest.path.clone(),
        source,
    })?;
    let client = deployer.clients.client(context).await?;
    let applied = apply_yaml(&client, &yaml, &manifest.namespace).await?;
    // What follows may need the Job's work (the buckets before the stores that write to them).
    for job in applied.iter().filter(|a| a.kind == "Job") {
        let namespace = job.namespace.as_deref().unwrap_or(&manifest.namespace);
        wait_for_job(
            &client,
            namespace,
            &job.name,
            deployer.settings.wait_timeout,
        )
        .await?;
    }
    Ok(outcome(&applied))
}

/// Credentials are made on first use and kept in the state folder, so the Secret is the same on
/// every run and applying it again changes nothing.
pub async fn secret(
    deployer: &Deployer,
    context: &str,
    secret: &GeneratedSecret,
) -> Result<Outcome, StepError> {
    let state_dir = &deployer.settings.state_dir;
    let object = generated_secret(secret, |credential| {
        crate::credentials::ensure(state_dir, credential).map_err(|source| StepError::Input {
            path: crate::credentials::credentials_dir(state_dir).join(credential),
            source,
        })
    })?;
    let client = deployer.clients.client(context).await?;
    let applied = apply_typed(&client, &object, &secret.namespace).await?;
    Ok(outcome(&[applied]))
}

/// kubectl reports each object as `serverside-applied` whether or not it changed, so `kubectl
/// diff` decides first: nothing to change skips the apply; when diff cannot tell (no `diff`
/// program on this machine, an older kubectl) the manifest is applied and reported as changed.
pub async fn remote_manifest(
    deployer: &Deployer,
    profile: &str,
    manifest: &RemoteManifest,
) -> Result<Outcome, StepError> {
    let diff = deployer
        .run(&crate::minikube::diff_url(profile, &manifest.url))
        .await?;
    let compared = match diff.exit_code {
        Some(0) => {
            return Ok(Outcome::Unchanged(format!(
                "{} already applied",
                manifest.name
            )));
        }
        Some(1) => "",
        _ => ", without comparing first (`kubectl diff` failed)",
    };
    let output = deployer
        .run(&crate::minikube::apply_url(profile, &manifest.url))
        .await?;
    let objects = output
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    Ok(Outcome::Changed(format!(
        "{} applied ({objects} objects){compared}",
        manifest.name
    )))
}

pub async fn dashboards(
    deployer: &Deployer,
    context: &str,
    dashboards: &Dashboards,
) -> Result<Outcome, StepError> {
    let input = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| StepError::Input { path, source }
    };
    let files = dashboard_files(&dashboards.dir).map_err(input(&dashboards.dir))?;
    let object = config_map(dashboards, &files, |file| {
        std::fs::read_to_string(file).map_err(input(file))
    })?;
    let client = deployer.clients.client(context).await?;
    let applied = apply_typed(&client, &object, &dashboards.namespace).await?;
    Ok(outcome(&[applied]))
}

fn outcome(applied: &[crate::k8s::Applied]) -> Outcome {
    match summarize(applied) {
        (true, detail) => Outcome::Changed(detail),
        (false, detail) => Outcome::Unchanged(detail),
    }
}
