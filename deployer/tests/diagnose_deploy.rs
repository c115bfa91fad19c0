//! `deployer all` with an injected failure: fake helm exits with helm's real `--wait` timeout
//! for the mimir release while the fake central API server shows why (a store-gateway killed
//! for memory, an ingester the scheduler cannot place). The run must end with the original
//! error, then the diagnosis, then the bundle's path, exit non-zero, and leave no secret in the
//! bundle.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::deploy::{Setup, text};

const HELM_TIMEOUT: &str = "Error: resource StatefulSet/mimir/mimir-store-gateway-zone-a not ready. status: InProgress, message: Ready: 0/1\n\
resource StatefulSet/mimir/mimir-ingester-zone-a not ready. status: InProgress, message: Ready: 0/1\n\
context deadline exceeded\n";

/// Known before the run, so the test can look for it: the deployer keeps existing credentials.
const RUSTFS_SECRET: &str = "Zq8vRUSTFSsecretKEYfromSTATE0042";

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/diagnose")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The central cluster's mimir namespace as it looks when helm gives up.
fn serve_failing_mimir(setup: &Setup) {
    for name in ["oom-crashloop", "unschedulable"] {
        let data = fixture(name);
        for object in data["objects"].as_array().unwrap() {
            let mut object = object.clone();
            // A chart that renders the S3 key into the environment, as some do.
            if object["kind"] == "Pod" && name == "oom-crashloop" {
                object["spec"]["containers"][0]["env"] = json!([
                    {"name": "RUSTFS_SECRET_KEY", "value": RUSTFS_SECRET},
                    {"name": "GOMAXPROCS", "value": "2"}
                ]);
            }
            setup.central.put(object);
        }
    }
    let log = format!(
        "ts=2026-11-27T20:02:30.000Z caller=s3.go:88 level=info msg=\"connecting\" endpoint=rustfs.storage.svc:9000 secret_access_key={RUSTFS_SECRET}\n"
    );
    setup.central.set_container_log(
        "mimir",
        "mimir-store-gateway-zone-a-0",
        "store-gateway",
        true,
        &log,
    );
    setup.tools.fail_helm_release("mimir", HELM_TIMEOUT);
    let credentials = setup.state.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("rustfs-secret-key"), RUSTFS_SECRET).unwrap();
}

fn bundle_of(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("diagnostics of `release lgtm-central/mimir` saved in "))
        .unwrap_or_else(|| panic!("no bundle line in:\n{stderr}"));
    let path = line
        .trim_start_matches("diagnostics of `release lgtm-central/mimir` saved in ")
        .split("/ (")
        .next()
        .unwrap();
    PathBuf::from(path)
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("missing {needle:?} in:\n{haystack}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_timeout_ends_with_the_error_then_the_diagnosis_then_the_bundle() {
    let setup = Setup::new().await;
    serve_failing_mimir(&setup);
    let output = setup.deployer(&["all"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");

    let error = position(
        &stderr,
        "error: step `release lgtm-central/mimir` failed: `helm upgrade --install mimir",
    );
    let helm = position(&stderr, "context deadline exceeded");
    let diagnosis = position(&stderr, "diagnosis of `release lgtm-central/mimir` (");
    let oom = position(
        &stderr,
        "pod mimir/mimir-store-gateway-zone-a-0: CrashLoopBackOff: container store-gateway exited with code 137 (OOMKilled)",
    );
    let pending = position(
        &stderr,
        "pod mimir/mimir-ingester-zone-a-0: Pending: 0/1 nodes are available: 1 Insufficient memory.",
    );
    let fix = position(&stderr, "raise --central-memory (now 16g)");
    let bundle = position(
        &stderr,
        "diagnostics of `release lgtm-central/mimir` saved in ",
    );
    assert!(error < helm && helm < diagnosis, "{stderr}");
    assert!(
        diagnosis < oom && diagnosis < pending && pending < fix,
        "{stderr}"
    );
    assert!(fix < bundle, "{stderr}");
    assert_eq!(
        stderr
            .trim_end()
            .lines()
            .last()
            .map(|l| l.starts_with("diagnostics of")),
        Some(true),
        "{stderr}"
    );

    let dir = bundle_of(&stderr);
    assert!(
        dir.starts_with(setup.state.path().join("diagnostics")),
        "{}",
        dir.display()
    );
    for file in [
        "step.txt",
        "diagnosis.txt",
        "lgtm-central/mimir/events.txt",
        "lgtm-central/mimir/pods/mimir-store-gateway-zone-a-0.json",
        "lgtm-central/mimir/logs/mimir-store-gateway-zone-a-0.store-gateway.previous.log",
        "commands/helm-status.txt",
        "commands/minikube-logs-lgtm-central.txt",
        "inputs/mimir.yaml",
    ] {
        assert!(dir.join(file).is_file(), "no {file} in {}", dir.display());
    }
    let calls = setup.tools.calls();
    assert!(
        calls.contains(
            &"helm status mimir --namespace mimir --kube-context lgtm-central".to_string()
        ),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"minikube -p lgtm-central logs --length 200".to_string()),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_holds_no_secret() {
    let setup = Setup::new().await;
    serve_failing_mimir(&setup);
    let output = setup.deployer(&["all"]).await;
    let stderr = text(&output.stderr);
    let dir = bundle_of(&stderr);
    // The Secret the deploy applied, as the API server stores it.
    let secret = setup
        .central
        .get("v1", "Secret", Some("mimir"), "rustfs-credentials")
        .expect("the deploy applied the RustFS credentials to mimir");
    let mut forbidden = vec![RUSTFS_SECRET.to_string()];
    for (_, value) in secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .chain(secret["stringData"].as_object().into_iter().flatten())
    {
        forbidden.push(value.as_str().unwrap().to_string());
    }
    for entry in std::fs::read_dir(setup.state.path().join("credentials")).unwrap() {
        forbidden.push(
            std::fs::read_to_string(entry.unwrap().path())
                .unwrap()
                .trim()
                .to_string(),
        );
    }
    let files = support::repo::files_under(&dir, &["txt", "json", "log", "yaml"]);
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let content = std::fs::read_to_string(file).unwrap();
        for secret in &forbidden {
            assert!(
                !content.contains(secret.as_str()),
                "{} holds {secret}",
                file.display()
            );
        }
    }
    assert!(!stderr.contains(RUSTFS_SECRET), "{stderr}");
    let pod = std::fs::read_to_string(
        dir.join("lgtm-central/mimir/pods/mimir-store-gateway-zone-a-0.json"),
    )
    .unwrap();
    assert!(
        pod.contains("\"GOMAXPROCS\""),
        "the env is there, masked where secret: {pod}"
    );
    // The diagnosis never lists Secrets (the apply steps read their own Secrets by name).
    let reads: Vec<String> = setup
        .central
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET") && (r.contains("/secrets?") || r.ends_with("/secrets")))
        .collect();
    assert!(reads.is_empty(), "{reads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_api_server_still_shows_the_error_within_the_bound() {
    let setup = Setup::new().await;
    serve_failing_mimir(&setup);
    // The API stops answering the moment helm fails, so only the diagnosis meets it.
    setup
        .central
        .hang_when(&setup.tools.root.path().join("helm-failed-mimir"));
    let started = Instant::now();
    let output = setup
        .deployer_with_env(&["all"], &[("LGTM_DIAGNOSE_TIMEOUT", "2s")])
        .await;
    let took = started.elapsed();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = position(&stderr, "error: step `release lgtm-central/mimir` failed");
    let gave_up = position(&stderr, "namespace mimir in lgtm-central: gave up after 2s");
    assert!(error < gave_up, "{stderr}");
    assert!(stderr.contains("context deadline exceeded"), "{stderr}");
    bundle_of(&stderr);
    // The whole deploy with the fakes takes a few seconds; the diagnosis adds its bound.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
