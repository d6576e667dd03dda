//! The `bypassfs` binary end to end, on temporary image files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bypassfs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bypassfs"))
        .args(args)
        .output()
        .expect("bypassfs runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and expects exit status `code`; returns stdout.
fn expect(args: &[&str], code: i32) -> String {
    let out = bypassfs(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "bypassfs {args:?}:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 64 KiB of lines that occur nowhere else in an image (too large to be inline in
/// metadata, so they land in data blocks).
fn payload() -> Vec<u8> {
    let mut v = Vec::with_capacity(64 << 10);
    let mut i = 0u32;
    while v.len() < 64 << 10 {
        v.extend_from_slice(format!("bypassfs-cli-test-{i:08}\n").as_bytes());
        i += 1;
    }
    v.truncate(64 << 10);
    v
}

/// `mkfs --size` on a new file, then `put` of the payload as `/payload.txt`.
fn formatted_with_payload(dir: &Path) -> PathBuf {
    let img = dir.join("disk.img");
    let local = dir.join("payload.txt");
    std::fs::write(&local, payload()).unwrap();
    expect(&["mkfs", "--size", "32M", s(&img)], 0);
    expect(&["put", s(&img), s(&local), "/payload.txt"], 0);
    img
}

#[test]
fn round_trip_and_clean_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    let ls = expect(&["ls", s(&img)], 0);
    assert_eq!(ls.trim(), "payload.txt");
    let long = expect(&["ls", s(&img), "/", "-l"], 0);
    assert!(
        long.contains("-rw-r--r--") && long.contains("65536"),
        "{long}"
    );
    let cat = bypassfs(&["cat", s(&img), "/payload.txt"]);
    assert!(cat.status.success());
    assert!(cat.stdout == payload(), "cat returned other bytes");
    let back = dir.path().join("back.txt");
    expect(&["get", s(&img), "/payload.txt", s(&back)], 0);
    assert!(
        std::fs::read(&back).unwrap() == payload(),
        "get returned other bytes"
    );
    let st = expect(&["stat", s(&img), "/payload.txt"], 0);
    assert!(st.contains("Size: 65536"), "{st}");
    let report = expect(&["fsck", s(&img)], 0);
    assert!(report.contains("clean"), "{report}");
    // A fresh filesystem has whole nodes to spare beyond the metadata reserve.
    assert!(report.contains("in whole metadata nodes"), "{report}");
    assert!(!report.contains("note: less free space"), "{report}");
    // A second mkfs without --force keeps the filesystem.
    let out = bypassfs(&["mkfs", s(&img)]);
    assert_eq!(out.status.code(), Some(8));
    assert!(text(&out.stderr).contains("--force"));
    expect(&["cat", s(&img), "/payload.txt"], 0);
}

#[test]
fn corrupted_data_block_makes_fsck_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    let mut bytes = std::fs::read(&img).unwrap();
    let marker = b"bypassfs-cli-test-00000100";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the payload is on the image");
    bytes[at] ^= 0xff;
    std::fs::write(&img, bytes).unwrap();
    let report = expect(&["fsck", s(&img)], 4);
    assert!(report.contains("error 1:"), "{report}");
    let json = expect(&["fsck", "--json", s(&img)], 4);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["clean"], false);
    assert!(!doc["errors"].as_array().unwrap().is_empty());
    let reserve = doc["metadata_reserve"].as_u64().unwrap();
    assert!(
        reserve > 0 && doc["node_free_bytes"].as_u64().unwrap() > reserve,
        "{json}"
    );
}

#[test]
fn missing_device_is_an_operational_error_with_a_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("nope.img");
    let out = bypassfs(&["fsck", s(&img)]);
    assert_eq!(out.status.code(), Some(8));
    let err = text(&out.stderr);
    assert!(err.contains("bypassfs mkfs --size 1G"), "{err}");
    let json = expect(&["fsck", "--json", s(&img)], 8);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["exit_code"], 8);
    let out = bypassfs(&["ls", s(&img)]);
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn unformatted_device_says_to_run_mkfs() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("blank.img");
    std::fs::write(&img, vec![0u8; 4 << 20]).unwrap();
    let out = bypassfs(&["ls", s(&img)]);
    assert_eq!(out.status.code(), Some(8));
    let err = text(&out.stderr);
    assert!(err.contains("mkfs"), "{err}");
}

#[test]
fn json_config_device_needs_a_bdev_name_when_it_has_several() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("two.json");
    let doc = r#"{"subsystems": [{"subsystem": "bdev", "config": [
      {"method": "bdev_malloc_create", "params": {"name": "A", "num_blocks": 4096, "block_size": 4096}},
      {"method": "bdev_malloc_create", "params": {"name": "B", "num_blocks": 4096, "block_size": 4096}}]}]}"#;
    std::fs::write(&cfg, doc).unwrap();
    let out = bypassfs(&["mkfs", s(&cfg)]);
    assert_eq!(out.status.code(), Some(8));
    assert!(
        text(&out.stderr).contains("--bdev"),
        "{}",
        text(&out.stderr)
    );
    expect(&["mkfs", s(&cfg), "--bdev", "B"], 0);
}

/// In a build without the `spdk` feature, `--spdk` on any subcommand that opens a device
/// says how to rebuild, and so does the library; a method only SPDK serves names `--spdk`.
#[cfg(not(feature = "spdk"))]
#[test]
fn spdk_without_the_feature_says_how_to_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("one.json");
    let doc = r#"{"subsystems": [{"subsystem": "bdev", "config": [
      {"method": "bdev_malloc_create", "params": {"name": "A", "num_blocks": 4096, "block_size": 4096}}]}]}"#;
    std::fs::write(&cfg, doc).unwrap();
    let rebuild = "cargo install --path . --features spdk";
    for sub in [
        vec!["mkfs", "--spdk", s(&cfg)],
        vec!["fsck", "--spdk", "--no-huge", s(&cfg)],
        vec!["ls", "--spdk", "-s", "512", "-m", "0x1", s(&cfg), "/"],
        vec!["mount", "--spdk", s(&cfg), s(dir.path())],
        vec!["bench", "--device", s(&cfg), "--spdk", "-t", "0.1"],
    ] {
        refused(&sub, rebuild);
    }
    let lib = bypassfs::device::spdk::open(&cfg, None, &Default::default());
    assert!(matches!(
        lib,
        Err(bypassfs::device::spdk::SpdkOpenError::NotBuilt)
    ));

    let nvme = dir.path().join("nvme.json");
    std::fs::write(
        &nvme,
        r#"{"subsystems":[{"subsystem":"bdev","config":[{"method":
        "bdev_nvme_attach_controller","params":{"name":"Nvme0","trtype":"PCIe",
        "traddr":"0000:00:00.0"}}]}]}"#,
    )
    .unwrap();
    refused(&["mkfs", s(&nvme)], "add --spdk");
}

#[test]
fn bench_json_has_nonzero_iops_per_row() {
    let out = expect(
        &[
            "bench",
            "-t",
            "0.2",
            "--json",
            "--size",
            "64M",
            "--file-size",
            "4M",
        ],
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&out).expect("bench --json is JSON");
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{doc:#}");
    for r in rows {
        assert!(r["iops"].as_f64().unwrap() > 0.0, "no I/O in {r}");
        assert_eq!(r["io_failed"], 0, "{r}");
    }
}

/// Runs and expects exit status 8 with `want` in the error; returns stderr.
fn refused(args: &[&str], want: &str) -> String {
    let out = bypassfs(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "bypassfs {args:?}: {err}");
    assert!(err.contains(want), "bypassfs {args:?}: {err}");
    err
}

/// While this process holds the image read-write (as a mount does), every other opener is
/// refused with a message naming this process; while it holds it read-only, readers share
/// it and writers are refused.
#[test]
fn a_device_held_read_write_refuses_every_other_opener() {
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    let local = dir.path().join("payload.txt");
    let me = format!("pid {}", std::process::id());
    let held = bypassfs::device::open(s(&img)).unwrap();
    let writer = format!("is in use: opened read-write by {me} (");
    for args in [
        vec!["put", s(&img), s(&local), "/second.txt"],
        vec!["mkfs", "--force", s(&img)],
        vec!["mkfs", "--force", "--size", "32M", s(&img)],
        vec!["ls", s(&img)],
        vec!["cat", s(&img), "/payload.txt"],
        vec!["fsck", s(&img)],
        vec!["stat", s(&img), "/payload.txt"],
    ] {
        refused(&args, &writer);
    }
    drop(held);
    let reader = bypassfs::device::open_read_only(s(&img)).unwrap();
    expect(&["ls", s(&img)], 0);
    expect(&["fsck", s(&img)], 0);
    refused(
        &["put", s(&img), s(&local), "/second.txt"],
        &format!("is in use: opened read-only by {me} ("),
    );
    drop(reader);
    expect(&["put", s(&img), s(&local), "/second.txt"], 0);
    let ls = expect(&["ls", s(&img)], 0);
    assert!(ls.contains("second.txt"), "{ls}");
}

fn is_mounted(mnt: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    m.lines().any(|l| l.split(' ').nth(4) == Some(s(mnt)))
}

/// The issue's scenario: a second `bypassfs mount` of a mounted image, and a `put` into it,
/// are refused naming the mount's pid and command line (skipped without FUSE).
#[test]
fn a_mounted_image_refuses_a_second_mount_and_put() {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_err()
    {
        println!("no usable /dev/fuse: SKIPPED");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    let (m1, m2) = (dir.path().join("m1"), dir.path().join("m2"));
    std::fs::create_dir(&m1).unwrap();
    std::fs::create_dir(&m2).unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_bypassfs"))
        .args(["mount", s(&img), s(&m1)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !is_mounted(&m1) {
        assert!(first.try_wait().unwrap().is_none(), "the first mount ended");
        assert!(
            start.elapsed().as_secs() < 20,
            "the first mount did not appear"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let holder = format!(
        "is in use: opened read-write by pid {} ({} mount {} {})",
        first.id(),
        env!("CARGO_BIN_EXE_bypassfs"),
        s(&img),
        s(&m1)
    );
    let local = dir.path().join("payload.txt");
    let second = refused(&["mount", s(&img), s(&m2)], &holder);
    let put = refused(&["put", s(&img), s(&local), "/x.txt"], &holder);
    let ro = refused(&["mount", s(&img), s(&m2), "-o", "ro"], &holder);
    let umount = Command::new("umount").arg(&m1).status().unwrap();
    assert!(umount.success());
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    // An ordinary unmount is not a failure worth a warning.
    let log = text(&first.stderr);
    assert!(!log.contains("Failed to umount"), "{log}");
    assert!(!is_mounted(&m2), "{second}{put}{ro}");
    expect(&["fsck", s(&img)], 0);
}

/// `mkfs --force --size` smaller than the file wipes the old superblock mirrors beyond the
/// new size: the next open finds the new filesystem, and no old copy is left to find.
#[test]
fn mkfs_with_a_smaller_size_wipes_the_old_mirrors() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let local = dir.path().join("payload.txt");
    std::fs::write(&local, payload()).unwrap();
    expect(&["mkfs", "--size", "128M", s(&img)], 0);
    expect(&["put", s(&img), s(&local), "/old.txt"], 0);
    expect(&["mkfs", "--force", "--size", "32M", s(&img)], 0);
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 128 << 20);
    let ls = bypassfs(&["ls", s(&img)]);
    assert!(
        ls.status.success() && ls.stdout.is_empty() && !text(&ls.stderr).contains("superblock"),
        "ls after mkfs: {}{}",
        text(&ls.stdout),
        text(&ls.stderr)
    );
    let bytes = std::fs::read(&img).unwrap();
    let mirror = &bytes[64 << 20..(64 << 20) + 4096];
    assert!(
        mirror.iter().all(|&b| b == 0),
        "the old mirror at 64 MiB survived mkfs"
    );
    expect(&["fsck", s(&img)], 0);
}

/// mkfs refuses, without --force, a device holding another filesystem, naming it.
#[test]
fn mkfs_refuses_another_filesystem_without_force() {
    let dir = tempfile::tempdir().unwrap();
    for (off, magic, name) in [
        (1080, &b"\x53\xef"[..], "ext2/ext3/ext4"),
        (0, &b"XFSB"[..], "XFS"),
        (65600, &b"_BHRfS_M"[..], "btrfs"),
    ] {
        let img = dir.path().join(format!("{name}.img").replace('/', "-"));
        let mut bytes = vec![0u8; 8 << 20];
        bytes[off..off + magic.len()].copy_from_slice(magic);
        std::fs::write(&img, &bytes).unwrap();
        refused(
            &["mkfs", s(&img)],
            &format!(" {name} filesystem; add --force"),
        );
        expect(&["mkfs", "--force", s(&img)], 0);
        expect(&["fsck", s(&img)], 0);
    }
}

/// A bypassfs whose only superblock copy is damaged: the mount error points to fsck and never
/// advises mkfs; mkfs itself refuses it without --force.
#[test]
fn a_damaged_bypassfs_is_never_advised_to_be_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[(64 << 10) + 40] ^= 0xff;
    std::fs::write(&img, &bytes).unwrap();
    for args in [vec!["ls", s(&img)], vec!["put", s(&img), s(&img), "/x"]] {
        let err = refused(&args, "bypassfs fsck DEVICE");
        assert!(!err.contains("mkfs"), "{err}");
    }
    refused(
        &["mkfs", s(&img)],
        "holds a damaged bypassfs (superblock magic at 0x10000)",
    );
}

/// A destroyed primary with an intact mirror: the volume opens, but fsck is not clean and
/// names the copy.
#[test]
fn fsck_reports_a_destroyed_primary_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    expect(&["mkfs", "--size", "80M", s(&img)], 0);
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[64 << 10..68 << 10].fill(0);
    std::fs::write(&img, &bytes).unwrap();
    expect(&["ls", s(&img)], 0);
    let json = expect(&["fsck", "--json", s(&img)], 4);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["clean"], false);
    assert!(
        doc["errors"][0]
            .as_str()
            .unwrap()
            .contains("primary superblock at 0x10000 is damaged"),
        "{doc}"
    );
}

/// Output into a pipe whose reader has gone (`| head`) ends the command quietly, as
/// SIGPIPE ends coreutils: no panic, no message.
#[test]
fn a_closed_stdout_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let img = formatted_with_payload(dir.path());
    for args in [
        vec!["stat", s(&img), "/payload.txt"],
        vec!["ls", s(&img), "/", "-l"],
        vec!["cat", s(&img), "/payload.txt"],
        vec!["fsck", s(&img)],
    ] {
        // The reader is gone before the command starts, so every write meets EPIPE. (A
        // pipe from `Stdio::piped()` whose reader is dropped after the spawn was racy: a
        // child another test thread forked meanwhile held a copy of the read end until its
        // exec, and the write went through.)
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_bypassfs"))
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {err}");
    }
}
