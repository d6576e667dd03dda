//! A crate's module tree and, per file, the paths it names into the crate.
//!
//! Modules are what the `mod name;` declarations say (so a `#[cfg(test)] mod tests;` is not
//! one), found at `name.rs` or `name/mod.rs` beside the declaring file as rustc does. Inline
//! `mod name { … }` blocks count as part of their file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::lex::{self, Tok, Token};

/// A module's path from the crate root: `["exec", "io"]`; the root is `[]`.
pub type ModPath = Vec<String>;

/// A path written in a file, made absolute (from the crate root), and where it was written.
#[derive(Clone, Debug)]
pub struct Ref {
    pub path: Vec<String>,
    pub line: u32,
}

/// A `use` that binds a name in its module: `use crate::a::B as C;` binds `C` to `a::B`.
#[derive(Clone, Debug)]
pub struct Binding {
    pub name: String,
    pub target: Vec<String>,
}

/// One source file of the crate.
#[derive(Debug)]
pub struct File {
    pub path: PathBuf,
    pub module: ModPath,
    pub refs: Vec<Ref>,
    pub bindings: Vec<Binding>,
    pub lines: Vec<String>,
}

/// The files of the crate whose root is `root` (`src/lib.rs`, `src/main.rs`…), read by `read`.
pub fn crate_files(
    root: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<Vec<File>, String> {
    let mut files = Vec::new();
    let mut todo = vec![(root.to_path_buf(), ModPath::new())];
    while let Some((path, module)) = todo.pop() {
        let text = read(&path).ok_or_else(|| format!("cannot read {}", path.display()))?;
        let toks = lex::without_tests(lex::tokens(&text));
        let children = declared_mods(&toks);
        let dir = child_dir(&path);
        for name in &children {
            let candidates = [
                dir.join(format!("{name}.rs")),
                dir.join(name).join("mod.rs"),
            ];
            let Some(found) = candidates.iter().find(|p| read(p).is_some()) else {
                return Err(format!("{}: no file for `mod {name};`", path.display()));
            };
            let mut m = module.clone();
            m.push(name.clone());
            todo.push((found.clone(), m));
        }
        let child_set: BTreeSet<&str> = children.iter().map(String::as_str).collect();
        let (refs, bindings) = references(&toks, &module, &child_set);
        files.push(File {
            path,
            module,
            refs,
            bindings,
            lines: text.lines().map(str::to_owned).collect(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Where the children of the module in `file` live: its own directory for `lib.rs`,
/// `main.rs` and `mod.rs`, else a directory named after it.
fn child_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => dir,
        _ => dir.join(file.file_stem().unwrap_or_default()),
    }
}

/// The names of `mod name;` declarations (not inline `mod name { … }` blocks).
fn declared_mods(t: &[Token]) -> Vec<String> {
    t.windows(3)
        .filter_map(|w| match (&w[0].tok, &w[1].tok, &w[2].tok) {
            (Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')) if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every path into the crate in `t` (written in `module`), absolute, and the names its `use`
/// declarations bind. `children` are the module's own submodules, which a `use` may name
/// without `self::`.
fn references(
    t: &[Token],
    module: &ModPath,
    children: &BTreeSet<&str>,
) -> (Vec<Ref>, Vec<Binding>) {
    let (mut refs, mut bindings) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < t.len() {
        let starts_path = i == 0 || t[i - 1].tok != Tok::Sep;
        if t[i].is_ident("use") {
            let mut trees = Vec::new();
            i = use_tree(t, i + 1, Vec::new(), &mut trees);
            for (path, name, line) in trees {
                let Some(abs) = absolute(&path, module, Some(children)) else {
                    continue;
                };
                if let Some(name) = name {
                    bindings.push(Binding {
                        name,
                        target: abs.clone(),
                    });
                }
                refs.push(Ref { path: abs, line });
            }
        } else if starts_path
            && is_path_root(&t[i])
            && t.get(i + 1).is_some_and(|n| n.tok == Tok::Sep)
        {
            let line = t[i].line;
            let mut path = Vec::new();
            while let Some(Tok::Ident(s)) = t.get(i).map(|x| &x.tok) {
                path.push(s.clone());
                if t.get(i + 1).is_some_and(|n| n.tok == Tok::Sep) {
                    i += 2;
                } else {
                    i += 1;
                    break;
                }
            }
            if let Some(abs) = absolute(&path, module, None) {
                refs.push(Ref { path: abs, line });
            }
        } else {
            i += 1;
        }
    }
    (refs, bindings)
}

fn is_path_root(t: &Token) -> bool {
    t.is_ident("crate") || t.is_ident("super") || t.is_ident("self")
}

/// Parses the use tree at `i` under `prefix`, pushing each leaf as (path, bound name, line);
/// a glob binds no name. Returns the index past the tree.
fn use_tree(
    t: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, u32)>,
) -> usize {
    loop {
        let Some(tok) = t.get(i) else { return i };
        match &tok.tok {
            Tok::Sep => i += 1,
            Tok::Ident(s) if s == "as" => {
                // `a::B as C` binds C (`as _` binds nothing).
                let alias = match t.get(i + 1).map(|x| &x.tok) {
                    Some(Tok::Ident(a)) if a != "_" => Some(a.clone()),
                    _ => None,
                };
                if let Some(last) = out.last_mut() {
                    last.1 = alias;
                }
                return i + 2;
            }
            Tok::Ident(s) => {
                prefix.push(s.clone());
                let next = t.get(i + 1).map(|x| &x.tok);
                if next != Some(&Tok::Sep) {
                    let mut path = prefix.clone();
                    let mut name = path.last().cloned();
                    if name.as_deref() == Some("self") {
                        path.pop();
                        name = path.last().cloned();
                    }
                    out.push((path, name, tok.line));
                    if next == Some(&Tok::Ident("as".into())) {
                        return use_tree(t, i + 1, prefix, out);
                    }
                    return i + 1;
                }
                i += 1;
            }
            Tok::Punct('*') => {
                out.push((prefix, None, tok.line));
                return i + 1;
            }
            Tok::Punct('{') => {
                i += 1;
                while t.get(i).is_some_and(|x| !x.is_punct('}')) {
                    i = use_tree(t, i, prefix.clone(), out);
                    if t.get(i).is_some_and(|x| x.is_punct(',')) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            // `;`, `,`, `}` or anything unexpected ends this tree.
            _ => return i,
        }
    }
}

/// `path` as written in `module`, made absolute, or `None` if it leads outside the crate.
/// `children` is given for `use` paths, whose first segment may name a submodule.
fn absolute(
    path: &[String],
    module: &ModPath,
    children: Option<&BTreeSet<&str>>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut abs = match first.as_str() {
        "crate" => return Some(path[1..].to_vec()),
        "self" => module.clone(),
        "super" => {
            let mut m = module.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                m.pop()?;
                rest = &rest[1..];
            }
            m.extend(rest.iter().cloned());
            return Some(m);
        }
        s if children.is_some_and(|c| c.contains(s)) => {
            let mut m = module.clone();
            m.push(s.to_owned());
            m
        }
        _ => return None,
    };
    abs.extend(path[1..].iter().cloned());
    Some(abs)
}

/// All the crate's modules, for resolving paths.
pub fn modules(files: &[File]) -> BTreeSet<ModPath> {
    files.iter().map(|f| f.module.clone()).collect()
}

/// Every binding, by the module it is in and the name it binds.
pub fn bindings(files: &[File]) -> BTreeMap<(ModPath, String), Vec<String>> {
    files
        .iter()
        .flat_map(|f| {
            f.bindings
                .iter()
                .map(|b| ((f.module.clone(), b.name.clone()), b.target.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs_of(src: &str, module: &[&str], children: &[&str]) -> Vec<String> {
        let m: ModPath = module.iter().map(|s| s.to_string()).collect();
        let c: BTreeSet<&str> = children.iter().copied().collect();
        let (refs, _) = references(&lex::tokens(src), &m, &c);
        refs.into_iter().map(|r| r.path.join("::")).collect()
    }

    #[test]
    fn use_trees_expand_to_absolute_paths() {
        let src =
            "use crate::{a::{self, B as C}, d::*};\nuse super::e::F;\nuse io::Io;\nuse std::fmt;";
        assert_eq!(
            refs_of(src, &["x", "y"], &["io"]),
            ["a", "a::B", "d", "x::e::F", "x::y::io::Io"]
        );
    }

    #[test]
    fn paths_in_code_count_but_not_their_tails() {
        let src = "fn f() { crate::a::b(); super::super::c::D::new(); x::crate_like(); pub(super) fn g() {} }";
        assert_eq!(refs_of(src, &["p", "q"], &[]), ["a::b", "c::D::new"]);
    }

    #[test]
    fn aliases_bind_the_alias() {
        let m: ModPath = vec![];
        let (_, b) = references(
            &lex::tokens("pub use dev::{Dev as D, Q};"),
            &m,
            &["dev"].into(),
        );
        let names: Vec<_> = b
            .iter()
            .map(|b| (b.name.as_str(), b.target.join("::")))
            .collect();
        assert_eq!(
            names,
            [("D", "dev::Dev".to_string()), ("Q", "dev::Q".to_string())]
        );
    }
}
