//! The namespace API by inode (`*_at`, `*_ino`) and the POSIX details it carries: special
//! files, set-group-ID directories, a symlink's own attributes, long symlink targets, the
//! link limit, byte names, write times and `st_blocks`. Each test remounts where the point
//! is what reaches the device.

mod common;

use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use common::*;
use fs_core::items::{mode, ROOT_INO};
use fs_core::{Error, FileType, FormatOptions, NewNode, SetAttr, XattrFlags, SYMLINK_MAX};

const ROOT: u64 = ROOT_INO;

fn node(mode: u32, uid: u32, gid: u32) -> NewNode {
    NewNode {
        mode,
        uid,
        gid,
        rdev: 0,
    }
}

#[test]
fn special_files_keep_their_type_owner_and_device_number() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let fifo = fs
        .mknod_at(ROOT, b"fifo", &node(mode::S_IFIFO | 0o640, 7, 8))
        .unwrap();
    let sock = fs
        .mknod_at(ROOT, b"sock", &node(mode::S_IFSOCK | 0o600, 0, 0))
        .unwrap();
    let cdev = NewNode {
        rdev: (1 << 8) | 3,
        ..node(mode::S_IFCHR | 0o666, 0, 0)
    };
    let chr = fs.mknod_at(ROOT, b"null", &cdev).unwrap();
    let bdev_node = NewNode {
        rdev: (8 << 8) | 1,
        ..node(mode::S_IFBLK | 0o660, 0, 6)
    };
    fs.mknod_at(ROOT, b"sda1", &bdev_node).unwrap();
    assert_eq!(
        fs.mknod_at(ROOT, b"bad", &node(0o170_000 | 0o644, 0, 0))
            .unwrap_err()
            .errno(),
        22,
        "an unknown file type is EINVAL"
    );
    fs.unmount(&ctx).unwrap();

    let (fs, ctx) = mount(dev.clone());
    let st = fs.stat_ino(fifo.ino).unwrap();
    assert_eq!(
        (st.file_type, st.mode, st.uid, st.gid),
        (FileType::Fifo, mode::S_IFIFO | 0o640, 7, 8)
    );
    assert_eq!(fs.stat_ino(sock.ino).unwrap().file_type, FileType::Socket);
    let st = fs.stat("/null").unwrap();
    assert_eq!(
        (st.file_type, st.rdev, st.ino),
        (FileType::CharDev, (1 << 8) | 3, chr.ino)
    );
    let st = fs.stat("/sda1").unwrap();
    assert_eq!(
        (st.file_type, st.rdev, st.gid),
        (FileType::BlockDev, (8 << 8) | 1, 6)
    );
    let types: Vec<(Vec<u8>, FileType)> = fs
        .readdir_ino(ROOT, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.file_type))
        .collect();
    assert!(
        types.contains(&(b"fifo".to_vec(), FileType::Fifo)),
        "{types:?}"
    );
    assert!(
        types.contains(&(b"sda1".to_vec(), FileType::BlockDev)),
        "{types:?}"
    );
    let e = fs
        .open_ino(&ctx, fifo.ino, rw())
        .err()
        .expect("a FIFO has no data here");
    assert_eq!(e.errno(), 95, "{e}");
    fs.unlink_at(ROOT, b"null").unwrap();
    fs.unmount(&ctx).unwrap();
    let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn a_setgid_directory_hands_down_its_group_and_the_bit() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let d = fs
        .mknod_at(ROOT, b"shared", &node(mode::S_IFDIR | 0o2775, 0, 100))
        .unwrap();
    let f = fs
        .mknod_at(d.ino, b"f", &node(mode::S_IFREG | 0o644, 1000, 1000))
        .unwrap();
    let sub = fs
        .mknod_at(d.ino, b"sub", &node(mode::S_IFDIR | 0o755, 1000, 1000))
        .unwrap();
    let plain = fs
        .mknod_at(ROOT, b"plain", &node(mode::S_IFREG | 0o644, 1000, 1000))
        .unwrap();
    assert_eq!((f.uid, f.gid, f.mode & 0o7777), (1000, 100, 0o644));
    assert_eq!((sub.gid, sub.mode & 0o7777), (100, 0o2755));
    assert_eq!(
        plain.gid, 1000,
        "no set-group-ID parent: the caller's group"
    );
    fs.unmount(&ctx).unwrap();
    let (fs, _ctx) = mount(dev);
    assert_eq!(fs.stat("/shared/sub").unwrap().mode & 0o7777, 0o2755);
    assert_eq!(fs.stat("/shared/f").unwrap().gid, 100);
}

#[test]
fn attributes_set_on_a_symlink_are_the_links_own() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let secret = fs
        .mknod_at(ROOT, b"secret", &node(mode::S_IFREG | 0o600, 0, 0))
        .unwrap();
    let link = fs
        .symlink_at(ROOT, b"link", b"secret", 65534, 65534)
        .unwrap();
    let dangling = fs.symlink_at(ROOT, b"dangling", b"nowhere", 0, 0).unwrap();
    let chown = SetAttr {
        uid: Some(65534),
        gid: Some(65534),
        mtime_ns: Some(1_000_000_000),
        ..SetAttr::default()
    };
    fs.set_attr_ino(&ctx, link.ino, &chown).unwrap();
    fs.set_attr_ino(&ctx, dangling.ino, &chown).unwrap();
    fs.set_xattr_ino(
        link.ino,
        b"trusted.x",
        b"on the link",
        XattrFlags::default(),
    )
    .unwrap();
    fs.unmount(&ctx).unwrap();
    let (fs, _ctx) = mount(dev);
    let st = fs.stat_ino(secret.ino).unwrap();
    assert_eq!(
        (st.uid, st.gid, st.mode & 0o777),
        (0, 0, 0o600),
        "the target is untouched"
    );
    assert!(fs.list_xattr_ino(secret.ino).unwrap().is_empty());
    let st = fs.stat_ino(link.ino).unwrap();
    assert_eq!((st.uid, st.mtime_ns), (65534, 1_000_000_000));
    assert_eq!(
        fs.get_xattr_ino(link.ino, b"trusted.x").unwrap(),
        b"on the link"
    );
    assert_eq!(fs.stat_ino(dangling.ino).unwrap().uid, 65534);
}

#[test]
fn an_unlinked_open_file_keeps_taking_attribute_changes() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev);
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    fs.unlink("/f").unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        uid: Some(5),
        ..SetAttr::default()
    };
    let st = fs.set_attr_ino(&ctx, f.ino(), &chmod).unwrap();
    assert_eq!((st.mode & 0o777, st.uid, st.nlink), (0o600, 5, 0));
    fs.set_xattr_ino(f.ino(), b"user.a", b"1", XattrFlags::default())
        .unwrap();
}

#[test]
fn symlink_targets_up_to_path_max_fit_any_node_size() {
    for nodesize in [1024, 4096, 16384] {
        // A node is at least a block.
        let block_size = nodesize.min(4096);
        let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("t", 512, 32 << 11).unwrap());
        let opts = FormatOptions {
            nodesize,
            block_size,
        };
        fs_core::Filesystem::format(dev.clone(), opts).unwrap();
        let (fs, ctx) = mount(dev.clone());
        let long: Vec<u8> = (0..SYMLINK_MAX).map(|i| b'a' + (i % 26) as u8).collect();
        for len in [1, 4070, 4094, SYMLINK_MAX] {
            let name = format!("l{len}");
            fs.symlink_at(ROOT, name.as_bytes(), &long[..len], 0, 0)
                .unwrap_or_else(|e| panic!("node size {nodesize}, target of {len} bytes: {e}"));
        }
        let too_long = vec![b'x'; SYMLINK_MAX + 1];
        assert_eq!(
            fs.symlink_at(ROOT, b"x", &too_long, 0, 0)
                .unwrap_err()
                .errno(),
            36
        );
        assert_eq!(fs.symlink_at(ROOT, b"e", b"", 0, 0).unwrap_err().errno(), 2);
        fs.unmount(&ctx).unwrap();
        let (fs, _ctx) = mount(dev.clone());
        for len in [1, 4070, 4094, SYMLINK_MAX] {
            let ino = fs.lookup(&format!("/l{len}")).unwrap();
            assert_eq!(
                fs.readlink_ino(ino).unwrap(),
                &long[..len],
                "node size {nodesize}"
            );
            assert_eq!(fs.stat_ino(ino).unwrap().size, len as u64);
        }
        drop(fs);
        let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
        assert!(report.is_clean(), "node size {nodesize}: {report:?}");
    }
}

#[test]
fn hard_links_in_one_directory_end_with_emlink() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs
        .mknod_at(ROOT, b"f", &node(mode::S_IFREG | 0o644, 0, 0))
        .unwrap();
    let mut made = 1;
    let err = loop {
        match fs.link_at(f.ino, ROOT, format!("link{made:05}").as_bytes()) {
            Ok(st) => {
                made += 1;
                assert_eq!(st.nlink, made);
            }
            Err(e) => break e,
        }
        assert!(made < 100_000, "no limit reached");
    };
    assert!(matches!(err, Error::TooManyLinks(_)), "{err}");
    assert_eq!(err.errno(), 31);
    // The tests' 4 KiB nodes hold items of (4096 - 64) / 4 - 25 = 983 bytes: 1 name of 1
    // byte and 50 of 9 bytes, 19 bytes each with their index and length.
    assert_eq!(made, 52, "names of f in the root");
    // The other names of the directory still work, and so does the file elsewhere.
    let d = fs
        .mknod_at(ROOT, b"d", &node(mode::S_IFDIR | 0o755, 0, 0))
        .unwrap();
    fs.link_at(f.ino, d.ino, b"again").unwrap();
    fs.unmount(&ctx).unwrap();
    let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn names_are_bytes() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let name: &[u8] = b"\xff\xfe latin-1 \xe9";
    let f = fs
        .mknod_at(ROOT, name, &node(mode::S_IFREG | 0o644, 0, 0))
        .unwrap();
    fs.rename_at(ROOT, name, ROOT, b"\x80moved", Default::default())
        .unwrap();
    fs.link_at(f.ino, ROOT, name).unwrap();
    fs.unmount(&ctx).unwrap();
    let (fs, _ctx) = mount(dev);
    let mut names: Vec<Vec<u8>> = fs
        .readdir_ino(ROOT, 0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, vec![b"\x80moved".to_vec(), name.to_vec()]);
    assert_eq!(fs.lookup_at(ROOT, name).unwrap(), f.ino);
}

#[test]
fn posix_acls_are_refused_so_tools_fall_back_to_the_mode() {
    let dev = mem(16);
    let (fs, _ctx) = fresh(dev);
    let f = fs
        .mknod_at(ROOT, b"f", &node(mode::S_IFREG | 0o644, 0, 0))
        .unwrap();
    for name in [&b"system.posix_acl_access"[..], b"system.posix_acl_default"] {
        let e = fs
            .set_xattr_ino(f.ino, name, &[2, 0, 0, 0], XattrFlags::default())
            .unwrap_err();
        assert_eq!(e.errno(), 95, "{e}");
    }
    assert!(fs.list_xattr_ino(f.ino).unwrap().is_empty());
}

#[test]
fn an_explicit_mtime_outlives_cached_writes_and_their_writeback() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, b"cached, not written back").unwrap();
    let t = 978_307_200_000_000_000; // 2001-01-01
    let st = fs
        .set_attr_ino(
            &ctx,
            f.ino(),
            &SetAttr {
                mtime_ns: Some(t),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(st.mtime_ns, t, "at once");
    drop(f);
    fs.sync(&ctx).unwrap();
    assert_eq!(fs.stat("/f").unwrap().mtime_ns, t, "after writeback");
    fs.unmount(&ctx).unwrap();
    let (fs, ctx) = mount(dev);
    assert_eq!(fs.stat("/f").unwrap().mtime_ns, t, "after remount");

    // A write after the explicit time sets it again, to when the write was accepted, and
    // writeback (here at unmount) does not restamp it.
    let f = fs.open(&ctx, "/f", rw(), 0).unwrap();
    f.write_at(&ctx, 0, b"again").unwrap();
    let accepted = fs.stat("/f").unwrap().mtime_ns;
    assert!(accepted > t);
    std::thread::sleep(std::time::Duration::from_millis(20));
    drop(f);
    fs.sync(&ctx).unwrap();
    assert_eq!(fs.stat("/f").unwrap().mtime_ns, accepted);
}

#[test]
fn truncate_marks_mtime_and_ctime_growing_or_shrinking() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev);
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    let old = SetAttr {
        mtime_ns: Some(1),
        ctime_ns: Some(1),
        ..SetAttr::default()
    };
    for size in [1 << 20, 10] {
        fs.set_attr_ino(&ctx, f.ino(), &old).unwrap();
        let st = fs
            .set_attr_ino(
                &ctx,
                f.ino(),
                &SetAttr {
                    size: Some(size),
                    ..SetAttr::default()
                },
            )
            .unwrap();
        assert_eq!(st.size, size);
        assert!(st.mtime_ns > 1 && st.ctime_ns > 1, "size {size}: {st:?}");
    }
}

#[test]
fn st_blocks_counts_data_not_holes() {
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/sparse", rw(), 0o644).unwrap();
    f.set_len(&ctx, 1 << 30).unwrap();
    assert_eq!(fs.stat("/sparse").unwrap().blocks, 0, "a 1 GiB hole");
    f.write_at(&ctx, 1 << 20, &[7u8; 8192]).unwrap();
    assert_eq!(
        fs.stat("/sparse").unwrap().blocks,
        16,
        "cached writes count"
    );
    f.fsync(&ctx).unwrap();
    let logged = fs.stat("/sparse").unwrap().blocks;
    assert_eq!(logged, 16, "logged by fsync, not committed yet");
    f.write_at(&ctx, 1 << 20, &[8u8; 4096]).unwrap();
    f.fsync(&ctx).unwrap();
    let again = fs.stat("/sparse").unwrap().blocks;
    assert_eq!(again, 16, "an overwrite adds nothing");
    drop(f);
    fs.unmount(&ctx).unwrap();
    let (fs, _ctx) = mount(dev);
    let st = fs.stat("/sparse").unwrap();
    assert_eq!((st.size, st.blocks), (1 << 30, 16), "written back");
}
