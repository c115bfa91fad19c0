//! What `deployer all` (and `central`) prints at the end: where Grafana is, how to reach it and
//! log in, and what to look at first.

use std::fmt::Write;
use std::path::Path;

use crate::credentials::credentials_dir;
use crate::k8s::Clients;
use crate::k8s::services::service_address;
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
}
