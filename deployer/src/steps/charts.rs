use crate::engine::Outcome;
use crate::helm::{self, HelmRelease, HelmRepo};

use super::{Deployer, StepError};

pub async fn add_repos(deployer: &Deployer, repos: &[HelmRepo]) -> Result<Outcome, StepError> {
    for repo in repos {
        deployer.run(&helm::repo_add(repo)).await?;
    }
    deployer.run(&helm::repo_update(repos)).await?;
    // Repositories are local helm state, not cluster state: refreshing them is not reported as
    // a change, so a re-run on a finished setup reports none.
    Ok(Outcome::Unchanged(format!(
        "{} repositories up to date",
        repos.len()
    )))
}

/// `helm upgrade --install` is idempotent; helm itself decides whether a new revision is needed.
pub async fn install(
    deployer: &Deployer,
    context: &str,
    release: &HelmRelease,
) -> Result<Outcome, StepError> {
    deployer
        .run(&helm::upgrade_install(
            release,
            context,
            deployer.settings.wait_timeout,
        ))
        .await?;
    Ok(Outcome::Changed(format!(
        "{} {} in {}/{}",
        release.chart, release.version, context, release.namespace
    )))
}
