//! The sibling graphs of a crate and their cycles.
//!
//! A reference from a file in module `S` to an item in module `T` (after following `use`
//! re-exports to where the item is defined) is an edge between the two children of their
//! deepest common ancestor that lead to `S` and to `T`: `exec::io` naming `crate::exec::context`
//! is the edge `io -> context` among the children of `exec`; `fault::queue` naming
//! `crate::error` is the edge `fault -> error` at the crate root. References to a module's own
//! ancestors or descendants are not edges. Each level (the children of one module) must be
//! acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::scan::{self, File, ModPath};

/// Where an edge comes from: a file and line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    pub file: PathBuf,
    pub line: u32,
    pub text: String,
}

/// The edges of one level: from child to child, with the lines that make each.
pub type Level = BTreeMap<String, BTreeMap<String, BTreeSet<Site>>>;

/// Every level of the crate that has edges, by the module whose children it holds.
pub fn levels(files: &[File]) -> BTreeMap<ModPath, Level> {
    let mods = scan::modules(files);
    let binds = scan::bindings(files);
    let mut out: BTreeMap<ModPath, Level> = BTreeMap::new();
    for f in files {
        for r in &f.refs {
            let target = resolve(&r.path, &mods, &binds, 0);
            let s = &f.module;
            let Some(d) = (0..s.len().min(target.len())).find(|&d| s[d] != target[d]) else {
                continue;
            };
            let site = Site {
                file: f.path.clone(),
                line: r.line,
                text: f
                    .lines
                    .get(r.line as usize - 1)
                    .map(|l| l.trim().to_owned())
                    .unwrap_or_default(),
            };
            out.entry(s[..d].to_vec())
                .or_default()
                .entry(s[d].clone())
                .or_default()
                .entry(target[d].clone())
                .or_default()
                .insert(site);
        }
    }
    out
}

/// The module in which the item `path` names is defined, following `use` bindings (a
/// re-export such as `pub use device::BlockDevice;` at the root leads to `device`).
fn resolve(
    path: &[String],
    mods: &BTreeSet<ModPath>,
    binds: &BTreeMap<(ModPath, String), Vec<String>>,
    depth: u32,
) -> ModPath {
    let mut cur = ModPath::new();
    for (i, seg) in path.iter().enumerate() {
        let mut next = cur.clone();
        next.push(seg.clone());
        if mods.contains(&next) {
            cur = next;
            continue;
        }
        if depth < 16 {
            if let Some(target) = binds.get(&(cur.clone(), seg.clone())) {
                let mut t = target.clone();
                t.extend(path[i + 1..].iter().cloned());
                return resolve(&t, mods, binds, depth + 1);
            }
        }
        break;
    }
    cur
}

/// The strongly connected components of more than one node (Tarjan), each sorted.
pub fn cycles(level: &Level) -> Vec<Vec<String>> {
    struct State<'a> {
        level: &'a Level,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a str) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        st.on_stack.insert(v);
        let level = st.level;
        for w in level.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if st.on_stack.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                scc.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                st.out.push(scc);
            }
        }
    }
    let mut st = State {
        level,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in level.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out.sort();
    st.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn crate_of(files: &[(&str, &str)]) -> Vec<File> {
        let map: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(p, s)| (PathBuf::from(p), s.to_string()))
            .collect();
        scan::crate_files(Path::new("lib.rs"), &|p| map.get(p).cloned()).unwrap()
    }

    #[test]
    fn a_cycle_through_a_reexport_is_found_with_its_lines() {
        let files = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\npub use b::B;"),
            ("a.rs", "use crate::B;"),
            ("b.rs", "pub struct B;\nfn f() { crate::a::g(); }"),
        ]);
        let lv = levels(&files);
        let root = &lv[&ModPath::new()];
        assert_eq!(cycles(root), [["a", "b"]]);
        let site = root["b"]["a"].iter().next().unwrap();
        assert_eq!((site.file.to_str().unwrap(), site.line), ("b.rs", 2));
        assert_eq!(root["a"]["b"].iter().next().unwrap().text, "use crate::B;");
    }

    #[test]
    fn levels_are_separate_and_test_code_does_not_count() {
        let files = crate_of(&[
            ("lib.rs", "mod x;\nmod y;"),
            ("x/mod.rs", "mod p;\nmod q;"),
            ("x/p.rs", "use super::q::Q;\nuse crate::y::Y;"),
            (
                "x/q.rs",
                "pub struct Q;\n#[cfg(test)]\nmod tests { use super::super::p; }",
            ),
            ("y.rs", "pub struct Y;"),
        ]);
        let lv = levels(&files);
        assert_eq!(lv[&ModPath::new()]["x"].keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(
            lv[&vec!["x".to_string()]]["p"].keys().collect::<Vec<_>>(),
            ["q"]
        );
        assert!(lv.values().all(|l| cycles(l).is_empty()));
    }

    #[test]
    fn a_three_module_cycle_is_one_component() {
        let files = crate_of(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
            ("a.rs", "use crate::b::B;"),
            ("b.rs", "use crate::c::C;"),
            ("c.rs", "use crate::a::A;\nuse crate::d::D;"),
            ("d.rs", ""),
        ]);
        assert_eq!(cycles(&levels(&files)[&ModPath::new()]), [["a", "b", "c"]]);
    }
}
