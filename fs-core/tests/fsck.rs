//! fsck finds what makes the namespace unreachable even when every node checksum is valid,
//! and reports each damaged superblock copy of the volume.

mod common;

use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use common::*;
use cow::format::SUPERBLOCK_OFFSETS;
use cow::{Key, TreeId, Volume};
use fs_core::items::kind;
use fs_core::FsckReport;

fn fsck(dev: &Arc<MemDevice>) -> FsckReport {
    fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap()
}

/// A filesystem with `/d/f` and its inode number.
fn with_file(dev: &Arc<MemDevice>) -> u64 {
    let (fs, ctx) = fresh(dev.clone());
    fs.mkdir("/d", 0o755).unwrap();
    drop(fs.open(&ctx, "/d/f", rw(), 0o644).unwrap());
    fs.set_xattr("/d/f", "user.k", b"v", Default::default())
        .unwrap();
    let ino = fs.stat("/d/f").unwrap().ino;
    fs.unmount(&ctx).unwrap();
    ino
}

/// Moves the item at `from` to the key `to`, as a valid commit (every checksum right).
fn move_item(dev: &Arc<MemDevice>, from: Key, to: Key) {
    let d: Arc<dyn BlockDevice> = dev.clone();
    let mut io = d.queue(8).unwrap();
    let vol = Volume::open(d, &mut *io, &cow::OpenOptions::default()).unwrap();
    let mut tx = vol.begin().unwrap();
    let data = tx.get(&mut *io, TreeId::FS, from).unwrap().expect("item");
    assert!(tx.delete(&mut *io, TreeId::FS, from).unwrap());
    tx.insert(&mut *io, TreeId::FS, to, &data).unwrap();
    tx.commit(&mut *io).unwrap();
    vol.close(&mut *io).unwrap();
}

#[test]
fn an_inode_item_at_a_nonzero_offset_is_an_error() {
    let dev = mem(8);
    let ino = with_file(&dev);
    assert_clean(dev.clone());
    move_item(
        &dev,
        Key::new(ino, kind::INODE_ITEM, 0),
        Key::new(ino, kind::INODE_ITEM, 7),
    );
    let rep = fsck(&dev);
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains(&format!("fs tree item ({ino} TYPE_1 7)"))
                && e.contains("offset must be 0")),
        "{:#?}",
        rep.errors
    );
}

#[test]
fn an_xattr_item_under_the_wrong_hash_is_an_error() {
    let dev = mem(8);
    let ino = with_file(&dev);
    let hash = fs_core::items::name_hash(b"user.k");
    move_item(
        &dev,
        Key::new(ino, kind::XATTR_ITEM, hash),
        Key::new(ino, kind::XATTR_ITEM, hash ^ 1),
    );
    let rep = fsck(&dev);
    assert!(
        rep.errors.iter().any(|e| e.contains("does not hash")),
        "{:#?}",
        rep.errors
    );
}

/// A destroyed primary (the mirror intact) still opens, but fsck names the damaged copy.
#[test]
fn a_destroyed_primary_superblock_is_an_error_naming_it() {
    let dev = mem(66);
    with_file(&dev);
    assert_clean(dev.clone());
    dev.write_bytes(SUPERBLOCK_OFFSETS[0], &[0u8; 4096])
        .unwrap();
    let rep = fsck(&dev);
    assert_eq!(rep.exit_code(), 4);
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains("primary superblock at 0x10000") && e.contains("bad magic")),
        "{:#?}",
        rep.errors
    );
    // The next read-write mount's commit rewrites every copy.
    let (fs, ctx) = mount(dev.clone());
    fs.sync(&ctx).unwrap();
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
}
