//! `ci/install-c PREFIX` installs the C library (header, shared and static library,
//! `bypassfs.pc`) so that `examples/c/example.c` builds with `pkg-config --cflags --libs
//! bypassfs` alone, linked to the shared library and, with `pkg-config --static`, to the
//! static one; both programs run on a fresh image. It installs the libraries the last
//! `cargo build -p bypassfs` left in the target directory (ci/run builds them first).

mod cbuild;

use std::path::{Path, PathBuf};
use std::process::Command;

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("bypassfs")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("running pkg-config");
    assert!(
        out.status.success(),
        "pkg-config {args:?} bypassfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Compiles the C example with `flags` (from pkg-config) and runs it on a fresh image.
fn build_and_run(cc: &str, dir: &Path, name: &str, flags: &[String]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join(name);
    let out = Command::new(cc)
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(root.join("examples/c/example.c"))
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: compiling with {flags:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = dir.join(format!("{name}.img"));
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let run = Command::new(&exe).arg(&img).output().unwrap();
    assert!(
        run.status.success(),
        "{name} failed ({}):\n{}{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    exe
}

#[test]
fn installed_library_builds_the_c_example_with_pkg_config() {
    let Some(cc) = cbuild::compiler("C library install") else {
        return;
    };
    if !Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        // CI installs pkg-config (ci/run's system packages), so there a skip would hide a miss.
        assert!(
            std::env::var_os("CI").is_none(),
            "no pkg-config: apt-get install pkg-config"
        );
        println!("C library install SKIPPED: no pkg-config (apt-get install pkg-config)");
        return;
    }
    let lib = cbuild::lib_dir();
    assert!(
        lib.join("libbypassfs.so").exists() && lib.join("libbypassfs.a").exists(),
        "no libbypassfs.so/.a in {}: run `cargo build -p bypassfs` first (ci/run does)",
        lib.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    let out = Command::new(root.join("ci/install-c"))
        .arg(&prefix)
        .env("BYPASSFS_LIB_DIR", &lib)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ci/install-c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "include/bypassfs.h",
        "lib/libbypassfs.so",
        "lib/libbypassfs.a",
        "lib/pkgconfig/bypassfs.pc",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }
    let version = pkg_config(&prefix, &["--modversion"]);
    assert_eq!(version, [env!("CARGO_PKG_VERSION")]);

    // Shared: pkg-config's flags and an rpath to the prefix (not a standard directory).
    let mut flags = pkg_config(&prefix, &["--cflags", "--libs"]);
    flags.push(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
    let shared = build_and_run(&cc, tmp.path(), "example-shared", &flags);
    assert!(needed(&shared).contains("libbypassfs.so"));

    // Static: the archive by name, then what it needs (Libs.private).
    let flags: Vec<String> = pkg_config(&prefix, &["--cflags", "--static", "--libs"])
        .into_iter()
        .map(|f| {
            if f == "-lbypassfs" {
                "-l:libbypassfs.a".into()
            } else {
                f
            }
        })
        .collect();
    let fixed = build_and_run(&cc, tmp.path(), "example-static", &flags);
    assert!(
        !needed(&fixed).contains("libbypassfs"),
        "{}",
        needed(&fixed)
    );
}

/// The shared libraries `exe` names (`readelf -d`'s NEEDED entries), or "" without readelf.
fn needed(exe: &Path) -> String {
    Command::new("readelf")
        .arg("-d")
        .arg(exe)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("NEEDED"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
