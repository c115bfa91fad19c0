//! The command line as a user sees it: help texts and dry-run plans, snapshot-tested so any change
//! shows up in review.

use std::process::Output;

use deployer::plan::{Action, Target, build_plan};
use deployer::settings::Settings;
use deployer::stack::Stack;

/// Runs the binary with a clean environment, so no LGTM_* or KUBECONFIG of the developer leaks in,
/// from a copy of the repository root without its state folder.
fn deployer(args: &[&str]) -> Output {
    let root = root_without_state();
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_clear()
        .current_dir(root.path())
        .output()
        .unwrap()
}

/// The repository root as a user runs the deployer from it (manifests/, the demo's sources), but
/// without the `.state` folder a developer's own `deployer certs` or `all` left there: the plans
/// must not depend on it.
fn root_without_state() -> tempfile::TempDir {
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let root = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != ".state" {
            std::os::unix::fs::symlink(entry.path(), root.path().join(entry.file_name())).unwrap();
        }
    }
    root
}

fn stdout_of(args: &[&str]) -> String {
    let output = deployer(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help() {
    insta::assert_snapshot!("help", stdout_of(&["--help"]));
    for command in [
        "certs", "central", "remote", "all", "status", "verify", "loadtest", "doctor", "destroy",
    ] {
        insta::assert_snapshot!(format!("help_{command}"), stdout_of(&[command, "--help"]));
    }
}

#[test]
fn all_dry_run_plan() {
    insta::assert_snapshot!("dry_run_all", stdout_of(&["all", "--dry-run"]));
}

#[test]
fn other_dry_runs() {
    for command in [
        "certs", "central", "remote", "status", "verify", "doctor", "destroy",
    ] {
        insta::assert_snapshot!(
            format!("dry_run_{command}"),
            stdout_of(&[command, "--dry-run"])
        );
    }
}

#[test]
fn flags_and_environment_change_the_plan() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["central", "--dry-run", "--central-cpus", "4"])
        .env_clear()
        .env("LGTM_CENTRAL_CPUS", "8")
        .env("LGTM_DRIVER", "docker")
        .env("LGTM_NETWORK", "shared")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);
    // The flag wins over the environment, the environment over the default.
    assert!(plan.contains("--cpus=4 "), "{plan}");
    assert!(plan.contains("--network=shared "), "{plan}");
    assert!(plan.contains("--driver=docker"), "{plan}");
}

#[test]
fn a_dry_run_changes_nothing_and_needs_no_tools() {
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["all", "--dry-run", "--state-dir"])
        .arg(state.path().join("state"))
        .env_clear()
        .env("PATH", state.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(!state.path().join("state").exists());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("planned in"), "{stderr}");
}

#[test]
fn every_step_comes_after_what_it_needs() {
    let cli = <deployer::Cli as clap::Parser>::parse_from(["deployer", "all"]);
    let settings = Settings::from_args(&cli.global);
    let plan = build_plan(&settings, &Stack::current(&settings), Target::All).unwrap();
    let position = |name: &str| {
        plan.index_of(name)
            .unwrap_or_else(|| panic!("no step {name}"))
    };
    for (index, step) in plan.steps().iter().enumerate() {
        for dependency in &step.depends_on {
            assert!(
                position(dependency) < index,
                "{} before {dependency}",
                step.name
            );
        }
    }
    for profile in ["lgtm-central", "lgtm-remote"] {
        let start = position(&format!("start {profile}"));
        assert!(start < position(&format!("metallb {profile}")));
        assert!(start < position(&format!("namespaces {profile}")));
        let step = &plan.steps()[position(&format!("metallb {profile}"))];
        assert!(step.depends_on.contains(&format!("start {profile}")));
    }
    // The remote starts once the central node runs (they share one network, see
    // minikube::network); everything else of the two clusters goes side by side.
    let remote = &plan.steps()[position("start lgtm-remote")];
    assert_eq!(remote.depends_on, ["start lgtm-central"]);
    let central = &plan.steps()[position("start lgtm-central")];
    assert!(central.depends_on.is_empty());
    let network = &plan.steps()[position("network lgtm")];
    assert_eq!(
        network.depends_on,
        ["start lgtm-central", "start lgtm-remote"]
    );
    let link = &plan.steps()[position("link lgtm-remote to lgtm-central")];
    assert!(link.depends_on.iter().any(|d| d == "network lgtm"));
    // The stores that write to the buckets wait for the bucket Job, and not for each other.
    for store in ["mimir", "loki", "tempo"] {
        let step = &plan.steps()[position(&format!("release lgtm-central/{store}"))];
        assert!(
            step.depends_on
                .iter()
                .any(|d| d == "manifest lgtm-central/buckets"),
            "{store}: {:?}",
            step.depends_on
        );
        assert!(
            !step.depends_on.iter().any(|d| d.starts_with("release ")),
            "{store}: {:?}",
            step.depends_on
        );
    }
    let critical = plan.critical_path();
    assert!(critical.total < plan.serial_estimate());
    // No longer than when both profiles started at once and the stores one after the other.
    assert!(
        critical.total <= std::time::Duration::from_secs(15 * 60 + 3),
        "{critical:?}"
    );
}

#[test]
fn the_image_is_built_once_on_this_machine_and_loaded_into_each_node() {
    let cli = <deployer::Cli as clap::Parser>::parse_from(["deployer", "all"]);
    let settings = Settings::from_args(&cli.global);
    let plan = build_plan(&settings, &Stack::current(&settings), Target::All).unwrap();
    let step = |name: &str| {
        let index = plan
            .index_of(name)
            .unwrap_or_else(|| panic!("no step {name}"));
        &plan.steps()[index]
    };
    let builds: Vec<&str> = plan
        .steps()
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::BuildImage { .. } | Action::BuildImageInCluster { .. }
            )
        })
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(builds, ["image lgtm-demo-app:0.1.0"]);
    // The build needs no cluster, so it runs from the start.
    assert!(step(builds[0]).depends_on.is_empty());
    for profile in ["lgtm-central", "lgtm-remote"] {
        let load = step(&format!("image {profile}/lgtm-demo-app:0.1.0"));
        assert_eq!(
            load.depends_on,
            [
                "image lgtm-demo-app:0.1.0".to_string(),
                format!("start {profile}")
            ]
        );
        let Action::LoadImage { archive, .. } = &load.action else {
            panic!("{load:?}");
        };
        assert_eq!(
            archive,
            &settings.state_dir.join("images/lgtm-demo-app-0.1.0.tar")
        );
        // Each cluster's agent waits for the image in its own node.
        let agent = step(&format!("manifest {profile}/telemetry-agent"));
        assert!(
            agent.depends_on.iter().any(|d| d == &load.name),
            "{profile}: {:?}",
            agent.depends_on
        );
    }
}

#[test]
fn the_cluster_builder_compiles_in_the_central_node_and_copies() {
    let cli = <deployer::Cli as clap::Parser>::parse_from([
        "deployer",
        "all",
        "--image-builder",
        "cluster",
    ]);
    let settings = Settings::from_args(&cli.global);
    let images = |target| {
        build_plan(&settings, &Stack::current(&settings), target)
            .unwrap()
            .steps()
            .iter()
            .map(|s| s.action.clone())
            .filter(|a| {
                matches!(
                    a,
                    Action::BuildImage { .. }
                        | Action::LoadImage { .. }
                        | Action::BuildImageInCluster { .. }
                        | Action::CopyImage { .. }
                )
            })
            .collect::<Vec<_>>()
    };
    let all = images(Target::All);
    assert!(
        matches!(
            &all[..],
            [
                Action::BuildImageInCluster { profile, .. },
                Action::CopyImage { from, to, .. }
            ] if profile == "lgtm-central" && from == "lgtm-central" && to == "lgtm-remote"
        ),
        "{all:?}"
    );
    // Deployed alone, the remote cluster builds the image itself.
    let remote = images(Target::Remote);
    assert!(
        matches!(&remote[..], [Action::BuildImageInCluster { profile, .. }] if profile == "lgtm-remote"),
        "{remote:?}"
    );
}
