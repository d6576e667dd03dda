//! The `uring` backend: the conformance suite on files in every scratch directory that
//! supports O_DIRECT, plus what is particular to io_uring over a file: durability across
//! reopen, open-time checks, short transfers, hole punching, and dropping a busy queue.

mod common;

use common::{filled, pattern};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdev::uring::{Access, Dispatch, UringDevice, UringOptions};
use bdev::{
    wait, BdevError, BlockDevice, Bufs, Completion, DmaBuf, IoError, IoQueue, Lba, Op, SubmitError,
};
use tempfile::TempDir;

/// Scratch directories to test in: tmpfs (/dev/shm, no FALLOC_FL_ZERO_RANGE) and the
/// ordinary temporary directory (a disk filesystem), each if direct I/O works there.
fn scratch_dirs() -> Vec<TempDir> {
    let mut places = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    places.dedup();
    let dirs: Vec<TempDir> = places
        .into_iter()
        .filter_map(|p| tempfile::tempdir_in(p).ok())
        .filter(|d| direct_io_works(d.path()))
        .collect();
    assert!(!dirs.is_empty(), "no scratch directory supports O_DIRECT");
    dirs
}

fn direct_io_works(dir: &Path) -> bool {
    let opts = UringOptions {
        block_size: None,
        size_bytes: Some(4096),
        ..UringOptions::default()
    };
    UringDevice::open("probe", &dir.join("probe"), opts).is_ok()
}

/// One scratch directory, tmpfs when it supports O_DIRECT (fast, spares the disk).
fn scratch() -> TempDir {
    scratch_dirs().swap_remove(0)
}

fn open(path: &Path, block_size: Option<u32>, size_bytes: Option<u64>) -> UringDevice {
    let opts = UringOptions {
        block_size,
        size_bytes,
        ..UringOptions::default()
    };
    UringDevice::open("Uring0", path, opts).unwrap()
}

fn open_dispatched(path: &Path, size_bytes: u64, dispatch: Dispatch) -> UringDevice {
    let opts = UringOptions {
        size_bytes: Some(size_bytes),
        dispatch,
        ..UringOptions::default()
    };
    UringDevice::open("Uring0", path, opts).unwrap()
}

/// The io_uring worker threads of the thread whose id is `tid` ("iou-wrk-<tid>"), each
/// with its allowed CPU list.
fn io_uring_workers(tid: &str) -> Vec<Option<String>> {
    let mut workers = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let t = t.unwrap().path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        if comm.trim() != format!("iou-wrk-{tid}") {
            continue;
        }
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|l| l.trim().to_string());
        workers.push(list);
    }
    workers
}

/// The calling thread's id, as /proc/thread-self names it.
fn thread_id() -> String {
    let me = std::fs::read_link("/proc/thread-self").unwrap();
    me.file_name().unwrap().to_string_lossy().into_owned()
}

fn read_vec(q: &mut dyn IoQueue, dev: &dyn BlockDevice, lba: u64, len: usize) -> Vec<u8> {
    let buf = dev.alloc_buf(len).unwrap();
    wait::read(q, Lba(lba), buf)
        .map_err(|(_, e)| e)
        .unwrap()
        .to_vec()
}

fn rejection(q: &mut dyn IoQueue, op: Op) -> SubmitError {
    q.submit(7, op).expect_err("request accepted").error
}

#[test]
fn conformance_4k_in_every_scratch_dir() {
    for dir in scratch_dirs() {
        let dev = open(&dir.path().join("dev"), None, Some(512 * 4096));
        assert_eq!(dev.geometry().block_size, 4096);
        assert_eq!(dev.geometry().block_count, 512);
        common::run_all(&dev);
    }
}

#[test]
fn conformance_512_byte_blocks() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), Some(512), Some(1024 * 512));
    assert_eq!(dev.geometry().buf_align, 512);
    common::run_all(&dev);
}

#[test]
fn large_round_trip_on_two_queues() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(16 << 20));
    let data = pattern(3, 4 << 20);
    let mut q = dev.queue(4).unwrap();
    wait::write(&mut *q, Lba(1000), filled(&dev, &data), false).unwrap();
    let mut other = dev.queue(4).unwrap();
    assert!(
        read_vec(&mut *other, &dev, 1000, data.len()) == data,
        "data differs"
    );
}

/// More segments than one readv/writev SQE takes (UIO_MAXIOV = 1024), of mixed sizes.
#[test]
fn vectored_beyond_one_sqe() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(8 << 20));
    let bs = 4096;
    let sizes: Vec<usize> = (0..1100)
        .map(|i| if i % 7 == 0 { 2 * bs } else { bs })
        .collect();
    let total: usize = sizes.iter().sum();
    let data = pattern(11, total);
    let mut at = 0;
    let segs: Vec<DmaBuf> = sizes
        .iter()
        .map(|&n| {
            at += n;
            filled(&dev, &data[at - n..at])
        })
        .collect();
    let mut q = dev.queue(2).unwrap();
    let write = Op::Write {
        lba: Lba(5),
        bufs: Bufs::Many(segs),
        fua: false,
    };
    wait::run(&mut *q, write).1.unwrap();
    assert!(read_vec(&mut *q, &dev, 5, total) == data, "writev");

    let segs: Vec<DmaBuf> = sizes.iter().map(|&n| dev.alloc_buf(n).unwrap()).collect();
    let (op, r) = wait::run(
        &mut *q,
        Op::Read {
            lba: Lba(5),
            bufs: Bufs::Many(segs),
        },
    );
    r.unwrap();
    let got: Vec<u8> = op
        .into_bufs()
        .unwrap()
        .segments()
        .iter()
        .flat_map(|s| s.to_vec())
        .collect();
    assert!(got == data, "readv");
}

/// A vector of one buffer is a plain read/write.
#[test]
fn vector_of_one_segment() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(64 * 4096));
    let mut q = dev.queue(2).unwrap();
    let data = pattern(12, 3 * 4096);
    let write = Op::Write {
        lba: Lba(2),
        bufs: Bufs::Many(vec![filled(&dev, &data)]),
        fua: true,
    };
    wait::run(&mut *q, write).1.unwrap();
    let read = Op::Read {
        lba: Lba(2),
        bufs: Bufs::Many(vec![dev.alloc_buf(3 * 4096).unwrap()]),
    };
    let (op, r) = wait::run(&mut *q, read);
    r.unwrap();
    assert!(
        op.into_bufs().unwrap().segments()[0][..] == data[..],
        "data differs"
    );
}

#[test]
fn flushed_data_survives_reopen() {
    let dir = scratch();
    let path = dir.path().join("dev");
    let data = pattern(21, 3 * 4096);
    {
        let dev = open(&path, None, Some(64 * 4096));
        let mut q = dev.queue(4).unwrap();
        wait::write(&mut *q, Lba(7), filled(&dev, &data), false).unwrap();
        wait::flush(&mut *q).unwrap();
    }
    let dev = open(&path, None, None);
    assert_eq!(dev.geometry().block_count, 64, "size taken from the file");
    let mut q = dev.queue(1).unwrap();
    assert!(
        read_vec(&mut *q, &dev, 7, data.len()) == data,
        "data differs"
    );
    let file = std::fs::read(&path).unwrap();
    assert!(
        file[7 * 4096..10 * 4096] == data[..],
        "seen through the page cache too"
    );
}

#[test]
fn fua_write_survives_reopen() {
    let dir = scratch();
    let path = dir.path().join("dev");
    let data = pattern(22, 2 * 4096);
    {
        let dev = open(&path, None, Some(64 * 4096));
        let mut q = dev.queue(4).unwrap();
        wait::write(&mut *q, Lba(60), filled(&dev, &data), true).unwrap();
    }
    let dev = open(&path, None, None);
    let mut q = dev.queue(1).unwrap();
    assert!(
        read_vec(&mut *q, &dev, 60, data.len()) == data,
        "data differs"
    );
    let file = std::fs::read(&path).unwrap();
    assert!(
        file[60 * 4096..62 * 4096] == data[..],
        "seen through the page cache too"
    );
}

#[test]
fn queue_full_at_exact_depth() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(64 * 4096));
    // 3 rounds the ring up to 4 entries; the queue must still hold only 3.
    let mut q = dev.queue(3).unwrap();
    assert_eq!(q.depth(), 3);
    for tag in 0..3 {
        let op = Op::Read {
            lba: Lba(tag),
            bufs: dev.alloc_buf(4096).unwrap().into(),
        };
        q.submit(tag, op).unwrap();
    }
    let extra = Op::Read {
        lba: Lba(9),
        bufs: dev.alloc_buf(4096).unwrap().into(),
    };
    let r = q.submit(9, extra).unwrap_err();
    assert!(r.is_queue_full());
    let mut done = Vec::with_capacity(4);
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|c| c.result.is_ok()));
    q.submit(9, r.op).unwrap();
}

#[test]
fn bad_requests_are_rejected_before_the_kernel() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(64 * 4096));
    let mut q = dev.queue(4).unwrap();
    let q = &mut *q;
    let invalid = |e: SubmitError| matches!(e, SubmitError::Rejected(IoError::Invalid(_)));

    // A buffer 512 bytes into a 4096-aligned allocation: fine for the kernel on some
    // filesystems, but not the device's promise.
    let mut whole = DmaBuf::alloc(3 * 4096, 4096).unwrap();
    let mut shifted = whole.split_off(512);
    shifted.truncate(4096);
    let e = rejection(
        q,
        Op::Write {
            lba: Lba(0),
            bufs: shifted.into(),
            fua: false,
        },
    );
    assert!(invalid(e.clone()), "misaligned buffer: {e:?}");

    let partial = dev.alloc_buf(4096 + 512).unwrap();
    let e = rejection(
        q,
        Op::Read {
            lba: Lba(0),
            bufs: partial.into(),
        },
    );
    assert!(invalid(e.clone()), "partial block: {e:?}");

    let e = rejection(
        q,
        Op::Read {
            lba: Lba(64),
            bufs: dev.alloc_buf(4096).unwrap().into(),
        },
    );
    assert!(invalid(e.clone()), "out of range: {e:?}");
    let e = rejection(
        q,
        Op::Unmap {
            lba: Lba(60),
            blocks: 5,
        },
    );
    assert!(invalid(e.clone()), "unmap past the end: {e:?}");
    assert_eq!(q.in_flight(), 0);
    assert_eq!(q.poll(&mut Vec::new()), 0);
}

#[test]
fn open_refuses_bad_sizes_with_clear_errors() {
    let dir = scratch();
    let odd = dir.path().join("odd");
    std::fs::write(&odd, vec![1u8; 4096 + 100]).unwrap();
    let err = UringDevice::open("odd", &odd, UringOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, BdevError::Config(_)), "{err}");
    assert!(
        err.to_string()
            .contains("4196 bytes are not a whole number of 4096-byte blocks"),
        "{err}"
    );
    // Using a whole-block prefix of it is fine.
    let prefix = UringOptions {
        block_size: None,
        size_bytes: Some(4096),
        ..UringOptions::default()
    };
    assert_eq!(
        UringDevice::open("odd", &odd, prefix)
            .unwrap()
            .geometry()
            .block_count,
        1
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let err = UringDevice::open("empty", &empty, UringOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("empty"), "{err}");

    let missing = dir.path().join("missing");
    let err = UringDevice::open("missing", &missing, UringOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, BdevError::Os { .. }), "{err}");

    for (bs, size) in [
        (Some(1000), Some(8192)),
        (Some(256), Some(8192)),
        (None, Some(6000)),
        (None, Some(0)),
    ] {
        let opts = UringOptions {
            block_size: bs,
            size_bytes: size,
            ..UringOptions::default()
        };
        let err = UringDevice::open("bad", &dir.path().join("bad"), opts).err();
        assert!(
            matches!(err, Some(BdevError::Config(_))),
            "{bs:?} {size:?}: {err:?}"
        );
    }

    let dev = open(&dir.path().join("ok"), None, Some(8192));
    assert!(dev.queue(0).is_err());
    assert!(dev.queue(1 << 20).is_err());
    assert!(UringDevice::open("dir", dir.path(), UringOptions::default()).is_err());
}

#[test]
fn existing_file_is_extended_not_truncated() {
    let dir = scratch();
    let path = dir.path().join("dev");
    std::fs::write(&path, pattern(5, 4096)).unwrap();
    let dev = open(&path, None, Some(16 * 4096));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 * 4096);
    let mut q = dev.queue(1).unwrap();
    assert!(
        read_vec(&mut *q, &dev, 0, 4096) == pattern(5, 4096),
        "data differs"
    );
    assert!(
        read_vec(&mut *q, &dev, 15, 4096) == vec![0; 4096],
        "data differs"
    );
}

#[test]
fn zeroing_ops_read_back_zeroes() {
    for dir in scratch_dirs() {
        let dev = open(&dir.path().join("dev"), None, Some(64 * 4096));
        let mut q = dev.queue(4).unwrap();
        for (i, fua) in [(0u64, false), (1, true)] {
            let base = 8 * i;
            let old = pattern(30 + i, 8 * 4096);
            wait::write(&mut *q, Lba(base), filled(&dev, &old), false).unwrap();
            let zero = Op::WriteZeroes {
                lba: Lba(base + 1),
                blocks: 2,
                fua,
            };
            wait::run(&mut *q, zero).1.unwrap();
            // On a file, unmap punches a hole: zeroes, never the old data.
            wait::run(
                &mut *q,
                Op::Unmap {
                    lba: Lba(base + 5),
                    blocks: 2,
                },
            )
            .1
            .unwrap();
            let got = read_vec(&mut *q, &dev, base, 8 * 4096);
            let mut want = old.clone();
            want[4096..3 * 4096].fill(0);
            want[5 * 4096..7 * 4096].fill(0);
            assert!(
                got == want,
                "{}: zeroing (fua {fua}) wrong",
                dir.path().display()
            );
        }
    }
}

/// A file truncated behind the device's back: a read that runs into its end is resumed
/// after the short part and then fails as a media error, not a hang or garbage.
#[test]
fn read_past_end_of_truncated_file_is_a_media_error() {
    let dir = scratch();
    let path = dir.path().join("dev");
    let dev = open(&path, None, Some(32 * 4096));
    let mut q = dev.queue(2).unwrap();
    wait::write(&mut *q, Lba(8), filled(&dev, &pattern(1, 8 * 4096)), false).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10 * 4096)
        .unwrap();

    let (op, r) = wait::run(
        &mut *q,
        Op::Read {
            lba: Lba(8),
            bufs: dev.alloc_buf(8 * 4096).unwrap().into(),
        },
    );
    assert_eq!(r, Err(IoError::Media { op: "read", lba: 8 }));
    let buf = op.into_bufs().unwrap().into_one().unwrap();
    assert!(
        buf[..2 * 4096] == pattern(1, 8 * 4096)[..2 * 4096],
        "the part before the end was read"
    );
    let r = wait::read(&mut *q, Lba(20), dev.alloc_buf(4096).unwrap());
    assert!(matches!(r, Err((_, IoError::Media { .. }))));
}

#[test]
fn dropping_a_busy_queue_waits_for_its_requests() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(1024 * 4096));
    for round in 0..8u64 {
        let mut q = dev.queue(64).unwrap();
        for i in 0..64u64 {
            let op = Op::Write {
                lba: Lba(i * 16),
                bufs: filled(&dev, &pattern(round * 64 + i, 16 * 4096)).into(),
                fua: i % 8 == 0,
            };
            q.submit(i, op).unwrap();
        }
        if round % 2 == 1 {
            // Some submitted to the kernel, some only queued.
            q.poll(&mut Vec::with_capacity(64));
            q.submit(99, Op::Flush)
                .unwrap_or_else(|r| assert!(r.is_queue_full()));
        }
        drop(q);
        // Freshly allocated buffers reuse the pool memory the dropped requests used;
        // nothing may still be writing into it.
        let mut q = dev.queue(1).unwrap();
        let got = read_vec(&mut *q, &dev, 63 * 16, 16 * 4096);
        assert!(got == pattern(round * 64 + 63, 16 * 4096), "data differs");
    }
}

#[test]
fn idle_poll_returns_nothing() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(8 * 4096));
    let mut q = dev.queue(8).unwrap();
    let mut done: Vec<Completion> = Vec::new();
    for _ in 0..1000 {
        assert_eq!(q.poll(&mut done), 0);
    }
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn queues_on_many_threads() {
    let dir = scratch();
    let dev = Arc::new(open(&dir.path().join("dev"), None, Some(256 * 4096)));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let dev = Arc::clone(&dev);
            std::thread::spawn(move || {
                let mut q = dev.queue(8).unwrap();
                for i in 0..32 {
                    let data = pattern(t * 32 + i, 4096);
                    wait::write(&mut *q, Lba(t * 32 + i), filled(&*dev, &data), false).unwrap();
                }
                wait::flush(&mut *q).unwrap();
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let mut q = dev.queue(1).unwrap();
    for lba in 0..128u64 {
        assert!(
            read_vec(&mut *q, &*dev, lba, 4096) == pattern(lba, 4096),
            "block {lba}"
        );
    }
}

/// The suite and the block-device paths (BLKSSZGET, BLKGETSIZE64, BLKDISCARD, fallocate on
/// a block device) on the scratch block device named by `BDEV_URING_TEST_BLOCKDEV`, whose
/// content is destroyed; e.g. a loop device from `losetup -f --show img`.
#[test]
#[ignore = "needs a scratch block device in BDEV_URING_TEST_BLOCKDEV"]
fn conformance_on_a_block_device() {
    let path = std::env::var_os("BDEV_URING_TEST_BLOCKDEV")
        .expect("set BDEV_URING_TEST_BLOCKDEV to a scratch block device");
    let dev = UringDevice::open("Uring1", path.as_ref(), UringOptions::default()).unwrap();
    let geo = dev.geometry();
    eprintln!("{}: {geo:?}", Path::new(&path).display());
    common::run_all(&dev);

    let mut q = dev.queue(4).unwrap();
    let bs = geo.block_size as usize;
    wait::write(&mut *q, Lba(0), filled(&dev, &pattern(40, 8 * bs)), true).unwrap();
    match wait::run(
        &mut *q,
        Op::Unmap {
            lba: Lba(0),
            blocks: 4,
        },
    )
    .1
    {
        Ok(()) | Err(IoError::Unsupported(_)) => {}
        Err(e) => panic!("discard: {e}"),
    }
    let zero = Op::WriteZeroes {
        lba: Lba(4),
        blocks: 4,
        fua: true,
    };
    wait::run(&mut *q, zero).1.unwrap();
    let got = read_vec(&mut *q, &dev, 4, 4 * bs);
    assert!(
        got.iter().all(|&b| b == 0),
        "write-zeroes on a block device"
    );

    // The first open holds the device's exclusive lock until dropped.
    drop(q);
    drop(dev);
    let small = UringOptions {
        block_size: None,
        size_bytes: Some(geo.size_bytes() / 2),
        ..UringOptions::default()
    };
    let half = UringDevice::open("Uring1", path.as_ref(), small).unwrap();
    assert_eq!(half.geometry().block_count, geo.block_count / 2);
    drop(half);
    let big = UringOptions {
        block_size: None,
        size_bytes: Some(geo.size_bytes() * 2),
        ..UringOptions::default()
    };
    assert!(UringDevice::open("Uring1", path.as_ref(), big).is_err());
}

/// `wait` sleeps only with requests in flight, and a poll after it reaps; an executor whose
/// futures keep more than `SLEEP_IN_FLIGHT` requests in flight (so `block_on` sleeps in the
/// queue when idle) still completes all of them with the right data.
#[test]
fn wait_sleeps_until_a_completion_and_block_on_uses_it() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(16 << 20));
    let mut q = dev.queue(32).unwrap();
    assert!(!q.wait(), "nothing in flight: no sleep");
    for i in 0..16u64 {
        let op = Op::Write {
            lba: Lba(i),
            bufs: Bufs::One(filled(&dev, &pattern(i, 4096))),
            fua: false,
        };
        q.submit(i, op).unwrap();
    }
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        if q.wait() {
            // The sleep ended with at least one completion waiting to be reaped.
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
    let ctx = bdev::exec::Context::new();
    let id = ctx.attach(&dev, 32).unwrap();
    let reads = (0..16u64).map(|i| {
        let buf = dev.alloc_buf(4096).unwrap();
        ctx.io(
            id,
            Op::Read {
                lba: Lba(i),
                bufs: Bufs::One(buf),
            },
        )
    });
    for (i, (op, r)) in ctx
        .block_on(bdev::exec::join_all(reads))
        .into_iter()
        .enumerate()
    {
        r.unwrap();
        let Op::Read { bufs, .. } = op else {
            unreachable!()
        };
        assert!(
            bufs.segments()[0][..] == pattern(i as u64, 4096)[..],
            "block {i}"
        );
    }
}

#[test]
fn the_executor_merges_adjacent_writes_on_a_uring_queue() {
    let dir = scratch();
    let dev = open(&dir.path().join("dev"), None, Some(16 << 20));
    let q = dev.queue(8).unwrap();
    assert!(q.merge_limit() >= 2 * 4096, "uring merges writes");
    drop(q);
    let ctx = bdev::exec::Context::new();
    let id = ctx.attach(&dev, 32).unwrap();
    // 64 adjacent blocks and 8 scattered ones, written at once.
    let lbas: Vec<u64> = (100..164).chain((0..8).map(|i| 1000 + 3 * i)).collect();
    let writes = lbas.iter().map(|&l| {
        let op = Op::Write {
            lba: Lba(l),
            bufs: Bufs::One(filled(&dev, &pattern(l, 4096))),
            fua: false,
        };
        ctx.io(id, op)
    });
    for (op, r) in ctx.block_on(bdev::exec::join_all(writes)) {
        r.unwrap();
        let l = op.lba().unwrap().0;
        let buf = op.into_bufs().and_then(Bufs::into_one).unwrap();
        assert!(
            buf.to_vec() == pattern(l, 4096),
            "block {l} got another's buffer"
        );
    }
    assert_eq!(ctx.submitted(id), 72);
    assert!(
        ctx.merged_writes(id) >= 56,
        "{} merged",
        ctx.merged_writes(id)
    );
    let mut q = dev.queue(4).unwrap();
    for &l in &lbas {
        assert!(
            read_vec(&mut *q, &dev, l, 4096) == pattern(l, 4096),
            "block {l}"
        );
    }
}

/// A thread pinned before it opens a queue has its io_uring workers on its CPU: a flush
/// (always handed to a worker) is served by a worker allowed only there. (`bdev::affinity`
/// and bfsperf's `-m` rely on this; a worker created before the pin keeps its affinity.)
#[test]
fn a_pinned_thread_keeps_its_io_uring_workers_on_its_cpu() {
    let dir = scratch();
    let path = dir.path().join("pinned");
    let cpu = *bdev::affinity::current_thread_cpus().last().unwrap();
    let workers = std::thread::spawn(move || {
        bdev::affinity::pin_current_thread(&[cpu]).unwrap();
        // The ring always: a small batch on tmpfs would run inline, with no worker at all.
        let dev = open_dispatched(&path, 1 << 20, Dispatch::Ring);
        let mut q = dev.queue(4).unwrap();
        wait::flush(q.as_mut()).unwrap();
        io_uring_workers(&thread_id())
    })
    .join()
    .unwrap();
    assert!(
        !workers.is_empty(),
        "the flush should have been served by an io_uring worker of the thread"
    );
    for w in workers {
        assert_eq!(w, Some(cpu.to_string()), "a worker may run elsewhere");
    }
}

fn open_as(path: &Path, access: Access) -> Result<UringDevice, BdevError> {
    let opts = UringOptions {
        access,
        ..UringOptions::default()
    };
    UringDevice::open("Uring0", path, opts)
}

/// One read-write opener at a time, readers only without a writer; the refusal names the
/// holder, and the lock goes with the device.
#[test]
fn a_second_writer_or_a_reader_beside_a_writer_is_refused() {
    let dir = scratch();
    let path = dir.path().join("locked");
    drop(open(&path, None, Some(1 << 20)));
    let writer = open_as(&path, Access::ReadWrite).unwrap();
    let queue = writer.queue(1).unwrap();
    for access in [Access::ReadWrite, Access::ReadOnly] {
        let err = open_as(&path, access).err().expect("refused");
        assert!(matches!(err, BdevError::InUse(_)), "{access:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("is in use: opened read-write by this process"),
            "{access:?}: {msg}"
        );
    }
    // A queue keeps the file, so the lock, alive after the device is dropped.
    drop(writer);
    assert!(open_as(&path, Access::ReadOnly).is_err());
    drop(queue);
    let r1 = open_as(&path, Access::ReadOnly).unwrap();
    let r2 = open_as(&path, Access::ReadOnly).unwrap();
    let err = open_as(&path, Access::ReadWrite).err().expect("refused");
    assert!(
        err.to_string().contains("opened read-only by this process"),
        "{err}"
    );
    drop((r1, r2));
    open_as(&path, Access::ReadWrite).unwrap();
}

/// A read-only device cannot write: the file is opened `O_RDONLY`.
#[test]
fn a_read_only_device_refuses_writes() {
    let dir = scratch();
    let path = dir.path().join("ro");
    drop(open(&path, None, Some(1 << 20)));
    let dev = open_as(&path, Access::ReadOnly).unwrap();
    let mut q = dev.queue(1).unwrap();
    let buf = filled(&dev, &pattern(3, 4096));
    assert!(wait::write(&mut *q, Lba(0), buf, false).is_err());
    assert_eq!(read_vec(&mut *q, &dev, 0, 4096), vec![0u8; 4096]);
}

/// Both ways of dispatching keep the whole contract, on every scratch filesystem (forcing
/// inline on a disk filesystem also runs its `ZERO_RANGE`, which tmpfs refuses).
#[test]
fn conformance_in_both_dispatch_modes_in_every_scratch_dir() {
    for dir in scratch_dirs() {
        for dispatch in [Dispatch::Ring, Dispatch::InlineWhenIdle] {
            let path = dir.path().join(format!("{dispatch:?}"));
            let dev = open_dispatched(&path, 512 * 4096, dispatch);
            assert_eq!(dev.dispatch(), dispatch, "a chosen dispatch is kept");
            common::run_all(&dev);
        }
    }
}

/// On tmpfs (no `RWF_NOWAIT`: io_uring would hand every request to a worker thread), the
/// device runs small batches inline: a write, a FUA write and a flush make no worker, and
/// come back from the first poll. A deep batch still goes to the ring, whose worker
/// copies it. A file on a disk filesystem keeps the ring for everything.
#[test]
fn tmpfs_runs_small_batches_inline_and_deep_ones_on_the_ring() {
    for dir in scratch_dirs() {
        let shm = dir.path().starts_with("/dev/shm");
        let path = dir.path().join("dev");
        let dev = Arc::new(open(&path, None, Some(1 << 20)));
        if !shm {
            assert_eq!(dev.dispatch(), Dispatch::Ring, "{}", path.display());
            continue;
        }
        assert_eq!(
            dev.dispatch(),
            Dispatch::InlineWhenIdle,
            "tmpfs refuses RWF_NOWAIT"
        );
        std::thread::spawn(move || {
            let mut q = dev.queue(32).unwrap();
            for (i, fua) in [(0u64, false), (1, true)] {
                q.submit(
                    i,
                    Op::Write {
                        lba: Lba(i),
                        bufs: filled(&*dev, &pattern(i, 4096)).into(),
                        fua,
                    },
                )
                .unwrap();
            }
            q.submit(2, Op::Flush).unwrap();
            let mut done = Vec::with_capacity(32);
            assert_eq!(
                q.poll(&mut done),
                3,
                "an inline batch completes in its poll"
            );
            assert!(done.iter().all(|c| c.result.is_ok()));
            assert!(
                io_uring_workers(&thread_id()).is_empty(),
                "no worker for a small batch"
            );
            done.clear();
            for i in 0..32u64 {
                let op = Op::Write {
                    lba: Lba(8 + 2 * i),
                    bufs: filled(&*dev, &pattern(8 + 2 * i, 4096)).into(),
                    fua: false,
                };
                q.submit(i, op).unwrap();
            }
            while done.len() < 32 {
                q.poll(&mut done);
            }
            assert!(done.iter().all(|c| c.result.is_ok()));
            assert!(
                !io_uring_workers(&thread_id()).is_empty(),
                "a deep batch uses the ring"
            );
            for lba in [0, 1, 8, 70] {
                assert!(
                    read_vec(&mut *q, &*dev, lba, 4096) == pattern(lba, 4096),
                    "block {lba}"
                );
            }
        })
        .join()
        .unwrap();
    }
}
