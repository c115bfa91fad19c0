//! Free disk where the container engine keeps its data (the node containers' disks, images and
//! volumes), else where the state folder is. Each minikube profile gets a 20000 MB disk by
//! default (sparse), and the stack's images take several GB per cluster.

use std::path::Path;

use super::Check;
use super::memory::show_mib;

/// Below this a run will stop partway (images do not fit): a FAIL.
const BLOCKING_MIB: u64 = 10 * 1024;
/// Per profile, what minikube's default disk may grow to: below it, a WARN.
const COMFORTABLE_MIB_PER_PROFILE: u64 = 20_000;

pub fn disk_check(path: &Path, profiles: usize) -> Check {
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
                "check `df -h` yourself: two profiles need about 40 GB",
            );
        }
    };
    let comfortable = COMFORTABLE_MIB_PER_PROFILE * profiles.max(1) as u64;
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
                "{detail}; {profiles} profile(s) may grow to {}",
                show_mib(comfortable)
            ),
            "free disk space before the first run pulls the images",
        )
    } else {
        Check::pass(name, detail)
    }
}

fn free_mib(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}
