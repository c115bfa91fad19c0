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

/// The machine checks whose FAIL a user may turn into a warning with
/// `--ignore-preflight-errors`, as kubeadm's flag of the same name does. Only the checks that are
/// ours alone: minikube itself refuses a profile larger than its engine's CPUs or memory
/// (`validateCPUCount`, `validateRequestedMemorySize` in its cmd/minikube/cmd/start.go), so
/// ignoring those would only move the failure into `minikube start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topic {
    // Free disk where the engine keeps its data, read on this machine: wrong when the engine's
    // disk is elsewhere (a VM's image, a remote engine). A plain comment: a doc comment here
    // would turn every `--help` into the long layout.
    Disk,
}

impl Topic {
    /// The value `--ignore-preflight-errors` takes for it (clap's own name for the variant).
    fn flag_value(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
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
    /// Set on the checks `--ignore-preflight-errors` can name.
    #[serde(skip)]
    pub topic: Option<Topic>,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            level: Level::Pass,
            name: name.into(),
            detail: detail.into(),
            fix: None,
            topic: None,
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
            topic: None,
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

    /// The same check, nameable by `--ignore-preflight-errors`.
    pub fn about(self, topic: Topic) -> Self {
        Check {
            topic: Some(topic),
            ..self
        }
    }

    /// A FAIL the user chose to ignore becomes a WARN that says so; anything else is unchanged.
    fn unless_ignored(self, ignored: &[Topic]) -> Self {
        let matched = self.topic.filter(|topic| ignored.contains(topic));
        match matched {
            Some(flag) if self.level == Level::Fail => Check {
                level: Level::Warn,
                detail: format!(
                    "{} (a blocker, ignored by --ignore-preflight-errors={})",
                    self.detail,
                    flag.flag_value()
                ),
                ..self
            },
            _ => self,
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
    checks.push(disk::disk_check(&data_dir, clusters).about(Topic::Disk));
    checks
}

/// `checks` with the FAILs the user ignores turned into WARNs.
pub fn ignoring(checks: Vec<Check>, ignored: &[Topic]) -> Vec<Check> {
    checks
        .into_iter()
        .map(|check| check.unless_ignored(ignored))
        .collect()
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
        let topics: Vec<String> = self
            .failed
            .iter()
            .filter_map(|c| c.topic.map(Topic::flag_value))
            .collect();
        if !topics.is_empty() {
            lines.push(format!(
                "if a check is wrong about this machine, go on with --ignore-preflight-errors={}",
                topics.join(",")
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_fail() -> Check {
        Check::fail("free disk", "3.0 GiB free at /tmp", "free disk space").about(Topic::Disk)
    }

    #[test]
    fn an_ignored_blocker_warns_and_says_why() {
        let checks = ignoring(vec![disk_fail()], &[Topic::Disk]);
        assert_eq!(checks[0].level, Level::Warn);
        assert_eq!(
            checks[0].detail,
            "3.0 GiB free at /tmp (a blocker, ignored by --ignore-preflight-errors=disk)"
        );
        assert!(blockers(&checks).is_none());
    }

    #[test]
    fn checks_without_a_topic_and_warnings_are_left_alone() {
        let untopical = Check::fail("helm", "not on PATH", "install helm");
        let warn = Check::warn("free disk", "30 GiB", "free some").about(Topic::Disk);
        let checks = vec![untopical, warn];
        assert_eq!(ignoring(checks.clone(), &[Topic::Disk]), checks);
    }

    #[test]
    fn the_help_names_the_flag_for_the_failed_topics() {
        let failed = PreflightFailed {
            failed: vec![disk_fail()],
        };
        assert!(
            failed
                .help()
                .ends_with("go on with --ignore-preflight-errors=disk"),
            "{}",
            failed.help()
        );
    }
}
