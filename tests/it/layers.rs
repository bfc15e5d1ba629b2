//! The house's rules, read off the source: every file imports only from its own layer or
//! the layers below it, no two files import each other (directly or in a loop), the pure
//! layers use no I/O crate, and no source file outside tests is over 1,000 lines.
//! ARCHITECTURE.md states the same rules; this test is what keeps them true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, innermost first: a module's layer is that of its first path segment.
const LAYERS: &[(&str, usize)] = &[
    ("clock", 0),
    ("telemetry", 0),
    ("redact", 0),
    ("domain", 1),
    ("workflow", 2),
    ("mail", 3),
    ("engine", 4),
    ("store", 5),
    ("transport", 5),
    ("report", 5),
    ("directory", 6),
    ("config", 6),
    ("app", 6),
    ("http", 6),
    ("cli", 6),
    ("demo", 6),
];

/// Every crate that does I/O, renders or builds mail: never in domain or workflow.
const NO_IO: &[&str] = &[
    "sqlx::",
    "axum::",
    "tokio::",
    "hyper::",
    "lettre::",
    "async_imap::",
    "handlebars::",
    "tower::",
];

/// What each pure layer never uses: the database, the web server, the runtime, networking.
/// The mail library builds messages (lettre's builder) and renders templates (handlebars),
/// but sends and fetches nothing.
const NOT_IN_PURE_LAYERS: &[(usize, &[&str])] = &[
    (1, NO_IO),
    (2, NO_IO),
    (
        3,
        &[
            "sqlx::",
            "axum::",
            "tokio::",
            "hyper::",
            "async_imap::",
            "tower::",
            "lettre::transport",
            "SmtpTransport",
        ],
    ),
];

const MAX_LINES: usize = 1_000;

struct SourceFile {
    /// The module path, e.g. `["engine", "notice"]` (empty for lib.rs).
    module: Vec<String>,
    path: PathBuf,
    /// The text before its `#[cfg(test)]` module.
    code: String,
    lines: usize,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn source_files() -> Vec<SourceFile> {
    let root = src();
    let mut paths = Vec::new();
    collect(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| !p.starts_with(root.join("bin")) && !p.ends_with("main.rs"))
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|path| {
            let rel = path.strip_prefix(&root).expect("under src");
            let mut module: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = module.pop().expect("a file name");
            let is_dir_module = last == "mod.rs" || last == "lib.rs";
            if !is_dir_module {
                module.push(last.trim_end_matches(".rs").to_owned());
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let code = match text.find("#[cfg(test)]\nmod ") {
                Some(at) => text[..at].to_owned(),
                None => text.clone(),
            };
            SourceFile {
                module,
                lines: code.lines().count(),
                path,
                code,
            }
        })
        .collect()
}

/// Strips comments and string literals, so that a path in a doc comment is not an import.
fn strip_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for line in code.lines() {
        let line = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        let mut in_string = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_string = !in_string;
                out.push(' ');
            } else if !in_string {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let leaf = tree.split(" as ").next().unwrap_or(tree);
        return vec![leaf.chars().filter(|c| !c.is_whitespace()).collect()];
    };
    let prefix: String = tree[..open]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand_use_tree(p)
                .into_iter()
                .map(|s| format!("{prefix}{s}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The byte ranges of the inline modules (`mod name { … }`) in a file's code.
fn inline_modules(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut ranges = Vec::new();
    let mut rest = 0;
    while let Some(found) = code[rest..].find("mod ") {
        let at = rest + found;
        rest = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let tail = &code[at + 4..];
        let name_end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let after = tail[name_end..].trim_start();
        if name_end == 0 || !after.starts_with('{') {
            continue;
        }
        let open = at + 4 + name_end + (tail[name_end..].len() - after.len());
        let mut depth = 0;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        ranges.push((open, i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    ranges
}

/// The module paths a file refers to (`crate::`, `super::` and `self::` paths), absolute.
fn referenced_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let code = strip_comments(&file.code);
    let inline = inline_modules(&code);
    let inline_depth = |pos: usize| inline.iter().filter(|(a, b)| *a < pos && pos < *b).count();
    let mut raw: Vec<(String, usize)> = Vec::new();
    // `use` statements, with their trees.
    let mut offset = 0;
    while let Some(found) = code[offset..].find("use ") {
        let at = offset + found;
        let before_ok = at == 0
            || !code[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let tail = &code[at + 4..];
        if before_ok {
            if let Some(end) = tail.find(';') {
                raw.extend(expand_use_tree(&tail[..end]).into_iter().map(|p| (p, at)));
            }
        }
        offset = at + 4;
    }
    // Paths written inline in the code.
    for start in ["crate::", "super::"] {
        let mut offset = 0;
        while let Some(found) = code[offset..].find(start) {
            let at = offset + found;
            let tail = &code[at..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            // `super::{a, b}` names its items in a tree read with the `use` above.
            let path = tail[..end].trim_end_matches(':');
            if path.contains("::") {
                raw.push((path.to_owned(), at));
            }
            offset = at + start.len();
        }
    }
    raw.into_iter()
        .filter_map(|(path, pos)| {
            let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = match segments.first().copied() {
                Some("crate") => {
                    segments.remove(0);
                    Vec::new()
                }
                Some("super") => {
                    // Inside an inline module, `super` first leaves that module.
                    let mut inner = inline_depth(pos);
                    let mut base = file.module.clone();
                    while segments.first() == Some(&"super") {
                        segments.remove(0);
                        if inner > 0 {
                            inner -= 1;
                        } else {
                            base.pop();
                        }
                    }
                    base
                }
                Some("self") => {
                    segments.remove(0);
                    file.module.clone()
                }
                _ => return None,
            };
            base.extend(segments.iter().map(|s| (*s).to_owned()));
            Some(base)
        })
        .collect()
}

/// The file a module path lands in: the longest prefix that names a source file.
fn resolve(path: &[String], files: &BTreeMap<Vec<String>, usize>) -> Option<usize> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get(&path[..n].to_vec()).copied())
}

fn layer(module: &[String]) -> Option<usize> {
    let first = module.first()?;
    LAYERS
        .iter()
        .find(|(name, _)| name == first)
        .map(|(_, layer)| *layer)
}

struct Graph {
    files: Vec<SourceFile>,
    edges: Vec<BTreeSet<usize>>,
}

fn graph() -> Graph {
    let files = source_files();
    let index: BTreeMap<Vec<String>, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let edges = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            referenced_paths(f)
                .iter()
                .filter_map(|p| resolve(p, &index))
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    Graph { files, edges }
}

fn name(file: &SourceFile) -> String {
    file.path
        .strip_prefix(src())
        .map(|p| format!("src/{}", p.display()))
        .unwrap_or_else(|_| file.path.display().to_string())
}

#[test]
fn the_module_graph_is_read() {
    // The reading itself is proven on the crate's known arrows, so that an empty graph
    // cannot pass the rules below.
    let g = graph();
    let find = |n: &str| {
        g.files
            .iter()
            .position(|f| name(f) == n)
            .unwrap_or_else(|| panic!("{n} not found"))
    };
    let engine = find("src/engine/mod.rs");
    let clock = find("src/clock.rs");
    assert!(
        g.edges[engine].contains(&clock),
        "engine/mod.rs uses the clock"
    );
    assert!(g.edges.iter().map(BTreeSet::len).sum::<usize>() > 200);
    assert_eq!(
        expand_use_tree("crate::a::{b, c::{d, e as f}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
}

#[test]
fn imports_point_inward_only() {
    let g = graph();
    let mut outward = Vec::new();
    for (i, file) in g.files.iter().enumerate() {
        let Some(own) = layer(&file.module) else {
            continue;
        };
        for &j in &g.edges[i] {
            let target = &g.files[j];
            if let Some(their) = layer(&target.module) {
                if their > own {
                    outward.push(format!(
                        "{} (layer {own}) -> {} (layer {their})",
                        name(file),
                        name(target)
                    ));
                }
            }
        }
    }
    assert!(
        outward.is_empty(),
        "imports from an inner layer to an outer one:\n{}",
        outward.join("\n")
    );
}

#[test]
fn no_import_circles_between_files() {
    let g = graph();
    // Tarjan's strongly connected components.
    struct State<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in s.edges[v].iter() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.components.push(component);
            }
        }
    }
    let n = g.files.len();
    let mut s = State {
        edges: &g.edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    let circles: Vec<String> = s
        .components
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&i| name(&g.files[i])).collect();
            names.sort();
            names.join(" <-> ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other in a loop:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_pure_layers_use_no_io_crate() {
    let g = graph();
    let mut found = Vec::new();
    for file in &g.files {
        let Some(own) = layer(&file.module) else {
            continue;
        };
        let Some((_, banned)) = NOT_IN_PURE_LAYERS.iter().find(|(l, _)| *l == own) else {
            continue;
        };
        let code = strip_comments(&file.code);
        for word in banned.iter() {
            if code.contains(word) {
                found.push(format!("{} uses {word}", name(file)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O in a pure layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let g = graph();
    let mut big: Vec<String> = g
        .files
        .iter()
        .filter(|f| f.lines > MAX_LINES)
        .map(|f| format!("{} ({} lines)", name(f), f.lines))
        .collect();
    let root = src().join("bin");
    let mut bins = Vec::new();
    if root.exists() {
        collect(&root, &mut bins);
    }
    for path in bins {
        let lines = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count();
        if lines > MAX_LINES {
            big.push(format!("{} ({lines} lines)", path.display()));
        }
    }
    assert!(
        big.is_empty(),
        "source files over {MAX_LINES} lines:\n{}",
        big.join("\n")
    );
}
