//! New certificates with rcgen: ECDSA P-256 keys, SHA-256 signatures, CA with keyCertSign + cRLSign.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use super::{ANCHOR_COMMON_NAME, ANCHOR_VALIDITY, ISSUER_VALIDITY};

/// How far before "now" a certificate becomes valid: a node's clock may lag this machine's (a
/// laptop's VM after sleep), and a certificate "not valid yet" breaks the mesh until it catches up.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// A certificate and its private key, both PEM.
pub struct MadeCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The trust anchor: self-signed, may sign CAs one level down (pathlen 1).
pub fn anchor(now: OffsetDateTime) -> Result<MadeCert, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params(
        ANCHOR_COMMON_NAME,
        1,
        now - CLOCK_SKEW,
        now + ANCHOR_VALIDITY,
    );
    let cert = params.self_signed(&key)?;
    Ok(MadeCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A cluster's issuer: signed by the anchor, signs only workload certificates (pathlen 0).
pub fn issuer(
    common_name: &str,
    anchor_cert_pem: &str,
    anchor_key_pem: &str,
    now: OffsetDateTime,
) -> Result<MadeCert, rcgen::Error> {
    let anchor_key = KeyPair::from_pem(anchor_key_pem)?;
    let anchor = Issuer::from_ca_cert_pem(anchor_cert_pem, anchor_key)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params(common_name, 0, now - CLOCK_SKEW, now + ISSUER_VALIDITY);
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &anchor)?;
    Ok(MadeCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn ca_params(
    common_name: &str,
    path_len: u8,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_after;
    params
}
