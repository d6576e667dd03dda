//! The async handle (`bypassfs::asyncio`) under two executors that know nothing of
//! bypassfs: tokio's multi-threaded runtime with many tasks in flight (`tokio_rt.rs`), and a
//! hand-written one that parks its thread between polls (`hand.rs`). Data round trips are
//! checked against a model (a `Vec<u8>` per file), errors against their kinds, and a
//! remount on the native API checks what the handle made durable.

mod hand;
mod tokio_rt;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::BlockDevice;
use bypassfs::{Filesystem, FormatOptions, FsckOptions, MountOptions, OpenFlags};

/// A formatted 64 MiB RAM device.
fn ram_device() -> Arc<dyn BlockDevice> {
    let dev: Arc<dyn BlockDevice> =
        Arc::new(MemDevice::new("async", 4096, 16384).expect("RAM device"));
    Filesystem::format(Arc::clone(&dev), FormatOptions::default()).expect("format");
    dev
}

fn mount(dev: &Arc<dyn BlockDevice>) -> Filesystem {
    Filesystem::mount(Arc::clone(dev), MountOptions::default()).expect("mount")
}

/// The contents of `path`, read on this thread's own context.
fn read_back(fs: &Filesystem, path: &str) -> Vec<u8> {
    let ctx = fs.context().expect("context");
    let f = fs
        .open(&ctx, path, OpenFlags::read_only(), 0)
        .expect("open to read back");
    let size = usize::try_from(f.size().expect("size")).expect("size fits");
    let mut data = vec![0u8; size];
    let n = f.read_at(&ctx, 0, &mut data).expect("read back");
    assert_eq!(n, size, "{path}: short read of the whole file");
    data
}

/// Mounts `dev` again natively (the mount that wrote it unmounted and gone), returns the
/// contents of each of `paths`, unmounts and checks the filesystem.
fn remount_read_back(dev: &Arc<dyn BlockDevice>, paths: &[String]) -> Vec<Vec<u8>> {
    let fs = mount(dev);
    let data = paths.iter().map(|p| read_back(&fs, p)).collect();
    let ctx = fs.context().expect("context");
    fs.unmount(&ctx).expect("unmount");
    let report = bypassfs::fsck(Arc::clone(dev), &FsckOptions::default()).expect("fsck");
    assert!(report.is_clean(), "fsck after the async handle: {report:?}");
    data
}

/// Flags for reading and writing an existing or new file.
fn rw_create() -> OpenFlags {
    OpenFlags::read_write_create()
}

/// The simplest executor: polls one future, parking the thread until its waker runs.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Awaits all of `futs` at once (on the hand-written executor: every one polled each time
/// any is woken, which is all a test needs).
async fn join_all<T>(futs: Vec<Pin<Box<dyn Future<Output = T>>>>) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, done) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *done = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future answered"))
        .collect()
}
