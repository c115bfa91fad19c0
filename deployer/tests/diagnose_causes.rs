//! The diagnosis of a failed step, one cause at a time: the fake API server serves the objects,
//! events and logs of `tests/data/diagnose/<cause>.json` (real shapes; sources in its README),
//! and each test checks the lines the user reads and the files of the bundle.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use deployer::Cli;
use deployer::diagnose::{Diagnosis, diagnose_failure, render};
use deployer::helm::HelmRelease;
use deployer::plan::Action;
use deployer::settings::Settings;
use deployer::steps::{Deployer, StepError};
use deployer::tools::{RunError, Tool, Toolbox};
use serde_json::Value;
use support::fake_api::{FakeApi, kubeconfig};
use support::fake_tools::FakeTools;

/// helm 4's answer when `--wait` runs out on a new release: `upgrade --install` runs the
/// install action, whose error is not prefixed, and the status waiter joins one line per
/// resource not ready with the context's error (helm pkg/kube/statuswait.go; the "Ready: 0/1"
/// message is kstatus's for a StatefulSet).
pub const HELM_TIMEOUT: &str = "Error: resource StatefulSet/mimir/mimir-store-gateway-zone-a not ready. status: InProgress, message: Ready: 0/1\n\
context deadline exceeded\n";

struct Case {
    api: FakeApi,
    tools: FakeTools,
    state: tempfile::TempDir,
    namespace: String,
}

impl Case {
    /// The fake API serving one fixture.
    async fn new(fixture: &str) -> Case {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/diagnose")
            .join(format!("{fixture}.json"));
        let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let api = FakeApi::start().await;
        for object in data["objects"].as_array().unwrap() {
            api.put(object.clone());
        }
        let namespace = data["namespace"].as_str().unwrap().to_string();
        for log in data["logs"].as_array().unwrap() {
            api.set_container_log(
                &namespace,
                log["pod"].as_str().unwrap(),
                log["container"].as_str().unwrap(),
                log["previous"].as_bool().unwrap(),
                log["text"].as_str().unwrap(),
            );
        }
        let tools = FakeTools::new();
        tools.file("kubeconfig", &kubeconfig(&[("lgtm-central", &api.url)]));
        Case {
            api,
            tools,
            state: tempfile::tempdir().unwrap(),
            namespace,
        }
    }

    fn deployer(&self, bound: &str) -> Deployer {
        let kubeconfig = self.tools.root.path().join("kubeconfig");
        let cli = Cli::parse_from([
            "deployer".as_ref(),
            "all".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--state-dir".as_ref(),
            self.state.path().as_os_str(),
            "--diagnose-timeout".as_ref(),
            bound.as_ref(),
        ]);
        let settings = Settings::from_args(&cli.global);
        let toolbox = Toolbox::find(
            [Tool::Helm, Tool::Minikube],
            Some(self.tools.bin().as_os_str()),
        )
        .unwrap();
        Deployer::new(settings, toolbox)
    }

    /// A helm release in the fixture's namespace failed with helm's timeout; `values` is its
    /// values file.
    async fn diagnose(&self, values: &Path, bound: &str) -> Diagnosis {
        let mut release = HelmRelease::new(
            "mimir",
            &self.namespace,
            "grafana/mimir-distributed",
            "6.1.0",
        );
        release.values_files.push(values.to_path_buf());
        let action = Action::InstallRelease {
            context: "lgtm-central".into(),
            release,
        };
        let error = StepError::Command(RunError::Failed {
            command: "helm upgrade --install mimir grafana/mimir-distributed --wait --timeout 300s"
                .into(),
            status: "exit status: 1".into(),
            stderr: HELM_TIMEOUT.into(),
            hint: None,
        });
        diagnose_failure(
            &self.deployer(bound),
            "release lgtm-central/mimir",
            &action,
            &error,
        )
        .await
    }

    fn values_file(&self) -> PathBuf {
        let path = self.state.path().join("mimir.yaml");
        std::fs::write(&path, "minio:\n  enabled: false\nstructuredConfig:\n  common:\n    storage:\n      s3:\n        secret_access_key: values-file-p4ssw0rd\n").unwrap();
        path
    }
}

/// Runs one fixture; returns the rendered lines and the bundle folder.
async fn diagnose(fixture: &str) -> (String, PathBuf, Case) {
    let case = Case::new(fixture).await;
    let values = case.values_file();
    let diagnosis = case.diagnose(&values, "10s").await;
    let text = render::render(&diagnosis);
    let bundle = diagnosis.bundle.clone().unwrap();
    assert_common_files(&diagnosis, &bundle, &text, &case.namespace);
    (text, bundle, case)
}

/// What every bundle holds: the step, the diagnosis as shown, the namespace's events, each pod
/// that is not fine, the helm and minikube answers, our values file.
fn assert_common_files(diagnosis: &Diagnosis, bundle: &Path, text: &str, namespace: &str) {
    let base = format!("lgtm-central/{namespace}");
    let mut files = vec![
        "step.txt".to_string(),
        "diagnosis.txt".to_string(),
        format!("{base}/events.txt"),
        "commands/helm-status.txt".to_string(),
        "commands/helm-history.txt".to_string(),
        "commands/minikube-logs-lgtm-central.txt".to_string(),
        "inputs/mimir.yaml".to_string(),
    ];
    for finding in diagnosis.findings().filter(|f| f.object == "pod") {
        files.push(format!("{base}/pods/{}.json", finding.name));
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    assert_files(bundle, &files);
    let shown = std::fs::read_to_string(bundle.join("diagnosis.txt")).unwrap();
    assert_eq!(
        shown.trim_end(),
        text,
        "the bundle holds what the terminal showed"
    );
}

fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

fn assert_files(bundle: &Path, files: &[&str]) {
    for file in files {
        let path = bundle.join(file);
        assert!(
            path.is_file(),
            "no {file} in {}: {:?}",
            bundle.display(),
            list(bundle)
        );
    }
}

fn list(dir: &Path) -> Vec<String> {
    support::repo::files_under(dir, &["txt", "json", "log", "yaml"])
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

#[tokio::test]
async fn pending_for_lack_of_memory_names_the_flag_to_raise() {
    let (text, bundle, _case) = diagnose("unschedulable").await;
    assert_lines(
        &text,
        &[
            "pod mimir/mimir-ingester-zone-a-0: Pending: 0/1 nodes are available: 1 Insufficient memory.",
            "fix: the node has too little memory for the pods' requests: raise --central-memory (now 16g)",
            "`deployer destroy && deployer all`",
        ],
    );
    assert_files(
        &bundle,
        &[
            "step.txt",
            "diagnosis.txt",
            "lgtm-central/mimir/events.txt",
            "lgtm-central/mimir/pods/mimir-ingester-zone-a-0.json",
            "commands/helm-status.txt",
            "commands/helm-history.txt",
            "commands/minikube-logs-lgtm-central.txt",
            "inputs/mimir.yaml",
        ],
    );
    let events = std::fs::read_to_string(bundle.join("lgtm-central/mimir/events.txt")).unwrap();
    assert!(
        events.contains("Warning  FailedScheduling  Pod/mimir-ingester-zone-a-0"),
        "{events}"
    );
    let step = std::fs::read_to_string(bundle.join("step.txt")).unwrap();
    assert!(step.contains("context deadline exceeded"), "{step}");
}

#[tokio::test]
async fn an_image_missing_from_the_node_says_how_to_check_it() {
    let (text, _, _case) = diagnose("image-never-pull").await;
    assert_lines(
        &text,
        &[
            "pod demo/app-7c9d6b5f4-x2k8p: ErrImageNeverPull: image lgtm-demo-app:0.1.0 of container app: \
             Container image \"lgtm-demo-app:0.1.0\" is not present with pull policy of Never",
            "`minikube -p lgtm-central image ls`",
        ],
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_shows_the_registrys_answer_not_the_backoff() {
    let (text, _, _case) = diagnose("image-pull-backoff").await;
    assert_lines(
        &text,
        &[
            "ImagePullBackOff: image grafana/mimir:9.9.9 of container distributor: Failed to pull image \"grafana/mimir:9.9.9\"",
            "docker.io/grafana/mimir:9.9.9: not found",
            "fix: the node cannot pull the image",
        ],
    );
    assert!(!text.contains("Error: ImagePullBackOff"), "{text}");
}

#[tokio::test]
async fn an_oom_killed_crash_loop_shows_the_exit_and_the_previous_log_tail() {
    let (text, bundle, case) = diagnose("oom-crashloop").await;
    assert_lines(
        &text,
        &[
            "pod mimir/mimir-store-gateway-zone-a-0: CrashLoopBackOff: container store-gateway exited with code 137 (OOMKilled), 5 restarts (log: previous instance)",
            "last log lines of store-gateway:",
            "block=01JDX29",
            "fix: the container used more than its memory limit: raise `resources.limits.memory`",
        ],
    );
    // The terminal shows the last 20 of the log's 30 lines; the bundle keeps them all.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("    | ")).count(),
        20,
        "{text}"
    );
    assert!(!text.contains("block=01JDX09"), "{text}");
    assert_files(
        &bundle,
        &["lgtm-central/mimir/logs/mimir-store-gateway-zone-a-0.store-gateway.previous.log"],
    );
    let log =
        std::fs::read_to_string(bundle.join(
            "lgtm-central/mimir/logs/mimir-store-gateway-zone-a-0.store-gateway.previous.log",
        ))
        .unwrap();
    assert_eq!(log.lines().count(), 30);
    let asked: Vec<String> = case
        .api
        .requests()
        .into_iter()
        .filter(|r| r.contains("/log?"))
        .collect();
    assert!(
        asked
            .iter()
            .any(|r| r.contains("previous=true") && r.contains("container=store-gateway")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_crash_with_an_error_shows_the_log_line_that_says_why() {
    let (text, _, _case) = diagnose("crash-error").await;
    assert_lines(
        &text,
        &[
            "container compactor exited with code 1 (Error), 3 restarts",
            "| error validating config: the Kafka topic has not been configured",
            "fix: the container keeps exiting",
        ],
    );
}

#[tokio::test]
async fn a_failing_readiness_probe_is_quoted() {
    let (text, _, _case) = diagnose("readiness").await;
    assert_lines(
        &text,
        &[
            "pod loki/loki-write-0: Running but not ready: container loki: Readiness probe failed: HTTP probe failed with statuscode: 503",
            "not ready: waiting for 15s after being ready",
        ],
    );
}

#[tokio::test]
async fn a_pending_claim_names_the_storage_class_problem() {
    let (text, _, _case) = diagnose("claim-pending").await;
    assert_lines(
        &text,
        &[
            "claim rustfs/data-rustfs-0: Pending: storageclass.storage.k8s.io \"fast\" not found",
            "`minikube -p lgtm-central addons enable storage-provisioner`",
        ],
    );
}

#[tokio::test]
async fn a_failed_job_shows_its_condition_and_its_pods_log() {
    let (text, bundle, _case) = diagnose("job-failed").await;
    assert_lines(
        &text,
        &[
            "job rustfs/make-buckets: Failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
            "pod rustfs/make-buckets-7xk2p: container mc exited with code 1 (Error)",
            "| mc: <ERROR> Unable to initialize new alias",
        ],
    );
    assert_files(
        &bundle,
        &["lgtm-central/rustfs/logs/make-buckets-7xk2p.mc.log"],
    );
}

#[tokio::test]
async fn a_load_balancer_without_an_address_points_at_metallb() {
    let (text, _, _case) = diagnose("lb-pending").await;
    assert_lines(
        &text,
        &[
            "service linkerd-multicluster/linkerd-gateway: LoadBalancer without an address",
            "`minikube -p lgtm-central addons list`",
        ],
    );
}

#[tokio::test]
async fn the_bundle_masks_the_values_files_password() {
    let (_, bundle, _case) = diagnose("unschedulable").await;
    let values = std::fs::read_to_string(bundle.join("inputs/mimir.yaml")).unwrap();
    assert!(values.contains("secret_access_key: ***"), "{values}");
    for file in list(&bundle) {
        let text = std::fs::read_to_string(bundle.join(&file)).unwrap();
        assert!(!text.contains("values-file-p4ssw0rd"), "{file}: {text}");
    }
}

#[tokio::test]
async fn a_hanging_api_gives_up_within_the_bound_and_still_writes_the_bundle() {
    let case = Case::new("unschedulable").await;
    let hang = case.state.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    case.api.hang_when(&hang);
    let values = case.values_file();
    let started = Instant::now();
    let diagnosis = case.diagnose(&values, "1s").await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let text = render::render(&diagnosis);
    assert!(
        text.contains("namespace mimir in lgtm-central: gave up after 1s: the API server of lgtm-central did not answer"),
        "{text}"
    );
    let step = std::fs::read_to_string(diagnosis.bundle.unwrap().join("step.txt")).unwrap();
    assert!(step.contains("context deadline exceeded"), "{step}");
}

#[tokio::test]
async fn a_healthy_namespace_says_so() {
    let api = FakeApi::start().await;
    let case = Case {
        api,
        tools: FakeTools::new(),
        state: tempfile::tempdir().unwrap(),
        namespace: "mimir".into(),
    };
    case.tools.file(
        "kubeconfig",
        &kubeconfig(&[("lgtm-central", &case.api.url)]),
    );
    let values = case.values_file();
    let diagnosis = case.diagnose(&values, "5s").await;
    assert!(
        render::render(&diagnosis).contains("namespace mimir in lgtm-central: nothing wrong seen"),
        "{}",
        render::render(&diagnosis)
    );
}

#[tokio::test]
async fn an_image_step_bundles_the_nodes_images() {
    let case = Case::new("image-never-pull").await;
    let image = deployer::stack::ImageBuild::demo_app();
    let action = Action::CopyImage {
        from: "lgtm-remote".into(),
        to: "lgtm-central".into(),
        archive: case
            .state
            .path()
            .join("images")
            .join(image.archive_file_name()),
        image,
    };
    let error = StepError::Command(RunError::Failed {
        command: "minikube -p lgtm-central image load lgtm-demo-app-0.1.0.tar".into(),
        status: "exit status: 1".into(),
        stderr: "X Exiting due to GUEST_IMAGE_LOAD: Failed to load image\n".into(),
        hint: None,
    });
    let step = "image lgtm-central/lgtm-demo-app:0.1.0";
    let diagnosis = diagnose_failure(&case.deployer("5s"), step, &action, &error).await;
    let bundle = diagnosis.bundle.unwrap();
    assert_files(
        &bundle,
        &[
            "step.txt",
            "commands/minikube-image-ls-lgtm-central.txt",
            "commands/minikube-image-ls-lgtm-remote.txt",
            "commands/minikube-logs-lgtm-remote.txt",
        ],
    );
    let calls = case.tools.calls();
    assert!(
        calls.contains(&"minikube -p lgtm-central image ls --format table".to_string()),
        "{calls:?}"
    );
}
