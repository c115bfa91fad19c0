//! The user-supplied values of a release, merged the way `helm upgrade --install` merges them
//! before it stores them in the release (what `helm get values` prints back): each `--values`
//! file in order (every YAML document of it), maps merged deeply and later files winning; then
//! each `--set` (with helm's typing: `true`, `false`, `null`, integers); then each `--set-file`
//! (the file's text). Comparing the result with the deployed release's values tells whether an
//! upgrade would change anything.
//!
//! Only the `--set` forms the stack uses are modelled (dotted keys, one plain value); anything
//! else (lists, commas, escapes) is reported as [`ValuesError::Unsupported`] and the caller
//! upgrades rather than guess.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::HelmRelease;

#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a YAML map of values: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("`--set {0}` uses a form the deployer does not compare (lists, commas or escapes)")]
    Unsupported(String),
}

/// What helm would store as the release's user-supplied values.
pub fn desired_values(release: &HelmRelease) -> Result<Value, ValuesError> {
    let mut values = Map::new();
    for path in &release.values_files {
        for document in read_documents(path)? {
            merge_maps(&mut values, document);
        }
    }
    for (key, value) in &release.set {
        let path = key_path(key, value)?;
        set_path(&mut values, &path, typed_value(value));
    }
    for (key, file) in &release.set_file {
        let path = key_path(key, "")?;
        set_path(&mut values, &path, Value::String(read(file)?));
    }
    Ok(Value::Object(values))
}

fn read(path: &Path) -> Result<String, ValuesError> {
    std::fs::read_to_string(path).map_err(|source| ValuesError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every document of a values file; empty documents count as no values.
fn read_documents(path: &Path) -> Result<Vec<Map<String, Value>>, ValuesError> {
    let parse_error = |message: String| ValuesError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&read(path)?).map_err(|e| parse_error(e.to_string()))?;
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .map(|document| match document {
            Value::Object(map) => Ok(map),
            other => Err(parse_error(format!("the top level is {other}, not a map"))),
        })
        .collect()
}

/// helm's MergeMaps: a map merges into a map key by key; anything else replaces.
pub fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_maps(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `a.b.c` as ["a", "b", "c"]; refuses what helm's --set parser would read differently.
fn key_path(key: &str, value: &str) -> Result<Vec<String>, ValuesError> {
    let special = |text: &str| text.contains([',', '\\', '[', ']', '{', '}', '=']);
    if key.is_empty() || special(key) || value.contains([',', '\\']) || value.starts_with('{') {
        return Err(ValuesError::Unsupported(format!("{key}=…")));
    }
    Ok(key.split('.').map(str::to_string).collect())
}

fn set_path(values: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = values;
    for parent in parents {
        let entry = map
            .entry(parent.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        map = entry.as_object_mut().expect("made a map just above");
    }
    map.insert(last.clone(), value);
}

/// helm's typing of a `--set` value (strvals typedVal): booleans and null in any case, integers
/// unless they have a leading zero, everything else a string.
fn typed_value(text: &str) -> Value {
    if text.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if text.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    if text == "0" {
        return Value::from(0);
    }
    if !text.starts_with('0')
        && let Ok(number) = text.parse::<i64>()
    {
        return Value::from(number);
    }
    Value::String(text.to_string())
}

/// Where `desired` and `deployed` differ, as dotted key paths (sorted). Numbers compare by value:
/// helm keeps the release as JSON, so an integer may come back as `3` or `3.0`.
pub fn differences(desired: &Value, deployed: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_differences(desired, deployed, "", &mut found);
    found.sort();
    found
}

fn collect_differences(desired: &Value, deployed: &Value, at: &str, found: &mut Vec<String>) {
    match (desired, deployed) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => collect_differences(x, y, &path, found),
                    _ => found.push(path),
                }
            }
        }
        (a, b) if !same(a, b) => found.push(if at.is_empty() {
            "(all values)".to_string()
        } else {
            at.to_string()
        }),
        _ => {}
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, p)| y.get(key).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn release_with(files: &[&Path]) -> HelmRelease {
        let mut release = HelmRelease::new("r", "ns", "repo/chart", "1.0.0");
        release.values_files = files.iter().map(|p| p.to_path_buf()).collect();
        release
    }

    #[test]
    fn later_files_win_and_maps_merge_deeply() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.yaml");
        let second = dir.path().join("b.yaml");
        std::fs::write(
            &first,
            "a: {b: 1, c: [1, 2]}\nkeep: x\nreplaced: {deep: 1}\n",
        )
        .unwrap();
        std::fs::write(
            &second,
            "a: {d: 2, c: [3]}\nreplaced: flat\n---\nthird: doc\n",
        )
        .unwrap();
        let mut release = release_with(&[&first, &second]);
        release.set.push(("a.b".into(), "10".into()));
        release.set.push(("new.flag".into(), "TRUE".into()));
        release
            .set
            .push(("domain".into(), "lgtm-central.cluster.local.".into()));
        release.set.push(("zip".into(), "0755".into()));
        release.set_file.push(("pem".into(), first.clone()));
        let values = desired_values(&release).unwrap();
        assert_eq!(
            values,
            json!({
                "a": {"b": 10, "c": [3], "d": 2},
                "keep": "x",
                "replaced": "flat",
                "third": "doc",
                "new": {"flag": true},
                "domain": "lgtm-central.cluster.local.",
                "zip": "0755",
                "pem": std::fs::read_to_string(&first).unwrap(),
            })
        );
    }

    #[test]
    fn refuses_set_forms_it_does_not_model() {
        let mut release = release_with(&[]);
        release.set.push(("list[0]".into(), "x".into()));
        assert!(matches!(
            desired_values(&release),
            Err(ValuesError::Unsupported(_))
        ));
        let mut release = release_with(&[]);
        release.set.push(("a".into(), "b,c=d".into()));
        assert!(matches!(
            desired_values(&release),
            Err(ValuesError::Unsupported(_))
        ));
    }

    #[test]
    fn names_the_keys_that_differ() {
        let desired = json!({"a": {"b": 1, "c": "x"}, "n": 3, "l": [1, {"k": 2}]});
        let deployed =
            json!({"a": {"b": 1.0, "c": "y", "extra": true}, "n": 3.0, "l": [1.0, {"k": 2}]});
        assert_eq!(differences(&desired, &deployed), ["a.c", "a.extra"]);
        assert!(differences(&desired, &desired).is_empty());
        assert_eq!(differences(&json!({}), &json!([])), ["(all values)"]);
    }
}
