//! `bfs_format_with` / `bfs_mount_with` check their `struct bfs_device_opts` before opening
//! anything, and asking for SPDK in a build without it is `-ENOTSUP`. A small C program,
//! compiled against `include/bypassfs.h` and `libbypassfs.so` as `tests/capi_example.rs`
//! does, makes the calls (the C example covers options that open a device,
//! `tests/spdk_front_ends.rs` SPDK itself).

mod cbuild;

use std::process::Command;

const PROGRAM: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "bypassfs.h"

#define EXPECT(cond) \
  do { if (!(cond)) { fprintf(stderr, "expected %s\n", #cond); return 1; } } while (0)

int main(int argc, char **argv) {
  const char *missing = argv[1];  /* a *.json path that does not exist */
  int spdk_built = strcmp(argv[2], "spdk") == 0;
  bfs_fs_t fs;
  struct bfs_device_opts unknown = {.flags = 1u << 7};
  struct bfs_device_opts no_huge_alone = {.flags = BFS_DEVICE_SPDK_NO_HUGE};
  struct bfs_device_opts mem_alone = {.spdk_mem_size_mb = 512};
  struct bfs_device_opts mask_alone = {.spdk_core_mask = "0x1"};
  EXPECT(bfs_format_with(missing, &unknown) == -EINVAL);
  EXPECT(bfs_format_with(missing, &no_huge_alone) == -EINVAL);
  EXPECT(bfs_mount_with(missing, &mem_alone, 0, &fs) == -EINVAL);
  EXPECT(bfs_mount_with(missing, &mask_alone, 0, &fs) == -EINVAL);
  EXPECT(bfs_format_with(missing, NULL) == -ENODEV);
  struct bfs_device_opts spdk = {.flags = BFS_DEVICE_SPDK | BFS_DEVICE_SPDK_NO_HUGE};
  if (spdk_built) {
    /* Refused before SPDK starts: an image file is not an SPDK config. */
    EXPECT(bfs_format_with("/nonexistent.img", &spdk) == -ENODEV);
  } else {
    EXPECT(bfs_format_with(missing, &spdk) == -ENOTSUP);
    EXPECT(bfs_mount_with(missing, &spdk, 0, &fs) == -ENOTSUP);
  }
  printf("device options checked\n");
  return 0;
}
"#;

#[test]
fn device_options_are_checked_and_spdk_needs_the_feature() {
    let Some(cc) = cbuild::compiler("C API device options") else {
        return;
    };
    let lib = cbuild::lib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("opts.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = tmp.path().join("opts");
    cbuild::compile(
        &cc,
        &src,
        &exe,
        "run `cargo build -p bypassfs` first (ci/run does)",
    );
    // The library this links is the last one `cargo build -p bypassfs` made: it may have been
    // built with or without SPDK, whatever this test was built with.
    let built = if lib_has_spdk(&lib) { "spdk" } else { "plain" };
    let run = Command::new(&exe)
        .arg(tmp.path().join("missing.json"))
        .arg(built)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "C device-options check ({built} library): {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Whether `libbypassfs.so` in `lib` contains SPDK (its environment's init function).
fn lib_has_spdk(lib: &std::path::Path) -> bool {
    let bytes = std::fs::read(lib.join("libbypassfs.so")).unwrap_or_default();
    bytes.windows(14).any(|w| w == b"spdk_env_init\0")
}
