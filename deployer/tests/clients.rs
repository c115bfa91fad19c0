//! Clients per kube context, read from kubeconfig files as minikube writes them.

use deployer::certs::{CertRequest, PemPair, ensure_certificates};
use deployer::k8s::Clients;

#[tokio::test]
async fn makes_a_tls_client_per_context_from_a_kubeconfig_list() {
    let dir = tempfile::tempdir().unwrap();
    // Any CA will do to build the TLS configuration; no connection is made.
    ensure_certificates(&CertRequest {
        dir: dir.path().to_path_buf(),
        issuers: vec![],
        force: false,
        now: time::OffsetDateTime::now_utc(),
    })
    .unwrap();
    let ca = PemPair::anchor(dir.path()).cert;
    let context = |name: &str, port: u16| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\nusers:\n- name: {name}\n  user:\n    token: t\ncurrent-context: {name}\n",
            ca.display()
        )
    };
    let first = dir.path().join("central.yaml");
    let second = dir.path().join("remote.yaml");
    std::fs::write(&first, context("lgtm-central", 1)).unwrap();
    std::fs::write(&second, context("lgtm-remote", 2)).unwrap();
    let list = std::env::join_paths([&first, &second]).unwrap();

    let clients = Clients::new(Some(list.into()));
    clients.client("lgtm-central").await.unwrap();
    clients.client("lgtm-remote").await.unwrap();
    let Err(missing) = clients.client("lgtm-other").await else {
        panic!("a context that is not in the kubeconfig");
    };
    assert!(missing.to_string().contains("lgtm-other"), "{missing}");
    assert!(missing.help().unwrap().contains("minikube"));
}
