//! Nothing secret leaves the machine in a bundle: the credentials the deployer generated are
//! replaced wherever they appear, and so are values whose key looks like a password, token or
//! key, and PEM private keys. Secrets themselves are never read.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub const MASK: &str = "***";

/// A key that names something secret: `rootPassword`, `MINIO_ROOT_PASSWORD`, `api-key`, ...
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|credential|private[_-]?key)",
    )
    .expect("valid regex")
});

/// `key: value` or `key=value` on one line, the key naming something secret; the value ends at
/// whitespace or a separator. `[ \t]*` (not `\s*`) keeps a `key:` ending its line from taking
/// the next line as its value.
static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|credential)[A-Za-z0-9_.\-]*["']?[ \t]*[:=][ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s,;&}"']+)"#,
    )
    .expect("valid regex")
});

static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)(-----BEGIN [A-Z ]*PRIVATE KEY-----).*?(-----END [A-Z ]*PRIVATE KEY-----)")
        .expect("valid regex")
});

#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Exact values to hide wherever they appear (longest first, so no part of one survives).
    known: Vec<String>,
}

impl Masker {
    /// Knows every credential in `<state>/credentials/`.
    pub fn from_state(state_dir: &Path) -> Self {
        let mut known = Vec::new();
        if let Ok(entries) = std::fs::read_dir(crate::credentials::credentials_dir(state_dir)) {
            for entry in entries.flatten() {
                if let Ok(value) = std::fs::read_to_string(entry.path()) {
                    known.push(value.trim().to_string());
                }
            }
        }
        Masker::with_known(known)
    }

    pub fn with_known(known: impl IntoIterator<Item = String>) -> Self {
        // Very short values would mask ordinary words.
        let mut known: Vec<String> = known.into_iter().filter(|v| v.len() >= 6).collect();
        known.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Masker { known }
    }

    pub fn text(&self, text: &str) -> String {
        let mut masked = text.to_string();
        for value in &self.known {
            masked = masked.replace(value.as_str(), MASK);
        }
        let masked = PRIVATE_KEY.replace_all(&masked, format!("$1\n{MASK}\n$2"));
        SECRET_ASSIGNMENT
            .replace_all(&masked, format!("${{1}}{MASK}"))
            .into_owned()
    }

    /// Masks a JSON document in place: values under secret-looking keys, `env` entries whose
    /// name looks secret, and every string as text.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                let env_name_secret = map
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| SECRET_KEY.is_match(n));
                for (key, child) in map.iter_mut() {
                    let secret_key =
                        SECRET_KEY.is_match(key) && !child.is_object() && !child.is_array();
                    if secret_key || (env_name_secret && key == "value") {
                        *child = Value::String(MASK.to_string());
                    } else {
                        self.json(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            Value::String(text) => *text = self.text(text),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_assignments_known_values_and_keys() {
        let masker = Masker::with_known(["generated-s3cr3t".to_string()]);
        let text = "rootPassword: hunter22\nuser=admin password=abc123 next\n\
                    secretKeyRef:\n  name: x\nlog: connecting with generated-s3cr3t\n\
                    -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
        let masked = masker.text(text);
        for secret in ["hunter22", "abc123", "generated-s3cr3t", "MHcCAQEE"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("user=admin"), "{masked}");
        assert!(masked.contains("secretKeyRef:\n  name: x"), "{masked}");
    }

    #[test]
    fn masks_json_env_and_keys() {
        let masker = Masker::default();
        let mut pod = json!({"env": [
            {"name": "MINIO_ROOT_PASSWORD", "value": "topsecret9"},
            {"name": "MINIO_ROOT_USER", "value": "admin"}
        ], "auth": {"token": "tok-123456"}});
        masker.json(&mut pod);
        let text = pod.to_string();
        assert!(
            !text.contains("topsecret9") && !text.contains("tok-123456"),
            "{text}"
        );
        assert!(text.contains("admin"), "{text}");
    }
}
