//! Generates the C header of the C API (`src/capi/`) into `OUT_DIR/bypassfs.h` with cbindgen.
//!
//! The build never writes into the source tree: the committed `include/bypassfs.h` is
//! compared with the generated one by the test `tests/capi_header.rs`, which says how to
//! refresh it (`BYPASSFS_BLESS=1 cargo test -p bypassfs --test capi_header`).

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bypassfs.h");
    // cbindgen reads the whole crate (constants outside src/capi included), so any change
    // under src/ may change the header.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("reading cbindgen.toml");
    match cbindgen::generate_with_config(&crate_dir, config) {
        Ok(b) => {
            b.write_to_file(&out);
        }
        Err(e) => panic!("cbindgen could not generate the C header: {e}"),
    }
}
