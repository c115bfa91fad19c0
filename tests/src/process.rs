//! Runs one of the project's binaries as a child process and reads its JSON log lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Sends signal `name` (`TERM`, `INT`) to process `pid`, as a user's `kill` or Ctrl-C would;
/// panics when `kill(1)` fails.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Whether process `pid` still exists (`kill -0`).
pub fn is_running(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("running kill")
        .success()
}

pub struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `bin` with `args` and extra `env` (stdout is captured, stderr passes through).
    pub fn spawn(name: &str, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, _) in std::env::vars() {
            if k.starts_with("OTEL_") || k.starts_with("DEMO_") || k == "RUST_LOG" {
                command.env_remove(k);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// Every stdout line parsed as JSON; panics on a line that is not JSON (the contract).
    pub fn logs(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: stdout line is not JSON ({e}): {l}", self.name))
            })
            .collect()
    }

    /// Waits for a log line matching `pred`.
    pub async fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let name = self.name.clone();
        crate::eventually(&format!("a log line of {name}"), timeout, async || {
            self.logs().into_iter().find(&pred)
        })
        .await
    }

    /// The API address from the `listening` log line.
    pub async fn listen_addr(&self) -> SocketAddr {
        self.logged_addr("addr").await
    }

    /// The metrics address from the `listening` log line.
    pub async fn metrics_addr(&self) -> SocketAddr {
        self.logged_addr("metrics_addr").await
    }

    /// An address field (`addr`, `grpc_addr`, ...) of the `listening` log line.
    pub async fn logged_addr(&self, field: &str) -> SocketAddr {
        let line = self
            .wait_for_log(Duration::from_secs(20), |l| l["message"] == "listening")
            .await;
        line[field]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{}: no {field} in {line}", self.name))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        send_signal(self.pid(), name);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo service as two processes, db and app, on port-0 sockets, the app pointed at the db.
pub struct DemoPair {
    pub db: Proc,
    pub app: Proc,
    /// `http://127.0.0.1:<port>` of the app.
    pub app_url: String,
}

impl DemoPair {
    /// Starts `bin serve --role db`, then `bin serve --role app` with `app_extra` flags; each
    /// with its own extra environment.
    pub async fn start(
        bin: &str,
        db_env: &[(&str, &str)],
        app_env: &[(&str, &str)],
        app_extra: &[&str],
    ) -> Self {
        let listen = ["--listen", "127.0.0.1:0"];
        let db_args: Vec<&str> = ["serve", "--role", "db"]
            .iter()
            .chain(&listen)
            .copied()
            .collect();
        let db = Proc::spawn("db", bin, &db_args, db_env);
        let db_url = format!("http://{}", db.listen_addr().await);
        let mut app_args = vec!["serve", "--role", "app", "--db-url", &db_url];
        app_args.extend(listen);
        app_args.extend(app_extra);
        let app = Proc::spawn("app", bin, &app_args, app_env);
        let app_url = format!("http://{}", app.listen_addr().await);
        Self { db, app, app_url }
    }
}

/// The telemetry agent as a child process, with its listen addresses.
pub struct AgentProc {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
}

impl AgentProc {
    /// Starts `bin agent` with its gRPC, HTTP and metrics listeners on port 0, `--upstream`
    /// and `--tenant`, then `extra`; a flag given in `extra` replaces the default of the same
    /// name. Returns once its `listening` log line says where it listens.
    pub async fn start(
        bin: &str,
        upstream: &str,
        tenant: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let defaults = [
            ("--grpc-listen", "127.0.0.1:0"),
            ("--http-listen", "127.0.0.1:0"),
            ("--metrics-listen", "127.0.0.1:0"),
            ("--upstream", upstream),
            ("--tenant", tenant),
        ];
        let mut args = vec!["agent"];
        args.extend(
            defaults
                .iter()
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(flag, value)| [*flag, *value]),
        );
        args.extend_from_slice(extra);
        let proc = Proc::spawn("agent", bin, &args, env);
        let grpc = proc.logged_addr("grpc_addr").await;
        let http = proc.logged_addr("http_addr").await;
        let metrics = proc.logged_addr("metrics_addr").await;
        Self {
            proc,
            grpc,
            http,
            metrics,
        }
    }
}
