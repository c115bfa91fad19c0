//! The deploy as a trace, and the measured durations: `deployer all` against the fake tools and
//! API servers, exporting to a real OTLP receiver on port 0 (testkit), then the next dry run.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deployer::plan::{Target, build_plan};
use deployer::settings::Settings;
use deployer::stack::Stack;
use support::deploy::{Setup, text};
use testkit::eventually;
use testkit::otlp::{OtlpSink, ReceivedSpan, STATUS_CODE_ERROR};
use testkit::process::{is_running, send_signal};

/// The step names of `deployer all`, from the same plan the binary builds.
fn plan_steps() -> Vec<String> {
    let cli = <deployer::Cli as clap::Parser>::parse_from(["deployer", "all"]);
    let settings = Settings::from_args(&cli.global);
    let plan = build_plan(&settings, &Stack::current(&settings), Target::All).unwrap();
    plan.steps().iter().map(|s| s.name.clone()).collect()
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}");
    found[0]
}

fn attribute<'a>(span: &'a ReceivedSpan, key: &str) -> &'a str {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("{} has no {key}: {:?}", span.name, span.attributes))
}

/// The `Estimate:` line of a dry run's plan.
fn estimate_line(stdout: &[u8]) -> String {
    text(stdout)
        .lines()
        .find(|l| l.starts_with("Estimate:"))
        .expect("the plan ends with its estimate")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_makes_no_spans_and_exports_nothing() {
    let setup = Setup::new().await;
    let sink = OtlpSink::start().await;
    for (endpoint, protocol) in [
        (sink.grpc_endpoint(), "grpc"),
        (sink.http_endpoint(), "http/protobuf"),
    ] {
        let output = setup
            .deployer_with_env(
                &["all", "--dry-run"],
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ],
            )
            .await;
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    assert_eq!(sink.export_calls(), 0, "{:#?}", sink.spans());
    assert!(setup.tools.calls().is_empty(), "a dry run runs nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_is_one_trace_of_its_steps_and_their_commands() {
    let setup = Setup::new().await;
    let sink = OtlpSink::start().await;
    let before = setup.deployer(&["all", "--dry-run"]).await;
    assert!(before.status.success(), "{}", text(&before.stderr));

    let endpoint = sink.grpc_endpoint();
    let output = setup
        .deployer_with_env(&["all"], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)])
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let spans = sink.spans();
    let traces: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace: {traces:?}");
    assert!(
        spans
            .iter()
            .all(|s| s.service_name == "deployer" && s.transport == "grpc")
    );
    let root = one(&spans, "the root span", |s| s.parent_span_id.is_empty());
    assert_eq!(root.name, "deployer all");
    assert_eq!(
        root.int_attributes["deployer.steps"], 45,
        "a count is an integer"
    );
    assert_eq!(attribute(root, "deployer.command"), "all");
    assert!(
        !root.attributes.contains_key("busy_ns"),
        "{:?}",
        root.attributes
    );

    // Every step of the plan, once, as a child of the deploy.
    let steps: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.attributes.contains_key("deployer.step"))
        .collect();
    let mut names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
    names.sort();
    let mut expected = plan_steps();
    expected.sort();
    assert_eq!(names, expected);
    for step in &steps {
        assert_eq!(step.parent_span_id, root.span_id, "{}", step.name);
        assert_eq!(attribute(step, "deployer.step"), step.name);
        assert!(["true", "false"].contains(&attribute(step, "deployer.changed")));
        assert_ne!(step.status_code, STATUS_CODE_ERROR, "{}", step.name);
    }
    let start = one(&spans, "the central start step", |s| {
        s.name == "start lgtm-central"
    });
    assert_eq!(attribute(start, "deployer.cluster"), "lgtm-central");
    assert_eq!(attribute(start, "deployer.changed"), "true");
    let certificates = one(&spans, "the certificates step", |s| {
        s.name == "certificates"
    });
    assert!(!certificates.attributes.contains_key("deployer.cluster"));

    // Commands are children of the step that runs them; the version checks, of the deploy.
    let by_id: HashMap<&str, &ReceivedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let commands: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.attributes.contains_key("process.command_line"))
        .collect();
    let calls = setup
        .tools
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("controller:"))
        .count();
    assert_eq!(commands.len(), calls, "one span per command run");
    let minikube_start = one(&spans, "minikube start of the central", |s| {
        s.attributes
            .get("process.command_line")
            .is_some_and(|c| c.starts_with("minikube start -p lgtm-central "))
    });
    assert_eq!(minikube_start.name, "start the lgtm-central cluster");
    assert_eq!(minikube_start.parent_span_id, start.span_id);
    assert_eq!(attribute(minikube_start, "process.exit.code"), "0");
    assert_eq!(
        attribute(minikube_start, "process.executable.name"),
        "minikube"
    );
    assert_eq!(
        attribute(minikube_start, "deployer.cluster"),
        "lgtm-central"
    );
    let tempo = one(&spans, "helm install of tempo", |s| {
        s.attributes
            .get("process.command_line")
            .is_some_and(|c| c.starts_with("helm upgrade --install tempo "))
    });
    assert_eq!(
        by_id[tempo.parent_span_id.as_str()].name,
        "release lgtm-central/tempo"
    );
    let version = one(&spans, "the minikube version check", |s| {
        s.name == "check the minikube version"
    });
    assert_eq!(version.parent_span_id, root.span_id);
    for command in &commands {
        let parent = by_id
            .get(command.parent_span_id.as_str())
            .unwrap_or_else(|| panic!("{} has no parent in the trace", command.name));
        assert!(
            parent.span_id == root.span_id || parent.attributes.contains_key("deployer.step"),
            "{} under {}",
            command.name,
            parent.name
        );
    }

    // The run measured every step; the next dry run plans with that.
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("Slowest steps (took, against the estimate):"),
        "{stdout}"
    );
    let last_run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(setup.state.path().join("last-run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(last_run["succeeded"], true);
    assert_eq!(last_run["command"], "all");
    assert_eq!(last_run["steps"].as_object().unwrap().len(), 45);
    let after = setup.deployer(&["all", "--dry-run"]).await;
    assert!(after.status.success(), "{}", text(&after.stderr));
    let (estimated, measured) = (estimate_line(&before.stdout), estimate_line(&after.stdout));
    assert!(
        estimated.contains("14m 03s with independent steps side by side"),
        "{estimated}"
    );
    assert!(!estimated.contains("measured"), "{estimated}");
    // Against fakes every step takes well under a minute.
    assert!(measured.contains("s with independent steps side by side (measured durations from the last run where known: 45 of 45 steps, see "), "{measured}");
    assert!(!measured.contains("14m 03s"), "{measured}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_exports_its_error_and_measures_only_finished_steps() {
    let setup = Setup::new().await;
    let sink = OtlpSink::start().await;
    setup
        .tools
        .fail_helm_release("tempo", "Error: context deadline exceeded\n");
    let endpoint = sink.http_endpoint();
    let output = setup
        .deployer_with_env(
            &["all"],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
        )
        .await;
    assert!(!output.status.success());

    // The trace is flushed on the way out of a failed deploy too.
    let spans = sink.spans();
    assert!(spans.iter().all(|s| s.transport == "http"));
    let root = one(&spans, "the root span", |s| s.parent_span_id.is_empty());
    assert_eq!(root.status_code, STATUS_CODE_ERROR);
    assert!(
        root.status_message
            .contains("step `release lgtm-central/tempo` failed"),
        "{}",
        root.status_message
    );
    let step = one(&spans, "the failed step", |s| {
        s.name == "release lgtm-central/tempo"
    });
    assert_eq!(step.status_code, STATUS_CODE_ERROR);
    assert!(
        step.status_message.contains("context deadline exceeded"),
        "{}",
        step.status_message
    );
    let helm = one(&spans, "the failed helm command", |s| {
        s.parent_span_id == step.span_id && s.status_code == STATUS_CODE_ERROR
    });
    assert_ne!(attribute(helm, "process.exit.code"), "0");

    // Only the steps that finished are measured; the failed and the unstarted ones are not.
    let file = setup.state.path().join("last-run.json");
    let last_run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(last_run["succeeded"], false);
    let measured = last_run["steps"].as_object().unwrap();
    assert!(measured["start lgtm-central"]["seconds"].as_f64().is_some());
    assert!(!measured.contains_key("release lgtm-central/tempo"));
    assert!(measured.len() < 45, "{:?}", measured.keys());
    let finished = spans
        .iter()
        .filter(|s| s.attributes.contains_key("deployer.changed"))
        .count();
    assert_eq!(measured.len(), finished);

    // A dry run reads a broken file as no measurement, says so, and still plans.
    std::fs::write(&file, "{\"format\": 1, \"steps\": {").unwrap();
    let dry = setup.deployer(&["all", "--dry-run"]).await;
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let stderr = text(&dry.stderr);
    assert!(
        stderr.contains("last-run.json is not a last-run file of this deployer"),
        "{stderr}"
    );
    assert!(stderr.contains("using the estimates"), "{stderr}");
    assert!(estimate_line(&dry.stdout).contains("14m 03s with independent steps side by side"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deploy_stops_its_commands_exports_its_trace_and_exits_130() {
    let setup = Setup::new().await;
    let sink = OtlpSink::start().await;
    setup.tools.hang_helm_release("tempo");
    let endpoint = sink.grpc_endpoint();
    let deployer = setup.spawn_with_env(&["all"], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    let hanging = setup.tools.root.path().join("helm-hanging-tempo");
    let helm_pid = eventually(
        "helm to hang on tempo",
        Duration::from_secs(60),
        async || {
            std::fs::read_to_string(&hanging)
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok())
        },
    )
    .await;

    send_signal(deployer.id().unwrap(), "INT");
    let output = tokio::time::timeout(Duration::from_secs(30), deployer.wait_with_output())
        .await
        .expect("the deployer ends soon after Ctrl-C")
        .unwrap();

    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("error: `deployer all` was interrupted (Ctrl-C)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `deployer all` again to finish"),
        "{stderr}"
    );
    // The command in progress went with it (the deployer kills what it started).
    assert!(!is_running(helm_pid), "helm (pid {helm_pid}) still runs");

    // The trace is flushed on the way out, the root span saying why it ended.
    let spans = sink.spans();
    let root = one(&spans, "the root span", |s| s.parent_span_id.is_empty());
    assert_eq!(root.status_code, STATUS_CODE_ERROR);
    assert!(
        root.status_message.contains("interrupted"),
        "{}",
        root.status_message
    );
    let step = one(&spans, "the interrupted step", |s| {
        s.name == "release lgtm-central/tempo"
    });
    assert_eq!(step.parent_span_id, root.span_id);
}
