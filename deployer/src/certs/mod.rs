//! Linkerd certificates: one trust anchor shared by both clusters and one issuer per cluster.
//!
//! - `generate.rs` makes new ones with rcgen,
//! - `inspect.rs` reads existing files to decide whether they can be kept,
//! - `files.rs` writes PEM files (keys 0600),
//! - this file holds the policy: keep what is valid, never replace the anchor without `force`.

mod files;
mod generate;
mod inspect;

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

pub use inspect::CertInfo;

/// Both clusters trust this name; Linkerd's default trust domain root.
pub const ANCHOR_COMMON_NAME: &str = "root.linkerd.cluster.local";
/// Ten years, like `step certificate create --profile root-ca`.
pub const ANCHOR_VALIDITY: Duration = Duration::days(3650);
/// One year, like the Linkerd docs' `--not-after 8760h` for the issuer.
pub const ISSUER_VALIDITY: Duration = Duration::days(365);
/// Warn when an issuer has less than this left: renewing takes a redeploy of the control plane.
pub const EXPIRY_WARNING: Duration = Duration::days(60);

/// The issuer's common name, which Linkerd checks against the cluster's trust domain.
pub fn issuer_common_name(domain: &str) -> String {
    format!("identity.linkerd.{domain}")
}

/// A certificate and its key on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl PemPair {
    pub fn anchor(dir: &Path) -> Self {
        PemPair {
            cert: dir.join("trust-anchor.crt"),
            key: dir.join("trust-anchor.key"),
        }
    }

    pub fn issuer(dir: &Path, profile: &str) -> Self {
        PemPair {
            cert: dir.join(format!("issuer-{profile}.crt")),
            key: dir.join(format!("issuer-{profile}.key")),
        }
    }
}

/// The cluster an issuer is for.
#[derive(Debug, Clone)]
pub struct IssuerFor {
    pub profile: String,
    pub domain: String,
}

#[derive(Debug, Clone)]
pub struct CertRequest {
    pub dir: PathBuf,
    pub issuers: Vec<IssuerFor>,
    pub force: bool,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertAction {
    Created(PathBuf),
    Kept(PathBuf),
    /// An issuer that was invalid (expired, other anchor, other domain) and was issued anew.
    Replaced {
        path: PathBuf,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct CertReport {
    pub actions: Vec<CertAction>,
    pub warnings: Vec<String>,
}

impl CertReport {
    /// True when any file was written.
    pub fn changed(&self) -> bool {
        self.actions
            .iter()
            .any(|a| !matches!(a, CertAction::Kept(_)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("the trust anchor in {dir} cannot be used: {reason}")]
    AnchorUnusable { dir: PathBuf, reason: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

impl CertError {
    pub fn help(&self) -> String {
        match self {
            CertError::AnchorUnusable { .. } => "replacing the trust anchor breaks a running mesh \
                until both clusters are redeployed; if that is fine, run `deployer certs --force`"
                .to_string(),
            CertError::Write { .. } | CertError::Read { .. } => {
                "check the permissions of the state folder (--state-dir)".to_string()
            }
            CertError::Generate(_) => "this is a bug in the deployer; please report it".to_string(),
        }
    }
}

/// Makes sure the anchor and every issuer exist and are valid, writing only what is missing or
/// unusable.
pub fn ensure_certificates(request: &CertRequest) -> Result<CertReport, CertError> {
    let mut report = CertReport::default();
    let anchor = PemPair::anchor(&request.dir);
    let anchor_created = ensure_anchor(request, &anchor, &mut report)?;
    let anchor_cert = files::read(&anchor.cert)?;
    let anchor_key = files::read(&anchor.key)?;
    for cluster in &request.issuers {
        let pair = PemPair::issuer(&request.dir, &cluster.profile);
        let expected_cn = issuer_common_name(&cluster.domain);
        let verdict = if anchor_created {
            Err("the trust anchor is new".to_string())
        } else {
            inspect::check_issuer(&pair, &anchor_cert, &expected_cn, request.now)
        };
        match verdict {
            Ok(info) => {
                if info.not_after - request.now < EXPIRY_WARNING {
                    report.warnings.push(format!(
                        "the issuer for {} expires on {} (less than 60 days left); delete {} and \
                         run `deployer certs` to issue a new one with the same trust anchor",
                        cluster.profile,
                        info.not_after.date(),
                        pair.cert.display()
                    ));
                }
                report.actions.push(CertAction::Kept(pair.cert.clone()));
            }
            Err(reason) => {
                let existed = pair.cert.exists() || pair.key.exists();
                let made = generate::issuer(&expected_cn, &anchor_cert, &anchor_key, request.now)?;
                files::write_pair(&pair, &made)?;
                report.actions.push(if existed && !anchor_created {
                    CertAction::Replaced {
                        path: pair.cert.clone(),
                        reason,
                    }
                } else {
                    CertAction::Created(pair.cert.clone())
                });
            }
        }
    }
    Ok(report)
}

/// Returns true when a new anchor was written.
fn ensure_anchor(
    request: &CertRequest,
    anchor: &PemPair,
    report: &mut CertReport,
) -> Result<bool, CertError> {
    let any_exists = anchor.cert.exists() || anchor.key.exists();
    if any_exists && !request.force {
        return match inspect::check_anchor(anchor, request.now) {
            Ok(_) => {
                report.actions.push(CertAction::Kept(anchor.cert.clone()));
                Ok(false)
            }
            Err(reason) => Err(CertError::AnchorUnusable {
                dir: request.dir.clone(),
                reason,
            }),
        };
    }
    let made = generate::anchor(request.now)?;
    files::write_pair(anchor, &made)?;
    report.actions.push(if any_exists {
        CertAction::Replaced {
            path: anchor.cert.clone(),
            reason: "--force".to_string(),
        }
    } else {
        CertAction::Created(anchor.cert.clone())
    });
    Ok(true)
}
