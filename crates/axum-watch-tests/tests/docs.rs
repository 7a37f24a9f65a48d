//! The docs.rs pages (`crates/axum-watch/src/docs/*.md`) are generated from
//! the README by `regenerate-docs.py`; this checks that they still match it:
//! every README section is a page's section, and every example on a page is
//! the README's.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The headings outside code fences, with their level.
fn headings(text: &str) -> Vec<(usize, String)> {
    let mut fence = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            if line[level..].starts_with(' ') {
                found.push((level, line[level + 1..].to_owned()));
            }
        }
    }
    found
}

/// The fenced code blocks, fences included.
fn code_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.starts_with("```") => current = Some(format!("{line}\n")),
            None => {}
            Some(block) => {
                block.push_str(line);
                block.push('\n');
                if line == "```" {
                    blocks.push(current.take().unwrap());
                }
            }
        }
    }
    blocks
}

#[test]
fn docs_pages_match_the_readme() {
    let readme = fs::read_to_string(repository().join("README.md")).unwrap();
    let dir = repository().join("crates/axum-watch/src/docs");
    let mut page_headings = Vec::new();
    let mut pages = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        pages += 1;
        let page = fs::read_to_string(&path).unwrap();
        assert!(page.contains("<!-- Generated from README.md"), "{}", path.display());
        for block in code_blocks(&page) {
            assert!(
                readme.contains(&block),
                "{}: an example the README does not have (edit the README, then run regenerate-docs.py):\n{block}",
                path.display()
            );
        }
        page_headings.extend(headings(&page));
    }
    assert!(pages > 10, "{pages} pages in {}", dir.display());
    for (level, title) in headings(&readme).into_iter().filter(|(level, _)| *level >= 2) {
        if title == "Development" {
            continue;
        }
        assert!(
            page_headings.contains(&(level - 1, title.clone())),
            "README section {title:?} is on no docs page: run crates/axum-watch-tests/regenerate-docs.py"
        );
    }
}
