//! The committed inputs of a fuzz target: its seed corpus
//! (`fuzz/corpus/<target>/`) and the crashes found and fixed
//! (`fuzz/regressions/<target>/`).

use std::path::{Path, PathBuf};

/// The `fuzz/` folder, from a crate one level below the repository root (or
/// from `fuzz/` itself).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every committed input of `target`, with its path, in a stable order.
pub fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            match std::fs::read(&path) {
                Ok(bytes) => out.push((path, bytes)),
                Err(error) => panic!("cannot read {}: {error}", path.display()),
            }
        }
    }
    out
}
