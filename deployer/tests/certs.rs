//! Certificates checked by an independent implementation: the openssl CLI.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use deployer::certs::{CertAction, CertRequest, IssuerFor, PemPair, ensure_certificates};
use time::{Duration, OffsetDateTime};

fn request(dir: &Path, force: bool, now: OffsetDateTime) -> CertRequest {
    CertRequest {
        dir: dir.to_path_buf(),
        issuers: vec![
            IssuerFor {
                profile: "lgtm-central".into(),
                domain: "lgtm-central.cluster.local".into(),
            },
            IssuerFor {
                profile: "lgtm-remote".into(),
                domain: "lgtm-remote.cluster.local".into(),
            },
        ],
        force,
        now,
    }
}

fn openssl(args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn text_of(cert: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-text",
        "-nameopt",
        "RFC2253",
    ])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn issuers_verify_against_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    ensure_certificates(&request(dir.path(), false, OffsetDateTime::now_utc())).unwrap();
    let anchor = PemPair::anchor(dir.path());
    for profile in ["lgtm-central", "lgtm-remote"] {
        let issuer = PemPair::issuer(dir.path(), profile);
        let out = openssl(&[
            "verify",
            "-CAfile",
            anchor.cert.to_str().unwrap(),
            issuer.cert.to_str().unwrap(),
        ]);
        assert!(out.trim().ends_with(": OK"), "{out}");
    }
}

/// A node whose clock lags (a laptop's VM after sleep) must already accept the certificates.
#[test]
fn certificates_are_valid_from_a_few_minutes_back() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    ensure_certificates(&request(dir.path(), false, now)).unwrap();
    let anchor = PemPair::anchor(dir.path());
    let lagging = (now - Duration::minutes(4)).unix_timestamp().to_string();
    for profile in ["lgtm-central", "lgtm-remote"] {
        let issuer = PemPair::issuer(dir.path(), profile);
        let out = openssl(&[
            "verify",
            "-attime",
            &lagging,
            "-CAfile",
            anchor.cert.to_str().unwrap(),
            issuer.cert.to_str().unwrap(),
        ]);
        assert!(out.trim().ends_with(": OK"), "{out}");
    }
}

#[test]
fn anchor_has_the_specified_extensions() {
    let dir = tempfile::tempdir().unwrap();
    ensure_certificates(&request(dir.path(), false, OffsetDateTime::now_utc())).unwrap();
    let text = text_of(&PemPair::anchor(dir.path()).cert);
    assert!(
        text.contains("Subject: CN=root.linkerd.cluster.local"),
        "{text}"
    );
    assert!(
        text.contains("Issuer: CN=root.linkerd.cluster.local"),
        "{text}"
    );
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{text}"
    );
    let end = openssl(&[
        "x509",
        "-in",
        PemPair::anchor(dir.path()).cert.to_str().unwrap(),
        "-noout",
        "-checkend",
        &(9 * 365 * 24 * 3600).to_string(),
    ]);
    assert!(end.contains("will not expire"), "valid for years: {end}");
}

#[test]
fn issuers_have_the_specified_extensions() {
    let dir = tempfile::tempdir().unwrap();
    ensure_certificates(&request(dir.path(), false, OffsetDateTime::now_utc())).unwrap();
    for (profile, domain) in [
        ("lgtm-central", "lgtm-central.cluster.local"),
        ("lgtm-remote", "lgtm-remote.cluster.local"),
    ] {
        let cert = PemPair::issuer(dir.path(), profile).cert;
        let text = text_of(&cert);
        assert!(
            text.contains(&format!("Subject: CN=identity.linkerd.{domain}")),
            "{text}"
        );
        assert!(
            text.contains("Issuer: CN=root.linkerd.cluster.local"),
            "{text}"
        );
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
        assert!(
            text.contains("Signature Algorithm: ecdsa-with-SHA256"),
            "{text}"
        );
        let path = cert.to_str().unwrap();
        let in_300_days = (300 * 24 * 3600).to_string();
        let in_400_days = (400 * 24 * 3600).to_string();
        assert!(
            openssl(&["x509", "-in", path, "-noout", "-checkend", &in_300_days])
                .contains("will not expire")
        );
        let late = Command::new("openssl")
            .args(["x509", "-in", path, "-noout", "-checkend", &in_400_days])
            .output()
            .unwrap();
        assert!(!late.status.success(), "an issuer is valid for a year");
    }
}

#[test]
fn keys_are_private() {
    let dir = tempfile::tempdir().unwrap();
    ensure_certificates(&request(dir.path(), false, OffsetDateTime::now_utc())).unwrap();
    let keys = [
        PemPair::anchor(dir.path()).key,
        PemPair::issuer(dir.path(), "lgtm-central").key,
        PemPair::issuer(dir.path(), "lgtm-remote").key,
    ];
    for key in keys {
        let mode = key.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        // openssl reads it as an EC key on P-256.
        let text = openssl(&["ec", "-in", key.to_str().unwrap(), "-noout", "-text"]);
        assert!(text.contains("prime256v1"), "{text}");
    }
}

#[test]
fn a_second_run_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let first = ensure_certificates(&request(dir.path(), false, now)).unwrap();
    assert!(first.changed());
    let anchor = read(&PemPair::anchor(dir.path()).cert);
    let issuer = read(&PemPair::issuer(dir.path(), "lgtm-remote").cert);
    let second = ensure_certificates(&request(dir.path(), false, now)).unwrap();
    assert!(!second.changed(), "{:?}", second.actions);
    assert!(second.warnings.is_empty());
    assert_eq!(read(&PemPair::anchor(dir.path()).cert), anchor);
    assert_eq!(
        read(&PemPair::issuer(dir.path(), "lgtm-remote").cert),
        issuer
    );
}

#[test]
fn the_anchor_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    ensure_certificates(&request(dir.path(), false, now)).unwrap();
    let anchor = PemPair::anchor(dir.path());
    let original = read(&anchor.cert);

    // An unusable anchor is an error, not a silent replacement.
    std::fs::write(&anchor.cert, "garbage").unwrap();
    let err = ensure_certificates(&request(dir.path(), false, now)).unwrap_err();
    assert!(err.to_string().contains("cannot be used"), "{err}");
    assert!(err.help().contains("--force"));
    assert_eq!(read(&anchor.cert), "garbage");

    let forced = ensure_certificates(&request(dir.path(), true, now)).unwrap();
    assert!(forced.changed());
    assert_ne!(read(&anchor.cert), original);
    // The issuers follow the new anchor.
    let out = openssl(&[
        "verify",
        "-CAfile",
        anchor.cert.to_str().unwrap(),
        PemPair::issuer(dir.path(), "lgtm-central")
            .cert
            .to_str()
            .unwrap(),
    ]);
    assert!(out.trim().ends_with(": OK"), "{out}");
}

#[test]
fn an_issuer_is_renewed_when_its_domain_changes_and_the_anchor_stays() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    ensure_certificates(&request(dir.path(), false, now)).unwrap();
    let anchor = read(&PemPair::anchor(dir.path()).cert);
    let mut changed = request(dir.path(), false, now);
    changed.issuers[0].domain = "other.local".into();
    let report = ensure_certificates(&changed).unwrap();
    assert!(
        matches!(report.actions[1], CertAction::Replaced { .. }),
        "{:?}",
        report.actions
    );
    assert!(
        matches!(report.actions[2], CertAction::Kept(_)),
        "{:?}",
        report.actions
    );
    assert_eq!(read(&PemPair::anchor(dir.path()).cert), anchor);
    let text = text_of(&PemPair::issuer(dir.path(), "lgtm-central").cert);
    assert!(text.contains("CN=identity.linkerd.other.local"), "{text}");
}

#[test]
fn warns_when_an_issuer_expires_within_60_days() {
    let dir = tempfile::tempdir().unwrap();
    // Made 320 days ago: 45 days of the year left.
    let then = OffsetDateTime::now_utc() - Duration::days(320);
    ensure_certificates(&request(dir.path(), false, then)).unwrap();
    let report =
        ensure_certificates(&request(dir.path(), false, OffsetDateTime::now_utc())).unwrap();
    assert!(
        !report.changed(),
        "still valid, so kept: {:?}",
        report.actions
    );
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("lgtm-central"));
    assert!(report.warnings[0].contains("less than 60 days"));
}

#[test]
fn the_certs_command_writes_to_the_state_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_deployer"))
            .args(["certs", "--state-dir"])
            .arg(dir.path())
            .env_remove("LGTM_DRY_RUN")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let anchor = dir.path().join("certs/trust-anchor.crt");
    let original = read(&anchor);
    let second = run();
    assert!(second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("unchanged certificates"), "{stderr}");
    assert_eq!(read(&anchor), original);
    let forced = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["certs", "--force", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert_ne!(read(&anchor), original);
}
