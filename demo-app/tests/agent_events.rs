//! Kubernetes events -> Loki: the agent watches a fake Kubernetes API (real Event objects,
//! list then watch) and pushes to a fake Loki; each event arrives once, with labels and the
//! tenant, and a restarted agent (same state file) sends none again.

use std::time::Duration;

use serde_json::Value;
use testkit::kube_api::{FakeKubeApi, event};
use testkit::loki::FakeLoki;
use testkit::otlp::OtlpSink;
use testkit::process::{AgentProc, Proc};
use testkit::{eventually, metric_sum};

const BIN: &str = env!("CARGO_BIN_EXE_demo-app");
const WAIT: Duration = Duration::from_secs(30);

async fn start_agent(upstream: &str, loki: &str, state: &str, kubeconfig: &str) -> Proc {
    let events = [
        "--events-loki-url",
        loki,
        "--events-state-file",
        state,
        "--events-batch-timeout",
        "100ms",
    ];
    let env = [("RUST_LOG", "info"), ("KUBECONFIG", kubeconfig)];
    AgentProc::start(BIN, upstream, "remote01", &events, &env)
        .await
        .proc
}

async fn metrics(agent: &Proc) -> String {
    let addr = agent.metrics_addr().await;
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_event_reaches_loki_once_with_labels_and_tenant_even_across_restarts() {
    let listed = vec![
        event("uid-1", "11", "web-1", "Scheduled", "Normal"),
        event("uid-2", "12", "web-1", "BackOff", "Warning"),
        event("uid-3", "13", "db-0", "Pulled", "Normal"),
    ];
    let watched = vec![event("uid-4", "1001", "db-0", "Killing", "Normal")];
    let api = FakeKubeApi::start(listed, watched).await;
    let loki = FakeLoki::start().await;
    let sink = OtlpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let state = dir.path().join("state").join("events.json");
    let (kubeconfig, state) = (kubeconfig.to_str().unwrap(), state.to_str().unwrap());

    let mut agent = start_agent(&sink.grpc_endpoint(), &loki.url(), state, kubeconfig).await;
    eventually("4 events in Loki", WAIT, async || {
        (loki.entries().len() >= 4).then_some(())
    })
    .await;
    let entries = loki.entries();
    for e in &entries {
        assert_eq!(e.tenant.as_deref(), Some("remote01"));
        assert_eq!(e.labels["namespace"], "demo");
        assert_eq!(e.labels["kind"], "Pod");
        assert!(
            ["web-1", "db-0"].contains(&e.labels["name"].as_str()),
            "{e:?}"
        );
        assert!(
            ["Normal", "Warning"].contains(&e.labels["type"].as_str()),
            "{e:?}"
        );
        let line: Value = serde_json::from_str(&e.line).unwrap();
        assert_eq!(
            line["message"],
            format!("{} for {}", e.labels["reason"], e.labels["name"])
        );
    }
    let backoff = entries
        .iter()
        .find(|e| e.labels["reason"] == "BackOff")
        .expect("the BackOff event");
    assert_eq!(backoff.labels["type"], "Warning");
    assert_eq!(backoff.timestamp_ns, "1795773601000000000", "lastTimestamp");
    assert!(
        entries.iter().any(|e| e.labels["reason"] == "Killing"),
        "the watched event"
    );
    let text = metrics(&agent).await;
    assert_eq!(
        metric_sum(&text, "otelcol_exporter_sent_log_records_total", None),
        4.0
    );

    agent.signal("TERM");
    assert!(agent.wait_exit(WAIT).await.success());
    let lists_before = api.lists();

    // Restarted: it lists and watches again, and sends nothing it sent before.
    let again = start_agent(&sink.grpc_endpoint(), &loki.url(), state, kubeconfig).await;
    eventually(
        "the restarted agent to re-list and watch",
        WAIT,
        async || (api.lists() > lists_before && api.watches() >= 2).then_some(()),
    )
    .await;
    eventually("the restarted agent to skip all 4", WAIT, async || {
        let text = metrics(&again).await;
        (metric_sum(&text, "agent_events_skipped_total", None) == 4.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(loki.entries().len(), 4, "nothing re-sent");
}
