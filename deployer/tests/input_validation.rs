//! Hostile and mistaken input on the command line, through the real binary: each is refused up
//! front with exit 2 and a message naming the flag and the fix, before anything is written,
//! planned or started (minikube's own rules: deployer/src/minikube/rules.rs).

use std::path::Path;
use std::process::Output;

/// The binary with a clean environment (plus `env`), from `dir`.
fn deployer_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// From the repository root, where manifests/ is (dry runs read it).
fn deployer(args: &[&str]) -> Output {
    deployer_in(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        args,
        &[],
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Arguments, environment, and the flag the message must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `x/../../../escaped` used to put `escaped.key` (the issuer's private key) three folders above
/// the state folder's certs/.
#[test]
fn certs_with_a_path_in_the_profile_writes_nothing_anywhere() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("a/b");
    std::fs::create_dir_all(&work).unwrap();
    let traversal = "x/../../../escaped";
    let by_flag = [
        "--state-dir",
        "state",
        "--central-profile",
        traversal,
        "certs",
    ];
    let by_env_args = ["--state-dir", "state", "certs"];
    let cases: [Case; 2] = [
        (&by_flag, &[], "--central-profile"),
        (
            &by_env_args,
            &[("LGTM_REMOTE_PROFILE", traversal)],
            "--remote-profile",
        ),
    ];
    for (args, env, flag) in cases {
        let output = deployer_in(&work, args, env);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {message}");
        assert!(
            message.contains(flag)
                && message.contains(traversal)
                && message.contains("ProfileNameValid")
                && message.contains("e.g. lgtm-central"),
            "{message}"
        );
        assert_eq!(files_under(root.path()), Vec::<String>::new(), "{flag}");
    }
}

#[test]
fn each_invalid_input_is_refused_naming_its_flag_and_the_fix() {
    let cases: [(&[&str], &str, &str); 15] = [
        (
            &["--central-profile", "a"],
            "--central-profile",
            "at least 2 characters",
        ),
        (
            &["--remote-profile=lgtm-"],
            "--remote-profile",
            "inner dashes",
        ),
        (
            &["--central-profile", "lgtm_central"],
            "--central-profile",
            "ProfileNameValid",
        ),
        (
            &["--central-domain", "Cluster.Local"],
            "--central-domain",
            "lower case",
        ),
        (
            &["--remote-domain", "a..b"],
            "--remote-domain",
            "e.g. lgtm-central.cluster.local",
        ),
        (&["--network", "../lgtm"], "--network", "e.g. lgtm"),
        (&["--network", ""], "--network", "docker/podman rule"),
        (
            &["--central-cpus", "1"],
            "--central-cpus",
            "from 2 (minikube's minimum)",
        ),
        (&["--remote-cpus", "70000"], "--remote-cpus", "to 1024"),
        (
            &["--central-memory", "1g"],
            "--central-memory",
            "below the 1800 MB",
        ),
        (
            &["--remote-memory", "lots"],
            "--remote-memory",
            "e.g. 16g or 8192m",
        ),
        (
            &["--remote-memory", "4q"],
            "--remote-memory",
            "unknown unit `q`",
        ),
        (
            &["--central-disk-size", "1000m"],
            "--central-disk-size",
            "minimum disk of 2000 MB",
        ),
        (
            &["--start-timeout", "0s"],
            "--start-timeout",
            "from 1s to 24h",
        ),
        (
            &["--ignore-preflight-errors", "cpus"],
            "--ignore-preflight-errors",
            "[possible values: disk]",
        ),
    ];
    for (bad, flag, fix) in cases {
        let args = [bad, &["all", "--dry-run"][..]].concat();
        let output = deployer(&args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {message}");
        assert!(
            message.contains(&format!("'{flag} <")) && message.contains(fix),
            "{bad:?}: {message}"
        );
        assert!(output.stdout.is_empty(), "{bad:?}: nothing is planned");
    }
}

/// `--wait-timeout 18446744073709551615` used to panic the dry run (exit 101) adding helm's
/// grace to it in `helm::upgrade_install`.
#[test]
fn a_huge_wait_timeout_is_refused_without_a_panic() {
    for (flag, value) in [
        ("--wait-timeout", "18446744073709551615"),
        ("--wait-timeout", "99999999999h"),
        ("--diagnose-timeout", "18446744073709551615"),
    ] {
        let output = deployer(&[flag, value, "all", "--dry-run"]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {message}");
        assert!(!message.contains("panicked"), "{message}");
        assert!(
            message.contains(&format!("'{flag} <")) && message.contains("e.g."),
            "{message}"
        );
    }
}

/// Equal profiles are the user's input, not "a bug in the deployer's stack definition".
#[test]
fn equal_central_and_remote_profiles_are_an_input_error_naming_both_flags() {
    let output = deployer(&[
        "--central-profile",
        "same",
        "--remote-profile",
        "same",
        "all",
        "--dry-run",
    ]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("--central-profile")
            && message.contains("--remote-profile")
            && message.contains("`same`")
            && message.contains("help: give the clusters different profiles"),
        "{message}"
    );
    assert!(!message.contains("bug"), "{message}");
}

/// The rules are minikube's, not narrower: unusual but valid values still plan.
#[test]
fn valid_unusual_values_still_plan() {
    let output = deployer(&[
        "--central-profile",
        "lgtm.central-2",
        "--central-memory",
        "8192",
        "--remote-memory",
        "no-limit",
        "--remote-disk-size",
        "20 GiB",
        "--remote-cpus",
        "4",
        "--network",
        "lgtm_net.2",
        "--central-domain",
        "c1.example",
        "--wait-timeout",
        "24h",
        "all",
        "--dry-run",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("--memory=8192"), "{plan}");
    assert!(plan.contains("--network=lgtm_net.2"), "{plan}");
}
