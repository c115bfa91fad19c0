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
}

pub async fn deployer_with_path(
    args: &[&str],
    path: &std::ffi::OsStr,
    state: &Path,
    tools: &FakeTools,
) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        // The stack names its values files and manifests relative to the repository root.
        .current_dir(super::repo::repo_root())
        .env_clear()
        .env("PATH", path)
        .env("KUBECONFIG", tools.root.path().join("kubeconfig"))
        .env("LGTM_STATE_DIR", state)
        .output()
        .await
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
