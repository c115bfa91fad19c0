//! What minikube (v1.38.1, the version the deployer is written against: `Tool::minimum_version`)
//! accepts for the values the deployer passes to `minikube start`, checked while clap parses the
//! command line: a bad value exits 2 naming its flag before anything is written or started.
//! The rules, read in minikube's source at tag v1.38.1 (never copied):
//! - profile: `ProfileNameValid` in pkg/minikube/config/profile.go, enforced by `runStart` in
//!   cmd/minikube/cmd/start.go: a DNS-hostname-like name (dot-separated labels of letters,
//!   digits and inner dashes), at least 2 characters. It also names files here (the issuer
//!   `issuer-<profile>.key` in the state folder), so `/` and `..` must never get through.
//! - memory: `getMemorySize`/`validateChangedMemoryFlags` (cmd/minikube/cmd/start_flags.go,
//!   start.go) parse it with `CalculateSizeInMB` (pkg/util/utils.go), which is docker/go-units
//!   v0.5.0's `RAMInBytes` (size.go) after a bare integer gets `mb`; `max` and `no-limit` (the
//!   docker and podman drivers); below `minUsableMem` (1800 MB, start_flags.go) minikube refuses.
//! - disk: `validateDiskSize` (start.go), the same parser, at least `minimumDiskSize` (2000 MB).
//! - CPUs: at least `minimumCPUS` (2) in `validateCPUCount` (start.go).
//! - network: minikube passes `--network` unchecked to `docker/podman network create`
//!   (pkg/drivers/kic/oci/network_create.go, `CreateNetwork`); the rule is the container
//!   engine's, Podman's `NameRegex` (containers/common libnetwork/types/define.go), which Docker
//!   names also satisfy.
//! - DNS domain: `--dns-domain` goes unchecked into kubeadm's `networking.dnsDomain` and the
//!   kubelet's `clusterDomain` (pkg/minikube/bootstrapper/bsutil/ktmpl/v1beta4.go); Kubernetes
//!   wants a DNS-1123 subdomain there (lower case letters, digits, `-` and `.`).

use std::sync::LazyLock;

use regex::Regex;

/// `minimumCPUS` in cmd/minikube/cmd/start_flags.go.
pub const MIN_CPUS: u16 = 2;
/// Above any machine this PoC runs on; keeps the CPU sums of the preflight far from overflow.
pub const MAX_CPUS: u16 = 1024;
/// `minUsableMem` in cmd/minikube/cmd/start_flags.go (minikube's "MB" are MiB).
pub const MIN_MEMORY_MB: u64 = 1800;
/// `minimumDiskSize` in cmd/minikube/cmd/start_flags.go.
pub const MIN_DISK_MB: u64 = 2000;

static PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern of `ProfileNameValid`: labels of alphanumerics with inner dashes, joined by dots.
    let label = "[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]";
    Regex::new(&format!("^(({label})\\.)*({label})$")).expect("a valid pattern")
});

static NETWORK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$").expect("a valid pattern"));

static DNS_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$").expect("a valid pattern"));

/// `--central-profile`, `--remote-profile`.
pub fn parse_profile(text: &str) -> Result<String, String> {
    if text.len() > 1 && PROFILE.is_match(text) {
        return Ok(text.to_string());
    }
    Err(
        "minikube accepts profile names of at least 2 characters made of letters, digits, \
         inner dashes and dots (its ProfileNameValid rule), e.g. lgtm-central"
            .to_string(),
    )
}

/// `--central-domain`, `--remote-domain`: a DNS-1123 subdomain.
pub fn parse_domain(text: &str) -> Result<String, String> {
    let labels_ok = text
        .split('.')
        .all(|label| label.len() <= 63 && DNS_LABEL.is_match(label));
    if !text.is_empty() && text.len() <= 253 && labels_ok {
        return Ok(text.to_string());
    }
    Err(
        "give a DNS domain: dot-separated labels of lower case letters, digits and inner \
         dashes, each at most 63 characters, 253 in all (Kubernetes' cluster domain rule), \
         e.g. lgtm-central.cluster.local"
            .to_string(),
    )
}

/// `--network`.
pub fn parse_network(text: &str) -> Result<String, String> {
    if NETWORK.is_match(text) {
        return Ok(text.to_string());
    }
    Err(
        "give a container network name: a letter or digit, then letters, digits, `_`, `.` or \
         `-` (the docker/podman rule), e.g. lgtm"
            .to_string(),
    )
}

/// `--central-cpus`, `--remote-cpus`.
pub fn parse_cpus(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|n| (MIN_CPUS..=MAX_CPUS).contains(n))
        .ok_or_else(|| {
            format!(
                "give a whole number of CPUs from {MIN_CPUS} (minikube's minimum) to {MAX_CPUS}, \
                 e.g. 4"
            )
        })
}

/// `--central-memory`, `--remote-memory`: kept as written (minikube reads it), once it is known
/// to mean at least minikube's minimum.
pub fn parse_memory(text: &str) -> Result<String, String> {
    if text == "max" || text == "no-limit" {
        return Ok(text.to_string());
    }
    let fix =
        "write e.g. 16g or 8192m (minikube's syntax: a number and b, k, m, g, t or p), or max";
    match size_in_mb(text) {
        Ok(mb) if mb >= MIN_MEMORY_MB => Ok(text.to_string()),
        Ok(mb) => Err(format!(
            "{mb} MB is below the {MIN_MEMORY_MB} MB Kubernetes needs (minikube refuses it); {fix}"
        )),
        Err(e) => Err(format!("{e}; {fix}")),
    }
}

/// `--central-disk-size`, `--remote-disk-size`.
pub fn parse_disk_size(text: &str) -> Result<String, String> {
    let fix = "write e.g. 40g (minikube's syntax: a number and b, k, m, g, t or p)";
    match size_in_mb(text) {
        Ok(mb) if mb >= MIN_DISK_MB => Ok(text.to_string()),
        Ok(mb) => Err(format!(
            "{mb} MB is below minikube's minimum disk of {MIN_DISK_MB} MB; {fix}"
        )),
        Err(e) => Err(format!("{e}; {fix}")),
    }
}

/// minikube's `CalculateSizeInMB`: a bare integer is MB; otherwise go-units' `RAMInBytes` (a
/// number, an optional space, then `b` or one of `kmgtp` with an optional `b`/`ib`, any case,
/// all binary), divided by MiB and rounded down.
pub fn size_in_mb(text: &str) -> Result<u64, String> {
    if text.parse::<i64>().is_ok() {
        return size_in_mb(&format!("{text}mb"));
    }
    let split = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(|| format!("`{text}` is not a size: it has no number"))?;
    let (number, suffix) = text.split_at(split.saturating_add(1));
    let number = number.strip_suffix(' ').unwrap_or(number);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a size: `{number}` is not a number"))?;
    let unit = unit_bytes(&suffix.to_ascii_lowercase())
        .ok_or_else(|| format!("`{text}` has an unknown unit `{suffix}`"))?;
    let bytes = value * unit;
    // go-units returns an int64 of bytes: beyond it, the value means nothing.
    if bytes >= i64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok((bytes / 1024.0 / 1024.0).floor() as u64)
}

fn unit_bytes(suffix: &str) -> Option<f64> {
    let mut chars = suffix.chars();
    let power = match chars.next() {
        None | Some('b') if suffix.len() <= 1 => return Some(1.0),
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        _ => return None,
    };
    matches!(chars.as_str(), "" | "b" | "ib").then(|| 1024f64.powi(power))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_follow_minikube() {
        for good in ["lgtm-central", "a1", "x.y", "Lgtm-2"] {
            assert!(parse_profile(good).is_ok(), "{good}");
        }
        for bad in [
            "x/../../../escaped",
            "..",
            "a",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "",
            "a b",
        ] {
            assert!(parse_profile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_read_like_minikube() {
        assert_eq!(size_in_mb("16g"), Ok(16384));
        assert_eq!(size_in_mb("16GB"), Ok(16384));
        assert_eq!(size_in_mb("4GiB"), Ok(4096));
        assert_eq!(size_in_mb("8192"), Ok(8192));
        assert_eq!(size_in_mb("8192m"), Ok(8192));
        assert_eq!(size_in_mb("2 g"), Ok(2048));
        assert_eq!(size_in_mb("1.5g"), Ok(1536));
        // A bare non-integer is bytes, as in go-units.
        assert_eq!(size_in_mb("1.5"), Ok(0));
        assert!(size_in_mb("16x").is_err());
        assert!(size_in_mb("16gib2").is_err());
        assert!(size_in_mb("g").is_err());
        assert!(size_in_mb("-1g").is_err());
        assert!(size_in_mb("99999999999p").is_err());
    }

    #[test]
    fn memory_disk_cpus_network_and_domains_have_minikube_minimums() {
        assert!(parse_memory("16g").is_ok());
        assert!(parse_memory("no-limit").is_ok());
        assert!(parse_memory("1g").unwrap_err().contains("1800 MB"));
        assert!(parse_disk_size("1g").unwrap_err().contains("2000 MB"));
        assert_eq!(parse_cpus("2"), Ok(2));
        assert!(parse_cpus("1").is_err());
        assert!(parse_cpus("65535").is_err());
        assert!(parse_network("lgtm_net.1").is_ok());
        assert!(parse_network("../x").is_err());
        assert!(parse_network("").is_err());
        assert!(parse_domain("lgtm-central.cluster.local").is_ok());
        assert!(parse_domain("Upper.local").is_err());
        assert!(parse_domain("a..b").is_err());
        assert!(parse_domain(&"a".repeat(64)).is_err());
    }
}
