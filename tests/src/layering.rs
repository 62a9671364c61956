//! The layering rule of `docs/ARCHITECTURE.md`, checked: within each crate, no file imports
//! (through `crate::` or `super::` paths) a file that imports it back, directly or through
//! others. A type two files need moves below both.
//!
//! Files are modules; a path is charged to the longest module it names. Comments and
//! `#[cfg(test)] mod tests` blocks do not count: a doc link is not a dependency, and tests may
//! reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose files are checked, by folder.
pub const CRATES: &[&str] = &[
    "core",
    "telemetry",
    "client",
    "cloud",
    "cloud-aws",
    "controller",
    "agent",
    "cli",
    "bench",
    "tests",
];

/// A module's path inside its crate (`""` for the crate root, `node::ready`), with its file.
fn modules(src: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                // Binaries of their own (`src/bin/`) are separate crates.
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap_or(&path).with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    Ok(out)
}

/// The source without comments and without a trailing `#[cfg(test)] mod tests` block.
fn code_of(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` or `super::c` path in `code`, as segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    out
}

/// The module a path from `from` names: the longest prefix that is a file.
fn target(
    from: &str,
    from_is_dir_module: bool,
    path: &[String],
    modules: &BTreeMap<String, PathBuf>,
) -> Option<String> {
    let mut base: Vec<String> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").map(str::to_string).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            if !from_is_dir_module {
                base.pop();
            }
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    (0..=rest.len()).rev().find_map(|n| {
        let mut candidate = base.clone();
        candidate.extend(rest[..n].iter().cloned());
        let name = candidate.join("::");
        modules.contains_key(&name).then_some(name)
    })
}

/// The file-level import graph of the crate whose sources are in `src`.
///
/// # Errors
/// When a source cannot be read.
pub fn graph(src: &Path) -> std::io::Result<BTreeMap<String, BTreeSet<String>>> {
    let modules = modules(src)?;
    let mut edges = BTreeMap::new();
    for (name, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file)?);
        let is_dir_module = name.is_empty()
            || file
                .file_name()
                .is_some_and(|f| f == "mod.rs" || f == "lib.rs" || f == "main.rs");
        let to: BTreeSet<String> = paths(&code)
            .iter()
            .filter_map(|p| target(name, is_dir_module, p, &modules))
            .filter(|t| t != name)
            .collect();
        edges.insert(name.clone(), to);
    }
    Ok(edges)
}

/// The import cycles of a graph: each a list of files that reach each other.
pub fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // A file is on a cycle with `m` when each reaches the other; group such files.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = edges.get(from).into_iter().flatten().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(edges.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut grouped = BTreeSet::new();
    let mut out = Vec::new();
    for m in edges.keys() {
        if grouped.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let group: Vec<String> = reaches[m]
            .iter()
            .filter(|o| reaches.get(o).is_some_and(|r| r.contains(m)))
            .cloned()
            .collect();
        grouped.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
            std::fs::write(path, text).expect("a file");
        }
        graph(dir.path()).expect("a graph")
    }

    #[test]
    fn a_cycle_through_super_and_crate_paths_is_found_and_doc_links_are_not() {
        let edges = graph_of(&[
            ("lib.rs", "mod metrics;\nmod node;\n"),
            ("metrics.rs", "use crate::node::RaftInfo;\n"),
            ("node/mod.rs", "mod ready;\n/// See [`crate::metrics`].\n"),
            (
                "node/ready.rs",
                "use super::Node;\nuse crate::metrics::M;\n",
            ),
        ]);
        assert!(cycles(&edges).is_empty(), "{edges:?}");
        let edges = graph_of(&[
            ("lib.rs", "mod metrics;\nmod node;\n"),
            ("metrics.rs", "use crate::node::ready::X;\n"),
            ("node/mod.rs", "mod ready;\n"),
            ("node/ready.rs", "fn f() { crate::metrics::g() }\n"),
        ]);
        assert_eq!(cycles(&edges), [["metrics", "node::ready"]]);
    }

    #[test]
    fn no_crate_has_an_import_cycle_between_its_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for krate in CRATES {
            let src = root.join(krate).join("src");
            let edges = graph(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
            assert!(edges.len() > 1, "no sources found in {}", src.display());
            for cycle in cycles(&edges) {
                found.push(format!("{krate}: {}", cycle.join(" <-> ")));
            }
        }
        assert!(
            found.is_empty(),
            "files that import each other (move what both need below both):\n{}",
            found.join("\n")
        );
    }
}
