//! minikube's `--memory` syntax: a plain number is MiB; `k`, `m`, `g`, `t` (with or without `b`,
//! `i`) are binary units, as minikube reads them (its `util.CalculateSizeInMB`, docker's
//! `go-units` RAMInBytes); `max` and `no-limit` are words minikube resolves itself.

/// A profile's memory as the preflight can compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    Mib(u64),
    /// `max`: all the engine has; `no-limit`: no cgroup limit. Nothing to compare.
    EngineDecides,
}

pub fn parse_memory(text: &str) -> Option<Memory> {
    let text = text.trim().to_ascii_lowercase();
    if text == "max" || text == "no-limit" {
        return Some(Memory::EngineDecides);
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let number: f64 = text[..digits_end].parse().ok()?;
    let unit = text[digits_end..]
        .trim()
        .trim_end_matches('b')
        .trim_end_matches('i');
    let mib = match unit {
        "" | "m" => number,
        "k" => number / 1024.0,
        "g" => number * 1024.0,
        "t" => number * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(Memory::Mib(mib.round() as u64))
}

/// `16.0 GiB`, `3.5 GiB`, `512 MiB`.
pub fn show_mib(mib: u64) -> String {
    if mib >= 1024 {
        format!("{:.1} GiB", mib as f64 / 1024.0)
    } else {
        format!("{mib} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minikube_memory_sizes() {
        assert_eq!(parse_memory("16g"), Some(Memory::Mib(16384)));
        assert_eq!(parse_memory("16GB"), Some(Memory::Mib(16384)));
        assert_eq!(parse_memory("4GiB"), Some(Memory::Mib(4096)));
        assert_eq!(parse_memory("8192m"), Some(Memory::Mib(8192)));
        assert_eq!(parse_memory("8192"), Some(Memory::Mib(8192)));
        assert_eq!(parse_memory("max"), Some(Memory::EngineDecides));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(show_mib(16384), "16.0 GiB");
    }
}
