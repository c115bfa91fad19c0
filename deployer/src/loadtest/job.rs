//! The loadgen Job: the demo-app image's `loadgen` against the app, with the same restricted
//! security context and resources as the demo's Deployments (manifests/remote/demo.yaml).

use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use super::{APP_URL, LoadtestSpec, NAMESPACE, Rate};

/// The loadgen's container; the pod also has Linkerd's proxy, so logs name it.
pub const CONTAINER: &str = "loadgen";
/// Label every loadtest Job and pod carries, to find (or clean up) them all.
pub const LOADTEST_LABEL: (&str, &str) = ("app.kubernetes.io/name", "loadtest");
/// Finished Jobs (and their pods, with the logs) stay this long for a look, then go.
pub const TTL_AFTER_FINISHED_SECONDS: i32 = 3600;
/// Resource attribute on every span of the run, so Tempo can find exactly this run's traces.
pub const RUN_ATTRIBUTE: &str = "loadtest.run";

/// `loadtest-YYYYMMDD-HHMMSS` (UTC): unique per run, sortable, and a valid DNS label.
pub fn job_name(now: time::OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    format!(
        "loadtest-{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// The loadgen's arguments: open or closed loop, JSON summary on stdout.
pub fn loadgen_args(spec: &LoadtestSpec) -> Vec<String> {
    let mut args = vec![
        "loadgen".to_string(),
        "--target".to_string(),
        APP_URL.to_string(),
        "--rate".to_string(),
        spec.rate.to_string(),
        "--duration".to_string(),
        format!("{}s", spec.duration.as_secs()),
        "--max-error-ratio".to_string(),
        spec.max_error_ratio.to_string(),
        "--output".to_string(),
        "json".to_string(),
    ];
    if spec.rate == Rate::Max {
        args.extend(["--connections".to_string(), spec.connections.to_string()]);
    }
    args
}

/// The Job object, ready for server-side apply.
pub fn loadgen_job(spec: &LoadtestSpec) -> Job {
    let (label_key, label_value) = LOADTEST_LABEL;
    let labels = json!({
        label_key: label_value,
        "app.kubernetes.io/part-of": "demo",
        "app.kubernetes.io/instance": spec.job_name,
    });
    let value = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.job_name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            // One try: a second run would double the load and blur the window being judged.
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        // Meshed like the rest of demo (the namespace injects), so the load
                        // takes the same mTLS path as the steady loadgen. A classic sidecar
                        // proxy would keep the pod running after the loadgen exits and the Job
                        // would never finish; as a native sidecar (an init container with
                        // restartPolicy Always) Kubernetes stops it when the loadgen ends.
                        // Chart 2026.8.3 defaults proxy.nativeSidecar to true; the annotation
                        // makes this Job independent of that default.
                        "config.beta.linkerd.io/proxy-enable-native-sidecar": "true",
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container(spec)],
                },
            },
        },
    });
    serde_json::from_value(value).expect("the Job literal matches the Job schema")
}

fn container(spec: &LoadtestSpec) -> serde_json::Value {
    json!({
        "name": CONTAINER,
        "image": spec.image,
        // Built into the minikube node by the deployer (`minikube image build`); never pulled.
        "imagePullPolicy": "Never",
        "args": loadgen_args(spec),
        "env": [
            {"name": "OTEL_SERVICE_NAME", "value": "loadgen"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT",
             "value": "http://telemetry-agent.observability.svc:4317"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES",
             "value": format!("deployment.environment=demo,{RUN_ATTRIBUTE}={}", spec.job_name)},
        ],
        // More CPU than the steady loadgen's 500m: this one is meant to push.
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_dns_labels_from_the_utc_time() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_795_809_909)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap());
        assert_eq!(job_name(at), "loadtest-20261127-200509");
    }
}
