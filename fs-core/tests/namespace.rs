//! POSIX behaviour of each namespace operation, including its error cases.

mod common;

use common::*;
use fs_core::{Error, FileType, OpenFlags, RenameFlags, SetAttr, XattrFlags};

fn errno(e: Error) -> i32 {
    e.errno()
}

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENAMETOOLONG: i32 = 36;
const ENOTEMPTY: i32 = 39;
const ENODATA: i32 = 61;
const EPERM: i32 = 1;

#[test]
fn create_lookup_and_errors() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let a = fs.create("/a", 0o644).unwrap();
    assert_eq!(fs.lookup("/a").unwrap(), a);
    assert_eq!(errno(fs.create("/a", 0o644).unwrap_err()), EEXIST);
    assert_eq!(errno(fs.lookup("/nope").unwrap_err()), ENOENT);
    assert_eq!(errno(fs.create("/nope/x", 0o644).unwrap_err()), ENOENT);
    assert_eq!(errno(fs.create("/a/x", 0o644).unwrap_err()), ENOTDIR);
    let long = format!("/{}", "x".repeat(256));
    assert_eq!(errno(fs.create(&long, 0o644).unwrap_err()), ENAMETOOLONG);
    assert_eq!(errno(fs.lookup(&long).unwrap_err()), ENAMETOOLONG);
    fs.create(&format!("/{}", "y".repeat(255)), 0o644).unwrap();
    let st = fs.stat("/a").unwrap();
    assert_eq!(
        (st.file_type, st.nlink, st.size, st.mode & 0o777),
        (FileType::File, 1, 0, 0o644)
    );
    // open flags
    let ex = OpenFlags {
        exclusive: true,
        ..rw()
    };
    assert_eq!(errno(fs.open(&ctx, "/a", ex, 0o600).err().unwrap()), EEXIST);
    assert_eq!(
        errno(
            fs.open(&ctx, "/b", OpenFlags::read_only(), 0)
                .err()
                .unwrap()
        ),
        ENOENT
    );
    fs.open(&ctx, "/b", ex, 0o600).unwrap();
    fs.mkdir("/d", 0o755).unwrap();
    assert_eq!(errno(fs.open(&ctx, "/d", rw(), 0).err().unwrap()), EISDIR);
    drop(fs);
    assert_clean(dev);
}

#[test]
fn mkdir_rmdir_unlink() {
    let dev = mem(16);
    let (fs, _ctx) = fresh(dev.clone());
    fs.mkdir("/d", 0o755).unwrap();
    assert_eq!(errno(fs.mkdir("/d", 0o755).unwrap_err()), EEXIST);
    fs.mkdir("/d/e", 0o755).unwrap();
    assert_eq!(fs.stat("/d").unwrap().nlink, 3);
    assert_eq!(fs.stat("/").unwrap().nlink, 3);
    fs.create("/d/f", 0o644).unwrap();
    assert_eq!(errno(fs.rmdir("/d").unwrap_err()), ENOTEMPTY);
    assert_eq!(errno(fs.rmdir("/d/f").unwrap_err()), ENOTDIR);
    assert_eq!(errno(fs.unlink("/d/e").unwrap_err()), EISDIR);
    assert_eq!(errno(fs.unlink("/d/none").unwrap_err()), ENOENT);
    assert_eq!(errno(fs.rmdir("/d/none").unwrap_err()), ENOENT);
    fs.unlink("/d/f").unwrap();
    fs.rmdir("/d/e").unwrap();
    assert_eq!(fs.stat("/d").unwrap().nlink, 2);
    fs.rmdir("/d").unwrap();
    assert_eq!(fs.stat("/").unwrap().nlink, 2);
    assert!(fs.readdir("/", 0, 10).unwrap().is_empty());
    drop(fs);
    assert_clean(dev);
}

#[test]
fn links_and_symlinks() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    fs.mkdir("/d", 0o755).unwrap();
    let f = fs.open(&ctx, "/d/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, b"data").unwrap();
    fs.link("/d/f", "/g").unwrap();
    fs.link("/d/f", "/d/f2").unwrap();
    assert_eq!(fs.stat("/g").unwrap().nlink, 3);
    assert_eq!(errno(fs.link("/d/f", "/g").unwrap_err()), EEXIST);
    assert_eq!(errno(fs.link("/d", "/d2").unwrap_err()), EPERM);
    assert_eq!(errno(fs.link("/none", "/x").unwrap_err()), ENOENT);
    fs.unlink("/d/f").unwrap();
    assert_eq!(fs.stat("/g").unwrap().nlink, 2);
    f.fsync(&ctx).unwrap();
    assert_eq!(read_all(&fs, &ctx, "/g"), b"data");
    fs.symlink("/d/f2", "/s").unwrap();
    fs.symlink("d", "/sd").unwrap();
    assert_eq!(fs.readlink("/s").unwrap(), "/d/f2");
    assert_eq!(fs.stat("/s").unwrap().file_type, FileType::Symlink);
    assert_eq!(read_all(&fs, &ctx, "/s"), b"data");
    assert_eq!(fs.lookup("/sd/f2").unwrap(), f.ino());
    fs.symlink("/loop", "/loop").unwrap();
    assert_eq!(
        errno(
            fs.open(&ctx, "/loop", OpenFlags::read_only(), 0)
                .err()
                .unwrap()
        ),
        40
    );
    drop(f);
    drop(fs);
    assert_clean(dev);
}

#[test]
fn rename_variants() {
    let dev = mem(16);
    let (fs, _ctx) = fresh(dev.clone());
    fs.mkdir("/a", 0o755).unwrap();
    fs.mkdir("/b", 0o755).unwrap();
    let x = fs.create("/a/x", 0o644).unwrap();
    let y = fs.create("/b/y", 0o644).unwrap();
    let none = RenameFlags::default();
    // Plain rename across directories, then over an existing file.
    fs.rename("/a/x", "/b/x", none).unwrap();
    assert_eq!(errno(fs.lookup("/a/x").unwrap_err()), ENOENT);
    fs.rename("/b/x", "/b/y", none).unwrap();
    assert_eq!(fs.lookup("/b/y").unwrap(), x);
    assert!(fs.readdir("/b", 0, 10).unwrap().len() == 1);
    let _ = y;
    // No-replace and exchange.
    let z = fs.create("/a/z", 0o644).unwrap();
    let nr = RenameFlags {
        noreplace: true,
        ..none
    };
    assert_eq!(errno(fs.rename("/a/z", "/b/y", nr).unwrap_err()), EEXIST);
    // Even onto another link of the same file, as Linux's renameat2 says.
    fs.link("/a/z", "/a/z2").unwrap();
    assert_eq!(errno(fs.rename("/a/z", "/a/z2", nr).unwrap_err()), EEXIST);
    fs.unlink("/a/z2").unwrap();
    let ex = RenameFlags {
        exchange: true,
        ..none
    };
    fs.rename("/a/z", "/b/y", ex).unwrap();
    assert_eq!(fs.lookup("/a/z").unwrap(), x);
    assert_eq!(fs.lookup("/b/y").unwrap(), z);
    assert_eq!(errno(fs.rename("/a/z", "/b/none", ex).unwrap_err()), ENOENT);
    // Directories: over a non-empty dir, into itself, file over dir, dir over file.
    fs.mkdir("/a/sub", 0o755).unwrap();
    fs.mkdir("/b/full", 0o755).unwrap();
    fs.create("/b/full/f", 0o644).unwrap();
    assert_eq!(
        errno(fs.rename("/a/sub", "/b/full", none).unwrap_err()),
        ENOTEMPTY
    );
    assert_eq!(
        errno(fs.rename("/a", "/a/sub/in", none).unwrap_err()),
        EINVAL
    );
    assert_eq!(
        errno(fs.rename("/a/z", "/b/full", none).unwrap_err()),
        EISDIR
    );
    assert_eq!(
        errno(fs.rename("/a/sub", "/b/y", none).unwrap_err()),
        ENOTDIR
    );
    assert_eq!(
        errno(fs.rename("/a/none", "/b/q", none).unwrap_err()),
        ENOENT
    );
    fs.mkdir("/b/empty", 0o755).unwrap();
    fs.rename("/a/sub", "/b/empty", none).unwrap();
    assert_eq!(fs.stat("/a").unwrap().nlink, 2);
    assert_eq!(fs.stat("/b").unwrap().nlink, 4);
    // Exchange a directory and a file across directories.
    fs.rename("/b/empty", "/a/z", ex).unwrap();
    assert_eq!(fs.stat("/a/z").unwrap().file_type, FileType::Dir);
    assert_eq!(fs.stat("/a").unwrap().nlink, 3);
    assert_eq!(fs.stat("/b").unwrap().nlink, 3);
    // Renaming a name onto another name of the same file does nothing.
    fs.link("/b/y", "/b/y2").unwrap();
    fs.rename("/b/y", "/b/y2", none).unwrap();
    assert!(fs.lookup("/b/y").is_ok());
    drop(fs);
    assert_clean(dev);
}

#[test]
fn readdir_cookies_are_stable() {
    let dev = mem(16);
    let (fs, _ctx) = fresh(dev.clone());
    fs.mkdir("/d", 0o755).unwrap();
    for i in 0..300 {
        fs.create(&format!("/d/f{i:03}"), 0o644).unwrap();
    }
    let mut seen = Vec::new();
    let mut cookie = 0;
    loop {
        let page = fs.readdir("/d", cookie, 50).unwrap();
        if page.is_empty() {
            break;
        }
        // Changes between pages: delete one already listed and one not yet listed, add one.
        let n = seen.len();
        if n == 100 {
            fs.unlink("/d/f000").unwrap();
            fs.unlink("/d/f299").unwrap();
            fs.create("/d/new", 0o644).unwrap();
        }
        cookie = page.last().unwrap().next_cookie;
        seen.extend(page.iter().map(|e| e.name_lossy().into_owned()));
    }
    let mut want: Vec<String> = (0..299).map(|i| format!("f{i:03}")).collect();
    want.push("new".into());
    assert_eq!(
        seen, want,
        "every entry present throughout is listed exactly once"
    );
    drop(fs);
    assert_clean(dev);
}

#[test]
fn attributes_and_xattrs() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o600).unwrap();
    f.write_at(&ctx, 0, &[7u8; 10000]).unwrap();
    let attr = SetAttr {
        mode: Some(0o640),
        uid: Some(1000),
        gid: Some(100),
        mtime_ns: Some(1_000_000_123),
        size: Some(5000),
        ..SetAttr::default()
    };
    fs.set_attr(&ctx, "/f", &attr).unwrap();
    let st = fs.stat("/f").unwrap();
    assert_eq!(
        (st.mode & 0o7777, st.uid, st.gid, st.size, st.mtime_ns),
        (0o640, 1000, 100, 5000, 1_000_000_123)
    );
    let grow = SetAttr {
        size: Some(9000),
        ..SetAttr::default()
    };
    fs.set_attr(&ctx, "/f", &grow).unwrap();
    let data = read_all(&fs, &ctx, "/f");
    assert!(data[..5000].iter().all(|&b| b == 7) && data[5000..].iter().all(|&b| b == 0));
    let none = XattrFlags::default();
    fs.set_xattr("/f", "user.a", b"1", none).unwrap();
    fs.set_xattr("/f", "user.b", b"22", none).unwrap();
    let create = XattrFlags {
        create: true,
        ..none
    };
    let replace = XattrFlags {
        replace: true,
        ..none
    };
    assert_eq!(
        errno(fs.set_xattr("/f", "user.a", b"x", create).unwrap_err()),
        EEXIST
    );
    assert_eq!(
        errno(fs.set_xattr("/f", "user.c", b"x", replace).unwrap_err()),
        ENODATA
    );
    fs.set_xattr("/f", "user.a", b"111", replace).unwrap();
    assert_eq!(fs.get_xattr("/f", "user.a").unwrap(), b"111");
    assert_eq!(fs.list_xattr("/f").unwrap(), ["user.a", "user.b"]);
    fs.remove_xattr("/f", "user.a").unwrap();
    assert_eq!(errno(fs.get_xattr("/f", "user.a").unwrap_err()), ENODATA);
    assert_eq!(errno(fs.remove_xattr("/f", "user.a").unwrap_err()), ENODATA);
    let sfs = fs.statfs().unwrap();
    assert!(sfs.blocks_free > 0 && sfs.blocks_avail <= sfs.blocks_free && sfs.name_max == 255);
    drop(f);
    fs.unmount(&ctx).unwrap();
    let (fs, _ctx) = mount(dev.clone());
    assert_eq!(fs.get_xattr("/f", "user.b").unwrap(), b"22");
    assert_eq!(fs.stat("/f").unwrap().size, 9000);
    drop(fs);
    assert_clean(dev);
}

#[test]
fn unlinked_open_file_lives_until_closed_and_orphans_are_removed_at_mount() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &[1u8; 8192]).unwrap();
    f.fsync(&ctx).unwrap();
    fs.unlink("/f").unwrap();
    let mut buf = [0u8; 8192];
    assert_eq!(f.read_at(&ctx, 0, &mut buf).unwrap(), 8192);
    assert!(buf.iter().all(|&b| b == 1));
    // A crash now (the device as it is) leaves an orphan that the next mount removes.
    let image = dev.snapshot();
    drop(f);
    drop(fs);
    assert_clean(dev.clone());
    let crashed = std::sync::Arc::new(bdev::mem::MemDevice::from_image("c", 4096, &image).unwrap());
    assert_clean(crashed.clone());
    let (fs, _ctx) = mount(crashed.clone());
    drop(fs);
    assert_clean(crashed);
}

#[test]
fn read_only_mount_refuses_changes() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    fs.create("/f", 0o644).unwrap();
    fs.sync(&ctx).unwrap();
    drop(fs);
    let ro = fs_core::MountOptions {
        read_only: true,
        ..mount_opts()
    };
    let fs = fs_core::Filesystem::mount(dev.clone(), ro).unwrap();
    assert_eq!(fs.create("/g", 0o644).unwrap_err().errno(), 30);
    assert!(fs.lookup("/f").is_ok());
    // As open(2) on a read-only mount: EROFS at open for a handle that could write.
    let ctx = fs.context().unwrap();
    for flags in [
        OpenFlags {
            write: true,
            ..OpenFlags::read_only()
        },
        OpenFlags {
            truncate: true,
            ..OpenFlags::read_only()
        },
    ] {
        assert_eq!(fs.open(&ctx, "/f", flags, 0).err().unwrap().errno(), 30);
    }
    fs.open(&ctx, "/f", OpenFlags::read_only(), 0).unwrap();
}

/// A RAM device that claims a volatile cache flush does not empty.
struct Volatile(std::sync::Arc<bdev::mem::MemDevice>);

impl bdev::BlockDevice for Volatile {
    fn name(&self) -> &str {
        "volatile"
    }
    fn geometry(&self) -> bdev::Geometry {
        bdev::Geometry {
            volatile_write_cache: true,
            flush_honoured: false,
            ..self.0.geometry()
        }
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn bdev::IoQueue>, bdev::BdevError> {
        self.0.queue(depth)
    }
}

#[test]
fn volatile_cache_devices_need_consent_for_read_write() {
    let dev = std::sync::Arc::new(Volatile(mem(16)));
    fs_core::Filesystem::format(dev.clone(), small_format()).unwrap();
    let e = fs_core::Filesystem::mount(dev.clone(), mount_opts())
        .err()
        .unwrap();
    assert_eq!(e.errno(), 95);
    assert!(e.to_string().contains("accept_volatile_cache"), "{e}");
    let ro = fs_core::MountOptions {
        read_only: true,
        ..mount_opts()
    };
    fs_core::Filesystem::mount(dev.clone(), ro).unwrap();
    let yes = fs_core::MountOptions {
        accept_volatile_cache: true,
        ..mount_opts()
    };
    let fs = fs_core::Filesystem::mount(dev, yes).unwrap();
    fs.create("/f", 0o644).unwrap();
}
