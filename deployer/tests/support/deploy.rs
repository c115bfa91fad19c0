//! Running the deployer binary against fake tools on PATH and one fake API server per cluster.

use std::path::Path;
use std::process::Output;

use super::fake_api::{FakeApi, kubeconfig};
use super::fake_tools::FakeTools;

pub struct Setup {
    pub tools: FakeTools,
    pub central: FakeApi,
    pub remote: FakeApi,
    pub state: tempfile::TempDir,
}

impl Setup {
    pub async fn new() -> Self {
        let tools = FakeTools::new();
        let central = FakeApi::start().await;
        let remote = FakeApi::start().await;
        let config = kubeconfig(&[("lgtm-central", &central.url), ("lgtm-remote", &remote.url)]);
        tools.file("kubeconfig", &config);
        for (profile, api) in [("lgtm-central", &central), ("lgtm-remote", &remote)] {
            // The fake linkerd reads the gateway from the API; the API reports the Kubernetes
            // version the fake minikube started the profile with.
            tools.file(&format!("api-{profile}"), &api.url);
            api.version_from(tools.root.path().join(format!("k8s-{profile}")));
        }
        // The Link that link-gen prints is applied to the remote, where linkerd-multicluster
        // (faked helm) brought its CRD.
        remote.install_linkerd_multicluster();
        central_controllers(&central, &tools);
        Setup {
            tools,
            central,
            remote,
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn deployer(&self, args: &[&str]) -> Output {
        deployer_with_path(args, &self.tools.path_env(), self.state.path(), &self.tools).await
    }

    /// The deployer started with more environment variables, its output piped, not awaited.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
        command(args, &self.tools.path_env(), self.state.path(), &self.tools)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The deployer with more environment variables (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub async fn deployer_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        command(args, &self.tools.path_env(), self.state.path(), &self.tools)
            .envs(env.iter().copied())
            .output()
            .await
            .unwrap()
    }
}

/// The multicluster gateway's LoadBalancer address, as the linkerd-multicluster chart creates
/// the Service (annotated with the gateway's identity, which link-gen reads too).
pub const GATEWAY_IP: &str = "192.168.49.202";

/// What the central cluster's controllers do after the deployer's charts and manifests: MetalLB
/// gives the multicluster gateway its address, and the bucket Job's pod finishes. Both happen
/// only once the deployer waits for them, i.e. later than a deployer that does not wait looks.
pub fn central_controllers(central: &FakeApi, tools: &FakeTools) {
    central.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "linkerd-gateway", "namespace": "linkerd-multicluster",
            "annotations": {
                "mirror.linkerd.io/gateway-identity":
                    "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.lgtm-central.cluster.local"
            }
        },
        "spec": {"type": "LoadBalancer", "ports": [{"name": "mc-gateway", "port": 4143}]},
        "status": {"loadBalancer": {}}
    }));
    central.when_awaited(
        "services",
        "linkerd-gateway",
        serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": GATEWAY_IP, "ipMode": "VIP"}]}}}),
        tools.note("controller: service linkerd-multicluster/linkerd-gateway got its address"),
    );
    // The Job's name carries a number bumped when its template changes.
    let buckets =
        super::repo::single_document(&super::repo::manifests_dir().join("central/buckets.yaml"));
    let job = buckets["metadata"]["name"].as_str().unwrap().to_string();
    central.when_awaited(
        "jobs",
        &job,
        serde_json::json!({"status": {
            "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods"},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods"}
            ]
        }}),
        tools.note(&format!("controller: job storage/{job} complete")),
    );
}

pub async fn deployer_with_path(
    args: &[&str],
    path: &std::ffi::OsStr,
    state: &Path,
    tools: &FakeTools,
) -> Output {
    command(args, path, state, tools).output().await.unwrap()
}

fn command(
    args: &[&str],
    path: &std::ffi::OsStr,
    state: &Path,
    tools: &FakeTools,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .args(args)
        // The stack names its values files and manifests relative to the repository root.
        .current_dir(super::repo::repo_root())
        .env_clear()
        .env("PATH", path)
        .env("KUBECONFIG", tools.root.path().join("kubeconfig"))
        .env("LGTM_STATE_DIR", state)
        // This machine's free disk is not what these tests are about, and on a full CI disk it
        // would stop every deploy at the preflight: its thresholds have their own tests.
        .env("LGTM_IGNORE_PREFLIGHT_ERRORS", "disk");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
