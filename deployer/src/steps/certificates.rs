use time::OffsetDateTime;

use crate::certs::{CertAction, CertRequest, IssuerFor, ensure_certificates};
use crate::engine::Outcome;

use super::{Deployer, StepError};

pub fn ensure(deployer: &Deployer, force: bool) -> Result<Outcome, StepError> {
    let settings = &deployer.settings;
    let request = CertRequest {
        dir: settings.certs_dir(),
        issuers: settings
            .clusters()
            .iter()
            .map(|c| IssuerFor {
                profile: c.profile.clone(),
                domain: c.domain.clone(),
            })
            .collect(),
        force,
        now: OffsetDateTime::now_utc(),
    };
    let report = ensure_certificates(&request)?;
    for warning in &report.warnings {
        deployer.warn(warning.clone());
    }
    let anchor_replaced = report.actions.iter().any(
        |a| matches!(a, CertAction::Replaced { path, .. } if path.ends_with("trust-anchor.crt")),
    );
    if anchor_replaced {
        deployer.warn(restart_after_new_anchor(settings));
    }
    let described: Vec<String> = report
        .actions
        .iter()
        .map(|action| match action {
            CertAction::Created(path) => format!("created {}", file_name(path)),
            CertAction::Kept(path) => format!("kept {}", file_name(path)),
            CertAction::Replaced { path, reason } => {
                format!("replaced {} ({reason})", file_name(path))
            }
        })
        .collect();
    let detail = described.join(", ");
    Ok(if report.changed() {
        Outcome::Changed(detail)
    } else {
        Outcome::Unchanged(detail)
    })
}

/// Running proxies keep the anchor they started with, so after a new one every meshed pod must be
/// restarted once the control planes have it (which the next `deployer all` installs).
fn restart_after_new_anchor(settings: &crate::settings::Settings) -> String {
    let stack = crate::stack::Stack::current(settings);
    let mut lines = vec![
        "the trust anchor was replaced (--force): running proxies still trust the old one and \
         cannot talk to proxies with certificates from the new one. Run `deployer all` (it \
         installs the new anchor and issuers), then restart every meshed workload:"
            .to_string(),
    ];
    for (cluster, workloads) in [
        (&settings.central, &stack.central),
        (&settings.remote, &stack.remote),
    ] {
        let profile = &cluster.profile;
        for namespace in
            std::iter::once("linkerd").chain(workloads.namespaces.iter().map(String::as_str))
        {
            lines.push(format!(
                "  minikube -p {profile} kubectl -- --context={profile} rollout restart \
                 deployment,statefulset,daemonset --namespace {namespace}"
            ));
        }
    }
    lines.join("\n")
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
