//! Fake minikube, helm and linkerd: shell scripts first on PATH that record their arguments and
//! answer like the real tools (profiles "run" once started, `minikube ip` prints a recorded IP).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MINIKUBE: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "minikube $*" >> "$root/calls.log"
# `minikube status -p X ...` or `minikube -p X image ...`: the command, then the profile.
if [ "$1" = "-p" ]; then profile="$2"; shift 2; cmd="$1"; else cmd="$1"; profile="$3"; fi
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
  delete) rm -f "$root/running-$profile" "$root/image-$profile" ;;
  version) if [ -f "$root/minikube-version" ]; then cat "$root/minikube-version"; else echo v1.38.1; fi ;;
  kubectl)
    # `kubectl diff` exits 1 until the (one) manifest by URL was applied to the profile.
    case "$3" in
      diff) [ -f "$root/applied-$profile" ] || { echo "+ the manifest"; exit 1; } ;;
      apply) touch "$root/applied-$profile" ;;
    esac ;;
  image)
    # The node's one image as "<tag> <id>"; a build makes the ID in `build-id` (the sources).
    case "$2" in
      build) if [ -f "$root/build-fails-quietly" ]; then echo "X Failed to build image" >&2; exit 0; fi
             id="sha256:1111111111111111"; [ -f "$root/build-id" ] && id="$(cat "$root/build-id")"
             echo "$4 $id" > "$root/image-$profile" ;;
      ls) if [ -f "$root/image-$profile" ]; then read tag id < "$root/image-$profile"
            printf '[{"id":"%s","repoDigests":[],"repoTags":["docker.io/library/%s"],"size":"41234567"}]\n' "$id" "$tag"
          else echo '[]'; fi ;;
      save) [ -f "$root/image-$profile" ] && cp "$root/image-$profile" "$4" ;;
      load) [ -s "$3" ] && cp "$3" "$root/image-$profile" ;;
    esac ;;
esac
exit 0
"#;

/// Keeps releases like helm does, one folder per kube context, namespace and release: `upgrade --install`
/// records it as deployed with its chart and version; `list --filter ^name$` and `get values`
/// answer from there (`values.json` is written by the test: the fake cannot merge YAML).
const HELM: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "helm $*" >> "$root/calls.log"
arg() { flag="$1"; shift; while [ $# -gt 0 ]; do [ "$1" = "$flag" ] && { echo "$2"; return; }; shift; done; }
ns="$(arg --kube-context "$@")/$(arg --namespace "$@")"
case "$1 $2" in
  "upgrade --install")
    if [ -f "$root/fail-helm-$3" ]; then touch "$root/helm-failed-$3"; cat "$root/fail-helm-$3" >&2; exit 1; fi
    dir="$root/helm/$ns/$3"; mkdir -p "$dir"
    printf '[{"name":"%s","namespace":"%s","revision":"1","updated":"2026-11-27 20:00:00 +0000 UTC","status":"deployed","chart":"%s-%s","app_version":"1.0"}]\n' \
      "$3" "${ns#*/}" "${4#*/}" "$(arg --version "$@")" > "$dir/list.json" ;;
  "list --namespace")
    name="$(arg --filter "$@")"; name="${name#^}"; name="${name%\$}"
    if [ -f "$root/helm/$ns/$name/list.json" ]; then cat "$root/helm/$ns/$name/list.json"; else echo '[]'; fi ;;
  "get values")
    if [ -f "$root/helm/$ns/$3/values.json" ]; then cat "$root/helm/$ns/$3/values.json"; else echo null; fi ;;
  *) if [ -f "$root/out-helm" ]; then cat "$root/out-helm"; fi ;;
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
        tools.script("helm", HELM);
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

    /// A release in the cluster of `context` as helm would list it (`status`: deployed, failed,
    /// pending-upgrade, ...).
    pub fn helm_release(
        &self,
        context: &str,
        namespace: &str,
        name: &str,
        chart: &str,
        status: &str,
    ) {
        let dir = self.release_dir(context, namespace, name);
        std::fs::create_dir_all(&dir).unwrap();
        let listed = serde_json::json!([{
            "name": name, "namespace": namespace, "revision": "1",
            "updated": "2026-11-27 20:00:00.123456 +0000 UTC", "status": status,
            "chart": chart, "app_version": "1.0"
        }]);
        std::fs::write(dir.join("list.json"), format!("{listed}\n")).unwrap();
    }

    /// What `helm get values <name> --output json` prints for the release.
    pub fn helm_values(
        &self,
        context: &str,
        namespace: &str,
        name: &str,
        values: &serde_json::Value,
    ) {
        let dir = self.release_dir(context, namespace, name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("values.json"), format!("{values}\n")).unwrap();
    }

    fn release_dir(&self, context: &str, namespace: &str, name: &str) -> PathBuf {
        self.root
            .path()
            .join("helm")
            .join(context)
            .join(namespace)
            .join(name)
    }

    /// `helm upgrade --install <release>` fails with `stderr` (and leaves `helm-failed-<release>`
    /// behind, so a test can tell when it happened).
    pub fn fail_helm_release(&self, release: &str, stderr: &str) {
        self.file(&format!("fail-helm-{release}"), stderr);
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
