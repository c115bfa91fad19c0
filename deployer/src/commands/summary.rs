//! What `deployer all` (and `central`) prints at the end: where Grafana is, how to reach it and
//! log in, and what to look at first; before it, for every deploy command, the slowest steps
//! against their estimates.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use crate::credentials::credentials_dir;
use crate::engine::StepResult;
use crate::k8s::Clients;
use crate::k8s::services::service_address;
use crate::plan::DeployPlan;
use crate::plan::describe::human;
use crate::settings::Settings;

pub const GRAFANA_HOST: &str = "grafana.example.com";
/// The ingress controller's Service (release traefik in namespace traefik).
const INGRESS: (&str, &str) = ("traefik", "traefik");
/// The credential the Grafana admin Secret is made from (see `stack/central.rs`).
const PASSWORD: &str = "grafana-admin-password";

/// The ingress address, read from the central cluster; None while MetalLB has not assigned one
/// or the cluster cannot be read (the summary then says how to find it).
pub async fn ingress_address(settings: &Settings) -> Option<String> {
    let clients = Clients::new(settings.kubeconfig.clone());
    let client = clients.client(settings.central.context()).await.ok()?;
    service_address(&client, INGRESS.0, INGRESS.1)
        .await
        .ok()?
        .external
}

/// How many of the slowest steps the summary names.
const SLOWEST_SHOWN: usize = 5;

/// The slowest steps of the run, slowest first, each with its estimate: where the time went, and
/// which estimates are off.
pub fn slowest_steps(plan: &DeployPlan, results: &[StepResult]) -> String {
    let mut slowest: Vec<&StepResult> = results.iter().collect();
    slowest.sort_by_key(|r| std::cmp::Reverse(r.elapsed));
    slowest.truncate(SLOWEST_SHOWN);
    if slowest.is_empty() {
        return String::new();
    }
    let width = slowest.iter().map(|r| r.step.len()).max().unwrap_or(0);
    let mut out = String::from(
        "Slowest steps (took, against the estimate):
",
    );
    for result in slowest {
        let estimate = plan
            .index_of(&result.step)
            .map(|i| human(plan.steps()[i].estimate))
            .unwrap_or_else(|| "none".to_string());
        let _ = writeln!(
            out,
            "  {:<width$}  {:>7}  (estimate {estimate})",
            result.step,
            took(result.elapsed)
        );
    }
    out
}

/// `4m 12s`, or `3.4s` under a minute (a re-run's steps take seconds).
fn took(elapsed: Duration) -> String {
    if elapsed >= Duration::from_secs(60) {
        human(elapsed)
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

pub fn render(settings: &Settings, ingress: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nGrafana: https://{GRAFANA_HOST}");
    match ingress {
        Some(ip) => {
            let _ = writeln!(out, "  add to /etc/hosts:  {ip} {GRAFANA_HOST}");
        }
        None => {
            let _ = writeln!(
                out,
                "  the ingress has no address yet: see `deployer status` (traefik in lgtm-central)"
            );
        }
    }
    let _ = writeln!(
        out,
        "  or, where LoadBalancer addresses are not reachable (macOS): `deployer grafana`"
    );
    let _ = writeln!(out, "  {}", login_line(settings));
    let _ = writeln!(
        out,
        "  the certificate comes from the PoC's own CA: accept it in the browser, or trust the \
         CA in Secret cert-manager/lgtm-ingress-ca"
    );
    let _ = writeln!(
        out,
        "Look first at: Dashboards > Demo app (remote01): requests, errors and latency of the \
         remote demo; click an exemplar dot for its trace in Tempo, then \"Logs for this span\"."
    );
    out
}

/// "log in as admin, password ... (kept in ...)".
pub fn login_line(settings: &Settings) -> String {
    let password_file = credentials_dir(&settings.state_dir).join(PASSWORD);
    format!(
        "log in as admin, password {} (kept in {})",
        password(&password_file),
        password_file.display()
    )
}

/// The generated password, shown on the user's own terminal like the deploy's other results.
fn password(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|_| "<made by the first deploy>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn names_the_url_the_hosts_line_and_the_password_file() {
        let cli = crate::Cli::parse_from(["deployer", "all", "--state-dir", "/tmp/s"]);
        let settings = Settings::from_args(&cli.global);
        let text = render(&settings, Some("192.168.49.201"));
        assert!(text.contains("https://grafana.example.com"));
        assert!(text.contains("192.168.49.201 grafana.example.com"));
        assert!(text.contains("password <made by the first deploy> (kept in /tmp/s/credentials/grafana-admin-password)"));
        assert!(render(&settings, None).contains("deployer status"));
    }

    #[test]
    fn names_the_slowest_steps_with_their_estimates() {
        use crate::engine::{Outcome, Plan, Step};
        let step = |name: &str, estimate: u64| {
            Step::new(
                name,
                crate::plan::Action::Certificates { force: false },
                Duration::from_secs(estimate),
            )
        };
        let plan = Plan::new((0..7).map(|i| step(&format!("s{i}"), 60 * i)).collect()).unwrap();
        let results: Vec<StepResult> = (0..7)
            .map(|i| StepResult {
                step: format!("s{i}"),
                outcome: Outcome::Unchanged(String::new()),
                // The last step is the slow one; the others took seconds.
                elapsed: if i == 6 {
                    Duration::from_secs(250)
                } else {
                    Duration::from_millis(700 * (7 - i))
                },
            })
            .collect();
        let text = slowest_steps(&plan, &results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + SLOWEST_SHOWN, "{text}");
        assert_eq!(lines[1], "  s6   4m 10s  (estimate 6m 00s)");
        assert_eq!(lines[2], "  s0     4.9s  (estimate 0s)");
        assert!(slowest_steps(&plan, &[]).is_empty());
    }
}
