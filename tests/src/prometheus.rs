//! A real Prometheus server (the `prometheus` binary, Debian package `prometheus`) scraping
//! the given targets every second, with exemplar storage on.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name, address); waits until it is ready.
    pub async fn start(targets: &[(&str, SocketAddr)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus ({e}): install it with `apt-get install prometheus` (.ci/run does)")
            });
        let prometheus = Self {
            child,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        crate::eventually(
            "prometheus to be ready",
            Duration::from_secs(30),
            async || {
                let ready = prometheus
                    .http
                    .get(format!("{}/-/ready", prometheus.url))
                    .send()
                    .await;
                ready.is_ok_and(|r| r.status().is_success()).then_some(())
            },
        )
        .await;
        prometheus
    }

    /// `/api/v1/query`: the `data.result` array.
    pub async fn query(&self, expr: &str) -> Value {
        self.api("query", &[("query", expr)]).await
    }

    /// `/api/v1/query_exemplars` over the last hour: the `data` array.
    pub async fn query_exemplars(&self, expr: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (start, end) = ((now - 3600).to_string(), (now + 60).to_string());
        self.api(
            "query_exemplars",
            &[("query", expr), ("start", &start), ("end", &end)],
        )
        .await
    }

    /// The health of every scrape target (`up`), as (job, value).
    pub async fn targets_up(&self) -> Vec<(String, f64)> {
        let result = self.query("up").await;
        result
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let job = s["metric"]["job"].as_str().unwrap_or("").to_owned();
                let v = s["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0.0);
                (job, v)
            })
            .collect()
    }

    async fn api(&self, endpoint: &str, params: &[(&str, &str)]) -> Value {
        let url = format!("{}/api/v1/{endpoint}", self.url);
        let body: Value = self
            .http
            .get(url)
            .query(params)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        match endpoint {
            "query" => body["data"]["result"].clone(),
            _ => body["data"].clone(),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that `promtool check metrics` (Debian package `prometheus`) accepts `text`.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; .ci/run does)");
    let mut stdin = promtool.stdin.take().expect("stdin is piped");
    stdin
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    drop(stdin);
    let out = promtool.wait_with_output().expect("waiting for promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
