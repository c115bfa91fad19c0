//! Which Kubernetes events were already pushed to Loki, kept in a small JSON state file so a
//! restarted agent (which re-lists every event) does not push them again.
//!
//! Why a file and not a ConfigMap: it needs no write access to the Kubernetes API (the agent
//! only lists and watches), costs no API-server write per batch, and survives container
//! restarts on an `emptyDir` (or across pod moves on a small PVC). The key is the event's
//! uid plus its resourceVersion: an event that happens again is the same object with a
//! higher `count` and a new resourceVersion, and that new occurrence is sent; a re-listed
//! unchanged event has the same pair and is skipped. Kubernetes keeps events for an hour by
//! default, so remembering the most recent N (oldest forgotten first) is enough.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the events state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the events state file {path} is not valid ({source}); move it away to start afresh")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the events state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct StateFile {
    /// `[uid, resourceVersion]`, oldest first.
    sent: Vec<(String, String)>,
}

pub struct SentEvents {
    path: PathBuf,
    capacity: usize,
    by_uid: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SentEvents {
    /// Loads the file, or starts empty when it does not exist yet.
    pub fn load(path: &Path, capacity: usize) -> Result<Self, StateError> {
        let mut state = Self {
            path: path.to_owned(),
            capacity: capacity.max(1),
            by_uid: HashMap::new(),
            order: VecDeque::new(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|source| StateError::Parse {
            path: path.to_owned(),
            source,
        })?;
        for (uid, rv) in file.sent {
            state.remember(uid, rv);
        }
        Ok(state)
    }

    pub fn was_sent(&self, uid: &str, resource_version: &str) -> bool {
        self.by_uid
            .get(uid)
            .is_some_and(|rv| rv == resource_version)
    }

    pub fn remember(&mut self, uid: String, resource_version: String) {
        if self.by_uid.insert(uid.clone(), resource_version).is_none() {
            self.order.push_back(uid);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.by_uid.remove(&oldest);
            }
        }
    }

    /// Writes the file atomically (temporary file, fsync, rename): a crash leaves the old or
    /// the new state, never half of one.
    pub fn save(&self) -> Result<(), StateError> {
        let write_error = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let file = StateFile {
            sent: self
                .order
                .iter()
                .filter_map(|uid| Some((uid.clone(), self.by_uid.get(uid)?.clone())))
                .collect(),
        };
        let json = serde_json::to_vec(&file).map_err(|e| write_error(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("tmp");
        let mut out = std::fs::File::create(&tmp).map_err(write_error)?;
        out.write_all(&json).map_err(write_error)?;
        out.sync_all().map_err(write_error)?;
        std::fs::rename(&tmp, &self.path).map_err(write_error)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_forgets_the_oldest() {
        let dir = std::env::temp_dir().join(format!("sent-events-{}", std::process::id()));
        let path = dir.join("state.json");
        let mut s = SentEvents::load(&path, 2).unwrap();
        assert!(s.is_empty());
        s.remember("a".into(), "1".into());
        s.remember("b".into(), "1".into());
        s.remember("a".into(), "2".into());
        s.save().unwrap();
        let again = SentEvents::load(&path, 2).unwrap();
        assert!(again.was_sent("a", "2") && !again.was_sent("a", "1") && again.was_sent("b", "1"));
        let mut small = again;
        small.remember("c".into(), "1".into());
        assert_eq!(small.len(), 2);
        assert!(
            !small.was_sent("a", "2"),
            "the oldest uid is forgotten first"
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            SentEvents::load(&path, 2),
            Err(StateError::Parse { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
