//! Writing PEM files: keys readable by the owner only, every file replaced atomically.

use std::io::Write;
use std::path::Path;

use super::generate::MadeCert;
use super::{CertError, PemPair};

pub fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The key goes first: a certificate without its key is useless, the other way round is recoverable.
pub fn write_pair(pair: &PemPair, made: &MadeCert) -> Result<(), CertError> {
    write_file(&pair.key, &made.key_pem, 0o600)?;
    write_file(&pair.cert, &made.cert_pem, 0o644)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
    let error = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    // Written beside the target, then renamed over it, so a crash never leaves half a key.
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = open_with_mode(&temporary, mode).map_err(error)?;
    file.write_all(contents.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

#[cfg(unix)]
fn open_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_with_mode(path: &Path, _mode: u32) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
