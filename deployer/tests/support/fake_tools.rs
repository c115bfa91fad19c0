//! Fake minikube, helm and linkerd: shell scripts first on PATH that record their arguments and
//! answer like the real tools (profiles "run" once started, `minikube ip` prints a recorded IP).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

const MINIKUBE: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "minikube $*" >> "$root/calls.log"
flag() { name="$1"; shift; for a in "$@"; do case "$a" in "--$name="*) echo "${a#*=}"; return;; esac; done; }
version() { if [ -f "$root/minikube-version" ]; then cat "$root/minikube-version"; else echo v1.38.1; fi; }
# The Kubernetes version minikube picks when none is given (DefaultKubernetesVersion per release).
default_kubernetes() {
  case "$(version)" in
    v1.34.*) echo v1.31.0 ;; v1.35.*) echo v1.32.0 ;; v1.36.*) echo v1.33.1 ;;
    v1.37.*) echo v1.34.0 ;; v1.38.0) echo v1.35.0 ;; v1.38.*) echo v1.35.1 ;; *) echo v1.36.0 ;;
  esac
}
# Models pkg/drivers/kic (docker/podman drivers): the first start on a network creates it (the
# static IP's /24 when one is given, else 192.168.49.0/24); a node gets the static IP or the
# network's gateway + 1; an address another node holds fails fast; a start that finds the network
# being created by another start falls back to the default bridge with only a warning.
start() {
  # validateCPUCount (cmd/minikube/cmd/start.go): the docker driver's CPUs come from `docker
  # info` (the fake docker's answer: docker-info.json, else 8), and a profile asking more is
  # refused unless --force.
  cpus="$(flag cpus "$@")"; engine_cpus=8
  [ -f "$root/docker-info.json" ] && engine_cpus="$(sed -n 's/.*"NCPU": *\([0-9]*\).*/\1/p' "$root/docker-info.json" | head -1)"
  if [ -n "$cpus" ] && [ -n "$engine_cpus" ] && [ "$cpus" -gt "$engine_cpus" ]; then
    echo "X Exiting due to RSRC_INSUFFICIENT_CORES: Requested cpu count $cpus is greater than the available cpus of $engine_cpus" >&2; exit 29
  fi
  network="$(flag network "$@")"; static="$(flag static-ip "$@")"
  kubernetes="$(flag kubernetes-version "$@")"; [ -n "$kubernetes" ] || kubernetes="$(default_kubernetes)"
  subnet=""
  if [ -f "$root/network-$network" ]; then subnet="$(cat "$root/network-$network")"
  elif [ -f "$root/creating-network-$network" ]; then
    if [ -n "$static" ]; then
      echo "X Exiting due to IF_DEDICATED_NETWORK: Unable to create dedicated network, this might result in cluster IP change after restart: network $network already exists" >&2; exit 80
    fi
    echo "! Unable to create dedicated network, this might result in cluster IP change after restart: network $network already exists" >&2
    network=bridge; subnet=172.17.0
  else
    touch "$root/creating-network-$network"; sleep 0.3
    if [ -n "$static" ]; then subnet="${static%.*}"; else subnet=192.168.49; fi
    echo "$subnet" > "$root/network-$network"; rm -f "$root/creating-network-$network"
  fi
  if [ -n "$static" ]; then ip="$static"; else ip="$subnet.2"; fi
  if [ "${ip%.*}" != "$subnet" ]; then
    echo "X Exiting due to GUEST_PROVISION: error provisioning guest: Failed to start host: creating host: create: creating: create kic node: create container: docker: Error response from daemon: Invalid address $ip: It does not belong to any of this network's subnets." >&2; exit 80
  fi
  for other in "$root"/running-*; do
    [ -f "$other" ] || continue; other="${other##*/running-}"; [ "$other" = "$profile" ] && continue
    if [ "$(cat "$root/ip-$other" 2>/dev/null)" = "$ip" ]; then
      echo "X Exiting due to GUEST_PROVISION: error provisioning guest: Failed to start host: creating host: create: creating: create kic node: create container: can't create with that IP, address already in use" >&2; exit 80
    fi
  done
  sleep 0.5
  echo "$ip" > "$root/ip-$profile"; echo "$network $ip" > "$root/attached-$profile"
  echo "$kubernetes" > "$root/k8s-$profile"; touch "$root/running-$profile"
}
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
  start) start "$@" ;;
  ip) cat "$root/ip-$profile" ;;
  delete) rm -f "$root/running-$profile" "$root/image-$profile" "$root/attached-$profile" ;;
  version) version ;;
  kubectl)
    # `kubectl diff` exits 1 until the (one) manifest by URL was applied to the profile; the
    # context must be the profile's (kubectl would use the kubeconfig's current one).
    [ "$3" = "--context=$profile" ] || { echo "error: no --context=$profile: kubectl would use the current context" >&2; exit 1; }
    case "$4" in
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
    # exec: the pid written is the sleeping process's own, so a test can see it was killed.
    if [ -f "$root/hang-helm-$3" ]; then echo $$ > "$root/helm-hanging-$3"; exec sleep 600; fi
    # helm v4.2.4 pkg/action/upgrade.go: a release whose last revision is pending-* (an
    # interrupted install or upgrade leaves it so) is refused, whether or not a helm still runs.
    if grep -q '"status":"pending' "$root/helm/$ns/$3/list.json" 2>/dev/null; then
      echo "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress" >&2; exit 1
    fi
    # The charts' kubeVersion floors (their Chart.yaml), against the version the cluster runs.
    case "${4#*/}" in mimir-distributed) floor=32 ;; linkerd-*) floor=31 ;; *) floor=0 ;; esac
    running="$(cat "$root/k8s-$(arg --kube-context "$@")" 2>/dev/null || echo v1.35.1)"
    minor="${running#v1.}"; minor="${minor%%.*}"
    if [ "$minor" -lt "$floor" ]; then
      echo "Error: chart requires kubeVersion: ^1.$floor.0-0 which is incompatible with Kubernetes $running" >&2; exit 1
    fi
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

/// The container engine of the docker driver: builds keep one host image as "<tag> <id>" (the ID
/// in `build-id` when the test wrote one, for changed sources); `save` writes it to the archive;
/// `container inspect` answers a node's networks as docker prints them; `info` answers the
/// preflight (`docker-info.json`, and `docker-info.stderr` for a daemon that is down).
const DOCKER: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "docker $*" >> "$root/calls.log"
case "$1" in
  version) echo 28.2.2 ;;
  # The preflight's question: an engine of 8 CPUs and 32 GiB unless the test wrote its answer.
  info) if [ -f "$root/docker-info.json" ]; then cat "$root/docker-info.json"
        else printf '{"NCPU":8,"MemTotal":34359738368,"OperatingSystem":"Ubuntu 24.04.3 LTS","OSType":"linux","DockerRootDir":"/var/lib/docker"}\n'; fi
        if [ -f "$root/docker-info.stderr" ]; then cat "$root/docker-info.stderr" >&2; exit 1; fi ;;
  build) id="sha256:2222222222222222"; [ -f "$root/build-id" ] && id="$(cat "$root/build-id")"
         echo "$3 $id" > "$root/host-image" ;;
  image) if [ -f "$root/host-image" ]; then read tag id < "$root/host-image"
           [ "$tag" = "$5" ] && { echo "$id"; exit 0; }; fi
         echo "Error response from daemon: No such image: $5" >&2; exit 1 ;;
  save) read tag id < "$root/host-image"; echo "$tag $id" > "$3" ;;
  network) # network rm NAME: refused while a node is attached to it
    for f in "$root"/attached-*; do [ -f "$f" ] || continue; read n ip < "$f"
      if [ "$n" = "$3" ]; then echo "Error response from daemon: error while removing network: network $3 id 5b0d3c7e has active endpoints" >&2; exit 1; fi
    done
    if [ -f "$root/network-$3" ]; then rm "$root/network-$3"; echo "$3"
    else echo "Error response from daemon: network $3 not found" >&2; exit 1; fi ;;
  container) profile="$5"
    if [ ! -f "$root/attached-$profile" ] && [ -f "$root/running-$profile" ]; then
      echo "lgtm $(cat "$root/ip-$profile")" > "$root/attached-$profile"; fi
    if [ -f "$root/attached-$profile" ]; then read network ip < "$root/attached-$profile"
      printf '{"%s":{"IPAMConfig":null,"Links":null,"Aliases":null,"Gateway":"%s.1","IPAddress":"%s","IPPrefixLen":24}}\n' "$network" "${ip%.*}" "$ip"
    else echo "Error response from daemon: No such container: $profile" >&2; exit 1; fi ;;
esac
"#;

/// linkerd: `multicluster link-gen` reads the target cluster's gateway Service from its API (the
/// URL in `api-<context>`) and fails as edge-26.8.3's multicluster/cmd/link-gen.go does when the
/// Service is missing or has no LoadBalancer address; otherwise prints a Link.
const LINKERD: &str = r#"#!/bin/sh
root="$(dirname "$0")/.."
echo "linkerd $*" >> "$root/calls.log"
if [ "$3 $4" = "multicluster link-gen" ] && [ -f "$root/api-$2" ]; then
  body="$(curl -s "$(cat "$root/api-$2")/api/v1/namespaces/linkerd-multicluster/services/linkerd-gateway")"
  case "$body" in *'"kind":"Status"'*) echo 'Error: services "linkerd-gateway" not found' >&2; exit 1 ;; esac
  address="$(echo "$body" | grep -o '"ingress":\[{"ip":"[^"]*"' | sed 's/.*"ip":"//; s/"$//')"
  if [ -z "$address" ]; then echo "Error: gateway linkerd-gateway.linkerd-multicluster has no ingress addresses" >&2; exit 1; fi
  # The credentials carry the kubeconfig entry as minikube wrote it, last-update included.
  kubeconfig="$(printf 'apiVersion: v1\nclusters:\n- cluster:\n    extensions:\n    - extension:\n        last-update: %s\n        provider: minikube.sigs.k8s.io\n      name: cluster_info\n    server: %s\n  name: %s\n' "$(date '+%a, %d %b %Y %H:%M:%S.%N UTC')" "$8" "$6" | base64 -w0)"
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-credentials-%s\n  namespace: linkerd-multicluster\ntype: mirror.linkerd.io/remote-kubeconfig\ndata:\n  kubeconfig: %s\n---\n' "$6" "$kubeconfig"
  printf 'apiVersion: multicluster.linkerd.io/v1alpha3\nkind: Link\nmetadata:\n  name: %s\n  namespace: linkerd-multicluster\nspec:\n  targetClusterName: %s\n  gatewayAddress: %s\n' "$6" "$6" "$address"
  exit 0
fi
if [ -f "$root/out-linkerd" ]; then cat "$root/out-linkerd"; fi
"#;

pub struct FakeTools {
    pub root: tempfile::TempDir,
}

impl FakeTools {
    /// minikube, helm, linkerd and docker. `minikube ip` answers the address a start gave the
    /// node; before any start, 192.168.49.2 for lgtm-central and 192.168.49.3 for lgtm-remote (for
    /// tests that pretend the profiles run).
    pub fn new() -> Self {
        let tools = FakeTools::empty();
        tools.script("minikube", MINIKUBE);
        tools.script("helm", HELM);
        tools.script("linkerd", LINKERD);
        tools.script("docker", DOCKER);
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

    /// An executable `bin/<name>` (see [`testkit::write_executable`] for why not `fs::write`).
    pub fn script(&self, name: &str, body: &str) {
        testkit::write_executable(&self.bin().join(name), body);
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

    /// `helm upgrade --install <release>` never ends; it writes its pid to
    /// `helm-hanging-<release>` once it hangs.
    pub fn hang_helm_release(&self, release: &str) {
        self.file(&format!("hang-helm-{release}"), "");
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

    /// A closure that appends `line` to the call log, to place an event among the tools' calls.
    pub fn note(&self, line: &str) -> impl FnOnce() + Send + 'static {
        let log = self.root.path().join("calls.log");
        let line = format!("{line}\n");
        move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            file.write_all(line.as_bytes()).unwrap();
        }
    }

    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.root.path().join("calls.log"));
    }
}
