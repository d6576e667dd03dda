//! `modcycles [--depth N] CRATE_DIR…`: fails when the modules of a crate depend on each other
//! in a cycle.
//!
//! For every crate root under `CRATE_DIR/src` (`lib.rs`, `main.rs`, `bin/*.rs`,
//! `bin/*/main.rs`) it reads the module tree and checks every level of it: the top-level
//! modules of the crate, and within each module its child modules. `--depth 1` checks only
//! the top level, `--depth 2` also the children of top-level modules, and so on. Module `a`
//! depends on its sibling `b` when any file under `a` names an item of `b` through a
//! `use` (`pub use` included) or a path (`crate::b::…`, `super::b::…`, or a re-export that
//! leads into `b`, such as `crate::Thing` when the root says `pub use b::Thing`). Every
//! strongly connected component of more than one module at a level is a cycle; it is printed
//! with the lines that make its edges, and the exit status is 1.
//!
//! Not counted: code under `#[cfg(test)]` (tests may reach anywhere), comments and strings,
//! and paths that start with neither `crate`, `super` nor `self` (other crates, and names
//! brought in by an earlier `use`, which is what is counted instead). Inline
//! `mod name { … }` blocks belong to their file. Macros are not expanded.

mod graph;
mod lex;
mod scan;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How many lines to show per edge of a cycle.
const SITES_SHOWN: usize = 3;

fn main() -> ExitCode {
    let mut dirs: Vec<String> = std::env::args().skip(1).collect();
    let mut depth = usize::MAX;
    if dirs.first().is_some_and(|a| a == "--depth") {
        match dirs.get(1).and_then(|d| d.parse().ok()) {
            Some(d) if d > 0 => depth = d,
            _ => dirs.clear(),
        }
        dirs.drain(..dirs.len().min(2));
    }
    if dirs.is_empty() || dirs.iter().any(|d| d.starts_with('-')) {
        eprintln!(
            "usage: modcycles [--depth N] CRATE_DIR...  (checks CRATE_DIR/src for module cycles \
             among the modules of the top N levels, all by default)"
        );
        return ExitCode::from(2);
    }
    let mut found = 0;
    for dir in &dirs {
        let roots = crate_roots(&Path::new(dir).join("src"));
        if roots.is_empty() {
            eprintln!("modcycles: {dir}: no src/lib.rs, src/main.rs or src/bin/ found");
            return ExitCode::from(2);
        }
        for root in roots {
            match check(&root, depth) {
                Ok((n, report)) => {
                    found += n;
                    print!("{report}");
                }
                Err(e) => {
                    eprintln!("modcycles: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if found > 0 {
        println!(
            "modcycles: {found} cycle(s); move the shared item down into a module both can use"
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn crate_roots(src: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .map(|p| if p.is_dir() { p.join("main.rs") } else { p })
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// Checks the top `depth` levels of the crate at `root`: the number of cycles and a report
/// to print.
fn check(root: &Path, depth: usize) -> Result<(usize, String), String> {
    let files = scan::crate_files(root, &|p| std::fs::read_to_string(p).ok())?;
    let mut levels = graph::levels(&files);
    levels.retain(|parent, _| parent.len() < depth);
    let edges: usize = levels
        .values()
        .flat_map(|l| l.values())
        .map(|e| e.len())
        .sum();
    let mut out = String::new();
    let mut found = 0;
    for (parent, level) in &levels {
        for scc in graph::cycles(level) {
            found += 1;
            let at = if parent.is_empty() {
                "the crate root".to_owned()
            } else {
                format!("`{}`", parent.join("::"))
            };
            let _ = writeln!(out, "CYCLE among the children of {at}: {}", scc.join(" "));
            let members: BTreeSet<&String> = scc.iter().collect();
            for from in &scc {
                for (to, sites) in level[from].iter().filter(|(to, _)| members.contains(to)) {
                    let _ = writeln!(out, "  {from} -> {to}:");
                    for s in sites.iter().take(SITES_SHOWN) {
                        let _ = writeln!(out, "    {}:{}: {}", s.file.display(), s.line, s.text);
                    }
                    if sites.len() > SITES_SHOWN {
                        let _ = writeln!(out, "    … and {} more", sites.len() - SITES_SHOWN);
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "modcycles: {}: {} files, {edges} sibling edges at {} levels: {}",
        root.display(),
        files.len(),
        levels.len(),
        if found == 0 {
            "no cycle".to_owned()
        } else {
            format!("{found} cycle(s)")
        }
    );
    Ok((found, out))
}
