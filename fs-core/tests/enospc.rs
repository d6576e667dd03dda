//! A full filesystem: ENOSPC from the operation that needs space (buffered write, direct
//! write, fallocate), nothing committed lost, deleting files frees space again.

mod common;

use common::*;
use fs_core::{FallocMode, OpenFlags};

fn fill(fs: &fs_core::Filesystem, ctx: &fs_core::Context, path: &str, flags: OpenFlags) -> u64 {
    let f = fs.open(ctx, path, flags, 0o644).unwrap();
    let chunk = vec![0x5au8; 256 << 10];
    let mut pos = 0u64;
    loop {
        match f.write_at(ctx, pos, &chunk) {
            Ok(n) => pos += n as u64,
            Err(e) => {
                assert_eq!(e.errno(), 28, "{e}");
                break;
            }
        }
    }
    f.fsync(ctx).unwrap();
    pos
}

#[test]
fn full_filesystem_reports_enospc_and_recovers() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let keep = fs.open(&ctx, "/keep", rw(), 0o644).unwrap();
    keep.write_at(&ctx, 0, b"committed").unwrap();
    keep.fsync(&ctx).unwrap();
    drop(keep);
    let wrote_buffered = fill(&fs, &ctx, "/big", rw());
    assert!(wrote_buffered > 8 << 20, "wrote {wrote_buffered}");
    // Every further space-needing operation says ENOSPC; metadata-only ones still work.
    let d = fs.open(&ctx, "/d", direct(), 0o644).unwrap();
    let e = d.write_at(&ctx, 0, &vec![1u8; 1 << 20]).unwrap_err();
    assert_eq!(e.errno(), 28);
    let e = d
        .fallocate(
            &ctx,
            FallocMode::Preallocate { keep_size: false },
            0,
            4 << 20,
        )
        .unwrap_err();
    assert_eq!(e.errno(), 28);
    fs.create("/empty", 0o644).unwrap();
    fs.unmount(&ctx).unwrap();
    drop(d);
    assert_clean(dev.clone());
    // Nothing committed is lost; deleting frees the space for new data.
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/keep"), b"committed");
    assert_eq!(fs.stat("/big").unwrap().size, wrote_buffered);
    let avail = fs.statfs().unwrap().blocks_avail;
    fs.unlink("/big").unwrap();
    assert!(fs.statfs().unwrap().blocks_avail > avail + 1000);
    let again = fill(&fs, &ctx, "/big2", direct());
    assert!(
        again + (1 << 20) >= wrote_buffered,
        "{again} vs {wrote_buffered}"
    );
    drop(fs);
    assert_clean(dev);
}
