//! The conformance suite every backend passes: the contract of `BlockDevice` and `IoQueue`
//! checked through the public API only. A backend's test file runs `run_all` on a device of
//! at least 256 blocks whose content the suite may overwrite.
#![allow(dead_code)]

use bdev::{wait, BlockDevice, Bufs, Completion, DmaBuf, IoError, Lba, Op, SubmitError};

/// Runs every check of the suite.
pub fn run_all(dev: &dyn BlockDevice) {
    round_trip(dev);
    vectored(dev);
    bad_requests_are_rejected(dev);
    queue_full_then_retry(dev);
    zeroing_ops(dev);
    many_in_flight(dev);
}

/// Deterministic test bytes: the same `seed` and `len` give the same bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A DMA buffer of `dev` holding `data`.
pub fn filled(dev: &dyn BlockDevice, data: &[u8]) -> DmaBuf {
    let mut b = dev.alloc_buf(data.len()).unwrap();
    b.copy_from_slice(data);
    b
}

fn read_back(dev: &dyn BlockDevice, lba: u64, len: usize) -> Vec<u8> {
    let mut q = dev.queue(4).unwrap();
    let buf = dev.alloc_buf(len).unwrap();
    wait::read(&mut *q, Lba(lba), buf)
        .map_err(|(_, e)| e)
        .unwrap()
        .to_vec()
}

/// Data written at a block comes back from a read, on the same and on another queue.
pub fn round_trip(dev: &dyn BlockDevice) {
    let bs = dev.geometry().block_size as usize;
    let mut q = dev.queue(8).unwrap();
    for (lba, blocks) in [(0u64, 1usize), (3, 2), (dev.geometry().block_count - 4, 4)] {
        let data = pattern(lba, blocks * bs);
        wait::write(&mut *q, Lba(lba), filled(dev, &data), false).unwrap();
        assert_eq!(
            read_back(dev, lba, data.len()),
            data,
            "round trip at LBA {lba}"
        );
    }
    match wait::flush(&mut *q) {
        Ok(()) => {}
        // Only a device that says so may lack flush (SPDK's uring and null bdevs).
        Err(IoError::Unsupported(_)) if !dev.geometry().flush_honoured => {
            eprintln!("{}: flush unsupported, as its geometry says", dev.name())
        }
        Err(e) => panic!("flush: {e}"),
    }
}

/// writev lays segments out back to back; readv scatters them the same way.
pub fn vectored(dev: &dyn BlockDevice) {
    let bs = dev.geometry().block_size as usize;
    let mut q = dev.queue(8).unwrap();
    let data = pattern(77, 7 * bs);
    let segs = vec![
        filled(dev, &data[..bs]),
        filled(dev, &data[bs..4 * bs]),
        filled(dev, &data[4 * bs..]),
    ];
    let (_, r) = wait::run(
        &mut *q,
        Op::Write {
            lba: Lba(10),
            bufs: Bufs::Many(segs),
            fua: false,
        },
    );
    r.unwrap();
    assert_eq!(read_back(dev, 10, data.len()), data, "writev then read");

    let segs = vec![
        dev.alloc_buf(2 * bs).unwrap(),
        dev.alloc_buf(5 * bs).unwrap(),
    ];
    let (op, r) = wait::run(
        &mut *q,
        Op::Read {
            lba: Lba(10),
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
    assert_eq!(got, data, "readv");
}

fn expect_invalid(q: &mut dyn bdev::IoQueue, op: Op, what: &str) {
    match q.submit(1, op) {
        Err(r) => match r.error {
            SubmitError::Rejected(IoError::Invalid(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected an invalid-request rejection, got {other:?}"),
        },
        Ok(()) => panic!("{what}: accepted"),
    }
}

/// Misaligned buffers, partial blocks and out-of-range LBAs are refused with a message.
pub fn bad_requests_are_rejected(dev: &dyn BlockDevice) {
    let geo = dev.geometry();
    let bs = geo.block_size as usize;
    let count = geo.block_count;
    let mut q = dev.queue(4).unwrap();
    let q = &mut *q;

    let short = DmaBuf::alloc(bs - 1, geo.buf_align).unwrap();
    expect_invalid(
        q,
        Op::Write {
            lba: Lba(0),
            bufs: short.into(),
            fua: false,
        },
        "partial block",
    );

    let mut big = DmaBuf::alloc(2 * bs + geo.buf_align, geo.buf_align).unwrap();
    let mut off = big.split_off(geo.buf_align / 2 + 1);
    off.truncate(bs);
    expect_invalid(
        q,
        Op::Read {
            lba: Lba(0),
            bufs: off.into(),
        },
        "misaligned buffer",
    );
    big.truncate(0);

    let one = dev.alloc_buf(bs).unwrap();
    expect_invalid(
        q,
        Op::Read {
            lba: Lba(count),
            bufs: one.into(),
        },
        "LBA at end",
    );
    let two = dev.alloc_buf(2 * bs).unwrap();
    expect_invalid(
        q,
        Op::Write {
            lba: Lba(count - 1),
            bufs: two.into(),
            fua: true,
        },
        "crossing end",
    );
    let one = dev.alloc_buf(bs).unwrap();
    expect_invalid(
        q,
        Op::Read {
            lba: Lba(u64::MAX),
            bufs: one.into(),
        },
        "LBA overflow",
    );
    expect_invalid(
        q,
        Op::Read {
            lba: Lba(0),
            bufs: Bufs::Many(Vec::new()),
        },
        "no buffers",
    );
    expect_invalid(
        q,
        Op::Unmap {
            lba: Lba(0),
            blocks: 0,
        },
        "empty unmap",
    );
    expect_invalid(
        q,
        Op::WriteZeroes {
            lba: Lba(count),
            blocks: 1,
            fua: false,
        },
        "zeroes past end",
    );
    assert_eq!(q.in_flight(), 0, "rejected requests are not in flight");
}

/// A queue of depth d accepts d requests, refuses the next with QueueFull (handing it back
/// intact), and accepts it again once a completion is reaped.
pub fn queue_full_then_retry(dev: &dyn BlockDevice) {
    let bs = dev.geometry().block_size as usize;
    let depth = 4;
    let mut q = dev.queue(depth).unwrap();
    for tag in 0..depth as u64 {
        let op = Op::Read {
            lba: Lba(tag),
            bufs: dev.alloc_buf(bs).unwrap().into(),
        };
        q.submit(tag, op).unwrap();
    }
    assert_eq!(q.in_flight(), depth);
    let marker = filled(dev, &pattern(5, bs));
    let rejected = q
        .submit(
            99,
            Op::Write {
                lba: Lba(50),
                bufs: marker.into(),
                fua: false,
            },
        )
        .unwrap_err();
    assert!(
        rejected.is_queue_full(),
        "expected QueueFull, got {rejected}"
    );
    assert_eq!(rejected.tag, 99);
    let op = rejected.op;
    assert_eq!(
        op.bufs().unwrap().segments()[0].to_vec(),
        pattern(5, bs),
        "request handed back intact"
    );

    let mut done: Vec<Completion> = Vec::with_capacity(depth);
    while done.is_empty() {
        q.poll(&mut done);
    }
    q.submit(99, op).unwrap();
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert_eq!(done.len(), depth + 1);
    assert!(done.iter().all(|c| c.result.is_ok()));
    let mut tags: Vec<u64> = done.iter().map(|c| c.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, vec![0, 1, 2, 3, 99]);
}

/// write-zeroes always reads back as zeroes; unmap reads back as zeroes or the old data.
pub fn zeroing_ops(dev: &dyn BlockDevice) {
    let bs = dev.geometry().block_size as usize;
    let mut q = dev.queue(4).unwrap();
    let old = pattern(9, 4 * bs);
    wait::write(&mut *q, Lba(20), filled(dev, &old), false).unwrap();
    let (_, r) = wait::run(
        &mut *q,
        Op::WriteZeroes {
            lba: Lba(21),
            blocks: 2,
            fua: false,
        },
    );
    match r {
        Ok(()) => {
            let got = read_back(dev, 20, 4 * bs);
            assert_eq!(&got[..bs], &old[..bs]);
            assert!(
                got[bs..3 * bs].iter().all(|&b| b == 0),
                "write-zeroes left data"
            );
            assert_eq!(&got[3 * bs..], &old[3 * bs..]);
        }
        Err(IoError::Unsupported(_)) => eprintln!("{}: write-zeroes unsupported", dev.name()),
        Err(e) => panic!("write-zeroes: {e}"),
    }
    wait::write(&mut *q, Lba(20), filled(dev, &old), false).unwrap();
    let (_, r) = wait::run(
        &mut *q,
        Op::Unmap {
            lba: Lba(20),
            blocks: 4,
        },
    );
    match r {
        Ok(()) => {
            let got = read_back(dev, 20, 4 * bs);
            for (i, blk) in got.chunks(bs).enumerate() {
                let was = &old[i * bs..(i + 1) * bs];
                assert!(
                    blk.iter().all(|&b| b == 0) || blk == was,
                    "unmapped block {i} shows other bytes"
                );
            }
        }
        Err(IoError::Unsupported(_)) => eprintln!("{}: unmap unsupported", dev.name()),
        Err(e) => panic!("unmap: {e}"),
    }
}

/// A full queue of writes to distinct blocks, then reads of all of them, each with the
/// right data: completions carry the right tag and buffers.
pub fn many_in_flight(dev: &dyn BlockDevice) {
    let bs = dev.geometry().block_size as usize;
    let depth = 32usize;
    let mut q = dev.queue(depth).unwrap();
    let base = 100u64;
    for i in 0..depth as u64 {
        let op = Op::Write {
            lba: Lba(base + i),
            bufs: filled(dev, &pattern(1000 + i, bs)).into(),
            fua: false,
        };
        q.submit(i, op).unwrap();
    }
    let mut done = Vec::with_capacity(depth);
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert!(done.iter().all(|c| c.result.is_ok()));
    for c in done.drain(..) {
        let mut buf = c.op.into_bufs().unwrap().into_one().unwrap();
        buf.fill(0);
        q.submit(
            c.tag,
            Op::Read {
                lba: Lba(base + c.tag),
                bufs: buf.into(),
            },
        )
        .unwrap();
    }
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert_eq!(done.len(), depth);
    for c in done {
        c.result.unwrap();
        let buf = c.op.into_bufs().unwrap().into_one().unwrap();
        assert_eq!(
            buf.to_vec(),
            pattern(1000 + c.tag, bs),
            "tag {} got another block's data",
            c.tag
        );
    }
}
