//! Compiles `examples/c/example.c` against `include/bypassfs.h` and `libbypassfs.so` with
//! the system C compiler and runs it on a fresh image file: format, write, fsync, remount,
//! read back, bad handles.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>`, where cargo put `libbypassfs.so` next to this test's `deps/`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf()
}

fn compiler() -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(&cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then_some(cc)
}

#[test]
fn c_example_round_trips_through_the_c_api() {
    let Some(cc) = compiler() else {
        println!("C example SKIPPED: no C compiler (cc, or $CC) on this machine");
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    assert!(
        lib.join("libbypassfs.so").exists(),
        "no libbypassfs.so in {}: `cargo test` does not build the cdylib, run `cargo build -p \
         bypassfs` first (ci/run does)",
        lib.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("example");
    let out = Command::new(&cc)
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(root.join("examples/c/example.c"))
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg("-lbypassfs")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compiling the C example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
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
