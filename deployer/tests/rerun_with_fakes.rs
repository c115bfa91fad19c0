//! Re-running the deployer: releases are upgraded only when something differs, and a second
//! `deployer all` changes nothing and says so. helm and minikube are fakes that keep state like
//! the real tools (releases, the node's image); Kubernetes is a fake API server per cluster.

mod support;

use clap::Parser;
use deployer::helm::HelmRelease;
use deployer::settings::Settings;
use deployer::stack::{Stack, Workload};
use serde_json::Value;
use support::deploy::{Setup, text};
use support::fake_tools::FakeTools;
use support::repo::repo_root;

/// Steps of `deployer all` for the stack in `deployer/src/stack/`.
const STEPS: usize = 45;

fn settings(setup: &Setup) -> Settings {
    let cli = deployer::Cli::parse_from([
        "deployer".as_ref(),
        "all".as_ref(),
        "--state-dir".as_ref(),
        setup.state.path().as_os_str(),
    ]);
    Settings::from_args(&cli.global)
}

/// Every release of a cluster with the values helm would have stored for it. The fake helm
/// cannot merge YAML, so the test answers `helm get values` with the deployer's own merge
/// (`helm_values_match_real_helm` checks that merge against a real helm).
fn releases(setup: &Setup, profile: &str) -> Vec<(HelmRelease, Value)> {
    let settings = settings(setup);
    let stack = Stack::current(&settings);
    let cluster = if profile == "lgtm-central" {
        stack.central
    } else {
        stack.remote
    };
    cluster
        .each()
        .cloned()
        .filter_map(|workload| match workload {
            Workload::Release(mut release) => {
                for file in &mut release.values_files {
                    *file = repo_root().join(&*file);
                }
                let values = deployer::helm::desired_values(&release).unwrap();
                Some((release, values))
            }
            _ => None,
        })
        .collect()
}

fn release(setup: &Setup, profile: &str, name: &str) -> (HelmRelease, Value) {
    releases(setup, profile)
        .into_iter()
        .find(|(release, _)| release.name == name)
        .unwrap_or_else(|| panic!("no release {name} in {profile}"))
}

/// `<chart>-<version>`, as `helm list` shows a release of `release`'s chart and version.
fn deployed_chart(release: &HelmRelease) -> String {
    let chart = release.chart.rsplit('/').next().unwrap_or(&release.chart);
    format!("{chart}-{}", release.version)
}

/// Makes the fake helm report `release` in lgtm-central as `chart` in `status`, with `values`.
fn seed(tools: &FakeTools, release: &HelmRelease, chart: &str, status: &str, values: &Value) {
    let (namespace, name) = (&release.namespace, &release.name);
    tools.helm_release("lgtm-central", namespace, name, chart, status);
    tools.helm_values("lgtm-central", namespace, name, values);
}

/// What helm stores after `helm upgrade --install` of each release: its user-supplied values.
fn remember_values(setup: &Setup) {
    for profile in ["lgtm-central", "lgtm-remote"] {
        for (release, values) in releases(setup, profile) {
            setup
                .tools
                .helm_values(profile, &release.namespace, &release.name, &values);
        }
    }
}

fn upgrades(calls: &[String]) -> Vec<&String> {
    calls
        .iter()
        .filter(|c| c.starts_with("helm upgrade"))
        .collect()
}

/// The progress line of a step: `ok <step> (0.1s): <detail>` or `unchanged <step> ...`.
fn progress_line<'a>(stderr: &'a str, step: &str) -> &'a str {
    stderr
        .lines()
        .find(|line| {
            line.strip_prefix("ok ")
                .or_else(|| line.strip_prefix("unchanged "))
                .is_some_and(|rest| rest.starts_with(&format!("{step} (")))
        })
        .unwrap_or_else(|| panic!("no progress line for {step}:\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_changes_nothing_and_says_so() {
    let setup = Setup::new().await;
    let first = setup.deployer(&["all"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    remember_values(&setup);
    let anchor = std::fs::read(setup.state.path().join("certs/trust-anchor.crt")).unwrap();
    let config_before = setup
        .central
        .get("v1", "ConfigMap", Some("metallb-system"), "config")
        .unwrap();
    setup.tools.clear_calls();

    let second = setup.deployer(&["all"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let stdout = text(&second.stdout);
    assert!(
        stdout.contains(&format!(
            "0 of {STEPS} steps changed something, {STEPS} unchanged"
        )),
        "{stdout}\n{}",
        text(&second.stderr)
    );
    let calls = setup.tools.calls();
    assert!(upgrades(&calls).is_empty(), "{calls:?}");
    let work = [
        "minikube start",
        " apply --server-side",
        "docker save",
        " image load ",
        "helm upgrade",
    ];
    assert!(
        calls.iter().all(|c| work.iter().all(|w| !c.contains(w))),
        "{calls:?}"
    );
    // Every release was looked up, and its values compared.
    let lookups = calls.iter().filter(|c| c.starts_with("helm list")).count();
    let compared = calls
        .iter()
        .filter(|c| c.starts_with("helm get values"))
        .count();
    assert_eq!((lookups, compared), (19, 19), "{calls:?}");
    let stderr = text(&second.stderr);
    assert!(
        progress_line(&stderr, "release lgtm-central/mimir").ends_with(
            ": mimir-distributed 6.1.0 in lgtm-central/mimir deployed with the same values"
        ),
        "{stderr}"
    );
    for profile in ["lgtm-central", "lgtm-remote"] {
        assert!(
            progress_line(&stderr, &format!("image {profile}/lgtm-demo-app:0.1.0"))
                .contains("is the one last built"),
            "{stderr}"
        );
    }
    assert!(
        progress_line(&stderr, "image lgtm-demo-app:0.1.0").ends_with(", sources unchanged"),
        "{stderr}"
    );

    let config_after = setup
        .central
        .get("v1", "ConfigMap", Some("metallb-system"), "config")
        .unwrap();
    assert_eq!(
        config_before["metadata"]["resourceVersion"],
        config_after["metadata"]["resourceVersion"]
    );
    assert_eq!(
        std::fs::read(setup.state.path().join("certs/trust-anchor.crt")).unwrap(),
        anchor
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_image_is_built_and_copied_again() {
    let setup = Setup::new().await;
    assert!(setup.deployer(&["all"]).await.status.success());
    remember_values(&setup);
    // The sources changed: the engine's build makes a new image.
    setup.tools.file("build-id", "sha256:3333333333333333");
    setup.tools.clear_calls();

    let second = setup.deployer(&["all"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let stdout = text(&second.stdout);
    assert!(
        stdout.contains(&format!(
            "3 of {STEPS} steps changed something, {} unchanged\nchanged: image lgtm-demo-app:0.1.0, ",
            STEPS - 3
        )),
        "{stdout}"
    );
    for profile in ["lgtm-central", "lgtm-remote"] {
        assert!(
            stdout.contains(&format!("image {profile}/lgtm-demo-app:0.1.0")),
            "{stdout}"
        );
    }
    let calls = setup.tools.calls();
    let loads: Vec<&String> = calls
        .iter()
        .filter(|c| c.contains(" image load ") || c.starts_with("docker save"))
        .collect();
    assert_eq!(
        loads.len(),
        3,
        "saved once, loaded into each node: {calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains(" image build ")),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_are_upgraded_only_when_something_differs() {
    let setup = Setup::new().await;
    // The certificates first: the control plane's values include them (--set-file).
    assert!(setup.deployer(&["certs"]).await.status.success());
    let tools = &setup.tools;

    // Deployed as wanted: left alone.
    let (monitor, values) = release(&setup, "lgtm-central", "monitor");
    seed(
        tools,
        &monitor,
        &deployed_chart(&monitor),
        "deployed",
        &values,
    );
    // Another chart version.
    let (mimir, values) = release(&setup, "lgtm-central", "mimir");
    seed(
        tools,
        &mimir,
        "mimir-distributed-6.0.0",
        "deployed",
        &values,
    );
    // Other values: one key changed, one that is no longer set.
    let (loki, mut values) = release(&setup, "lgtm-central", "loki");
    values["global"]["clusterDomain"] = "cluster.local".into();
    values["leftOver"] = true.into();
    seed(tools, &loki, &deployed_chart(&loki), "deployed", &values);
    // A failed release is upgraded even with the same chart and values.
    let (tempo, values) = release(&setup, "lgtm-central", "tempo");
    seed(tools, &tempo, &deployed_chart(&tempo), "failed", &values);
    // Another issuer key: the key is named, its value never printed.
    let (control_plane, mut values) = release(&setup, "lgtm-central", "linkerd-control-plane");
    let secret = "-----BEGIN PRIVATE KEY-----\nnot-the-deployed-key\n-----END PRIVATE KEY-----\n";
    values["identity"]["issuer"]["tls"]["keyPEM"] = secret.into();
    let chart = deployed_chart(&control_plane);
    seed(tools, &control_plane, &chart, "deployed", &values);
    // traefik: no release at all.

    let output = setup.deployer(&["central"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let calls = tools.calls();
    let upgraded: Vec<String> = upgrades(&calls)
        .iter()
        .map(|c| c.split(' ').nth(3).unwrap().to_string())
        .collect();
    assert!(!upgraded.contains(&"monitor".to_string()), "{upgraded:?}");
    for name in ["mimir", "loki", "tempo", "linkerd-control-plane", "traefik"] {
        assert!(upgraded.contains(&name.to_string()), "{name}: {upgraded:?}");
    }
    // Values are read only for releases deployed with the wanted chart.
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("helm get values mimir ")
                || c.starts_with("helm get values tempo ")),
        "{calls:?}"
    );

    let stderr = text(&output.stderr);
    let line = |step: &str| progress_line(&stderr, step).to_string();
    assert!(
        line("release lgtm-central/monitor").starts_with("unchanged "),
        "{stderr}"
    );
    for (step, ending) in [
        (
            "release lgtm-central/mimir",
            "upgraded (chart version mimir-distributed-6.0.0 -> mimir-distributed-6.1.0)",
        ),
        (
            "release lgtm-central/loki",
            "upgraded (values differ at global.clusterDomain, leftOver)",
        ),
        (
            "release lgtm-central/tempo",
            "upgraded (release was failed)",
        ),
        ("release lgtm-central/traefik", ": installed"),
        (
            "release lgtm-central/linkerd-control-plane",
            "upgraded (values differ at identity.issuer.tls.keyPEM)",
        ),
    ] {
        assert!(line(step).ends_with(ending), "{step}: {stderr}");
    }
    let issuer_key =
        std::fs::read_to_string(setup.state.path().join("certs/issuer-lgtm-central.key")).unwrap();
    let everything = format!("{stderr}{}", text(&output.stdout));
    for secret in [
        secret.lines().nth(1).unwrap(),
        issuer_key.lines().nth(1).unwrap(),
    ] {
        assert!(
            !everything.contains(secret),
            "a key was printed:\n{everything}"
        );
    }
}

/// An interrupted helm leaves its release pending-upgrade, and helm then refuses every upgrade
/// of it (helm v4.2.4 pkg/action/upgrade.go, `errPending`) until it is rolled back: the rerun
/// fails on that release alone, saying how to clear it, and succeeds once that is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_fails_with_the_command_that_clears_it() {
    let setup = Setup::new().await;
    assert!(setup.deployer(&["certs"]).await.status.success());
    let (cert_manager, values) = release(&setup, "lgtm-central", "cert-manager");
    let chart = deployed_chart(&cert_manager);
    seed(
        &setup.tools,
        &cert_manager,
        &chart,
        "pending-upgrade",
        &values,
    );

    let output = setup.deployer(&["central"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step `release lgtm-central/cert-manager` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("another operation (install/upgrade/rollback) is in progress"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "`helm rollback cert-manager -n {} --kube-context lgtm-central` and run the deployer again",
            cert_manager.namespace
        )),
        "{stderr}"
    );

    // What `helm rollback` leaves: the previous revision, deployed.
    seed(&setup.tools, &cert_manager, &chart, "deployed", &values);
    let again = setup.deployer(&["central"]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// The deployer's merge of values files, --set and --set-file against helm's own: `helm install
/// --dry-run=client --output json` needs no cluster and prints the release with its `config`,
/// the user-supplied values helm stores (and `helm get values` prints back). A chart with no
/// templates stands in for each pinned chart: the stored values do not depend on the chart.
#[test]
#[ignore = "needs helm 4 on PATH or in $HELM (../shared/tools/get-helm)"]
fn helm_values_match_real_helm() {
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".to_string());
    let work = tempfile::tempdir().unwrap();
    let chart = work.path().join("probe");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 1.0.0\n",
    )
    .unwrap();
    let state = work.path().join("state");
    let certs = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["certs"])
        .env_clear()
        .env("LGTM_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(certs.status.success(), "{}", text(&certs.stderr));
    let cli = deployer::Cli::parse_from([
        "deployer".as_ref(),
        "all".as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ]);
    let settings = Settings::from_args(&cli.global);
    let stack = Stack::current(&settings);
    let mut compared = 0;
    for release in stack.central.releases().chain(stack.remote.releases()) {
        let mut args = vec![
            "install".to_string(),
            release.name.clone(),
            chart.display().to_string(),
            "--dry-run=client".to_string(),
            "--namespace".to_string(),
            release.namespace.clone(),
            "--output".to_string(),
            "json".to_string(),
        ];
        for file in &release.values_files {
            args.extend(["--values".to_string(), file.display().to_string()]);
        }
        for (key, value) in &release.set {
            args.extend(["--set".to_string(), format!("{key}={value}")]);
        }
        for (key, file) in &release.set_file {
            args.extend([
                "--set-file".to_string(),
                format!("{key}={}", file.display()),
            ]);
        }
        let output = std::process::Command::new(&helm)
            .args(&args)
            .current_dir(repo_root())
            .output()
            .expect("helm runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        let rendered: Value = serde_json::from_slice(&output.stdout).unwrap();
        let stored = deployer::helm::parse_values(&rendered["config"].to_string()).unwrap();
        let mut ours = release.clone();
        for file in &mut ours.values_files {
            *file = repo_root().join(&*file);
        }
        let desired = deployer::helm::desired_values(&ours).unwrap();
        assert_eq!(
            deployer::helm::differences(&desired, &stored),
            Vec::<String>::new(),
            "release {} ({})",
            release.name,
            release.chart
        );
        compared += 1;
    }
    assert_eq!(compared, 17);
}
