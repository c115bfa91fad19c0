//! The command line as a user sees it: help texts and dry-run plans, snapshot-tested so any change
//! shows up in review.

use std::process::Output;

use deployer::plan::{Target, build_plan};
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
        "certs", "central", "remote", "all", "status", "verify", "loadtest", "destroy",
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
    for command in ["certs", "central", "remote", "status", "verify", "destroy"] {
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
