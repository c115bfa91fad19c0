//! Generated credentials (RustFS keys, the Grafana admin password): made once, kept in the state
//! folder beside the certificates (mode 0600), and put into Kubernetes Secrets by the deploy. Kept,
//! so a re-run writes the same Secrets and running pods keep working.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;

/// Long enough for S3 secret keys; alphanumeric so it needs no quoting anywhere.
const LENGTH: usize = 32;

pub fn credentials_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("credentials")
}

/// The credential `name`, made now if it does not exist yet.
pub fn ensure(state_dir: &Path, name: &str) -> std::io::Result<String> {
    let path = credentials_dir(state_dir).join(name);
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.trim().is_empty() => Ok(existing.trim().to_string()),
        _ => {
            let value: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(LENGTH)
                .map(char::from)
                .collect();
            write_private(&path, &value)?;
            Ok(value)
        }
    }
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), "rustfs-secret-key").unwrap();
        assert_eq!(first.len(), LENGTH);
        assert_eq!(ensure(dir.path(), "rustfs-secret-key").unwrap(), first);
        assert_ne!(ensure(dir.path(), "other").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = credentials_dir(dir.path()).join("rustfs-secret-key");
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
