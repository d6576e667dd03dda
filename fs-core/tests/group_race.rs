//! Namespace operations racing commits of data (group commit, `state/pending.rs`'s
//! `inode_over`): an operation that read a file's inode item while a commit was folding the
//! file's new size must not bring the old size back, neither to readers nor when its own
//! change commits.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use fs_core::SetAttr;

#[test]
fn chmod_racing_folds_never_shrinks_a_growing_file() {
    const BLOCKS: u64 = 300;
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    drop(fs.open(&ctx, "/grow", rw(), 0o644).unwrap());
    fs.sync(&ctx).unwrap();
    let stop = AtomicBool::new(false);
    let chmods = std::thread::scope(|s| {
        let chmodder = s.spawn(|| {
            let ctx = fs.context().unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mode = if n % 2 == 0 { 0o600 } else { 0o644 };
                let attr = SetAttr {
                    mode: Some(mode),
                    ..SetAttr::default()
                };
                fs.set_attr(&ctx, "/grow", &attr).unwrap();
                n += 1;
            }
            n
        });
        for i in 0..BLOCKS {
            // Each fdatasync logs the new size; the commit folds it while the other thread
            // reads and rewrites the item. Closed, the file's size comes from its item.
            let f = fs.open(&ctx, "/grow", rw(), 0).unwrap();
            f.write_at(&ctx, i * 4096, &[7u8; 4096]).unwrap();
            f.fdatasync(&ctx).unwrap();
            drop(f);
            fs.sync(&ctx).unwrap();
            let size = fs.stat("/grow").unwrap().size;
            assert_eq!(size, (i + 1) * 4096, "after block {i}");
        }
        // Commits while the chmods go on: the last one to fold the size must not be
        // followed by one that writes an item read before it.
        for _ in 0..50 {
            fs.sync(&ctx).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        chmodder.join().unwrap()
    });
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    eprintln!("{chmods} chmods raced {BLOCKS} growing writes");
    assert_eq!(fs.stat("/grow").unwrap().size, BLOCKS * 4096);
    assert_eq!(read_all(&fs, &ctx, "/grow").len() as u64, BLOCKS * 4096);
}
