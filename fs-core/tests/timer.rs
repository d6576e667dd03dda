//! The timed commit (`MountOptions::commit_interval`, `api/timer.rs`) on a controllable
//! clock: what nobody fsync'd is durable once an interval has passed, not before; an idle
//! filesystem is not committed; the thread neither keeps a mount alive nor outlives it.
//!
//! Crash images come from a `record` device with every unflushed write dropped.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bdev::record::{CrashPick, RecordDevice};
use bdev::BlockDevice;
use common::*;
use fs_core::{Filesystem, ManualClock, MountOptions};

const INTERVAL: Duration = Duration::from_secs(30);

fn timed(clock: &Arc<ManualClock>) -> MountOptions {
    MountOptions {
        commit_interval: Some(INTERVAL),
        clock: Some(clock.clone()),
        ..mount_opts()
    }
}

/// Waits (in real time, up to 20 s) until `fs` has done `n` timed commits.
fn wait_for_commits(fs: &Filesystem, n: u64) {
    let start = Instant::now();
    while fs.timed_commits() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed commit {n} did not happen (done: {})",
            fs.timed_commits()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The crash image at log length `at`, mounted: whether `/f` exists and its bytes.
fn after_crash(rec: &RecordDevice, at: usize) -> Option<Vec<u8>> {
    let img: Arc<dyn BlockDevice> = Arc::new(rec.materialize(at, &CrashPick::None).unwrap());
    let (fs, ctx) = mount(img);
    fs.lookup("/f").ok().map(|_| read_all(&fs, &ctx, "/f"))
}

#[test]
fn unsynced_changes_become_durable_after_one_interval_and_not_before() {
    let dev = mem(16);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let clock = Arc::new(ManualClock::default());
    let fs = Filesystem::mount(rec.clone(), timed(&clock)).unwrap();
    let ctx = fs.context().unwrap();
    // A new name and buffered data, with no fsync.
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &[5u8; 10000]).unwrap();
    drop(f);

    clock.advance(INTERVAL - Duration::from_secs(1));
    // Give a wrongly early tick the time to show.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs.timed_commits(), 0, "a commit before the interval ended");
    let before = rec.len();
    assert_eq!(after_crash(&rec, before), None, "durable before any commit");

    clock.advance(Duration::from_secs(2));
    wait_for_commits(&fs, 1);
    let after = rec.len();
    assert_eq!(
        after_crash(&rec, after),
        Some(vec![5u8; 10000]),
        "not durable after the timed commit"
    );

    // Nothing changed since: the next intervals write nothing.
    clock.advance(INTERVAL * 3);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs.timed_commits(), 1, "an idle filesystem was committed");
    assert_eq!(rec.len(), after, "an idle tick wrote to the device");
    fs.unmount(&ctx).unwrap();
}

#[test]
fn the_timer_neither_keeps_the_mount_nor_outlives_it() {
    let dev = mem(16);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let clock = Arc::new(ManualClock::default());
    let fs = Filesystem::mount(dev.clone(), timed(&clock)).unwrap();
    let ctx = fs.context().unwrap();
    fs.mkdir("/d", 0o755).unwrap();
    // Dropped without unmount: the mount (and its device queues) must go away, so a new
    // read-write mount of the device works; and advancing the clock afterwards touches
    // nothing.
    drop(ctx);
    drop(fs);
    clock.advance(INTERVAL * 2);
    let fs = Filesystem::mount(dev.clone(), timed(&clock)).unwrap();
    let ctx = fs.context().unwrap();
    clock.advance(INTERVAL + Duration::from_secs(1));
    // Nothing unsynced on a fresh mount.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fs.timed_commits(), 0);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

#[test]
fn no_interval_means_no_thread_and_no_commit() {
    let dev = mem(16);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let clock = Arc::new(ManualClock::default());
    let opts = MountOptions {
        commit_interval: None,
        ..timed(&clock)
    };
    let fs = Filesystem::mount(rec.clone(), opts).unwrap();
    let ctx = fs.context().unwrap();
    fs.mkdir("/d", 0o755).unwrap();
    let at = rec.len();
    clock.advance(INTERVAL * 10);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fs.timed_commits(), 0);
    assert_eq!(rec.len(), at);
    fs.unmount(&ctx).unwrap();
}
