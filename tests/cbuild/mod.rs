//! Building C programs against the C API for the tests that run them (the C example, the
//! device-options check, the C API over SPDK): the system compiler, `include/bypassfs.h`
//! and the `libbypassfs.so` the last `cargo build -p bypassfs` left.
// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>`, where cargo put `libbypassfs.so` next to this test's `deps/`.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The C compiler (`$CC`, else `cc`), if there is one; prints `{test} SKIPPED` if not.
pub fn compiler(test: &str) -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(&cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("{test} SKIPPED: no C compiler (cc, or $CC) on this machine");
    }
    found.then_some(cc)
}

/// Compiles `src` into `exe` with warnings as errors, linked to `libbypassfs.so` by rpath;
/// panics with the compiler's output if that fails, or if the library is missing (`hint`
/// says how to build it).
pub fn compile(cc: &str, src: &Path, exe: &Path, hint: &str) {
    compile_with(cc, src, exe, hint, &[]);
}

/// [`compile`] with `extra` compiler flags (`-fsanitize=address` …).
pub fn compile_with(cc: &str, src: &Path, exe: &Path, hint: &str, extra: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    assert!(
        lib.join("libbypassfs.so").exists(),
        "no libbypassfs.so in {}: {hint}",
        lib.display()
    );
    let out = Command::new(cc)
        .args(["-Wall", "-Werror"])
        .args(extra)
        .arg("-o")
        .arg(exe)
        .arg(src)
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg("-lbypassfs")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .expect("running the C compiler");
    assert!(
        out.status.success(),
        "compiling {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
