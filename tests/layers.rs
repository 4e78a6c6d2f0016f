//! The library's layers depend downward only, and no two files import each other (directly or
//! round a longer circle). Read from the source text: every `crate::…` and `super::…` path in
//! `src/` is resolved to the file that defines it.
//!
//! Layers, from the ground up (README, "Architecture"):
//! error → io → backend → audio → data → model → train → eval → bench, demo, info (and the
//! binary's cli). A parent module's `mod.rs` may use its own children (it declares them); that
//! edge is not an import circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[&[&str]] = &[
    &["error", "text"],
    &["io", "util"],
    &["backend"],
    &["audio"],
    &["data"],
    &["model"],
    &["train"],
    &["eval"],
    &["bench", "demo", "info"],
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// Module path (`["backend", "cpu", "matmul"]`) of a file under `src/`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text without comments (line and block) and string literals, so that paths mentioned in
/// docs or messages do not count.
fn code_only(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal such as '"' or '\n' (lifetimes have no closing quote).
            let end = b[i + 1..].iter().position(|&c| c == b'\'').unwrap_or(0);
            i += end + 2;
            out.push_str("' '");
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every path written as `crate::a::b…` or `super::…` (with `use` groups expanded one level),
/// as absolute module paths.
fn paths_in(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue; // `$crate::` or `foo_crate::`
            }
            if at > 0 && bytes[at - 1] == b'$' || code[..at].ends_with("::") {
                continue; // `$crate::`, or the second `super::` of `super::super::`
            }
            // The base: the crate root, or the parent of this file's module (a mod.rs file is
            // its module, so `super` is one step up either way).
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                here[..here.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &code[from..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            for p in expand(rest) {
                let mut full = base.clone();
                full.extend(p);
                out.push(full);
            }
        }
    }
    out
}

/// `a::b::{c, d::e}` → [[a, b, c], [a, b, d, e]]; `a::b::C` → [[a, b, C]].
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut s = rest;
    loop {
        let ident: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(inner) = s.strip_prefix('{') {
                let mut depth = 1;
                let mut end = 0;
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let group = &inner[..end];
                let mut items = Vec::new();
                let mut depth = 0;
                let mut last = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(&group[last..i]);
                            last = i + 1;
                        }
                        _ => {}
                    }
                }
                items.push(&group[last..]);
                let mut out = Vec::new();
                for item in items {
                    let item = item.trim();
                    if item.is_empty() || item == "self" {
                        out.push(prefix.clone());
                        continue;
                    }
                    for mut p in expand(item) {
                        let mut full = prefix.clone();
                        full.append(&mut p);
                        out.push(full);
                    }
                }
                return out;
            }
            return vec![prefix];
        }
        s = &s[ident.len()..];
        prefix.push(ident);
        match s.strip_prefix("::") {
            Some(r) => s = r,
            None => return vec![prefix],
        }
    }
}

/// The file defining the longest module prefix of `path`.
fn resolve(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<PathBuf> {
    (0..=path.len())
        .rev()
        .find_map(|n| files.get(&path[..n]).cloned())
}

struct Graph {
    files: BTreeMap<Vec<String>, PathBuf>,
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut list = Vec::new();
    rust_files(&src, &mut list);
    // The binary's files (main.rs, cli*) are not part of the library's layers.
    list.retain(|f| {
        let r = f.strip_prefix(&src).unwrap();
        !(r.starts_with("main.rs") || r.starts_with("cli") || r.starts_with("cli.rs"))
    });
    let files: BTreeMap<Vec<String>, PathBuf> = list
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (module, file) in &files {
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for p in paths_in(&code, module) {
            if let Some(target) = resolve(&files, &p) {
                if &target != file {
                    edges.entry(file.clone()).or_default().insert(target);
                }
            }
        }
    }
    Graph { files, edges }
}

fn short(p: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.strip_prefix(src).unwrap_or(p).display().to_string()
}

#[test]
fn layers_import_only_downward() {
    let g = graph();
    let top_of = |f: &Path| -> Option<String> {
        g.files
            .iter()
            .find(|(_, p)| p.as_path() == f)
            .and_then(|(m, _)| m.first().cloned())
    };
    let mut bad = Vec::new();
    for (from, tos) in &g.edges {
        let Some(a) = top_of(from) else { continue };
        let Some(la) = layer_of(&a) else {
            bad.push(format!("{}: module {a} is in no layer", short(from)));
            continue;
        };
        for to in tos {
            let Some(b) = top_of(to) else { continue };
            match layer_of(&b) {
                Some(lb) if lb > la => bad.push(format!(
                    "{} ({a}) imports {} ({b}), a layer above it",
                    short(from),
                    short(to)
                )),
                Some(lb) if lb == la && a != b => bad.push(format!(
                    "{} ({a}) imports {} ({b}), beside it in the same layer",
                    short(from),
                    short(to)
                )),
                _ => {}
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn no_import_circles_between_files() {
    let g = graph();
    // A mod.rs (or lib.rs) using its own descendants is the module declaring its parts.
    let declares = |from: &Path, to: &Path| {
        from.file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
            && to.starts_with(from.parent().unwrap())
    };
    let edges: BTreeMap<&PathBuf, Vec<&PathBuf>> = g
        .edges
        .iter()
        .map(|(f, ts)| (f, ts.iter().filter(|t| !declares(f, t)).collect()))
        .collect();
    // Depth-first search for a back edge; report the circle.
    let mut state: BTreeMap<&PathBuf, u8> = BTreeMap::new();
    let mut stack: Vec<&PathBuf> = Vec::new();
    let mut circles = Vec::new();
    fn visit<'a>(
        n: &'a PathBuf,
        edges: &BTreeMap<&'a PathBuf, Vec<&'a PathBuf>>,
        state: &mut BTreeMap<&'a PathBuf, u8>,
        stack: &mut Vec<&'a PathBuf>,
        circles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for &m in edges.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let i = stack.iter().position(|x| *x == m).unwrap();
                    let names: Vec<String> = stack[i..].iter().map(|p| short(p)).collect();
                    circles.push(format!("{} -> {}", names.join(" -> "), short(m)));
                }
                None => visit(m, edges, state, stack, circles),
                _ => {}
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    for n in edges.keys() {
        if !state.contains_key(n) {
            visit(n, &edges, &mut state, &mut stack, &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// The checker itself sees an upward import and a circle (so the tests above can fail).
#[test]
fn the_checker_resolves_paths_and_groups() {
    let here = vec!["model".to_string(), "scorer".to_string()];
    let code = code_only(
        "use crate::eval::baselines::{ItemKnn, x::Y}; // crate::train::nothing\n\
         let s = \"crate::bench::nope\"; use super::layers::Z; super::super::io::f();",
    );
    let paths = paths_in(&code, &here);
    let want: Vec<Vec<String>> = [
        "eval::baselines::ItemKnn",
        "eval::baselines::x::Y",
        "model::layers::Z",
        "io::f",
    ]
    .iter()
    .map(|p| p.split("::").map(String::from).collect())
    .collect();
    assert_eq!(paths, want);
}
