//! Reading existing certificates to decide whether they are still good.

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::parse_x509_pem;

use super::{ANCHOR_COMMON_NAME, PemPair};

/// What the policy needs to know about a certificate that passed the checks.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub common_name: String,
    pub not_after: OffsetDateTime,
}

/// Err carries the reason in words, for the user.
pub fn check_anchor(pair: &PemPair, now: OffsetDateTime) -> Result<CertInfo, String> {
    let (cert_pem, key_pem) = read_pair(pair)?;
    with_cert(&cert_pem, |cert| {
        check_common(cert, &key_pem, ANCHOR_COMMON_NAME, now)?;
        cert.verify_signature(None)
            .map_err(|e| format!("its self-signature does not verify: {e}"))?;
        info(cert)
    })
}

pub fn check_issuer(
    pair: &PemPair,
    anchor_cert_pem: &str,
    expected_cn: &str,
    now: OffsetDateTime,
) -> Result<CertInfo, String> {
    let (cert_pem, key_pem) = read_pair(pair)?;
    with_cert(anchor_cert_pem, |anchor| {
        with_cert(&cert_pem, |cert| {
            check_common(cert, &key_pem, expected_cn, now)?;
            cert.verify_signature(Some(anchor.public_key()))
                .map_err(|_| "it was not signed by the current trust anchor".to_string())?;
            info(cert)
        })
    })
}

fn read_pair(pair: &PemPair) -> Result<(String, String), String> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    Ok((read(&pair.cert)?, read(&pair.key)?))
}

fn with_cert<T>(
    pem: &str,
    use_cert: impl FnOnce(&X509Certificate<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let (_, pem) = parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not a PEM file: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    use_cert(&cert)
}

fn check_common(
    cert: &X509Certificate<'_>,
    key_pem: &str,
    expected_cn: &str,
    now: OffsetDateTime,
) -> Result<(), String> {
    let found = common_name(cert);
    if found != expected_cn {
        return Err(format!("its CN is `{found}`, expected `{expected_cn}`"));
    }
    let validity = cert.validity();
    if validity.not_after.to_datetime() <= now {
        return Err(format!("it expired on {}", validity.not_after));
    }
    if validity.not_before.to_datetime() > now {
        return Err(format!("it is valid only from {}", validity.not_before));
    }
    if !cert.is_ca() {
        return Err("it is not a CA".to_string());
    }
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    if cert.public_key().subject_public_key.data.as_ref() != rcgen::PublicKeyData::der_bytes(&key) {
        return Err("the key file does not belong to the certificate".to_string());
    }
    Ok(())
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn info(cert: &X509Certificate<'_>) -> Result<CertInfo, String> {
    Ok(CertInfo {
        common_name: common_name(cert),
        not_after: cert.validity().not_after.to_datetime(),
    })
}
