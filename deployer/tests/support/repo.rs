//! The repository's files for the checks that need no cluster: manifests/ and the upstream
//! reference data in ../shared/upstream (beside the repository, in CI too).

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn manifests_dir() -> PathBuf {
    repo_root().join("manifests")
}

pub fn upstream_dir() -> PathBuf {
    let dir = repo_root().join("../shared/upstream");
    assert!(
        dir.is_dir(),
        "{} is missing: the upstream chart defaults and CRDs live beside the repository",
        dir.display()
    );
    dir
}

/// Every file under `dir` with one of `extensions`, sorted.
pub fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

pub fn yaml_files() -> Vec<PathBuf> {
    files_under(&manifests_dir(), &["yaml", "yml"])
}

/// All documents of a (multi-document) YAML file, empty ones dropped.
pub fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

pub fn single_document(path: &Path) -> Value {
    let mut all = documents(path);
    match all.len() {
        0 => Value::Object(Default::default()),
        1 => all.remove(0),
        n => panic!("{} has {n} documents, expected one", path.display()),
    }
}

/// Whether a file holds Kubernetes objects (as opposed to Helm values or the pins).
pub fn is_object_file(documents: &[Value]) -> bool {
    !documents.is_empty()
        && documents
            .iter()
            .all(|d| d.get("apiVersion").is_some() && d.get("kind").is_some())
}

pub fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
