//! Free disk where the container engine keeps its data (the node containers' disks, images and
//! volumes), else where the state folder is. Each profile's disk (`--central-disk-size`,
//! `--remote-disk-size`, minikube's `--disk-size`) is sparse, but may grow to its size as
//! images, volumes and the stores' data fill it.

use std::path::Path;

use crate::settings::ClusterSpec;

use super::Check;
use super::memory::{Memory, parse_memory, show_mib};

/// Below this a run will stop partway (images do not fit): a FAIL.
const BLOCKING_MIB: u64 = 10 * 1024;
/// minikube's own default `--disk-size`, for a size that cannot be read.
const DEFAULT_DISK_MIB: u64 = 20_000;

pub fn disk_check(path: &Path, clusters: &[&ClusterSpec]) -> Check {
    let name = "free disk";
    // The state folder may not exist before the first run; its parent tells the same.
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    let free = match free_mib(existing) {
        Ok(free) => free,
        Err(error) => {
            return Check::warn(
                name,
                format!(
                    "cannot read the free space of {}: {error}",
                    existing.display()
                ),
                "check `df -h` yourself against the profiles' disk sizes",
            );
        }
    };
    // Below what the profiles' disks may grow to: a WARN.
    let comfortable: u64 = clusters
        .iter()
        .map(|c| match parse_memory(&c.disk_size) {
            Some(Memory::Mib(mib)) => mib,
            _ => DEFAULT_DISK_MIB,
        })
        .sum();
    let detail = format!("{} free at {}", show_mib(free), existing.display());
    if free < BLOCKING_MIB {
        Check::fail(
            name,
            format!("{detail}; the images alone need more"),
            "free disk space (`docker system prune` removes unused images and stopped containers)",
        )
    } else if free < comfortable {
        Check::warn(
            name,
            format!(
                "{detail}; the profiles' disks may grow to {}",
                show_mib(comfortable)
            ),
            "free disk space, or give smaller --central-disk-size / --remote-disk-size (they \
             apply when a profile is created)",
        )
    } else {
        Check::pass(name, detail)
    }
}

fn free_mib(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}
