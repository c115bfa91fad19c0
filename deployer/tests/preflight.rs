//! The preflight: the container engine's answers (tests/data/preflight, see its README) against
//! the profiles' sizes, and `deployer all` stopping before anything starts on a real blocker,
//! going on (with warnings) otherwise.

mod support;

use std::path::Path;

use clap::Parser;
use deployer::Cli;
use deployer::preflight::engine::{Engine, engine_checks, parse_info, read_engine};
use deployer::preflight::{Level, Machine, machine_checks};
use deployer::settings::Settings;
use deployer::tools::Tool;
use support::deploy::{Setup, text};
use support::fake_tools::FakeTools;

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/preflight")
            .join(name),
    )
    .unwrap()
}

fn settings(args: &[&str]) -> Settings {
    let mut all = vec!["deployer", "all"];
    all.extend_from_slice(args);
    Settings::from_args(&Cli::parse_from(all).global)
}

/// The fake docker answers `info` with the recorded file.
fn with_docker(info: &str, stderr: Option<&str>) -> FakeTools {
    let tools = FakeTools::new();
    tools.file("docker-info.json", &data(info));
    if let Some(stderr) = stderr {
        tools.file("docker-info.stderr", &data(stderr));
    }
    tools
}

#[test]
fn reads_docker_desktops_size() {
    let Some(Engine::Info(info)) =
        parse_info(Tool::Docker, &data("docker-info-desktop-4cpu-8g.json"))
    else {
        panic!("not read");
    };
    assert_eq!((info.cpus, info.memory_mib, info.desktop), (4, 7836, true));
    // The daemon's zeros are no answer.
    assert_eq!(
        parse_info(Tool::Docker, &data("docker-info-daemon-down.json")),
        None
    );
}

#[test]
fn profiles_larger_than_docker_desktop_fail_and_name_the_setting() {
    let engine = parse_info(Tool::Docker, &data("docker-info-desktop-4cpu-8g.json")).unwrap();
    let settings = settings(&[]);
    let checks = engine_checks(&engine, &settings.clusters());
    let cpus = &checks[0];
    assert_eq!(cpus.level, Level::Fail, "{cpus:?}");
    assert!(
        cpus.detail
            .contains("docker has 4 CPUs; lgtm-central 6, lgtm-remote 2"),
        "{cpus:?}"
    );
    let fix = cpus.fix.as_deref().unwrap();
    assert!(
        fix.contains("Docker Desktop's Settings > Resources > Advanced > CPU limit"),
        "{fix}"
    );
    assert!(fix.contains("--central-cpus=4"), "{fix}");
    let memory = &checks[1];
    assert_eq!(memory.level, Level::Fail, "{memory:?}");
    assert!(
        memory
            .detail
            .contains("docker has 7.7 GiB; lgtm-central 16.0 GiB, lgtm-remote 4.0 GiB"),
        "{memory:?}"
    );
    assert!(
        memory.fix.as_deref().unwrap().contains("Memory limit"),
        "{memory:?}"
    );
    assert!(
        memory.fix.as_deref().unwrap().contains("--central-memory"),
        "{memory:?}"
    );
}

#[test]
fn profiles_that_fit_alone_but_not_together_only_warn() {
    let engine = parse_info(Tool::Docker, &data("docker-info-desktop-4cpu-8g.json")).unwrap();
    let settings = settings(&["--central-cpus", "4", "--central-memory", "6g"]);
    let checks = engine_checks(&engine, &settings.clusters());
    assert_eq!(checks[0].level, Level::Pass, "{checks:?}");
    assert_eq!(checks[1].level, Level::Warn, "{checks:?}");
    assert!(checks[1].detail.contains("ask 10.0 GiB"), "{checks:?}");
}

#[test]
fn reads_podman() {
    let engine = parse_info(Tool::Podman, &data("podman-info-8cpu-31g.json")).unwrap();
    let settings = settings(&["--driver", "podman"]);
    let checks = engine_checks(&engine, &settings.clusters());
    assert!(checks.iter().all(|c| c.level == Level::Pass), "{checks:?}");
    assert!(
        checks[1].detail.contains("podman has 31.1 GiB"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn an_engine_that_does_not_answer_or_is_missing_fails() {
    let tools = with_docker(
        "docker-info-daemon-down.json",
        Some("docker-info-daemon-down.stderr"),
    );
    let path = tools.path_env();
    let engine = read_engine(Tool::Docker, Some(&path)).await;
    let Engine::Unreachable { message, .. } = &engine else {
        panic!("{engine:?}");
    };
    assert!(
        message.starts_with("Cannot connect to the Docker daemon"),
        "{message}"
    );
    let settings = settings(&[]);
    let checks = engine_checks(&engine, &settings.clusters());
    assert_eq!(checks[0].level, Level::Fail);
    assert!(
        checks[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("start Docker Desktop")
    );
    // --driver=podman without podman.
    let missing = read_engine(Tool::Podman, Some(&path)).await;
    assert_eq!(missing, Engine::Missing(Tool::Podman));
    let checks = engine_checks(&missing, &settings.clusters());
    assert_eq!(checks[0].level, Level::Fail);
    assert!(
        checks[0]
            .detail
            .contains("--driver=podman but podman is not on PATH"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn machine_checks_cover_engine_inotify_and_disk() {
    let tools = with_docker("docker-info-desktop-4cpu-8g.json", None);
    let proc_root = tempfile::tempdir().unwrap();
    let inotify = proc_root.path().join("sys/fs/inotify");
    std::fs::create_dir_all(&inotify).unwrap();
    std::fs::write(inotify.join("max_user_instances"), "128\n").unwrap();
    std::fs::write(inotify.join("max_user_watches"), "8192\n").unwrap();
    let machine = Machine {
        search_path: Some(tools.path_env()),
        proc_root: Some(proc_root.path().to_path_buf()),
    };
    let settings = settings(&["--state-dir", tools.root.path().to_str().unwrap()]);
    let checks = machine_checks(&settings, &settings.clusters(), &machine).await;
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker CPUs",
            "docker memory",
            "fs.inotify.max_user_instances",
            "fs.inotify.max_user_watches",
            "free disk"
        ]
    );
    let watches = &checks[3];
    assert_eq!(watches.level, Level::Warn);
    assert!(
        watches
            .fix
            .as_deref()
            .unwrap()
            .contains("sudo sysctl -w fs.inotify.max_user_watches=524288"),
        "{watches:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployer_all_stops_before_anything_starts_when_docker_is_too_small() {
    let setup = Setup::new().await;
    setup.tools.file(
        "docker-info.json",
        &data("docker-info-desktop-4cpu-8g.json"),
    );
    let output = setup.deployer(&["all", "--driver", "docker"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: preflight: docker CPUs: docker has 4 CPUs"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "help: raise Docker Desktop's Settings > Resources > Advanced > Memory limit"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: `deployer doctor` shows every check"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("--ignore-preflight-errors"),
        "minikube refuses the profile too: no use going on\n{stderr}"
    );
    let calls = setup.tools.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("minikube start")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"docker info --format {{json .}}".to_string()),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployer_all_goes_on_after_warnings() {
    let setup = Setup::new().await;
    setup.tools.file(
        "docker-info.json",
        &data("docker-info-desktop-4cpu-8g.json"),
    );
    let output = setup
        .deployer(&[
            "all",
            "--driver",
            "docker",
            "--central-cpus",
            "4",
            "--central-memory",
            "6g",
        ])
        .await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: docker memory: docker has 7.7 GiB"),
        "{stderr}"
    );
    assert!(
        setup
            .tools
            .calls()
            .iter()
            .any(|c| c.starts_with("minikube start"))
    );
}
