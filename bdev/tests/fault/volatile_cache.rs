//! The simulated volatile write cache: what reads see, what flush and FUA make durable,
//! and what a crash keeps.

use super::*;

fn cached(inner: &Arc<MemDevice>, seed: u64) -> FaultDevice {
    let dev = fault(
        inner,
        FaultConfig {
            seed,
            volatile_cache: true,
            ..Default::default()
        },
    );
    assert!(dev.geometry().volatile_write_cache);
    dev
}

#[test]
fn volatile_cache_crash_drop_all_loses_only_unflushed_writes() {
    let inner = mem();
    let dev = cached(&inner, 1);
    let mut q = dev.queue(4).unwrap();
    write(&mut *q, &dev, 1, 1, 0xa1, false).unwrap();
    wait::flush(&mut *q).unwrap();
    write(&mut *q, &dev, 2, 2, 0xb2, false).unwrap();
    write(&mut *q, &dev, 7, 1, 0xc3, true).unwrap(); // FUA: durable now
                                                     // Reads see the cache; the media does not have the write yet.
    assert_eq!(read(&mut *q, &dev, 2, 1).unwrap(), vec![0xb2; BS]);
    assert!(block(&inner.snapshot(), 2).iter().all(|&x| x == 0));
    assert_eq!(dev.cached_blocks(), 2);

    // A request in flight at the crash reports the device gone.
    q.submit(
        9,
        Op::Read {
            lba: Lba(1),
            bufs: Bufs::One(dev.alloc_buf(BS).unwrap()),
        },
    )
    .unwrap();
    dev.crash(CrashKeep::DropAll).unwrap();
    let mut done = Vec::with_capacity(4);
    q.poll(&mut done);
    assert_eq!(
        (done[0].tag, done[0].result.clone()),
        (9, Err(IoError::Removed))
    );
    assert_eq!(read(&mut *q, &dev, 1, 1), Err(IoError::Removed));
    assert!(matches!(dev.queue(1), Err(BdevError::Io(IoError::Removed))));
    assert_eq!(dev.stats().blocks_lost_at_crash, 2);

    let image = inner.snapshot();
    assert!(
        block(&image, 1).iter().all(|&x| x == 0xa1),
        "flushed write survives"
    );
    assert!(
        image[2 * BS..4 * BS].iter().all(|&x| x == 0),
        "unflushed write is lost"
    );
    assert!(
        block(&image, 7).iter().all(|&x| x == 0xc3),
        "FUA write survives"
    );
    // Reboot: a new wrapper over the same media.
    let dev2 = cached(&inner, 2);
    let mut q2 = dev2.queue(1).unwrap();
    assert_eq!(read(&mut *q2, &dev2, 1, 1).unwrap(), vec![0xa1; BS]);
}

#[test]
fn volatile_cache_crash_keep_all_and_random() {
    let inner = mem();
    let dev = cached(&inner, 3);
    let mut q = dev.queue(4).unwrap();
    write(&mut *q, &dev, 0, 4, 0x10, false).unwrap();
    dev.crash(CrashKeep::KeepAll).unwrap();
    assert!(inner.snapshot()[..4 * BS]
        .iter()
        .enumerate()
        .all(|(i, &x)| x == 0x10 + (i / BS) as u8));

    let seed = testkit::seed!();
    let run = |seed: u64| {
        let inner = mem();
        let dev = cached(&inner, seed);
        let mut q = dev.queue(4).unwrap();
        write(&mut *q, &dev, 0, 32, 0x40, false).unwrap();
        dev.crash(CrashKeep::Random).unwrap();
        let image = inner.snapshot();
        (0..32u64)
            .map(|b| {
                let blk = block(&image, b);
                let landed = blk.iter().all(|&x| x == 0x40 + b as u8);
                assert!(
                    landed || blk.iter().all(|&x| x == 0),
                    "a block is old or new, never mixed"
                );
                landed
            })
            .collect::<Vec<bool>>()
    };
    let a = run(seed);
    assert_eq!(a, run(seed), "same seed, same surviving blocks");
    assert!(
        a.iter().any(|&l| l) && a.iter().any(|&l| !l),
        "32 coin flips: {a:?}"
    );
}

#[test]
fn flush_writes_back_more_runs_than_the_queue_holds() {
    let inner = mem();
    let dev = cached(&inner, 4);
    let mut q = dev.queue(2).unwrap();
    // Every other block: 32 separate runs, many more than the inner queue has room for.
    for b in (0..BLOCKS).step_by(2) {
        write(&mut *q, &dev, b, 1, b as u8, false).unwrap();
    }
    q.submit(
        5,
        Op::WriteZeroes {
            lba: Lba(1),
            blocks: 1,
            fua: false,
        },
    )
    .unwrap();
    let mut done = Vec::with_capacity(2);
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert!(
        inner.snapshot().iter().all(|&x| x == 0),
        "nothing written through yet"
    );
    wait::flush(&mut *q).unwrap();
    assert_eq!(dev.cached_blocks(), 0);
    let image = inner.snapshot();
    for b in (0..BLOCKS).step_by(2) {
        assert!(block(&image, b).iter().all(|&x| x == b as u8));
    }
    // Vectored read across cached and uncached blocks after more cached writes.
    write(&mut *q, &dev, 3, 1, 0xee, false).unwrap();
    let bufs = Bufs::Many(vec![
        dev.alloc_buf(BS).unwrap(),
        dev.alloc_buf(2 * BS).unwrap(),
    ]);
    let (op, r) = wait::run(&mut *q, Op::Read { lba: Lba(2), bufs });
    r.unwrap();
    let segs = op.into_bufs().unwrap();
    let segs = segs.segments();
    assert!(segs[0].iter().all(|&x| x == 2));
    assert!(segs[1][..BS].iter().all(|&x| x == 0xee) && segs[1][BS..].iter().all(|&x| x == 4));
}

#[test]
fn fua_write_supersedes_cached_data_and_survives_flush() {
    let inner = mem();
    let dev = cached(&inner, 5);
    let mut q = dev.queue(4).unwrap();
    write(&mut *q, &dev, 6, 2, 0x11, false).unwrap(); // cached: blocks 6, 7
    write(&mut *q, &dev, 7, 1, 0x22, true).unwrap(); // FUA over block 7
    assert!(
        block(&inner.snapshot(), 7).iter().all(|&x| x == 0x22),
        "FUA is on the media"
    );
    assert_eq!(
        read(&mut *q, &dev, 7, 1).unwrap(),
        vec![0x22; BS],
        "not the older cached copy"
    );
    wait::flush(&mut *q).unwrap();
    let image = inner.snapshot();
    assert!(block(&image, 6).iter().all(|&x| x == 0x11));
    assert!(
        block(&image, 7).iter().all(|&x| x == 0x22),
        "the write-back did not revert it"
    );
}

#[test]
fn write_back_skips_blocks_superseded_while_it_waits() {
    let inner = mem();
    let dev = cached(&inner, 6);
    let mut a = dev.queue(1).unwrap();
    let mut b = dev.queue(1).unwrap();
    for lba in (0..16).step_by(2) {
        write(&mut *a, &dev, lba, 1, 0x30, false).unwrap();
    }
    // Eight runs, room for two in `a`'s inner queue: the rest wait in its backlog.
    a.submit(1, Op::Flush).unwrap();
    // Meanwhile another queue overwrites a waiting block with FUA, and caches another.
    write(&mut *b, &dev, 14, 1, 0x77, true).unwrap();
    write(&mut *b, &dev, 12, 1, 0x55, false).unwrap();
    let mut done = Vec::with_capacity(1);
    while a.in_flight() > 0 {
        a.poll(&mut done);
    }
    done[0].result.clone().unwrap();
    let image = inner.snapshot();
    assert!(
        block(&image, 14).iter().all(|&x| x == 0x77),
        "the FUA data stays"
    );
    // Block 12 was rewritten after the flush was submitted: either version may be on the
    // media, and the newer one still reads back.
    assert!(
        block(&image, 12).iter().all(|&x| x == 0x30)
            || block(&image, 12).iter().all(|&x| x == 0x55)
    );
    assert_eq!(read(&mut *a, &dev, 12, 1).unwrap(), vec![0x55; BS]);
    for lba in (0..12).step_by(2) {
        assert!(
            block(&image, lba).iter().all(|&x| x == 0x30),
            "block {lba} written back"
        );
    }
}

#[test]
fn crash_during_write_back_ends_the_flush_with_removed() {
    let inner = mem();
    let dev = cached(&inner, 7);
    let mut q = dev.queue(1).unwrap();
    for lba in (0..16).step_by(2) {
        write(&mut *q, &dev, lba, 1, 0x40, false).unwrap();
    }
    q.submit(1, Op::Flush).unwrap(); // two runs in the inner queue, six waiting
    dev.crash(CrashKeep::DropAll).unwrap();
    let mut done = Vec::with_capacity(1);
    for _ in 0..100 {
        if q.in_flight() == 0 {
            break;
        }
        q.poll(&mut done);
    }
    assert_eq!(q.in_flight(), 0, "the flush did not hang");
    assert_eq!(
        (done[0].tag, done[0].result.clone()),
        (1, Err(IoError::Removed))
    );
    // What the write-back had already handed to the media stays; nothing else arrived.
    let image = inner.snapshot();
    let landed = (0..16)
        .step_by(2)
        .filter(|&b| block(&image, b)[0] == 0x40)
        .count();
    assert!(landed <= 2, "{landed} blocks landed");
}
