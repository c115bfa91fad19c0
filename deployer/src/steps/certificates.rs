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

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
