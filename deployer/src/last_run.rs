//! How long each step really took: kept in `<state>/last-run.json` after every deploy, shown
//! against the estimates at the end of the run, and used by the next `--dry-run` for its
//! critical path.
//!
//! Only steps that finished are measured: a step that failed or never started keeps the duration
//! of the last run that finished it (or its estimate), because a failure's duration says nothing
//! about how long the step takes. Runs of other commands (`central`, then `remote`) add to the
//! same file rather than erase each other's steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::StepResult;

pub const FILE_NAME: &str = "last-run.json";
/// Bumped when the layout changes; a file of another version is read as unusable.
const FORMAT: u32 = 1;

/// The file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub format: u32,
    /// The command of the last run (`all`, `central`, ...).
    pub command: String,
    /// When it ended, UTC, RFC 3339.
    pub finished_at: String,
    pub succeeded: bool,
    /// Per step name: the duration in the last run that finished it.
    pub steps: BTreeMap<String, MeasuredStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredStep {
    pub seconds: f64,
    /// Whether it changed something; an unchanged step (a re-run) is much quicker.
    pub changed: bool,
    /// When the run that measured it ended.
    pub measured_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LastRunError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a last-run file of this deployer: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

impl LastRun {
    /// The file in `state_dir`; None when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Option<LastRun>, LastRunError> {
        let path = path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LastRunError::Read { path, source }),
        };
        let unusable = |reason: String| LastRunError::Unusable {
            path: path.clone(),
            reason,
        };
        let run: LastRun = serde_json::from_str(&text).map_err(|e| unusable(e.to_string()))?;
        if run.format != FORMAT {
            return Err(unusable(format!(
                "format {} (this deployer reads {FORMAT})",
                run.format
            )));
        }
        if let Some((name, _)) = run
            .steps
            .iter()
            .find(|(_, s)| !s.seconds.is_finite() || s.seconds < 0.0)
        {
            return Err(unusable(format!("step `{name}` has no valid duration")));
        }
        Ok(Some(run))
    }

    /// `previous` with this run's finished steps measured anew.
    pub fn merge(
        previous: Option<LastRun>,
        command: &str,
        succeeded: bool,
        finished: &[StepResult],
        finished_at: String,
    ) -> LastRun {
        let mut steps = previous.map(|p| p.steps).unwrap_or_default();
        for result in finished {
            steps.insert(
                result.step.clone(),
                MeasuredStep {
                    seconds: result.elapsed.as_secs_f64(),
                    changed: result.outcome.changed(),
                    measured_at: finished_at.clone(),
                },
            );
        }
        LastRun {
            format: FORMAT,
            command: command.to_string(),
            finished_at,
            succeeded,
            steps,
        }
    }

    /// The measured duration of a step, if any run finished it.
    pub fn duration_of(&self, step: &str) -> Option<Duration> {
        self.steps
            .get(step)
            .map(|s| Duration::from_secs_f64(s.seconds))
    }

    /// Written to a temporary file in the same folder and renamed over the old one, so a reader
    /// (or a crash halfway) never sees half a file.
    pub fn save(&self, state_dir: &Path) -> Result<PathBuf, LastRunError> {
        let path = path(state_dir);
        let write_error = |source| LastRunError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(write_error)?;
        let temporary = state_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let mut text = serde_json::to_string_pretty(self)
            .map_err(std::io::Error::from)
            .map_err(write_error)?;
        text.push('\n');
        let written =
            std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(write_error(source));
        }
        Ok(path)
    }
}

/// Records this run's finished steps in `state_dir`, keeping what earlier runs measured for the
/// other steps. A previous file that cannot be read is replaced (it is only a cache of timings).
pub fn record(
    state_dir: &Path,
    command: &str,
    succeeded: bool,
    finished: &[StepResult],
) -> Result<PathBuf, LastRunError> {
    let previous = LastRun::load(state_dir).ok().flatten();
    LastRun::merge(previous, command, succeeded, finished, now_utc()).save(state_dir)
}

/// `2026-11-29T22:41:07Z`.
pub fn now_utc() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outcome;

    fn finished(step: &str, seconds: u64) -> StepResult {
        StepResult {
            step: step.to_string(),
            outcome: Outcome::Changed("done".into()),
            elapsed: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn a_failed_run_measures_only_the_steps_it_finished() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        record(&state, "all", true, &[finished("a", 10), finished("b", 20)]).unwrap();
        // The second run finished `a` only (then `b` failed).
        record(&state, "all", false, &[finished("a", 12)]).unwrap();
        let run = LastRun::load(&state).unwrap().unwrap();
        assert!(!run.succeeded);
        assert_eq!(run.duration_of("a"), Some(Duration::from_secs(12)));
        assert_eq!(
            run.duration_of("b"),
            Some(Duration::from_secs(20)),
            "the failed step keeps the duration of the run that finished it"
        );
        assert_eq!(run.duration_of("c"), None);
        let leftovers: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_corrupt_file_is_reported_and_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{\"format\": 1, \"steps\": ").unwrap();
        let err = LastRun::load(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("last-run.json is not a last-run file"),
            "{err}"
        );
        std::fs::write(
            path(dir.path()),
            r#"{"format": 1, "command": "all", "finished_at": "x", "succeeded": true,
                "steps": {"a": {"seconds": -3, "changed": true, "measured_at": "x"}}}"#,
        )
        .unwrap();
        let err = LastRun::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("step `a` has no valid duration"),
            "{err}"
        );
        record(dir.path(), "certs", true, &[finished("a", 1)]).unwrap();
        let run = LastRun::load(dir.path()).unwrap().unwrap();
        assert_eq!(run.duration_of("a"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn no_file_is_no_measurement() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LastRun::load(dir.path()).unwrap().is_none());
    }
}
