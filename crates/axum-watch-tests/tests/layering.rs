//! The one-way layering of the crate, checked on its sources:
//! model/probe/storage/alert ← engine ← faces (http, grpc, exporter) ← registry.
//! The engine speaks no transport, and the faces never reach back into the
//! registry that assembles them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every line of the Rust files under `src/<dir>` that mentions one of
/// `needles` outside a comment.
fn mentions(dir: &str, needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../axum-watch/src")
        .join(dir);
    let files = if root.is_dir() {
        sources(&root)
    } else {
        vec![root.with_extension("rs")]
    };
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut hits = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for needle in needles {
                if code.contains(needle) {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    hits
}

#[test]
fn the_engine_imports_nothing_of_axum_or_the_http_layer() {
    let hits = mentions(
        "engine",
        &[
            "axum::",
            "use axum",
            "crate::http",
            "super::http",
            "http::",
            "hyper",
            "tower",
            "crate::registry",
            "tonic",
            "prost",
            "crate::grpc",
        ],
    );
    assert!(
        hits.is_empty(),
        "the engine must stay transport-neutral:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_faces_never_reach_back_into_the_registry() {
    let mut hits = mentions("http", &["crate::registry"]);
    hits.extend(mentions("grpc", &["crate::registry"]));
    hits.extend(mentions("exporter", &["crate::registry"]));
    assert!(
        hits.is_empty(),
        "faces read the engine, not the registry:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_foundations_know_neither_engine_nor_faces() {
    for dir in ["model", "storage", "alert"] {
        let hits = mentions(dir, &["crate::engine", "crate::http", "crate::registry"]);
        assert!(hits.is_empty(), "{dir} is a foundation:\n{}", hits.join("\n"));
    }
}

#[test]
fn the_faces_know_nothing_of_each_other() {
    let mut hits = mentions("grpc", &["crate::http", "super::http", "axum"]);
    hits.extend(mentions("http", &["crate::grpc", "tonic"]));
    assert!(
        hits.is_empty(),
        "each face reads the engine alone:\n{}",
        hits.join("\n")
    );
}
