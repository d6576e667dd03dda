//! The committed `include/bypassfs.h` is the one `build.rs` generates from `src/capi/`.
//! Refresh it with `BYPASSFS_BLESS=1 cargo test -p bypassfs --test capi_header`.

#[test]
fn committed_header_is_current() {
    let generated = concat!(env!("OUT_DIR"), "/bypassfs.h");
    let fresh = std::fs::read_to_string(generated).expect("generated header");
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/bypassfs.h");
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    if fresh == committed {
        return;
    }
    if std::env::var_os("BYPASSFS_BLESS").is_some() {
        std::fs::write(committed_path, &fresh).expect("writing include/bypassfs.h");
        return;
    }
    panic!(
        "include/bypassfs.h is out of date with src/capi/: run \
         `BYPASSFS_BLESS=1 cargo test -p bypassfs --test capi_header` and commit it"
    );
}
