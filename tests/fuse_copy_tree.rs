//! `cp -a` and `tar x` of a real tree into a FUSE mount keep everything `ls -l`, `stat` and
//! `getfattr` show, across an unmount and a remount.
//!
//! The source is a copy of part of `/usr/share/doc` (packages in name order until
//! `BYPASSFS_COPY_TREE_ENTRIES` entries, default 1200; none if the directory is missing)
//! plus made-up entries for what it lacks: setuid/setgid/sticky modes, other owners,
//! nanosecond mtimes (on a symlink too), dangling, absolute and long symlinks, hard links,
//! a sparse file, and `user.*` xattrs on files and directories (one of 2048 bytes, the
//! largest value bypassfs stores). It runs the real
//! `bypassfs mount` binary; needs root and /dev/fuse, cp, tar, setfattr and getfattr.
//! `BYPASSFS_COPY_TREE_DIFFS=FILE` writes every difference found to FILE.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{fsck_clean, fuse_usable, have, mkfs, sh_in, MountProc};

const DEFAULT_ENTRIES: usize = 1200;

/// Copies package directories of /usr/share/doc into `src` until about `max` entries.
fn copy_some_docs(src: &Path, max: usize) -> usize {
    let doc = Path::new("/usr/share/doc");
    let Ok(dirs) = std::fs::read_dir(doc) else {
        println!("copy-tree test: no /usr/share/doc; only the made-up entries");
        return 0;
    };
    let mut pkgs: Vec<PathBuf> = dirs.filter_map(|e| e.ok().map(|e| e.path())).collect();
    pkgs.sort();
    let mut copied = 0;
    for p in pkgs {
        if copied >= max {
            break;
        }
        let before = count(src);
        // cp -a as root keeps owners, modes, times, symlinks and xattrs.
        sh_in(src, &format!("cp -a '{}' .", p.display()));
        copied += count(src) - before;
    }
    copied
}

fn count(dir: &Path) -> usize {
    snapshot(dir).len()
}

/// What /usr/share/doc lacks, made up with the tools a user would use.
fn add_made_up_entries(src: &Path) {
    let long = "t".repeat(1000);
    let script = format!(
        "set -e
        mkdir -p x/dir x/sticky x/empty_dir
        printf 'hello' > x/plain
        : > x/empty
        printf 'suid' > x/suid && chmod 4755 x/suid
        printf 'sgid' > x/sgid && chmod 2750 x/sgid
        printf 'none' > x/none && chmod 0000 x/none
        chmod 1777 x/sticky && chmod 2775 x/dir
        printf 'nobody' > x/dir/owned && chown 65534:65534 x/dir/owned
        printf 'odd' > x/dir/odd_owner && chown 1234:5678 x/dir/odd_owner && chmod 0640 x/dir/odd_owner
        truncate -s 10M x/sparse && printf 'end' >> x/sparse
        printf 'linked' > x/hard1 && ln x/hard1 x/hard2 && ln x/hard1 x/dir/hard3
        ln -s plain x/rel_link
        ln -s /etc/hostname x/abs_link
        ln -s does/not/exist x/dangling
        ln -s {long} x/long_link
        chown -h 1234:5678 x/rel_link
        printf 'accent' > x/café
        setfattr -n user.x -v y x/plain
        setfattr -n user.color -v blue x/plain
        setfattr -n user.bin -v 0x00ff10 x/suid
        setfattr -n user.empty x/empty
        setfattr -n user.on_dir -v d x/dir
        setfattr -n user.big -v 0s$(head -c 2048 /dev/zero | tr '\\0' 'A' | base64 -w0) x/dir/odd_owner
        touch -d '2001-02-03 04:05:06.123456789' x/plain x/suid x/hard1
        touch -h -d '2002-03-04 05:06:07.987654321' x/rel_link
        touch -d '1999-12-31 23:59:59.5' x/dir x/sticky x/empty_dir x
        "
    );
    sh_in(src, &script);
}

#[derive(Debug, PartialEq)]
struct Entry {
    /// st_mode: type and permission bits.
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    /// Regular files and symlinks (directories' sizes and link counts are the
    /// filesystem's business).
    size: Option<u64>,
    nlink: Option<u64>,
    target: Option<PathBuf>,
    /// Regular files: the bytes.
    data: Option<Vec<u8>>,
}

/// Every entry under `root` (not `root` itself), by path relative to it.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let not_dir = !ft.is_dir();
            if ft.is_dir() {
                todo.push(p.clone());
            }
            let entry = Entry {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                size: not_dir.then(|| m.size()),
                nlink: not_dir.then(|| m.nlink()),
                target: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                data: ft.is_file().then(|| std::fs::read(&p).unwrap()),
            };
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), entry);
        }
    }
    out
}

/// Every entry's extended attributes (all namespaces, symlinks not followed), as getfattr
/// prints them: path -> "name=0xHEX" lines.
fn xattrs(root: &Path) -> BTreeMap<String, Vec<String>> {
    let dump = sh_in(root, "getfattr -R -h -d -m - -e hex . 2>/dev/null || true");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = None;
    for line in dump.lines() {
        if let Some(f) = line.strip_prefix("# file: ") {
            cur = Some(f.to_string());
        } else if !line.is_empty() {
            let f = cur.clone().expect("getfattr: an attribute before any file");
            out.entry(f).or_default().push(line.to_string());
        }
    }
    out
}

/// Differences between the source and a copy, one line each.
fn compare(src: &Path, copy: &Path, how: &str) -> Vec<String> {
    let (a, b) = (snapshot(src), snapshot(copy));
    let mut diffs = Vec::new();
    for (p, want) in &a {
        match b.get(p) {
            None => diffs.push(format!("{how}: {} missing", p.display())),
            Some(got) if got != want => {
                let mut what = Vec::new();
                if got.mode != want.mode {
                    what.push(format!("mode {:o} not {:o}", got.mode, want.mode));
                }
                if (got.uid, got.gid) != (want.uid, want.gid) {
                    what.push(format!(
                        "owner {}:{} not {}:{}",
                        got.uid, got.gid, want.uid, want.gid
                    ));
                }
                if got.mtime != want.mtime {
                    what.push(format!("mtime {:?} not {:?}", got.mtime, want.mtime));
                }
                if got.size != want.size {
                    what.push(format!("size {:?} not {:?}", got.size, want.size));
                }
                if got.nlink != want.nlink {
                    what.push(format!("nlink {:?} not {:?}", got.nlink, want.nlink));
                }
                if got.target != want.target {
                    what.push(format!("target {:?} not {:?}", got.target, want.target));
                }
                if got.data != want.data {
                    what.push("contents differ".into());
                }
                diffs.push(format!("{how}: {}: {}", p.display(), what.join(", ")));
            }
            Some(_) => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("{how}: {} appeared", p.display()));
    }
    let (xa, xb) = (xattrs(src), xattrs(copy));
    for f in xa.keys().chain(xb.keys().filter(|f| !xa.contains_key(*f))) {
        if xa.get(f) != xb.get(f) {
            diffs.push(format!(
                "{how}: {f}: xattrs {:?} not {:?}",
                xb.get(f),
                xa.get(f)
            ));
        }
    }
    diffs
}

/// How many differences of each kind (so that a failure says what is wrong at a glance).
fn tally(diffs: &[String]) -> String {
    // With their spaces, so that a path like "odd_owner:" is not counted as "owner ".
    let kinds = [
        "` failed",
        "cp: ",
        "tar: ",
        " missing",
        " appeared",
        " mode ",
        " owner ",
        " mtime ",
        " size ",
        " nlink ",
        " target ",
        " contents differ",
        " xattrs ",
    ];
    let counts: Vec<String> = kinds
        .iter()
        .map(|k| (k, diffs.iter().filter(|d| d.contains(k)).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {}", k.trim_matches([' ', ':', '`'])))
        .collect();
    counts.join(", ")
}

/// Runs `cmd`; what it printed on stderr, a line each, if it failed.
fn complaints(dir: &Path, cmd: &str) -> Vec<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    if out.status.success() {
        return Vec::new();
    }
    let mut lines = vec![format!("`{cmd}` failed ({})", out.status)];
    lines.extend(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string),
    );
    lines
}

#[test]
fn cp_a_and_tar_x_keep_metadata_across_remount() {
    if !fuse_usable("copy-tree test") {
        return;
    }
    if let Some(t) = ["cp", "tar", "setfattr", "getfattr", "base64"]
        .into_iter()
        .find(|t| !have(t))
    {
        println!("copy-tree test SKIPPED: {t} is not installed");
        return;
    }
    let max = std::env::var("BYPASSFS_COPY_TREE_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ENTRIES);
    let tmp = tempfile::tempdir().unwrap();
    let (img, mnt, src) = (
        tmp.path().join("img"),
        tmp.path().join("mnt"),
        tmp.path().join("src"),
    );
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let docs = copy_some_docs(&src, max);
    add_made_up_entries(&src);
    let total = count(&src);
    // The archive keeps nanosecond times and xattrs only in the POSIX (pax) format.
    let tar = tmp.path().join("src.tar");
    sh_in(
        &src,
        &format!(
            "tar --format=posix --xattrs --xattrs-include='*' -cf {} .",
            tar.display()
        ),
    );
    mkfs(&img, "1G");

    let m = MountProc::start(&img, &mnt, "");
    // A copy that reports errors goes on; its complaints are differences too.
    let mut diffs = Vec::new();
    diffs.extend(complaints(&mnt, &format!("cp -a {} cp", src.display())));
    diffs.extend(complaints(
        &mnt,
        &format!(
            "mkdir tar && tar -C tar --xattrs --xattrs-include='*' --same-owner -xpf {}",
            tar.display()
        ),
    ));
    m.unmount();

    let m = MountProc::start(&img, &mnt, "");
    diffs.extend(compare(&src, &mnt.join("cp"), "cp -a"));
    diffs.extend(compare(&src, &mnt.join("tar"), "tar x"));
    m.unmount();
    if let Ok(f) = std::env::var("BYPASSFS_COPY_TREE_DIFFS") {
        std::fs::write(&f, diffs.join("\n") + "\n").unwrap();
        println!("copy-tree test: {} differences written to {f}", diffs.len());
    }
    assert!(
        diffs.is_empty(),
        "{} differences after remount, of {total} entries ({}); the first 40:\n{}",
        diffs.len(),
        tally(&diffs),
        diffs[..diffs.len().min(40)].join("\n")
    );
    fsck_clean(&img);
    println!(
        "copy-tree test: {total} entries ({docs} from /usr/share/doc) kept modes, owners, \
         mtimes, symlink targets and xattrs through cp -a and tar x, unmount and remount"
    );
}
