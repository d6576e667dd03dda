//! Runs the C API test `tests/c/capi_*.c` (every call, its results and its error paths),
//! compiled with `-Wall -Werror` against `include/bypassfs.h` and `libbypassfs.so`, on a
//! fresh image: once plainly and once under the address sanitizer, which must report
//! nothing. Needs `cargo build -p bypassfs` first (ci/run does), and for the second run
//! gcc's libasan (`apt-get install libasan8`); without it that run prints SKIPPED, except
//! under CI (`CI` set), where it fails.

mod cbuild;

use std::path::{Path, PathBuf};
use std::process::Command;

const HINT: &str = "run `cargo build -p bypassfs` first (ci/run does)";

/// `tests/c/capi_test.c` (its `main`), and its other sources as compiler arguments.
fn sources() -> (PathBuf, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let parts = [
        "capi_files.c",
        "capi_names.c",
        "capi_async.c",
        "capi_durable.c",
    ]
    .map(|f| dir.join(f).display().to_string())
    .to_vec();
    (dir.join("capi_test.c"), parts)
}

/// Runs `exe` on fresh images (the second for a second mount) and checks it passed and
/// left a clean filesystem; returns its output.
fn run_on_fresh_image(exe: &Path, dir: &Path, env: &[(&str, &str)]) -> String {
    let img = dir.join("capi.img");
    let second = dir.join("second.img");
    for (path, len) in [(&img, 256 << 20), (&second, 64 << 20)] {
        std::fs::File::create(path).unwrap().set_len(len).unwrap();
    }
    let run = Command::new(exe)
        .arg(&img)
        .arg(&second)
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
    let (main, parts) = sources();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    cbuild::compile_with(&cc, &main, &exe, HINT, &parts);
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
        // CI installs libasan (ci/run's system packages), so there a skip would hide a miss.
        assert!(
            std::env::var_os("CI").is_none(),
            "{cc} cannot link -fsanitize=address: install libasan (apt-get install libasan8)"
        );
        println!("C API test under ASan SKIPPED: {cc} cannot link -fsanitize=address (libasan)");
        return;
    }
    let (main, parts) = sources();
    let mut args = vec!["-g", "-fsanitize=address", "-fno-omit-frame-pointer"];
    args.extend(parts.iter().map(String::as_str));
    cbuild::compile_with(&cc, &main, &exe, HINT, &args);
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

/// The header compiles as strict C and as C++ (`extern "C"`: a C++ program links to the
/// library's unmangled names and calls one).
#[test]
fn header_is_c_and_cpp() {
    let Some(cc) = cbuild::compiler("C API header") else {
        return;
    };
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("h.c");
    std::fs::write(
        &c,
        "#include \"bypassfs.h\"\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];
    for std in ["-std=c99", "-std=c11"] {
        let out = Command::new(&cc)
            .args(strict)
            .arg(std)
            .arg("-I")
            .arg(&include)
            .arg(&c)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{std}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    if !Command::new(&cxx)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("C API header as C++ SKIPPED: no C++ compiler (g++, or $CXX)");
        return;
    }
    let cpp = tmp.path().join("h.cpp");
    std::fs::write(
        &cpp,
        "#include <cerrno>\n#include \"bypassfs.h\"\n\
         int main() { return bfs_format(nullptr) == -EINVAL ? 0 : 1; }\n",
    )
    .unwrap();
    let exe = tmp.path().join("h");
    let lib = cbuild::lib_dir();
    let out = Command::new(&cxx)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-std=c++11",
            "-o",
        ])
        .arg(&exe)
        .arg(&cpp)
        .arg("-I")
        .arg(&include)
        .arg(format!("-L{}", lib.display()))
        .arg("-lbypassfs")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "C++: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Command::new(&exe).status().unwrap().success());
}
