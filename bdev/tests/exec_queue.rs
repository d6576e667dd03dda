//! `exec::ExecQueue`, the synchronous view of a context's device: the conformance suite
//! every backend's queue passes, run through views over RAM and io_uring devices, and the
//! view's `wait` on an io_uring queue.

mod common;

use std::path::Path;

use bdev::exec::Context;
use bdev::mem::MemDevice;
use bdev::uring::{UringDevice, UringOptions};
use bdev::{BdevError, BlockDevice, Bufs, Geometry, IoQueue, Lba, Op};

/// A device whose queues are `ExecQueue`s: each `queue` attaches the device to a context of
/// its own, with the same depth, and hands out a view of it.
struct ThroughExec<D>(D);

impl<D: BlockDevice> BlockDevice for ThroughExec<D> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        let ctx = Context::new();
        let dev = ctx.attach(&self.0, depth)?;
        Ok(Box::new(ctx.queue(dev, depth)?))
    }
}

#[test]
fn conformance_over_mem_4k() {
    common::run_all(&ThroughExec(MemDevice::new("Malloc0", 4096, 512).unwrap()));
}

#[test]
fn conformance_over_mem_512() {
    common::run_all(&ThroughExec(MemDevice::new("Malloc1", 512, 1024).unwrap()));
}

/// A scratch directory where O_DIRECT works, if there is one (tmpfs before Linux 6.6 has
/// none).
fn direct_io_dir() -> Option<tempfile::TempDir> {
    let mut places = vec![std::path::PathBuf::from("/dev/shm"), std::env::temp_dir()];
    places.dedup();
    places
        .into_iter()
        .filter_map(|p| tempfile::tempdir_in(p).ok())
        .find(|d| open(&d.path().join("probe"), 4096).is_some())
}

fn open(path: &Path, size_bytes: u64) -> Option<UringDevice> {
    let opts = UringOptions {
        size_bytes: Some(size_bytes),
        ..UringOptions::default()
    };
    UringDevice::open("Uring0", path, opts).ok()
}

#[test]
fn conformance_over_uring() {
    let dir = direct_io_dir().expect("no scratch directory supports O_DIRECT");
    let dev = open(&dir.path().join("dev"), 16 << 20).unwrap();
    common::run_all(&ThroughExec(dev));
}

/// A view sleeps in the uring queue's `wait` only when its requests are all in the device
/// queue, and a poll after a sleep hands back at least one of them.
#[test]
fn wait_sleeps_only_with_the_views_requests_in_the_device_queue() {
    let dir = direct_io_dir().expect("no scratch directory supports O_DIRECT");
    let dev = open(&dir.path().join("dev"), 16 << 20).unwrap();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 32).unwrap();
    let mut q = ctx.queue(d, 16).unwrap();
    assert!(!q.wait(), "nothing in flight: no sleep");
    for i in 0..16u64 {
        let op = Op::Write {
            lba: Lba(i),
            bufs: Bufs::One(common::filled(&dev, &common::pattern(i, 4096))),
            fua: false,
        };
        q.submit(i, op).unwrap();
    }
    assert!(!q.wait(), "staged, not yet in the device queue: no sleep");
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        if q.wait() {
            assert!(
                q.poll(&mut done) > 0,
                "a wait that slept left nothing to reap"
            );
        } else {
            q.poll(&mut done);
        }
    }
    assert_eq!(done.len(), 16);
    assert!(done.iter().all(|c| c.result.is_ok()));
}
