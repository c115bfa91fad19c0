//! The command line as a user sees it: help texts and dry-run plans, snapshot-tested so any change
//! shows up in review.

use std::process::Output;

use deployer::plan::{Action, Target, build_plan};
use deployer::settings::Settings;
use deployer::stack::Stack;

/// Runs the binary with a clean environment, so no LGTM_* or KUBECONFIG of the developer leaks in.
fn deployer(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_clear()
        // As a user runs it: from the repository root, where manifests/ is.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
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
    // The two clusters do not wait for each other.
    let remote = &plan.steps()[position("start lgtm-remote")];
    assert!(remote.depends_on.is_empty());
    let critical = plan.critical_path();
    assert!(critical.total < plan.serial_estimate());
}

#[test]
fn the_image_is_built_once_and_copied_for_the_central_agent() {
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
        .filter(|s| matches!(s.action, Action::BuildImage { .. }))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(builds, ["image lgtm-remote/lgtm-demo-app:0.1.0"]);
    // The build needs only the remote node, so it runs beside the charts.
    assert_eq!(
        step(builds[0]).depends_on,
        ["start lgtm-remote"],
        "{:?}",
        step(builds[0])
    );
    let copy = step("image lgtm-central/lgtm-demo-app:0.1.0");
    assert_eq!(
        copy.depends_on,
        [
            "image lgtm-remote/lgtm-demo-app:0.1.0",
            "start lgtm-central"
        ]
    );
    let Action::CopyImage {
        from, to, archive, ..
    } = &copy.action
    else {
        panic!("{copy:?}");
    };
    assert_eq!(
        (from.as_str(), to.as_str()),
        ("lgtm-remote", "lgtm-central")
    );
    assert_eq!(
        archive,
        &settings.state_dir.join("images/lgtm-demo-app-0.1.0.tar")
    );
    // Each cluster's agent waits for the image in its own node.
    for (agent, image) in [
        ("manifest lgtm-central/telemetry-agent", copy.name.as_str()),
        ("manifest lgtm-remote/telemetry-agent", builds[0]),
    ] {
        assert!(
            step(agent).depends_on.iter().any(|d| d == image),
            "{agent}: {:?}",
            step(agent).depends_on
        );
    }

    // Deployed alone, the central cluster builds the image itself.
    let central = build_plan(&settings, &Stack::current(&settings), Target::Central).unwrap();
    let images: Vec<&Action> = central
        .steps()
        .iter()
        .map(|s| &s.action)
        .filter(|a| matches!(a, Action::BuildImage { .. } | Action::CopyImage { .. }))
        .collect();
    assert!(
        matches!(images[..], [Action::BuildImage { profile, .. }] if profile == "lgtm-central"),
        "{images:?}"
    );
}
