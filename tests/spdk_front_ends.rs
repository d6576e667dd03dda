//! Every front end on a bdev that SPDK itself serves (feature `spdk`): the CLI's
//! subcommands with `--spdk`, a FUSE mount with `bypassfs mount --spdk`, and the C API with
//! `BFS_DEVICE_SPDK`, each on an SPDK aio bdev over a temporary file (a malloc bdev would
//! forget the filesystem between the processes). SPDK runs without hugepages (`--no-huge`)
//! so that these run on any host where SPDK is installed; ci/run builds this file only then.
//!
//! Each CLI command and the C example is a process of its own (SPDK starts once per
//! process); the one in-process test checks what a second start in one process does.

mod cbuild;
mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fuse_usable, have, MountProc, BIN};

/// SPDK without hugepages, in 512 MiB of ordinary memory, its thread on core 0.
const ENV: [&str; 6] = ["--spdk", "--no-huge", "-s", "512", "-m", "0x1"];

/// A temporary directory holding an image file and an SPDK config making it bdev `Aio0`.
struct AioBdev {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl AioBdev {
    fn new(size: u64) -> AioBdev {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img).unwrap().set_len(size).unwrap();
        let config = dir.path().join("aio.json");
        let doc = serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": [
            {"method": "bdev_aio_create",
             "params": {"name": "Aio0", "filename": img, "block_size": 4096}}
        ]}]});
        std::fs::write(&config, doc.to_string()).unwrap();
        AioBdev { dir, config }
    }

    /// `bypassfs SUBCOMMAND --spdk … CONFIG --bdev Aio0 REST…`.
    fn run(&self, sub: &str, rest: &[&OsStr]) -> Output {
        Command::new(BIN)
            .arg(sub)
            .args(ENV)
            .arg(&self.config)
            .args(["--bdev", "Aio0"])
            .args(rest)
            .output()
            .unwrap()
    }

    /// [`AioBdev::run`], which must succeed; its stdout.
    fn ok(&self, sub: &str, rest: &[&OsStr]) -> String {
        let out = self.run(sub, rest);
        assert!(
            out.status.success(),
            "`bypassfs {sub} --spdk`: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The device arguments of `bypassfs mount`.
    fn mount_args(&self) -> Vec<&OsStr> {
        let mut a: Vec<&OsStr> = ENV.iter().map(OsStr::new).collect();
        a.extend([self.config.as_os_str(), "--bdev".as_ref(), "Aio0".as_ref()]);
        a
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cli_formats_writes_reads_and_checks_an_aio_bdev_through_spdk() {
    let b = AioBdev::new(128 << 20);
    let mkfs = b.ok("mkfs", &[]);
    assert!(mkfs.contains("formatted a bypassfs of 128 MiB"), "{mkfs}");
    assert!(
        !mkfs.contains("RAM bdev"),
        "an aio bdev keeps the filesystem: {mkfs}"
    );
    // A second mkfs sees the filesystem the first one left in the file.
    let again = b.run("mkfs", &[]);
    assert!(
        stderr_of(&again).contains("already holds a bypassfs"),
        "{}",
        stderr_of(&again)
    );

    let local = b.dir.path().join("local.bin");
    let data = common::pattern(3 << 20, 22);
    std::fs::write(&local, &data).unwrap();
    b.ok("put", &[local.as_os_str(), os("/blob")]);
    let ls = b.ok("ls", &[os("/"), os("-l")]);
    assert!(
        ls.contains("blob") && ls.contains(&(3 << 20).to_string()),
        "{ls}"
    );
    let cat = b.run("cat", &[os("/blob")]);
    assert!(
        cat.status.success() && cat.stdout == data,
        "cat: {}",
        stderr_of(&cat)
    );
    let back = b.dir.path().join("back.bin");
    b.ok("get", &[os("/blob"), back.as_os_str()]);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let stat = b.ok("stat", &[os("/blob")]);
    assert!(stat.contains("Type: File"), "{stat}");
    let fsck = b.ok("fsck", &[]);
    assert!(fsck.contains("clean"), "{fsck}");

    // The same file is as readable by the native backends (io_uring serves the config's
    // bdev_aio_create).
    let native = Command::new(BIN)
        .args(["cat"])
        .arg(&b.config)
        .arg("/blob")
        .output()
        .unwrap();
    assert!(native.status.success() && native.stdout == data);
}

#[test]
fn cli_errors_through_spdk_say_what_to_do() {
    let b = AioBdev::new(64 << 20);
    // An unknown bdev: the config's bdevs are listed.
    let out = Command::new(BIN)
        .arg("mkfs")
        .args(ENV)
        .arg(&b.config)
        .args(["--bdev", "Nvme0n1"])
        .output()
        .unwrap();
    let e = stderr_of(&out);
    assert_eq!(out.status.code(), Some(8), "{e}");
    assert!(e.contains("no such bdev") && e.contains("Aio0"), "{e}");

    // A file is not an SPDK config.
    let img = b.dir.path().join("disk.img");
    let out = Command::new(BIN)
        .arg("fsck")
        .args(ENV)
        .arg(&img)
        .output()
        .unwrap();
    let e = stderr_of(&out);
    assert!(
        e.contains("not one") && e.contains("bdev_aio_create"),
        "{e}"
    );

    // --size makes files; SPDK's bdevs are sized in the config.
    let out = b.run("mkfs", &[os("--size"), os("1G")]);
    let e = stderr_of(&out);
    assert!(e.contains("--size") && e.contains("truncate"), "{e}");

    // Without --spdk, a method only SPDK serves names the flag.
    let nvme = b.dir.path().join("nvme.json");
    std::fs::write(
        &nvme,
        r#"{"subsystems":[{"subsystem":"bdev","config":[{"method":
        "bdev_nvme_attach_controller","params":{"name":"Nvme0","trtype":"PCIe",
        "traddr":"0000:00:00.0"}}]}]}"#,
    )
    .unwrap();
    let out = Command::new(BIN).arg("mkfs").arg(&nvme).output().unwrap();
    let e = stderr_of(&out);
    assert!(
        e.contains("bdev_nvme_attach_controller") && e.contains("add --spdk"),
        "{e}"
    );

    // A bdev that cannot flush (SPDK's uring bdev) is refused for writing, pointing to aio.
    let uring = b.dir.path().join("uring.json");
    let doc = serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_uring_create",
         "params": {"name": "Uring0", "filename": img, "block_size": 4096}}
    ]}]});
    std::fs::write(&uring, doc.to_string()).unwrap();
    let out = Command::new(BIN)
        .arg("mkfs")
        .args(ENV)
        .arg(&uring)
        .output()
        .unwrap();
    let e = stderr_of(&out);
    assert_eq!(out.status.code(), Some(8), "{e}");
    if e.contains("bdev_uring_create") && !e.contains("cannot make writes durable") {
        println!("SPDK built without its uring module: {e}");
    } else {
        assert!(
            e.contains("cannot make writes durable") && e.contains("bdev_aio_create instead"),
            "{e}"
        );
    }

    // A mask SPDK cannot read is refused while parsing.
    let out = Command::new(BIN)
        .args(["ls", "--spdk", "--no-huge", "-m", "zz"])
        .arg(&b.config)
        .arg("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

#[test]
fn fuse_mount_through_spdk_keeps_a_copied_tree_across_remounts() {
    if !fuse_usable("SPDK FUSE round trip") {
        return;
    }
    if !have("diff") || !have("cp") {
        println!("SPDK FUSE round trip SKIPPED: needs cp and diff");
        return;
    }
    let b = AioBdev::new(256 << 20);
    b.ok("mkfs", &[]);
    // The tree: this package's sources, plus a file of a few extents.
    let tree = b.dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for part in ["src", "include", "examples"] {
        common::sh_out(&format!(
            "cp -r '{}' '{}'",
            root.join(part).display(),
            tree.display()
        ));
    }
    std::fs::write(tree.join("big.bin"), common::pattern(5 << 20, 5)).unwrap();

    let mnt = b.dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = MountProc::start_with(&b.mount_args(), &mnt, "");
    common::sh_out(&format!("cp -r '{}' '{}'", tree.display(), mnt.display()));
    // SPDK's aio bdev does not lock its file; the mount's claim on the device refuses a
    // second writer all the same.
    let second = b.run("put", &[tree.join("big.bin").as_os_str(), os("/second")]);
    let e = stderr_of(&second);
    assert!(e.contains("device busy") && e.contains("mount"), "{e}");
    m.unmount();
    let fsck = b.ok("fsck", &[]);
    assert!(fsck.contains("clean"), "{fsck}");

    let m = MountProc::start_with(&b.mount_args(), &mnt, "ro");
    common::sh_out(&format!(
        "diff -r '{}' '{}'",
        tree.display(),
        mnt.join("tree").display()
    ));
    m.unmount();
}

#[test]
fn c_api_formats_and_mounts_through_spdk() {
    let Some(cc) = cbuild::compiler("SPDK C API test") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let b = AioBdev::new(64 << 20);
    let exe = b.dir.path().join("example");
    cbuild::compile(
        &cc,
        &root.join("examples/c/example.c"),
        &exe,
        "run `cargo build -p bypassfs --features spdk` first",
    );
    // Formats, mounts, unmounts and mounts again: SPDK started once, joined the second time.
    let run = Command::new(&exe)
        .args(["--spdk", "--no-huge", "--bdev", "Aio0"])
        .arg(&b.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C example over SPDK ({}):\n{stdout}\n{}",
        run.status,
        stderr_of(&run)
    );
    assert!(stdout.contains("read back"), "{stdout}");
    let fsck = b.ok("fsck", &[]);
    assert!(fsck.contains("clean"), "{fsck}");
}

/// SPDK starts once per process: a second bdev of the same config with the same options
/// joins it; other options are refused, saying why.
#[test]
fn spdk_starts_once_per_process() {
    use bypassfs::device::spdk::{open, SpdkOptions};
    let b = AioBdev::new(32 << 20);
    let two = b.dir.path().join("two.json");
    let img2 = b.dir.path().join("disk2.img");
    std::fs::File::create(&img2)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let doc = serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_aio_create",
         "params": {"name": "Aio0", "filename": b.dir.path().join("disk.img"), "block_size": 4096}},
        {"method": "bdev_aio_create",
         "params": {"name": "Aio1", "filename": img2, "block_size": 4096}}
    ]}]});
    std::fs::write(&two, doc.to_string()).unwrap();
    let opts = SpdkOptions {
        no_huge: true,
        mem_size_mb: Some(512),
        core_mask: None,
    };
    let a = open(&two, Some("Aio0"), &opts).unwrap();
    let b1 = open(&two, Some("Aio1"), &opts).unwrap();
    assert_eq!((a.name(), b1.name()), ("Aio0", "Aio1"));
    let refused = |r: Result<_, bypassfs::device::spdk::SpdkOpenError>| match r {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    };
    let e = refused(open(&two, None, &opts));
    assert!(e.contains("several bdevs") && e.contains("Aio1"), "{e}");
    let other = SpdkOptions {
        mem_size_mb: Some(1024),
        ..opts
    };
    let e = refused(open(&two, Some("Aio0"), &other));
    assert!(e.contains("once per process"), "{e}");
}
