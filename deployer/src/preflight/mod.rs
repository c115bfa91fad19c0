//! Checks of this machine before anything starts, shared by `deployer all|central|remote`
//! (which stops only on a FAIL: a real blocker) and `deployer doctor` (which shows every line):
//!
//! - [`engine`]: the container engine's CPUs and memory (`docker info` / `podman info`) against
//!   the profiles' sizes; minikube itself refuses a profile larger than the engine,
//! - [`inotify`]: on Linux, the inotify limits two clusters' log shippers and controllers need,
//! - [`disk`]: free disk where the engine keeps its data.

pub mod disk;
pub mod engine;
pub mod inotify;
pub mod memory;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::settings::{ClusterSpec, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One line of a check: what was checked, what was found, and the fix when it is not a PASS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub level: Level,
    pub name: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            level: Level::Pass,
            name: name.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            level: Level::Warn,
            name: name.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            level: Level::Fail,
            ..Check::warn(name, detail, fix)
        }
    }

    /// `PASS name: detail`, then `     fix: ...` on its own line.
    pub fn line(&self) -> String {
        let mut line = format!("{} {}: {}", self.level, self.name, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(&format!("\n     fix: {fix}"));
        }
        line
    }
}

/// Where the checks read the machine from; tests point it at their own files.
#[derive(Debug, Clone)]
pub struct Machine {
    /// PATH to find docker or podman on.
    pub search_path: Option<OsString>,
    /// `/proc` on Linux; None elsewhere (no inotify limits to read).
    pub proc_root: Option<PathBuf>,
}

impl Machine {
    pub fn this_one() -> Self {
        Machine {
            search_path: std::env::var_os("PATH"),
            proc_root: cfg!(target_os = "linux").then(|| PathBuf::from("/proc")),
        }
    }
}

/// Every check of the machine for the profiles of `clusters`.
pub async fn machine_checks(
    settings: &Settings,
    clusters: &[&ClusterSpec],
    machine: &Machine,
) -> Vec<Check> {
    let engine = engine::read_engine(settings.driver.tool(), machine.search_path.as_deref()).await;
    let mut checks = engine::engine_checks(&engine, clusters);
    if let Some(proc_root) = &machine.proc_root {
        checks.extend(inotify::inotify_checks(proc_root, clusters.len()));
    }
    let data_dir = engine
        .info()
        .and_then(|i| i.data_dir.clone())
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| settings.state_dir.clone());
    checks.push(disk::disk_check(&data_dir, clusters));
    checks
}

/// The blockers among `checks`, or None when the run can go on.
pub fn blockers(checks: &[Check]) -> Option<Vec<&Check>> {
    let failed: Vec<&Check> = checks.iter().filter(|c| c.level == Level::Fail).collect();
    (!failed.is_empty()).then_some(failed)
}

/// A FAIL before `deployer all` starts: the machine cannot hold the clusters as configured.
#[derive(Debug, Clone, thiserror::Error)]
#[error("preflight: {}", .failed.iter().map(|c| format!("{}: {}", c.name, c.detail)).collect::<Vec<_>>().join("; "))]
pub struct PreflightFailed {
    pub failed: Vec<Check>,
}

impl PreflightFailed {
    pub fn help(&self) -> String {
        let mut lines: Vec<String> = self.failed.iter().filter_map(|c| c.fix.clone()).collect();
        lines.push("`deployer doctor` shows every check of this machine".into());
        lines.join("\n")
    }
}
