//! Names that several files must agree on: the services the central cluster exports and the
//! remote reaches through their Linkerd mirrors, tenants, the telemetry agent's address and
//! identity, the demo's services, the image tag, the Grafana data source UIDs, and what Grafana
//! reads from the demo's output (the trace_id in its log lines, exemplar labels, metric names).

mod support;

use clap::Parser;
use deployer::settings::Settings;
use deployer::stack::Stack;
use serde_json::Value;
use support::repo::{documents, manifests_dir, repo_root, single_document, yaml_files};

/// (release, component, namespace, port): what the central cluster exports for the remote.
const EXPORTED: &[(&str, &str, &str, u16)] = &[
    ("mimir", "distributor", "mimir", 8080),
    ("loki", "write", "loki", 3100),
    ("tempo", "distributor", "tempo", 4317),
];

fn settings() -> Settings {
    Settings::from_args(&deployer::Cli::parse_from(["deployer", "all"]).global)
}

fn text_of(cluster: &str) -> String {
    support::repo::files_under(&manifests_dir().join(cluster), &["yaml"])
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn values(cluster: &str, file: &str) -> Value {
    single_document(&manifests_dir().join(cluster).join(file))
}

#[test]
fn exported_services_are_labelled_and_the_remote_uses_their_mirrors() {
    let settings = settings();
    let stack = Stack::current(&settings);
    let remote_text = text_of("remote");
    for (release, component, namespace, port) in EXPORTED {
        let values = values("central", &format!("{release}.yaml"));
        assert_eq!(
            values[component]["service"]["labels"]["mirror.linkerd.io/exported"], "true",
            "{release}: {component} service is not exported"
        );
        let installed_in = stack
            .central
            .releases()
            .find(|r| r.name == *release)
            .map(|r| r.namespace.clone());
        assert_eq!(installed_in.as_deref(), Some(*namespace), "{release}");
        // The service mirror creates <service>-<link name> in the namespace of the same name.
        assert!(
            stack.remote.namespaces.iter().any(|n| n == namespace),
            "the remote needs namespace {namespace} for the mirror"
        );
        let mirror = format!(
            "{release}-{component}-{}.{namespace}.svc:{port}",
            settings.central.profile
        );
        assert!(
            remote_text.contains(&mirror),
            "nothing on the remote uses {mirror}"
        );
    }
}

#[test]
fn the_link_controller_names_the_central_cluster() {
    let values = values("remote", "linkerd-multicluster.yaml");
    assert_eq!(
        values["controllers"][0]["link"]["ref"]["name"],
        settings().central.profile.as_str()
    );
}

#[test]
fn each_cluster_writes_as_its_own_tenant() {
    // Grafana (central monitor.yaml) reads both tenants and Mimir (central mimir.yaml) limits both;
    // every other file writes one.
    for file in support::repo::files_under(&manifests_dir().join("remote"), &["yaml"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("_local"), "{} names _local", file.display());
    }
    for file in support::repo::files_under(&manifests_dir().join("central"), &["yaml"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        if !file.ends_with("monitor.yaml") && !file.ends_with("mimir.yaml") {
            assert!(
                !text.contains("remote01"),
                "{} names remote01",
                file.display()
            );
        }
    }
    for (cluster, tenant) in [("central", "_local"), ("remote", "remote01")] {
        let monitor = values(cluster, "monitor.yaml");
        let remote_write = &monitor["prometheus"]["prometheusSpec"]["remoteWrite"][0];
        assert_eq!(remote_write["headers"]["X-Scope-OrgID"], tenant);
        assert_eq!(remote_write["sendExemplars"], true);
        // The WAL backlog sent once Mimir is reachable meets 429s; without this they are dropped.
        assert_eq!(remote_write["queueConfig"]["retryOnRateLimit"], true);
        // ... and the tenant has limits of its own that let the backlog through.
        let overrides = &values("central", "mimir.yaml")["runtimeConfig"]["overrides"][tenant];
        for limit in [
            "ingestion_rate",
            "ingestion_burst_size",
            "out_of_order_time_window",
        ] {
            assert!(
                !overrides[limit].is_null(),
                "mimir.yaml: {tenant} has no {limit}"
            );
        }
        let vector = values(cluster, "vector.yaml");
        assert_eq!(vector["customConfig"]["sinks"]["loki"]["tenant_id"], tenant);
        let agent = deployment(cluster, "telemetry-agent.yaml", "telemetry-agent");
        assert_eq!(env(&agent, "AGENT_TENANT"), tenant);
    }
}

#[test]
fn proxies_and_the_demo_send_traces_to_the_agent_service() {
    for cluster in ["central", "remote"] {
        let file = manifests_dir().join(cluster).join("telemetry-agent.yaml");
        let objects = documents(&file);
        let service = find(&objects, "Service", "telemetry-agent");
        let namespace = service["metadata"]["namespace"].as_str().unwrap();
        let grpc_port = port_named(service, "otlp-grpc");
        let address = format!("telemetry-agent.{namespace}.svc:{grpc_port}");
        let agent = find(&objects, "Deployment", "telemetry-agent");
        let account = &agent["spec"]["template"]["spec"]["serviceAccountName"];

        let tracing = &values(cluster, "linkerd-control-plane.yaml")["proxy"]["tracing"];
        assert_eq!(tracing["collector"]["endpoint"], address.as_str());
        assert_eq!(
            tracing["collector"]["meshIdentity"]["serviceAccountName"],
            *account
        );
        assert_eq!(tracing["collector"]["meshIdentity"]["namespace"], namespace);
    }
    let demo = documents(&manifests_dir().join("remote/demo.yaml"));
    for name in ["db", "app", "loadgen"] {
        let deployment = find(&demo, "Deployment", name);
        assert_eq!(
            env(deployment, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            "http://telemetry-agent.observability.svc:4317"
        );
    }
}

#[test]
fn the_demo_calls_its_own_services() {
    let demo = documents(&manifests_dir().join("remote/demo.yaml"));
    let url_of = |name: &str| {
        let service = find(&demo, "Service", name);
        format!(
            "http://{name}.demo.svc:{}",
            service["spec"]["ports"][0]["port"]
        )
    };
    assert_eq!(
        env(find(&demo, "Deployment", "app"), "DEMO_DB_URLS"),
        url_of("db")
    );
    assert_eq!(
        env(find(&demo, "Deployment", "loadgen"), "LOADGEN_TARGETS"),
        url_of("app")
    );
}

#[test]
fn every_demo_app_image_has_the_crate_version_as_its_tag() {
    let cargo = std::fs::read_to_string(repo_root().join("demo-app/Cargo.toml")).unwrap();
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("demo-app/Cargo.toml has a version");
    let mut seen = 0;
    for file in yaml_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(":latest"), "{} uses :latest", file.display());
        for line in text.lines() {
            if let Some(image) = line.trim().strip_prefix("image: lgtm-demo-app:") {
                assert_eq!(image, version, "{}", file.display());
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 5, "db, app, loadgen and the two agents");
    // The deployer builds the tag the manifests run.
    assert_eq!(
        deployer::stack::ImageBuild::demo_app().tag,
        format!("lgtm-demo-app:{version}")
    );
}

#[test]
fn grafana_data_sources_link_only_to_defined_uids() {
    let monitor = values("central", "monitor.yaml");
    let sources = monitor["grafana"]["additionalDataSources"]
        .as_array()
        .unwrap();
    let uids: Vec<&str> = sources.iter().map(|s| s["uid"].as_str().unwrap()).collect();
    let mut referenced = Vec::new();
    collect_key(&monitor["grafana"], "datasourceUid", &mut referenced);
    // Per tenant: exemplars -> Tempo, Loki trace_id -> Tempo, Tempo -> Loki, service map -> Mimir.
    assert_eq!(referenced.len(), 8, "{referenced:?}");
    for uid in referenced {
        assert!(
            uids.contains(&uid.as_str()),
            "{uid} is not a provisioned data source"
        );
    }
    for tenant in ["remote01", "_local"] {
        for kind in ["prometheus", "loki", "tempo"] {
            assert!(
                sources.iter().any(|s| s["type"] == kind
                    && s["secureJsonData"]["httpHeaderValue1"] == tenant),
                "no {kind} data source for tenant {tenant}"
            );
        }
    }
}

#[test]
fn the_dockerfile_builds_the_way_ci_does() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked"));
}

fn collect_key(value: &Value, key: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    found.extend(v.as_str().map(str::to_string));
                }
                collect_key(v, key, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_key(v, key, found)),
        _ => {}
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn deployment(cluster: &str, file: &str, name: &str) -> Value {
    let objects = documents(&manifests_dir().join(cluster).join(file));
    find(&objects, "Deployment", name).clone()
}

fn env(deployment: &Value, name: &str) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name}"))
        .to_string()
}

fn port_named(service: &Value, name: &str) -> u64 {
    service["spec"]["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["port"].as_u64())
        .unwrap_or_else(|| panic!("no port {name}"))
}

#[test]
fn dashboards_are_json_and_use_only_provisioned_data_sources() {
    let monitor = values("central", "monitor.yaml");
    let provisioned: Vec<String> = monitor["grafana"]["additionalDataSources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uid"].as_str().unwrap().to_string())
        .collect();
    let files = support::repo::files_under(&manifests_dir().join("dashboards"), &["json"]);
    assert!(!files.is_empty(), "no dashboards");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        assert!(
            dashboard["uid"].is_string(),
            "{} has no uid",
            file.display()
        );
        let mut used = Vec::new();
        collect_datasource_uids(&dashboard, &mut used);
        assert!(!used.is_empty(), "{} names no data source", file.display());
        for uid in used {
            assert!(
                provisioned.contains(&uid),
                "{}: data source {uid} is not provisioned",
                file.display()
            );
        }
    }
}

/// The `uid` of every `datasource` object in a dashboard.
fn collect_datasource_uids(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "datasource" {
                    found.extend(child["uid"].as_str().map(str::to_string));
                }
                collect_datasource_uids(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_datasource_uids(v, found)),
        _ => {}
    }
}

/// Output of the real binaries, recorded for the checks below (see `data/demo-app/README.md`).
fn recorded(file: &str) -> String {
    let path = repo_root().join("deployer/tests/data/demo-app").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_loki_trace_id_field_finds_the_trace_id_of_real_demo_log_lines() {
    let monitor = values("central", "monitor.yaml");
    let lines = recorded("app-stdout.jsonl");
    let mut checked = 0;
    for source in monitor["grafana"]["additionalDataSources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "loki")
    {
        let field = source["jsonData"]["derivedFields"]
            .as_array()
            .and_then(|fields| fields.iter().find(|f| f["name"] == "trace_id"))
            .unwrap_or_else(|| panic!("{} has no trace_id derived field", source["uid"]));
        let pattern = field["matcherRegex"].as_str().unwrap();
        let regex = regex::Regex::new(pattern).unwrap();
        let (mut with_id, mut without_id) = (0, 0);
        for line in lines.lines() {
            let json: Value = serde_json::from_str(line).unwrap();
            let found = regex
                .captures(line)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str());
            assert_eq!(
                found,
                json["trace_id"].as_str(),
                "{}: {pattern} on {line}",
                source["uid"]
            );
            if found.is_some() {
                with_id += 1;
            } else {
                without_id += 1;
            }
        }
        assert!(
            with_id > 0 && without_id > 0,
            "the recording lacks a kind of line"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "one Loki data source per tenant");
}

#[test]
fn exemplars_carry_the_label_the_prometheus_data_sources_link_to_tempo() {
    let monitor = values("central", "monitor.yaml");
    let metrics = recorded("app-metrics.om");
    for source in monitor["grafana"]["additionalDataSources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "prometheus")
    {
        let name = source["jsonData"]["exemplarTraceIdDestinations"][0]["name"]
            .as_str()
            .unwrap();
        let exemplar = format!(" # {{{name}=\"");
        assert!(
            metrics.lines().any(|l| l.contains(&exemplar)),
            "no exemplar labelled {name} in the recorded /metrics"
        );
    }
}

/// The names Prometheus stores for every metric the demo-app binaries register, read from the
/// `register` / `register_with_unit` calls under demo-app/src: prometheus-client appends the unit
/// (`_seconds`) and, to counters, `_total`; a histogram is stored as `_bucket`, `_count`, `_sum`.
fn exposed_metric_names() -> std::collections::BTreeSet<String> {
    let call = regex::Regex::new(
        r#"\.register(?:_with_unit)?\(\s*"([a-z_:][a-z0-9_:]*)",\s*"(?:[^"\\]|\\.)*",\s*(?:Unit::(\w+),\s*)?([\w.]+?)(?:\.clone\(\))?,?\s*\)"#,
    )
    .unwrap();
    let alias =
        regex::Regex::new(r"(?m)^\s*(?:pub\s+)?type\s+(\w+)(?:<[^=]*>)?\s*=\s*([^;]+);").unwrap();
    let mut names = std::collections::BTreeSet::new();
    for file in support::repo::files_under(&repo_root().join("demo-app/src"), &["rs"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        let calls: Vec<_> = call.captures_iter(&text).collect();
        assert_eq!(
            calls.len(),
            text.matches(".register(").count() + text.matches(".register_with_unit(").count(),
            "{}: a registration this test cannot read; update exposed_metric_names",
            file.display()
        );
        let aliases: Vec<(String, String)> = alias
            .captures_iter(&text)
            .map(|c| (c[1].to_string(), c[2].to_string()))
            .collect();
        for c in calls {
            let field = c[3].rsplit('.').next().unwrap();
            let kind = metric_kind(&text, field, &aliases)
                .unwrap_or_else(|| panic!("{}: no metric type for {field}", file.display()));
            let mut name = c[1].to_string();
            if let Some(unit) = c.get(2) {
                name = format!("{name}_{}", unit.as_str().to_lowercase());
            }
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "gauge" => {
                    names.insert(name);
                }
                _ => names.extend(["_bucket", "_count", "_sum"].map(|s| format!("{name}{s}"))),
            }
        }
    }
    names
}

/// The kind of the metric held in `field`: from its declaration (`field: Type` or
/// `let field = Type...;`), with the file's type aliases expanded.
fn metric_kind(text: &str, field: &str, aliases: &[(String, String)]) -> Option<&'static str> {
    let declared = regex::Regex::new(&format!(
        r"\b{field}\s*:\s*([^;=\n]+)|\blet\s+{field}\s*=\s*([^;]+);"
    ))
    .unwrap();
    declared.captures_iter(text).find_map(|c| {
        let mut ty = c.get(1).or(c.get(2)).unwrap().as_str().to_string();
        for (name, definition) in aliases {
            if ty.contains(name.as_str()) {
                ty.push_str(definition);
            }
        }
        ["Histogram", "Counter", "Gauge"]
            .iter()
            .find(|k| ty.contains(*k))
            .map(|k| match *k {
                "Histogram" => "histogram",
                "Counter" => "counter",
                _ => "gauge",
            })
    })
}

#[test]
fn the_recorded_metrics_of_the_binaries_are_the_names_read_from_their_source() {
    let names = exposed_metric_names();
    for file in ["app-metrics.om", "agent-metrics.om"] {
        for line in recorded(file).lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(names.contains(name), "{file}: {name} not in {names:?}");
        }
    }
}

#[test]
fn dashboards_query_only_metrics_the_binaries_expose() {
    let monitor = values("central", "monitor.yaml");
    let prometheus_uids: Vec<&str> = monitor["grafana"]["additionalDataSources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "prometheus")
        .map(|s| s["uid"].as_str().unwrap())
        .collect();
    let exposed = exposed_metric_names();
    let mut checked = 0;
    for file in support::repo::files_under(&manifests_dir().join("dashboards"), &["json"]) {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let uid = target["datasource"]["uid"]
                    .as_str()
                    .or(panel["datasource"]["uid"].as_str())
                    .unwrap_or_default();
                if !prometheus_uids.contains(&uid) {
                    continue;
                }
                let expr = target["expr"].as_str().unwrap();
                assert!(
                    !expr.contains("__name__"),
                    "{}: name the metric instead of matching __name__: {expr}",
                    file.display()
                );
                let used = promql_metric_names(expr);
                assert!(!used.is_empty(), "{}: no metric in {expr}", file.display());
                for name in used {
                    assert!(
                        exposed.contains(&name),
                        "{}: {name} is not exposed by the demo-app binaries ({exposed:?})",
                        file.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers,
/// ranges and grouping clauses that are neither functions nor keywords.
fn promql_metric_names(expr: &str) -> Vec<String> {
    let noise = regex::Regex::new(
        r#""(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#,
    )
    .unwrap();
    let stripped = noise.replace_all(expr, " ");
    let identifier = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    identifier
        .find_iter(&stripped)
        .filter(|m| {
            let before = stripped[..m.start()].chars().last();
            let after = stripped[m.end()..].trim_start().chars().next();
            !matches!(before, Some(c) if c.is_ascii_digit() || c == '.' || c == '$')
                && after != Some('(')
                && !KEYWORDS.contains(&m.as_str().to_lowercase().as_str())
        })
        .map(|m| m.as_str().to_string())
        .collect()
}

/// The services `loadtest` and `grafana` forward to on their own (verify's are checked against
/// the Grafana data sources in tests/verify.rs) exist under those names in the manifests.
#[test]
fn the_deployers_own_forward_targets_exist_in_the_manifests() {
    use deployer::stack::endpoints::{GRAFANA, REMOTE_AGENT_ADMIN, REMOTE_PROMETHEUS};

    let agent = documents(&manifests_dir().join("remote/telemetry-agent.yaml"));
    let service = agent
        .iter()
        .find(|d| {
            d["kind"] == "Service"
                && d["metadata"]["name"] == REMOTE_AGENT_ADMIN.service
                && d["metadata"]["namespace"] == REMOTE_AGENT_ADMIN.namespace
        })
        .expect("the agent's Service");
    let ports: Vec<u64> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert!(
        ports.contains(&u64::from(REMOTE_AGENT_ADMIN.port)),
        "{ports:?}"
    );

    // kube-prometheus-stack names its Services `<fullnameOverride>-prometheus` and
    // `<release>-grafana`; both releases are `monitor`, in observability.
    let remote = values("remote", "monitor.yaml");
    let fullname = remote["fullnameOverride"].as_str().unwrap();
    assert_eq!(REMOTE_PROMETHEUS.service, format!("{fullname}-prometheus"));
    assert_eq!(REMOTE_PROMETHEUS.namespace, "observability");
    assert_eq!(GRAFANA.service, "monitor-grafana");
    assert_eq!(GRAFANA.namespace, "observability");
    let stack = Stack::current(&settings());
    let releases: Vec<(String, String)> = stack
        .central
        .releases()
        .chain(stack.remote.releases())
        .map(|r| (r.name.clone(), r.namespace.clone()))
        .collect();
    assert!(releases.contains(&("monitor".to_string(), "observability".to_string())));
}

/// The Prometheus APIs that values files name: linkerd's `prometheusUrl`, Grafana's data sources
/// of type prometheus and Prometheus's remote_write targets.
fn prometheus_urls(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(url)) = map.get("prometheusUrl") {
                found.push(url.clone());
            }
            if map.get("type").and_then(Value::as_str) == Some("prometheus")
                && let Some(Value::String(url)) = map.get("url")
            {
                found.push(url.clone());
            }
            if let Some(Value::Array(targets)) = map.get("remoteWrite") {
                found.extend(
                    targets
                        .iter()
                        .filter_map(|t| t["url"].as_str().map(String::from)),
                );
            }
            map.values().for_each(|v| prometheus_urls(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| prometheus_urls(v, found)),
        _ => {}
    }
}

/// The Services a release of `chart` makes that serve a Prometheus API (named as the charts'
/// templates name them; kube-prometheus-stack's operator adds `prometheus-operated`).
fn prometheus_services(chart: &str, release: &str, values: &Value) -> Vec<String> {
    match chart {
        "kube-prometheus-stack" => {
            let fullname = values["fullnameOverride"].as_str().unwrap_or(release);
            vec![
                format!("{fullname}-prometheus"),
                "prometheus-operated".to_string(),
            ]
        }
        "mimir-distributed" => vec![
            format!("{release}-query-frontend"),
            format!("{release}-distributor"),
        ],
        _ => vec![],
    }
}

#[test]
fn every_prometheus_url_names_a_service_the_plan_creates() {
    let settings = settings();
    let stack = Stack::current(&settings);
    let central_profile = &settings.central.profile;
    let served = |cluster: &deployer::stack::ClusterWorkloads| -> Vec<(String, String)> {
        cluster
            .releases()
            .flat_map(|r| {
                let chart = r.chart.split_once('/').unwrap().1;
                let values = r
                    .values_files
                    .first()
                    .map(|f| single_document(&repo_root().join(f)))
                    .unwrap_or(Value::Null);
                prometheus_services(chart, &r.name, &values)
                    .into_iter()
                    .map(|s| (s, r.namespace.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let central = served(&stack.central);
    let remote = served(&stack.remote);
    let mut checked = 0;
    for (cluster, workloads, local) in [
        ("central", &stack.central, &central),
        ("remote", &stack.remote, &remote),
    ] {
        for release in workloads.releases() {
            for file in &release.values_files {
                let mut urls = Vec::new();
                prometheus_urls(&single_document(&repo_root().join(file)), &mut urls);
                for url in urls {
                    let host = url
                        .trim_start_matches("http://")
                        .split([':', '/'])
                        .next()
                        .unwrap();
                    let mut parts = host.split('.');
                    let (service, namespace) = (parts.next().unwrap(), parts.next().unwrap());
                    let mirrored = service.strip_suffix(&format!("-{central_profile}"));
                    let found = match mirrored {
                        // A Linkerd mirror: the service is the central one of that name.
                        Some(service) if cluster == "remote" => {
                            central.contains(&(service.to_string(), namespace.to_string()))
                        }
                        _ => local.contains(&(service.to_string(), namespace.to_string())),
                    };
                    assert!(
                        found,
                        "{}: {url} names no Prometheus service the plan creates in {cluster}",
                        file.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 5, "checked {checked} URLs");
    // The heartbeat would query prometheus.linkerd-viz, which no cluster runs.
    for cluster in ["central", "remote"] {
        let values = values(cluster, "linkerd-control-plane.yaml");
        assert!(
            values["disableHeartBeat"] == true || values["prometheusUrl"].is_string(),
            "{cluster}: linkerd-control-plane's heartbeat has no Prometheus"
        );
        assert_eq!(values["podMonitor"]["enabled"], true, "{cluster}");
    }
}
