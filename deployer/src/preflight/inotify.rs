//! Linux's inotify limits are per user, and every node container of every minikube profile runs
//! as the same user: kubelet, containerd, log shippers (Promtail, Alloy, Fluent Bit) and
//! controllers each take instances and watches. Distribution defaults (128 instances, often
//! 8192 watches) run out with two clusters, and the symptom is "too many open files" in a pod far
//! from the cause. kind's known-issues page recommends 512 and 524288; so do we.

use std::path::Path;

use super::Check;

const INSTANCES: (&str, u64) = ("max_user_instances", 512);
const WATCHES: (&str, u64) = ("max_user_watches", 524_288);

/// One check per limit, read from `<proc_root>/sys/fs/inotify/`.
pub fn inotify_checks(proc_root: &Path, clusters: usize) -> Vec<Check> {
    [INSTANCES, WATCHES]
        .iter()
        .map(|(name, wanted)| limit_check(proc_root, name, *wanted, clusters))
        .collect()
}

fn limit_check(proc_root: &Path, name: &str, wanted: u64, clusters: usize) -> Check {
    let key = format!("fs.inotify.{name}");
    let path = proc_root.join("sys/fs/inotify").join(name);
    let value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    match value {
        None => Check::pass(
            key,
            format!("not readable at {} (not Linux?)", path.display()),
        ),
        Some(value) if value >= wanted => Check::pass(key, format!("{value}")),
        Some(value) => Check::warn(
            key.clone(),
            format!(
                "{value}, below {wanted} for {clusters} cluster(s): log shippers and controllers fail \
                 with \"too many open files\""
            ),
            format!(
                "`sudo sysctl -w {key}={wanted}`, and to keep it after a reboot \
                 `echo {key}={wanted} | sudo tee -a /etc/sysctl.d/99-lgtm.conf`"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::Level;

    #[test]
    fn low_limits_warn_with_the_sysctl_to_run() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/fs/inotify");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("max_user_instances"), "128\n").unwrap();
        std::fs::write(dir.join("max_user_watches"), "1048576\n").unwrap();
        let checks = inotify_checks(root.path(), 2);
        assert_eq!(checks[0].level, Level::Warn);
        assert!(
            checks[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("sudo sysctl -w fs.inotify.max_user_instances=512"),
            "{checks:?}"
        );
        assert_eq!(checks[1].level, Level::Pass);
    }
}
