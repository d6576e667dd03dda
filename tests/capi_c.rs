//! Runs the C API test `tests/c/capi_test.c` (every call, its results and its error paths),
//! compiled with `-Wall -Werror` against `include/bypassfs.h` and `libbypassfs.so`, on a
//! fresh image: once plainly and once under the address sanitizer, which must report
//! nothing. Needs `cargo build -p bypassfs` first (ci/run does), and for the second run
//! gcc's libasan (`apt-get install libasan8`); without it that run prints SKIPPED.

mod cbuild;

use std::path::{Path, PathBuf};
use std::process::Command;

const HINT: &str = "run `cargo build -p bypassfs` first (ci/run does)";

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/capi_test.c")
}

/// Runs `exe` on a fresh 256 MiB image and checks it passed; returns its output.
fn run_on_fresh_image(exe: &Path, dir: &Path, env: &[(&str, &str)]) -> String {
    let img = dir.join("capi.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let run = Command::new(exe)
        .arg(&img)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "{} failed ({}):\n{out}",
        exe.display(),
        run.status
    );
    assert!(out.contains(", 0 failed"), "no summary line:\n{out}");
    let dev = bypassfs::device::open(img.to_str().unwrap()).unwrap();
    let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    out
}

#[test]
fn every_c_call_and_its_errors() {
    let Some(cc) = cbuild::compiler("C API test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("capi_test");
    cbuild::compile(&cc, &source(), &exe, HINT);
    println!("{}", run_on_fresh_image(&exe, tmp.path(), &[]));
}

#[test]
fn every_c_call_under_the_address_sanitizer() {
    let Some(cc) = cbuild::compiler("C API test under ASan") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("capi_test_asan");
    // A probe: without libasan the sanitizer cannot link, and that is not this test's failure.
    let probe = tmp.path().join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    let linked = Command::new(&cc)
        .args(["-fsanitize=address", "-o"])
        .arg(tmp.path().join("probe"))
        .arg(&probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !linked {
        println!("C API test under ASan SKIPPED: {cc} cannot link -fsanitize=address (libasan)");
        return;
    }
    cbuild::compile_with(
        &cc,
        &source(),
        &exe,
        HINT,
        &["-g", "-fsanitize=address", "-fno-omit-frame-pointer"],
    );
    // Any report fails the run (exitcode), leaks included.
    let out = run_on_fresh_image(
        &exe,
        tmp.path(),
        &[(
            "ASAN_OPTIONS",
            "detect_leaks=1:exitcode=99:abort_on_error=0",
        )],
    );
    assert!(!out.contains("AddressSanitizer"), "{out}");
    println!("{out}");
}
