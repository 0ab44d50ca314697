//! The rooms of every crate depend on each other one way: no module of a
//! crate reaches, through `crate::…` or `super::…` paths, a module that
//! reaches it back (docs/architecture.md, "Checking the rooms").
//!
//! The check reads the sources as text: a module is a file (`a/b.rs` or
//! `a/b/mod.rs` is `a::b`), its dependencies are the deepest modules named
//! by the `crate::`/`super::` paths in its code (comments and `#[cfg(test)]
//! mod tests` left out; a path into one of its own ancestors does not
//! count, as a child always sees its parent). A strongly connected group of
//! two or more modules is a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every module file under `src`, by module path.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut m: Module = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                    m.pop();
                }
                out.insert(m, path);
            }
        }
    }
    out
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let text = text
        .split("#[cfg(test)]\npub(crate) mod tests")
        .next()
        .unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `crate::a::b` / `super::super::a` paths in `code`, as segments
/// (the first one `crate` or `super`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let boundary = at == 0
                || !(bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':');
            if !boundary {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(
                tail.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    out
}

/// The module a path from `module` names: the deepest existing module on it.
fn target(module: &Module, path: &[String], mods: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let (mut base, rest): (Module, &[String]) = if path[0] == "crate" {
        (Vec::new(), &path[1..])
    } else {
        let mut base = module.clone();
        base.pop();
        let mut rest = &path[1..];
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        (base, rest)
    };
    base.extend(rest.iter().cloned());
    while !base.is_empty() && !mods.contains_key(&base) {
        base.pop();
    }
    (!base.is_empty() && !module.starts_with(&base)).then_some(base)
}

/// The circles (strongly connected groups of two or more) of `edges`.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for start in edges.keys() {
        if seen.contains(start) {
            continue;
        }
        let mut stack = vec![(start.clone(), false)];
        while let Some((v, done)) = stack.pop() {
            if done {
                order.push(v);
                continue;
            }
            if !seen.insert(v.clone()) {
                continue;
            }
            stack.push((v.clone(), true));
            for w in &edges[&v] {
                if !seen.contains(w) {
                    stack.push((w.clone(), false));
                }
            }
        }
    }
    let mut reverse: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (v, ws) in edges {
        for w in ws {
            reverse.entry(w).or_default().push(v);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        if assigned.contains(v) {
            continue;
        }
        let mut group = Vec::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            if !assigned.insert(x.clone()) {
                continue;
            }
            group.push(x.clone());
            stack.extend(reverse.get(x).into_iter().flatten().copied());
        }
        if group.len() > 1 {
            group.sort();
            out.push(group);
        }
    }
    out
}

/// The circles between the modules of the crate whose sources are `src`.
fn crate_circles(src: &Path) -> Vec<Vec<Module>> {
    let mods = modules(src);
    let edges = mods
        .iter()
        .map(|(m, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            let deps = paths(&code(&text))
                .iter()
                .filter_map(|p| target(m, p, &mods))
                .filter(|t| t != m)
                .collect();
            (m.clone(), deps)
        })
        .collect();
    circles(&edges)
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("src")];
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    sources.extend(crates);
    let mut report = Vec::new();
    for src in &sources {
        for group in crate_circles(src) {
            let names: Vec<String> = group.iter().map(|m| m.join("::")).collect();
            report.push(format!("{}: {}", src.display(), names.join(" ↔ ")));
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

#[test]
fn the_check_finds_a_circle() {
    let dir = std::env::temp_dir().join(format!("reid-arch-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "use crate::b::x;\n// use crate::c;\n").unwrap();
    std::fs::write(dir.join("b.rs"), "use super::a::y;\n").unwrap();
    std::fs::write(
        dir.join("c.rs"),
        "use crate::a;\n#[cfg(test)]\nmod tests { use crate::c; }\n",
    )
    .unwrap();
    let found = crate_circles(&dir);
    assert_eq!(
        found,
        vec![vec![vec!["a".to_string()], vec!["b".to_string()]]]
    );
    std::fs::write(dir.join("b.rs"), "pub fn x() {}\n").unwrap();
    assert!(crate_circles(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
