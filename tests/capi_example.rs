//! Compiles `examples/c/example.c` against `include/bypassfs.h` and `libbypassfs.so` with
//! the system C compiler and runs it on a fresh image file: format, write, fsync, remount,
//! read back, bad handles.

mod cbuild;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn c_example_round_trips_through_the_c_api() {
    let Some(cc) = cbuild::compiler("C example") else {
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("example");
    cbuild::compile(
        &cc,
        &root.join("examples/c/example.c"),
        &exe,
        "`cargo test` does not build the cdylib, run `cargo build -p bypassfs` first (ci/run does)",
    );
    let img = tmp.path().join("bfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let run = Command::new(&exe).arg(&img).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C example failed ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{stdout}");
    let dev = bypassfs::device::open(img.to_str().unwrap()).unwrap();
    let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
