//! Every repository path the docs name exists, and `docs/ARCHITECTURE.md` stays a map.
//!
//! Scanned: `README.md`, `DEVELOPERS.md` (if present), each crate's `README.md` and every
//! `.md` file under `docs/`. A word of a line counts as a repository path when it is made of
//! path characters, has a `/`, does not start with `/`, `./`, `../` or `-`, and either starts
//! with a top-level entry of the repository (`fs-core/src/core.rs`, `ci/run`, `docs/`) or
//! ends in a file extension the repository uses (`durability/fold.rs`, which then must be
//! written from the root). Words are cut at backticks, quotes, brackets, commas, colons and
//! `=`, so `path:function`, `path::item` and `path's` check `path`. URLs, absolute paths
//! (`/dev/shm`, `/tmp/x`, mount points), globs and placeholders (`*`, `<pid>`, `$DIR`) are
//! not paths, nor are the few other projects' paths listed in `FOREIGN`. Markdown link
//! targets (`[text](target)`) are checked relative to the file that links them, as a
//! reader's browser resolves them.

use std::path::{Component, Path, PathBuf};

/// Longest `docs/ARCHITECTURE.md` may grow: a map, not a notebook (decisions go to
/// `docs/decisions/`, measurements to `docs/BENCHMARKS.md`).
const ARCHITECTURE_MAX_LINES: usize = 300;

/// File extensions that make a word with a `/` a path even when its first component is
/// not a top-level entry.
const EXTENSIONS: &[&str] = &[
    "rs", "md", "sh", "toml", "json", "h", "c", "txt", "yml", "yaml", "lock", "py", "patch",
];

/// Paths of other projects that the docs name and that look like ours: SPDK's
/// `scripts/setup.sh` (README.md's SPDK prerequisites), SQLite's `test/speedtest1.c`
/// (sqlite/README.md). The explicit opt-out; keep it short.
const FOREIGN: &[&str] = &["scripts/setup.sh", "test/speedtest1.c"];

/// Directories a build creates, whose files the docs name as the build's outputs
/// (`make -C sqlite` builds into `sqlite/build/`).
const BUILT: &[&str] = &["sqlite/build/"];

/// Characters that end a word.
const DELIMITERS: &[char] = &['`', '\'', '"', '(', ')', '[', ']', ',', ';', ':', '|', '='];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Top-level entries a path may start with (not hidden ones, not the build directory).
fn top_level(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("reading the repository root")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n != "target")
        .collect();
    names.sort();
    names
}

/// The Markdown files to scan, relative to `root`.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for name in ["README.md", "DEVELOPERS.md"] {
        if root.join(name).is_file() {
            files.push(PathBuf::from(name));
        }
    }
    for top in top_level(root) {
        let readme = Path::new(&top).join("README.md");
        if root.join(&readme).is_file() {
            files.push(readme);
        }
    }
    let mut dirs = vec![PathBuf::from("docs")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(root.join(&dir)).expect("reading docs/");
        for e in entries {
            let e = e.expect("a directory entry");
            let rel = dir.join(e.file_name());
            if e.file_type().expect("a file type").is_dir() {
                dirs.push(rel);
            } else if rel.extension().is_some_and(|x| x == "md") {
                files.push(rel);
            }
        }
    }
    files.sort();
    files
}

/// `word` as a repository path to check, or `None` if it is not one.
fn as_repo_path<'w>(word: &'w str, top: &[String]) -> Option<&'w str> {
    let word = word.split('#').next().unwrap_or_default();
    let word = word.trim_end_matches('.');
    let path_chars = |c: char| c.is_ascii_alphanumeric() || "_./+-".contains(c);
    if !word.contains('/') || !word.chars().all(path_chars) {
        return None;
    }
    if ["/", "./", "../", "-"].iter().any(|p| word.starts_with(p)) {
        return None;
    }
    let segments: Vec<&str> = word.trim_end_matches('/').split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    let first = segments[0];
    let last = segments[segments.len() - 1];
    let known_ext = !word.ends_with('/')
        && last
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && EXTENSIONS.contains(&ext));
    let ours = top.iter().any(|t| t == first) || known_ext;
    let built = BUILT
        .iter()
        .any(|b| word.starts_with(b) || format!("{word}/") == *b);
    (ours && !FOREIGN.contains(&word) && !built).then_some(word)
}

/// Whether the repository has `path` (a directory when it ends with `/`).
fn exists(root: &Path, path: &str) -> bool {
    let full = root.join(path);
    if path.ends_with('/') {
        full.is_dir()
    } else {
        full.exists()
    }
}

/// Resolves a link `target` written in `doc` (relative to the repository) to a path
/// relative to the repository, or `None` if it leaves the repository.
fn resolve_link(doc: &Path, target: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let base = doc.parent().unwrap_or(Path::new(""));
    for c in base.join(target).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Removes the targets of Markdown links from `line`, returning the line without them and
/// the targets that name files (not URLs or anchors in the same page).
fn take_links(line: &str) -> (String, Vec<String>) {
    let mut rest = line;
    let mut kept = String::new();
    let mut targets = Vec::new();
    while let Some(at) = rest.find("](") {
        kept.push_str(&rest[..at + 2]);
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else {
            rest = after;
            break;
        };
        let target = after[..end].trim();
        let target = target.split('#').next().unwrap_or_default();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            targets.push(target.to_string());
        }
        rest = &after[end..];
    }
    kept.push_str(rest);
    (kept, targets)
}

/// The paths `text` (the contents of `doc`) names that do not exist, as `doc:line: path`.
fn missing_in(root: &Path, doc: &Path, text: &str, top: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    let shown = doc.display();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (line, links) = take_links(line);
        for target in links {
            match resolve_link(doc, &target) {
                Some(p) if root.join(&p).exists() => {}
                Some(p) => missing.push(format!("{shown}:{n}: link {target} ({})", p.display())),
                None => missing.push(format!("{shown}:{n}: link {target} leaves the repository")),
            }
        }
        let words =
            line.split(|c: char| c.is_whitespace() || !c.is_ascii() || DELIMITERS.contains(&c));
        for word in words {
            if let Some(path) = as_repo_path(word, top) {
                if !exists(root, path) {
                    missing.push(format!("{shown}:{n}: {path}"));
                }
            }
        }
    }
    missing
}

#[test]
fn every_path_the_docs_name_exists() {
    let root = root();
    let top = top_level(&root);
    let docs = doc_files(&root);
    assert!(
        docs.iter().any(|d| d == Path::new("docs/ARCHITECTURE.md")),
        "docs/ARCHITECTURE.md not among the scanned files: {docs:?}"
    );
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(root.join(doc)).expect("reading a doc");
        missing.extend(missing_in(&root, doc, &text, &top));
    }
    assert!(
        missing.is_empty(),
        "{} path(s) named in the docs do not exist:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn architecture_is_a_map_of_at_most_300_lines() {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("reading docs/ARCHITECTURE.md");
    let lines = text.lines().count();
    assert!(
        lines <= ARCHITECTURE_MAX_LINES,
        "docs/ARCHITECTURE.md has {lines} lines, more than {ARCHITECTURE_MAX_LINES}: move \
         decisions to docs/decisions/ and measurements to docs/BENCHMARKS.md"
    );
}

/// The scanner itself: it reports missing paths in each form the docs use, with their
/// line, and leaves alone what is not a repository path.
#[test]
fn the_scanner_flags_missing_paths_and_nothing_else() {
    let root = root();
    let top = top_level(&root);
    let doc = Path::new("docs/example.md");
    let text = "\
Start at `fs-core/src/lib.rs` and `bdev/src/exec/`, then ci/run.
Gone: `bdev/src/exec.rs`, bdev/src/uring.rs:submit and `cow/tests/nothing.rs::a_test`.
Relative: `durability/fold.rs` is not written from the root.
Missing directory: `iomap/src/no_such_dir/`.
Not paths: https://github.com/axboe/liburing/blob/master/README.md, /dev/shm, /tmp/x.md,
/mnt/bfs, `m/`, I/O, read/write, 1/50, `bench/scripts/vs-*.sh`, /proc/<pid>/task/*/stat,
RESULTS=/tmp/kbench, ../shared/DESIGN.md, target/release/bfsperf.
Links: [format](FORMAT.md), [gone](decisions/gone.md#why), [out](../../x.md), [web](https://example.com/a.md).
";
    let got = missing_in(&root, doc, text, &top);
    let want = [
        "docs/example.md:2: bdev/src/exec.rs",
        "docs/example.md:2: bdev/src/uring.rs",
        "docs/example.md:2: cow/tests/nothing.rs",
        "docs/example.md:3: durability/fold.rs",
        "docs/example.md:4: iomap/src/no_such_dir/",
        "docs/example.md:8: link decisions/gone.md (docs/decisions/gone.md)",
        "docs/example.md:8: link ../../x.md leaves the repository",
    ];
    assert_eq!(got, want);
}
