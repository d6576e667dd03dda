//! The filesystem on an SPDK aio bdev over a file, across processes (feature `spdk`, SPDK
//! installed): one process formats it and writes a tree, the next checks it with fsck,
//! mounts it, reads the tree back, fsyncs more and exits without unmounting, and a third
//! replays that at mount, reads everything back and leaves it fsck clean.
//!
//! SPDK starts once per process and its bdevs' contents live on only in the file, so the
//! test runs its phases as child processes: the test binary itself, asked to run this one
//! test with `FS_SPDK_AIO_PHASE` set. The parent never starts SPDK.
#![cfg(feature = "spdk")]

mod spdk_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_core::{Filesystem, FormatOptions, OpenFlags};
use spdk_common::*;

const PHASE: &str = "FS_SPDK_AIO_PHASE";
const IMAGE: &str = "FS_SPDK_AIO_IMAGE";
const TEST: &str = "aio_bdev_across_processes";

#[test]
fn aio_bdev_across_processes() {
    match std::env::var(PHASE) {
        Ok(phase) => {
            let image = PathBuf::from(std::env::var_os(IMAGE).expect("FS_SPDK_AIO_IMAGE"));
            run_phase(&phase, &image);
        }
        Err(_) => run_all_phases(),
    }
}

fn run_all_phases() {
    let image = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fs-core-spdk-aio-{}.img", std::process::id()));
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        for phase in ["format", "exit-unclean", "check"] {
            let out = Command::new(std::env::current_exe().unwrap())
                .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(PHASE, phase)
                .env(IMAGE, &image)
                .output()
                .unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "phase {phase} failed:\n{log}");
            let done = format!("phase {phase} done");
            assert!(log.contains(&done), "phase {phase} did not finish:\n{log}");
            eprintln!("{done} (its own process)");
        }
    });
    let _ = std::fs::remove_file(&image);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn run_phase(phase: &str, image: &Path) {
    let config = format!(
        r#"{{"subsystems": [{{"subsystem": "bdev", "config": [
            {{"method": "bdev_aio_create",
              "params": {{"name": "Aio0", "filename": {:?}, "block_size": 4096}}}}]}}]}}"#,
        image.to_str().expect("a UTF-8 path")
    );
    let env = start("fs_core_spdk_aio", &config);
    let dev = open(&env, "Aio0");
    assert!(
        !dev.geometry().durability_unknowable(),
        "SPDK's aio bdev flushes (fsync)"
    );
    let late = pattern(9, 1 << 20);
    match phase {
        "format" => {
            Filesystem::format(dev.clone(), FormatOptions::default()).unwrap();
            let (fs, ctx) = mount(&dev);
            write_tree(&fs, &ctx, "/t");
            fs.unmount(&ctx).unwrap();
        }
        "exit-unclean" => {
            assert_clean(&dev);
            let (fs, ctx) = mount(&dev);
            check_tree(&fs, &ctx, "/t");
            let f = fs
                .open(&ctx, "/late", OpenFlags::read_write_create(), 0o644)
                .unwrap();
            f.write_at(&ctx, 0, &late).unwrap();
            f.fsync(&ctx).unwrap();
            // Ends the process with the filesystem mounted: only the fsync keeps `/late`.
            println!("phase {phase} done");
            std::process::exit(0);
        }
        "check" => {
            let (fs, ctx) = mount(&dev);
            check_tree(&fs, &ctx, "/t");
            assert!(read_all(&fs, &ctx, "/late", true) == late, "/late replayed");
            fs.unmount(&ctx).unwrap();
            assert_clean(&dev);
        }
        other => panic!("unknown phase {other}"),
    }
    println!("phase {phase} done");
}
