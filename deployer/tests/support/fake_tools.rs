//! Fake minikube, helm and linkerd: shell scripts first on PATH that record their arguments and
//! answer like the real tools (profiles "run" once started, `minikube ip` prints a recorded IP).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MINIKUBE: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "minikube $*" >> "$root/calls.log"
cmd="$1"; profile="$3"
if [ -f "$root/fail-minikube-$cmd" ]; then cat "$root/fail-minikube-$cmd" >&2; exit 1; fi
case "$cmd" in
  status)
    if [ -f "$root/running-$profile" ]; then
      printf '{"Name":"%s","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}\n' "$profile"
    else
      printf '{"Name":"%s","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}\n' "$profile"
      exit 7
    fi ;;
  start) sleep 0.5; touch "$root/running-$profile" ;;
  ip) cat "$root/ip-$profile" ;;
  delete) rm -f "$root/running-$profile" ;;
  version) if [ -f "$root/minikube-version" ]; then cat "$root/minikube-version"; else echo v1.38.1; fi ;;
esac
"#;

/// Records its arguments and prints `out-<tool>` when the test wrote one.
const RECORD_ONLY: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
tool="$(basename "$0")"
echo "$tool $*" >> "$root/calls.log"
if [ -f "$root/out-$tool" ]; then cat "$root/out-$tool"; fi
"#;

pub struct FakeTools {
    pub root: tempfile::TempDir,
}

impl FakeTools {
    /// minikube, helm and linkerd; `minikube ip` answers 192.168.49.2 for lgtm-central and
    /// 192.168.49.3 for lgtm-remote.
    pub fn new() -> Self {
        let tools = FakeTools::empty();
        tools.script("minikube", MINIKUBE);
        tools.script("helm", RECORD_ONLY);
        tools.script("linkerd", RECORD_ONLY);
        tools.file("ip-lgtm-central", "192.168.49.2\n");
        tools.file("ip-lgtm-remote", "192.168.49.3\n");
        tools
    }

    /// No tools at all.
    pub fn empty() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("bin")).unwrap();
        FakeTools { root }
    }

    pub fn script(&self, name: &str, body: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn file(&self, name: &str, contents: &str) {
        std::fs::write(self.root.path().join(name), contents).unwrap();
    }

    /// The next `minikube <command>` fails with `stderr`.
    pub fn fail_minikube(&self, command: &str, stderr: &str) {
        self.file(&format!("fail-minikube-{command}"), stderr);
    }

    pub fn bin(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    /// The fake tools first, then the system's basics for the scripts themselves.
    pub fn path_env(&self) -> OsString {
        std::env::join_paths([
            self.bin(),
            Path::new("/usr/bin").into(),
            Path::new("/bin").into(),
        ])
        .unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.root.path().join("calls.log"));
    }
}
