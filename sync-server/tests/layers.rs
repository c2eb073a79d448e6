//! The server's house rules, read off its source: the layers named in
//! `src/lib.rs` and ARCHITECTURE.md import only downwards, SQL lives in
//! `store/` only, and no file grows into a room that mixes everything.
//!
//! Layers, lowest first:
//! 1. `config`, `clock`, `failpoint`
//! 2. `store`, `chain`, `adapters`, `metrics`
//! 3. `services`
//! 4. `http`
//! 5. `lib.rs`, `main.rs`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: fail loudly

use std::path::{Path, PathBuf};

/// The layer of a top-level module of the crate.
fn layer_of(module: &str) -> Option<u8> {
    Some(match module {
        "config" | "clock" | "failpoint" => 1,
        "store" | "chain" | "adapters" | "metrics" => 2,
        "services" => 3,
        "http" => 4,
        _ => return None,
    })
}

/// Longest a source file may be.
const MAX_LINES: usize = 600;

struct Source {
    /// Path under `src/`, with `/` separators.
    path: String,
    text: String,
}

impl Source {
    /// The top-level module this file belongs to (`None` for the crate root
    /// and the binary).
    fn module(&self) -> Option<&str> {
        let first = self.path.split('/').next()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        layer_of(name).map(|_| name)
    }

    fn layer(&self) -> u8 {
        self.module().and_then(layer_of).unwrap_or(5)
    }

    /// The code of the file without comments and string literals' insides,
    /// so a doc comment naming a higher module is not an import.
    fn code_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
    }
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<Source>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap();
                out.push(Source {
                    path: rel.to_string_lossy().replace('\\', "/"),
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    assert!(out.len() > 20, "the source tree was not found");
    out
}

/// `crate::NAME` references in one line of code.
fn crate_refs(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `sync_server_crate::` or `$crate::`.
            *at == 0
                || !line[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(at, _)| {
            let rest = &line[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let mut breaks = Vec::new();
    for source in sources() {
        let own = source.layer();
        for (n, line) in source.code_lines() {
            for target in crate_refs(line) {
                // Items re-exported at the crate root (`crate::Store`) are
                // named by their home module instead, so a root name is a
                // reach to the top.
                let Some(layer) = layer_of(target).or_else(|| {
                    target
                        .starts_with(|c: char| c.is_ascii_uppercase())
                        .then_some(5)
                }) else {
                    continue;
                };
                if layer > own {
                    breaks.push(format!(
                        "src/{}:{n}: layer {own} names crate::{target} (layer {layer})",
                        source.path
                    ));
                }
            }
        }
    }
    assert!(
        breaks.is_empty(),
        "imports that run upwards:\n{}",
        breaks.join("\n")
    );
}

#[test]
fn nothing_below_http_names_the_request_state_or_its_errors() {
    let mut breaks = Vec::new();
    for source in sources().iter().filter(|s| s.layer() < 4) {
        for (n, line) in source.code_lines() {
            // An HTTP *client* (payments) or the chain's own JSON-RPC face
            // (`chain/rpc_service.rs`) may speak HTTP; what must not appear
            // below the layer is the server's request state, its error
            // mapping or an extractor of it.
            for word in ["AppState", "ApiError", "FromRequest", "crate::http"] {
                if line.contains(word) {
                    breaks.push(format!("src/{}:{n}: {word}", source.path));
                }
            }
        }
    }
    assert!(
        breaks.is_empty(),
        "HTTP names below the HTTP layer:\n{}",
        breaks.join("\n")
    );
}

#[test]
fn sql_is_written_in_the_store_only() {
    let mut breaks = Vec::new();
    for source in sources() {
        // The embedded chain keeps its own accounts file; it is not the
        // server's database.
        if source.path.starts_with("store/") || source.path == "chain/embedded.rs" {
            continue;
        }
        for (n, line) in source.code_lines() {
            for word in [
                "sqlx::query",
                ".pool()",
                "sqlx::Transaction",
                "AnyConnection",
            ] {
                if line.contains(word) {
                    breaks.push(format!("src/{}:{n}: {word}", source.path));
                }
            }
        }
    }
    assert!(
        breaks.is_empty(),
        "SQL outside store/:\n{}",
        breaks.join("\n")
    );
}

#[test]
fn no_source_file_is_over_the_size_of_one_subject() {
    let long: Vec<String> = sources()
        .iter()
        .map(|s| (s.path.clone(), s.text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| format!("src/{path}: {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by subject):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    // The checker itself: a reference it must flag and ones it must not.
    assert_eq!(crate_refs("use crate::http::state::AppState;"), ["http"]);
    assert_eq!(
        crate_refs("let x = crate::store::Store::connect(url);"),
        ["store"]
    );
    assert!(crate_refs("use sync_server_crate::thing;").is_empty());
    assert!(crate_refs("$crate::common::Db").is_empty());
    assert_eq!(layer_of("services"), Some(3));
    assert!(layer_of("http") > layer_of("services"));
}
