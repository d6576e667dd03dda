//! Under a hand-written executor (`block_on` parks the thread; `join_all` polls a few
//! futures together): every call of the handle, its errors, and durability.

use std::future::Future;
use std::pin::Pin;

use bypassfs::asyncio::AsyncFs;
use bypassfs::bdev::DmaBuf;
use bypassfs::{Error, FallocMode, MountOptions, OpenFlags, RenameFlags};

/// A DMA request's future, boxed to go in a list with others.
type DmaIo = Pin<Box<dyn Future<Output = bypassfs::Result<(DmaBuf, usize)>>>>;

use super::{block_on, join_all, mount, ram_device, remount_read_back, rw_create};

#[test]
fn namespace_calls_and_their_errors() {
    let fs = mount(&ram_device());
    let afs = AsyncFs::start(&fs, 1).expect("start");
    block_on(async {
        afs.mkdir("/dir", 0o755).await.expect("mkdir");
        let f = afs
            .open("/dir/a", rw_create(), 0o600)
            .await
            .expect("create");
        assert_eq!(f.write(0, b"alpha").await.expect("write"), 5);
        drop(f);
        afs.rename("/dir/a", "/dir/b", RenameFlags::default())
            .await
            .expect("rename");
        afs.link("/dir/b", "/dir/c").await.expect("link");
        afs.symlink("/dir/b", "/s").await.expect("symlink");
        assert_eq!(afs.readlink("/s").await.expect("readlink"), "/dir/b");
        let st = afs.stat("/dir/c").await.expect("stat");
        assert_eq!((st.size, st.nlink), (5, 2));
        let names: Vec<String> = afs
            .readdir("/dir", 0, 100)
            .await
            .expect("readdir")
            .iter()
            .map(|e| e.name_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b", "c"]);

        let r = afs.rmdir("/dir").await;
        assert!(matches!(r, Err(Error::NotEmpty(_))), "{r:?}");
        let r = afs
            .rename(
                "/dir/b",
                "/s",
                RenameFlags {
                    noreplace: true,
                    exchange: false,
                },
            )
            .await;
        assert!(matches!(r, Err(Error::Exists(_))), "{r:?}");
        let r = afs.readlink("/dir/b").await;
        assert!(r.is_err(), "readlink of a regular file: {r:?}");
        for p in ["/dir/b", "/dir/c", "/s"] {
            afs.unlink(p).await.expect("unlink");
        }
        afs.rmdir("/dir").await.expect("rmdir");
        let r = afs.stat("/dir").await;
        assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
        assert!(afs.statfs().expect("statfs").blocks_free > 0);
    });
}

#[test]
fn file_calls_and_their_errors() {
    let fs = mount(&ram_device());
    let afs = AsyncFs::start(&fs, 1).expect("start");
    block_on(async {
        let w = afs.open("/f", rw_create(), 0o644).await.expect("create");
        w.write(0, &[7u8; 10_000]).await.expect("write");
        w.set_len(6000).await.expect("set_len");
        assert_eq!(w.stat().await.expect("stat").size, 6000);
        w.fdatasync().await.expect("fdatasync");
        // A hole punched in the middle, found again by seeking.
        w.fallocate(FallocMode::PunchHole, 0, 4096)
            .await
            .expect("punch a hole");
        assert_eq!(w.seek_data(0).await.expect("seek_data"), Some(4096));
        assert_eq!(w.seek_hole(4096).await.expect("seek_hole"), Some(6000));
        assert_eq!(w.read(0, 4).await.expect("read the hole"), [0u8; 4]);
        let r = w.fallocate(FallocMode::PunchHole, 0, 0).await;
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");

        let write_only = OpenFlags {
            write: true,
            ..OpenFlags::default()
        };
        let wo = afs
            .open("/f", write_only, 0)
            .await
            .expect("open write-only");
        let r = wo.read(0, 10).await;
        assert!(matches!(r, Err(Error::BadHandle(_))), "{r:?}");
        let ro = afs
            .open("/f", OpenFlags::read_only(), 0)
            .await
            .expect("open");
        let r = ro.write(0, b"no").await;
        assert!(matches!(r, Err(Error::BadHandle(_))), "{r:?}");
        let buf = ro.alloc_buf(100).expect("DMA buffer");
        let r = ro.write_dma(0, buf).await;
        assert!(matches!(r, Err(Error::BadHandle(_))), "{:?}", r.err());
        // Nothing asked, nothing done, as natively.
        assert_eq!(w.write(0, &[]).await.expect("empty write"), 0);
        assert!(w.read(0, 0).await.expect("empty read").is_empty());
        let r = ro.write(0, &[]).await;
        assert!(matches!(r, Err(Error::BadHandle(_))), "{r:?}");
        // Past the end: nothing, not an error.
        assert!(ro
            .read(1 << 20, 10)
            .await
            .expect("read past the end")
            .is_empty());
        let r = ro.set_len(0).await;
        assert!(matches!(r, Err(Error::BadHandle(_))), "{r:?}");

        let ino = ro.ino();
        let again = afs
            .open_ino(ino, OpenFlags::read_only())
            .await
            .expect("open_ino");
        assert_eq!(again.read(5990, 100).await.expect("read"), [7u8; 10]);
        let root = afs.stat("/").await.expect("stat /").ino;
        let r = afs.open_ino(root, OpenFlags::read_only()).await;
        assert!(matches!(r, Err(Error::IsDir(_))), "{:?}", r.err());
    });
}

/// `direct` files move DMA buffers to and from the device without a copy; several in flight
/// from one task.
#[test]
fn direct_dma_requests_in_flight_together() {
    let fs = mount(&ram_device());
    let afs = AsyncFs::start(&fs, 2).expect("start");
    let direct = OpenFlags {
        direct: true,
        ..rw_create()
    };
    block_on(async {
        let f = afs.open("/direct", direct, 0o644).await.expect("create");
        let writes: Vec<DmaIo> = (0..16u64)
            .map(|b| {
                let mut buf = f.alloc_buf(8192).expect("DMA buffer");
                buf.fill(b as u8 ^ 0x5a);
                Box::pin(f.write_dma(b * 8192, buf)) as DmaIo
            })
            .collect();
        for r in join_all(writes).await {
            assert_eq!(r.expect("direct write").1, 8192);
        }
        let reads: Vec<DmaIo> = (0..16u64)
            .map(|b| {
                let buf = f.alloc_buf(8192).expect("DMA buffer");
                Box::pin(f.read_dma(b * 8192, buf)) as DmaIo
            })
            .collect();
        for (b, r) in join_all(reads).await.into_iter().enumerate() {
            let (buf, n) = r.expect("direct read");
            assert_eq!(n, 8192);
            assert!(buf.iter().all(|&x| x == b as u8 ^ 0x5a), "block {b}");
        }
        // Misaligned direct I/O is refused, not torn.
        let r = f.write(100, &[1u8; 10]).await;
        assert!(r.is_err(), "a misaligned direct write succeeded");
        f.fsync().await.expect("fsync");
    });
}

/// What an `O_SYNC` handle wrote, and what an fsync covered, survive a remount.
#[test]
fn sync_writes_and_fsync_survive_a_remount() {
    let dev = ram_device();
    let fs = mount(&dev);
    let afs = AsyncFs::start(&fs, 1).expect("start");
    drop(fs);
    let sync = OpenFlags {
        sync: true,
        ..rw_create()
    };
    let dsync = OpenFlags {
        dsync: true,
        ..rw_create()
    };
    block_on(async {
        let s = afs.open("/sync", sync, 0o644).await.expect("create");
        s.write(0, b"synchronous").await.expect("write");
        let d = afs.open("/dsync", dsync, 0o644).await.expect("create");
        let mut buf = d.alloc_buf(3).expect("DMA buffer");
        buf.copy_from_slice(b"dma");
        d.write_dma(0, buf).await.expect("write_dma");
        let f = afs
            .open("/fsynced", rw_create(), 0o644)
            .await
            .expect("create");
        f.write(0, b"then fsync").await.expect("write");
        f.fsync().await.expect("fsync");
        afs.unmount().await.expect("unmount");
    });
    drop(afs);
    let paths = ["/sync", "/dsync", "/fsynced"].map(String::from);
    let back = remount_read_back(&dev, &paths);
    assert_eq!(back, [&b"synchronous"[..], b"dma", b"then fsync"]);
}

#[test]
fn a_read_only_mount_refuses_writes() {
    let dev = ram_device();
    let opts = MountOptions {
        read_only: true,
        ..MountOptions::default()
    };
    let fs = bypassfs::Filesystem::mount(dev, opts).expect("mount read-only");
    let afs = AsyncFs::start(&fs, 1).expect("start");
    block_on(async {
        let r = afs.mkdir("/d", 0o755).await;
        assert!(matches!(r, Err(Error::ReadOnly(_))), "{r:?}");
        let r = afs.open("/f", rw_create(), 0o644).await;
        assert!(matches!(r, Err(Error::ReadOnly(_))), "{:?}", r.err());
    });
}

/// `AsyncFs::call` runs any synchronous call on a polling thread, here while that thread has
/// writes in flight.
#[test]
fn call_runs_any_synchronous_call() {
    let fs = mount(&ram_device());
    let afs = AsyncFs::start(&fs, 1).expect("start");
    block_on(async {
        let f = afs.open("/x", rw_create(), 0o644).await.expect("create");
        let writes: Vec<_> = (0..32u64)
            .map(|b| f.write(b * 4096, &[3u8; 4096]))
            .collect();
        afs.call(|fs, _| fs.set_xattr("/x", "user.k", b"v", bypassfs::XattrFlags::default()))
            .await
            .expect("set_xattr");
        let attr = bypassfs::SetAttr {
            mode: Some(0o600),
            ..bypassfs::SetAttr::default()
        };
        afs.call(move |fs, ctx| fs.set_attr(ctx, "/x", &attr))
            .await
            .expect("set_attr");
        for w in writes {
            assert_eq!(w.await.expect("write"), 4096);
        }
        let v = afs.call(|fs, _| fs.get_xattr("/x", "user.k")).await;
        assert_eq!(v.expect("get_xattr"), b"v");
        let r = afs.call(|fs, _| fs.get_xattr("/x", "user.none")).await;
        assert!(matches!(r, Err(Error::NoAttr(_))), "{r:?}");
        let st = f.stat().await.expect("stat");
        assert_eq!((st.mode & 0o777, st.size), (0o600, 32 * 4096));
    });
}

/// A call that panics answers with an error; its polling thread goes on serving.
#[test]
fn a_panicking_call_answers_with_an_error() {
    let fs = mount(&ram_device());
    let afs = AsyncFs::start(&fs, 1).expect("start");
    block_on(async {
        let r: bypassfs::Result<()> = afs.call(|_, _| panic!("a caller's bug")).await;
        assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
        afs.mkdir("/after", 0o755)
            .await
            .expect("mkdir after the panic");
    });
}
