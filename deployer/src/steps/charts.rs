use crate::engine::Outcome;
use crate::helm::{self, Drift, HelmRelease, HelmRepo, ValuesError};

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

/// `helm upgrade --install` only when the release is missing, not deployed, or deployed with
/// another chart version or other values: an upgrade always makes a new revision and re-applies
/// every object, even when nothing differs.
pub async fn install(
    deployer: &Deployer,
    context: &str,
    release: &HelmRelease,
) -> Result<Outcome, StepError> {
    let what = format!(
        "{} {} in {context}/{}",
        release.chart_name(),
        release.version,
        release.namespace
    );
    let Some(drift) = drift(deployer, context, release).await? else {
        return Ok(Outcome::Unchanged(format!(
            "{what} deployed with the same values"
        )));
    };
    let mut upgrade = helm::upgrade_install(release, context, deployer.settings.wait_timeout);
    if let Drift::NotDeployed { status } = &drift
        && status.starts_with("pending")
    {
        upgrade = upgrade.hint(pending_hint(release, context, status));
    }
    deployer.run(&upgrade).await?;
    Ok(Outcome::Changed(format!("{what}: {drift}")))
}

/// helm refuses to upgrade a release with an operation pending; an interrupted run leaves it so.
fn pending_hint(release: &HelmRelease, context: &str, status: &str) -> String {
    let undo = if status == "pending-install" {
        format!(
            "helm uninstall {} -n {} --kube-context {context}",
            release.name, release.namespace
        )
    } else {
        format!(
            "helm rollback {} -n {} --kube-context {context}",
            release.name, release.namespace
        )
    };
    format!(
        "the release was left {status}, usually by an interrupted run; when no other helm runs \
         against it, `{undo}` and run the deployer again"
    )
}

/// None when the deployed release is what `release` describes.
async fn drift(
    deployer: &Deployer,
    context: &str,
    release: &HelmRelease,
) -> Result<Option<Drift>, StepError> {
    let listed = deployer.run(&helm::list_release(release, context)).await?;
    if let Some(drift) = helm::drift_from_list(release, &helm::parse_list(&listed.stdout)?) {
        return Ok(Some(drift));
    }
    let desired = match helm::desired_values(release) {
        Ok(values) => values,
        Err(ValuesError::Unsupported(reason)) => {
            return Ok(Some(Drift::ValuesUnknown { reason }));
        }
        Err(error) => return Err(error.into()),
    };
    let deployed = deployer.run(&helm::get_values(release, context)).await?;
    let keys = helm::differences(&desired, &helm::parse_values(&deployed.stdout)?);
    Ok((!keys.is_empty()).then_some(Drift::Values { keys }))
}
