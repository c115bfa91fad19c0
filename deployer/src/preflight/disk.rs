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
/// The check's name in every line it prints.
const NAME: &str = "free disk";
/// minikube's own default `--disk-size`, for a size that cannot be read.
const DEFAULT_DISK_MIB: u64 = 20_000;

pub fn disk_check(path: &Path, clusters: &[&ClusterSpec]) -> Check {
    // The state folder may not exist before the first run; its parent tells the same.
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    match free_mib(existing) {
        Ok(free) => judge_free_disk(free, existing, clusters),
        Err(error) => Check::warn(
            NAME,
            format!(
                "cannot read the free space of {}: {error}",
                existing.display()
            ),
            "check `df -h` yourself against the profiles' disk sizes",
        ),
    }
}

/// `free` MiB at `location`, against the images (a FAIL) and the profiles' disks (a WARN).
fn judge_free_disk(free: u64, location: &Path, clusters: &[&ClusterSpec]) -> Check {
    // Below what the profiles' disks may grow to: a WARN.
    let comfortable: u64 = clusters
        .iter()
        .map(|c| match parse_memory(&c.disk_size) {
            Some(Memory::Mib(mib)) => mib,
            _ => DEFAULT_DISK_MIB,
        })
        .sum();
    let detail = format!("{} free at {}", show_mib(free), location.display());
    if free < BLOCKING_MIB {
        Check::fail(
            NAME,
            format!("{detail}; the images alone need more"),
            "free disk space (`docker system prune` removes unused images and stopped containers)",
        )
    } else if free < comfortable {
        Check::warn(
            NAME,
            format!(
                "{detail}; the profiles' disks may grow to {}",
                show_mib(comfortable)
            ),
            "free disk space, or give smaller --central-disk-size / --remote-disk-size (they \
             apply when a profile is created)",
        )
    } else {
        Check::pass(NAME, detail)
    }
}

fn free_mib(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::Level;
    use crate::settings::Role;

    fn cluster(disk_size: &str) -> ClusterSpec {
        ClusterSpec {
            role: Role::Central,
            profile: "lgtm-central".into(),
            domain: "central.lgtm.local".into(),
            cpus: 2,
            memory: "4g".into(),
            disk_size: disk_size.into(),
        }
    }

    fn judge(free: u64, sizes: &[&str]) -> Check {
        let clusters: Vec<ClusterSpec> = sizes.iter().map(|s| cluster(s)).collect();
        let refs: Vec<&ClusterSpec> = clusters.iter().collect();
        judge_free_disk(free, Path::new("/var/lib/docker"), &refs)
    }

    #[test]
    fn less_than_the_images_need_is_a_blocker() {
        let check = judge(3 * 1024, &["20g"]);
        assert_eq!(check.level, Level::Fail, "{check:?}");
        assert_eq!(
            check.detail,
            "3.0 GiB free at /var/lib/docker; the images alone need more"
        );
    }

    #[test]
    fn less_than_the_profiles_disks_only_warns() {
        let check = judge(30 * 1024, &["20g", "20g"]);
        assert_eq!(check.level, Level::Warn, "{check:?}");
        assert!(check.detail.contains("may grow to 40.0 GiB"), "{check:?}");
    }

    #[test]
    fn an_unreadable_size_counts_as_minikubes_default() {
        assert_eq!(judge(25_000, &["huge"]).level, Level::Pass);
        assert_eq!(judge(15_000, &["huge"]).level, Level::Warn);
    }
}
