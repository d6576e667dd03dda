//! Mounts a fresh filesystem through FUSE and runs ordinary programs on it (cp, mv, ln, rm,
//! mkdir -p, dd with and without O_DIRECT, truncate, stat, setfattr/getfattr), unmounts,
//! remounts, compares every file with what was written, ends the second mount with SIGTERM
//! and checks the image with fsck.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use bypassfs::fuse::MountOptions;
use common::{have, is_mounted, pattern, sh_in as sh};
use fs_core::{Filesystem, FormatOptions};

struct Mounted {
    fs: Arc<Filesystem>,
    thread: JoinHandle<std::io::Result<()>>,
}

fn mount(img: &Path, mnt: &Path, handle_signals: bool) -> Mounted {
    let dev = bypassfs::device::open(img.to_str().unwrap()).unwrap();
    let fs = Arc::new(Filesystem::mount(dev, fs_core::MountOptions::default()).unwrap());
    let opts = MountOptions {
        threads: 3,
        handle_signals,
        fsname: "bfs-test".into(),
        ..MountOptions::default()
    };
    let (f, m) = (Arc::clone(&fs), mnt.to_path_buf());
    let thread = std::thread::spawn(move || bypassfs::fuse::mount(f, &m, opts));
    let start = Instant::now();
    while !is_mounted(mnt) {
        assert!(!thread.is_finished(), "the FUSE mount ended at once");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mount did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Mounted { fs, thread }
}

fn finish(m: Mounted) {
    m.thread.join().unwrap().expect("FUSE session");
    let fs = Arc::try_unwrap(m.fs).unwrap_or_else(|_| panic!("filesystem still shared"));
    let ctx = fs.context().unwrap();
    fs.unmount(&ctx).unwrap();
}

/// What the first mount leaves behind: (path under the mount, contents).
fn workload(mnt: &Path, src: &Path, xattrs: bool) -> Vec<(PathBuf, Vec<u8>)> {
    let s = src.display();
    let data = std::fs::read(src).unwrap();
    sh(mnt, "mkdir -p a/b/c && mkdir d");
    sh(
        mnt,
        &format!("cp {s} a/b/c/copy && cp {s} tmp && mv tmp a/moved"),
    );
    sh(
        mnt,
        "ln a/moved a/hard && ln -s moved a/sym && rm a/hard && mv a/b/c d/c",
    );
    sh(
        mnt,
        &format!("dd if={s} of=direct bs=4096 count=200 oflag=direct status=none"),
    );
    sh(
        mnt,
        &format!("dd if={s} of=buffered bs=1000 count=333 status=none conv=fsync"),
    );
    sh(mnt, &format!("dd if={s} of=direct bs=4096 seek=10 count=3 skip=500 oflag=direct conv=notrunc status=none"));
    sh(mnt, "cp a/moved trunc && truncate -s 5000 trunc && truncate -s 9000 trunc && truncate -s 7 sparse");
    assert_eq!(sh(mnt, "stat -c %s a/moved").trim(), data.len().to_string());
    assert_eq!(sh(mnt, "readlink a/sym").trim(), "moved");
    assert_eq!(
        sh(mnt, "cat a/sym | cksum"),
        sh(mnt, &format!("cksum < {s}"))
    );
    assert_eq!(sh(mnt, "ls d/c").trim(), "copy");
    assert!(!mnt.join("a/hard").exists() && !mnt.join("a/b/c").exists());
    if xattrs {
        sh(mnt, "setfattr -n user.color -v blue a/moved");
        assert_eq!(
            sh(mnt, "getfattr --only-values -n user.color a/moved"),
            "blue"
        );
    }
    let free = sh(mnt, "stat -f -c %a .");
    assert!(free.trim().parse::<u64>().unwrap() > 0);
    sh(mnt, "sync a/moved");
    let mut direct = data[..200 * 4096].to_vec();
    direct[10 * 4096..13 * 4096].copy_from_slice(&data[500 * 4096..503 * 4096]);
    let mut trunc = data[..5000].to_vec();
    trunc.resize(9000, 0);
    vec![
        ("a/moved".into(), data.clone()),
        ("d/c/copy".into(), data.clone()),
        ("direct".into(), direct),
        ("buffered".into(), data[..333_000].to_vec()),
        ("trunc".into(), trunc),
        ("sparse".into(), vec![0; 7]),
    ]
}

#[test]
fn ordinary_programs_on_a_fuse_mount() {
    if !Path::new("/dev/fuse").exists() {
        println!("FUSE test SKIPPED: no /dev/fuse on this machine");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, mnt, src) = (
        tmp.path().join("img"),
        tmp.path().join("mnt"),
        tmp.path().join("src"),
    );
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(&src, pattern(3 << 20, 42)).unwrap();
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let dev = bypassfs::device::open(img.to_str().unwrap()).unwrap();
    Filesystem::format(dev, FormatOptions::default()).unwrap();
    let xattrs = have("setfattr") && have("getfattr");
    if !xattrs {
        println!("FUSE test: setfattr/getfattr not installed (package attr): xattr part SKIPPED");
    }

    let m = mount(&img, &mnt, false);
    let expected = workload(&mnt, &src, xattrs);
    sh(tmp.path(), &format!("umount {}", mnt.display()));
    finish(m);
    assert!(!is_mounted(&mnt));

    // Remount; this time the mount ends with SIGTERM (sync, then a clean unmount).
    let m = mount(&img, &mnt, true);
    for (p, want) in &expected {
        let got = std::fs::read(mnt.join(p)).unwrap();
        assert!(
            got == *want,
            "{} differs after remount ({} vs {} bytes)",
            p.display(),
            got.len(),
            want.len()
        );
    }
    if xattrs {
        assert_eq!(
            sh(&mnt, "getfattr --only-values -n user.color a/moved"),
            "blue"
        );
    }
    let names = sh(&mnt, "ls -a");
    assert_eq!(
        names.split_whitespace().collect::<Vec<_>>(),
        [".", "..", "a", "buffered", "d", "direct", "sparse", "trunc"]
    );
    sh(tmp.path(), &format!("kill -TERM {}", std::process::id()));
    finish(m);
    assert!(!is_mounted(&mnt));

    // The command a user would run, not the library call: exit 0 means clean.
    let fsck = Command::new(env!("CARGO_BIN_EXE_bypassfs"))
        .arg("fsck")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "`bypassfs fsck` after the FUSE workload ({}):\n{}{}",
        fsck.status,
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    println!(
        "FUSE test: ordinary programs ran on the mount; contents survived remount; fsck clean"
    );
}

/// A read-only mount has nothing to sync: `bypassfs mount -o ro` exits 0 at umount (it
/// used to fail its final sync).
#[test]
fn a_read_only_mount_ends_cleanly() {
    if !common::fuse_usable("read-only mount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ro.img");
    common::mkfs(&img, "64M");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = common::MountProc::start(&img, &mnt, "ro");
    assert!(std::fs::write(mnt.join("x"), b"x").is_err());
    m.unmount();
    common::fsck_clean(&img);
}
