//! What survives `kill -9` of a FUSE mount: the kernel passes neither `sync(1)` nor
//! `syncfs(2)` to a FUSE server, so written data that nobody fsync'd becomes durable only
//! through the mount's periodic commit (`-o commit=SECONDS`) or an explicit request.
//! Each test runs the real `bypassfs mount` in a child process, writes through the mount
//! with plain `write`s (no fsync), SIGKILLs the child, detaches the dead mountpoint, and
//! reads the image back with `bypassfs cat`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{cat, fsck_clean, fuse_usable, mkfs, pattern, sh_out, MountProc};

/// Writes two files (one larger than a few writeback chunks), without fsync.
fn write_unsynced(mnt: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![("/small", pattern(5000, 7)), ("/big", pattern(3 << 20, 8))];
    for (p, data) in &files {
        std::fs::write(mnt.join(&p[1..]), data).unwrap();
    }
    files
}

/// A formatted 128 MiB image and an empty mountpoint in a temporary directory (kept while
/// the first value lives).
fn fresh_image() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (img, mnt) = (tmp.path().join("img"), tmp.path().join("mnt"));
    std::fs::create_dir(&mnt).unwrap();
    mkfs(&img, "128M");
    (tmp, img, mnt)
}

fn assert_survived(img: &std::path::Path, files: &[(&str, Vec<u8>)]) {
    for (p, want) in files {
        let got = cat(img, p);
        assert!(
            got == *want,
            "{p}: {} bytes after kill -9, {} written",
            got.len(),
            want.len()
        );
    }
    fsck_clean(img);
}

#[test]
fn periodic_commit_makes_writes_survive_kill_9() {
    if !fuse_usable("periodic commit test") {
        return;
    }
    let (_tmp, img, mnt) = fresh_image();
    let m = MountProc::start(&img, &mnt, "commit=1");
    let files = write_unsynced(&mnt);
    // A commit already running when the writes ended may have missed them; the next one
    // starts at most an interval later. Three intervals leave room for a slow machine.
    std::thread::sleep(Duration::from_secs(3));
    m.kill9();
    assert_survived(&img, &files);
    println!("periodic commit: writes survived kill -9 of the mount after commit=1");
}

#[test]
fn sync_of_the_mountpoint_makes_writes_survive_kill_9() {
    if !fuse_usable("sync MOUNTPOINT test") {
        return;
    }
    let (_tmp, img, mnt) = fresh_image();
    // No periodic commit: only the explicit request can make the writes durable.
    let m = MountProc::start(&img, &mnt, "commit=0");
    let files = write_unsynced(&mnt);
    // coreutils `sync DIR` opens DIR and fsyncs it; FUSE passes that on as FSYNCDIR.
    sh_out(&format!("sync {}", mnt.display()));
    m.kill9();
    assert_survived(&img, &files);
    println!("sync MOUNTPOINT: writes survived kill -9 of the mount");
}

/// The two ways programs replace a file's contents, as ext4's `auto_da_alloc` covers them:
/// rewriting it in place after `O_TRUNC`, and writing a new file then renaming it over the
/// old one. With no periodic commit and no fsync, a crash right after must still leave the
/// new contents (not an empty file where the old one was).
#[test]
fn replacing_a_file_survives_kill_9_without_fsync() {
    if !fuse_usable("auto_da_alloc test") {
        return;
    }
    let (_tmp, img, mnt) = fresh_image();
    let m = MountProc::start(&img, &mnt, "commit=0");
    let (old, new) = (pattern(9000, 1), pattern(12_000, 2));
    std::fs::write(mnt.join("rewritten"), &old).unwrap();
    std::fs::write(mnt.join("renamed"), &old).unwrap();
    sh_out(&format!("sync {}", mnt.display()));
    // O_TRUNC, write, close.
    std::fs::write(mnt.join("rewritten"), &new).unwrap();
    // Write a new file, close it, rename it over the old name.
    std::fs::write(mnt.join("renamed.tmp"), &new).unwrap();
    std::fs::rename(mnt.join("renamed.tmp"), mnt.join("renamed")).unwrap();
    m.kill9();
    let files = [("/rewritten", new.clone()), ("/renamed", new)];
    assert_survived(&img, &files);
    println!("auto_da_alloc: replaced files survived kill -9 of the mount");
}

/// Namespace changes are durable at the next commit (group commit): with no periodic
/// commit, an fsync of a new file makes it durable under its name, in a directory created
/// since the last commit too, and an fsync of a directory (not the root) makes a new empty
/// file in it durable; a name nobody synced is not promised.
#[test]
fn fsync_of_a_file_or_its_directory_makes_new_names_survive_kill_9() {
    if !fuse_usable("fsync of new names test") {
        return;
    }
    let (_tmp, img, mnt) = fresh_image();
    let m = MountProc::start(&img, &mnt, "commit=0");
    std::fs::create_dir(mnt.join("d")).unwrap();
    let data = pattern(7000, 3);
    std::fs::write(mnt.join("d/f"), &data).unwrap();
    // coreutils `sync FILE` fsyncs the file; `sync DIR` fsyncs the directory (FSYNCDIR).
    sh_out(&format!("sync {}", mnt.join("d/f").display()));
    std::fs::write(mnt.join("d/empty"), b"").unwrap();
    sh_out(&format!("sync {}", mnt.join("d").display()));
    m.kill9();
    assert_survived(&img, &[("/d/f", data), ("/d/empty", Vec::new())]);
    println!("fsync of a file and of its directory: new names survived kill -9 of the mount");
}

/// With `-o dirsync` every namespace change is durable when it returns, as before group
/// commit: names created, renamed and removed without any fsync survive `kill -9`.
#[test]
fn dirsync_makes_namespace_changes_survive_kill_9() {
    if !fuse_usable("dirsync test") {
        return;
    }
    let (_tmp, img, mnt) = fresh_image();
    let m = MountProc::start(&img, &mnt, "commit=0,dirsync");
    std::fs::create_dir(mnt.join("d")).unwrap();
    std::fs::write(mnt.join("d/empty"), b"").unwrap();
    std::fs::write(mnt.join("gone"), b"").unwrap();
    std::fs::rename(mnt.join("d/empty"), mnt.join("d/moved")).unwrap();
    std::fs::remove_file(mnt.join("gone")).unwrap();
    m.kill9();
    assert_survived(&img, &[("/d/moved", Vec::new())]);
    let root = sh_out(&format!("{} ls {} /", common::BIN, img.display()));
    assert!(!root.contains("gone"), "an unlink was lost: {root}");
    let d = sh_out(&format!("{} ls {} /d", common::BIN, img.display()));
    assert!(!d.contains("empty"), "a rename was lost: {d}");
    println!("dirsync: namespace changes survived kill -9 of the mount");
}
