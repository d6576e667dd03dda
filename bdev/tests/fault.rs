//! Tests of the fault-injecting wrapper over a RAM device.
//!
//! Randomized tests print their seed and the command that replays it (`BFS_SEED`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bdev::fault::Persistence;
use bdev::fault::{CrashKeep, ErrorRule, FaultConfig, FaultDevice, Latency, Trigger};
use bdev::mem::MemDevice;
use bdev::OpKind;
use bdev::{wait, BdevError, BlockDevice, Bufs, Completion, DmaBuf, IoError, IoQueue, Lba, Op};

#[path = "fault/volatile_cache.rs"]
mod volatile_cache;

mod common;

const BS: usize = 512;
const BLOCKS: u64 = 64;

fn mem() -> Arc<MemDevice> {
    Arc::new(MemDevice::new("mem0", BS as u32, BLOCKS).unwrap())
}

fn fault(inner: &Arc<MemDevice>, config: FaultConfig) -> FaultDevice {
    FaultDevice::new("fault0", Arc::clone(inner) as Arc<dyn BlockDevice>, config).unwrap()
}

fn pattern_buf(dev: &dyn BlockDevice, blocks: usize, fill: u8) -> DmaBuf {
    let mut b = dev.alloc_buf(blocks * BS).unwrap();
    for (i, x) in b.iter_mut().enumerate() {
        *x = fill.wrapping_add((i / BS) as u8);
    }
    b
}

fn write(
    q: &mut dyn IoQueue,
    dev: &dyn BlockDevice,
    lba: u64,
    blocks: usize,
    fill: u8,
    fua: bool,
) -> Result<(), IoError> {
    wait::write(q, Lba(lba), pattern_buf(dev, blocks, fill), fua)
        .map(drop)
        .map_err(|(_, e)| e)
}

fn read(
    q: &mut dyn IoQueue,
    dev: &dyn BlockDevice,
    lba: u64,
    blocks: usize,
) -> Result<Vec<u8>, IoError> {
    let buf = dev.alloc_buf(blocks * BS).unwrap();
    wait::read(q, Lba(lba), buf)
        .map(|b| b.to_vec())
        .map_err(|(_, e)| e)
}

fn block(image: &[u8], lba: u64) -> &[u8] {
    &image[lba as usize * BS..(lba as usize + 1) * BS]
}

/// What a run of random requests observed: per request, its kind, outcome and read data.
type Trace = Vec<(OpKind, Result<(), IoError>, Vec<u8>)>;

fn random_run(config: FaultConfig, ops_seed: u64) -> (Trace, Vec<u8>, bdev::fault::FaultStats) {
    let inner = mem();
    let dev = fault(&inner, config);
    let mut q = dev.queue(4).unwrap();
    let mut rng = testkit::Rng::new(ops_seed);
    let mut trace = Trace::new();
    for i in 0..300 {
        let blocks = 1 + rng.below(4) as usize;
        let lba = rng.below(BLOCKS - blocks as u64);
        let entry = match rng.below(4) {
            0 | 1 => (
                OpKind::Write,
                write(&mut *q, &dev, lba, blocks, i as u8, false),
                vec![],
            ),
            2 => match read(&mut *q, &dev, lba, blocks) {
                Ok(data) => (OpKind::Read, Ok(()), data),
                Err(e) => (OpKind::Read, Err(e), vec![]),
            },
            _ => (OpKind::Flush, wait::flush(&mut *q), vec![]),
        };
        trace.push(entry);
    }
    (trace, inner.snapshot(), dev.stats())
}

fn noisy(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        errors: vec![
            ErrorRule::probability(OpKind::Read, 0.1),
            ErrorRule::probability(OpKind::Write, 0.1),
            ErrorRule::probability(OpKind::Flush, 0.05),
        ],
        corrupt_read_probability: 0.2,
        torn_write_probability: 0.2,
        misdirect_write_probability: 0.1,
        ..FaultConfig::default()
    }
}

#[test]
fn same_seed_same_faults_and_bytes() {
    let seed = testkit::seed!();
    let (trace_a, image_a, stats_a) = random_run(noisy(seed), seed);
    let (trace_b, image_b, stats_b) = random_run(noisy(seed), seed);
    assert_eq!(stats_a, stats_b);
    assert_eq!(
        trace_a, trace_b,
        "same seed, same requests: same outcomes and read bytes"
    );
    assert!(image_a == image_b, "same seed, same requests: same media");
    assert!(stats_a.read_errors > 0 && stats_a.write_errors > 0 && stats_a.corrupted_reads > 0);
    assert!(stats_a.torn_writes > 0 && stats_a.misdirected_writes > 0);

    let (trace_c, image_c, _) = random_run(noisy(seed ^ 1), seed);
    assert!(
        trace_c != trace_a || image_c != image_a,
        "another seed must change the faults"
    );
}

#[test]
fn nth_op_once_fails_only_that_op() {
    let inner = mem();
    let dev = fault(
        &inner,
        FaultConfig {
            errors: vec![ErrorRule::nth(OpKind::Write, 3)],
            ..Default::default()
        },
    );
    let mut q = dev.queue(2).unwrap();
    let results: Vec<bool> = (0..6)
        .map(|i| write(&mut *q, &dev, i, 1, 1, false).is_ok())
        .collect();
    assert_eq!(results, [true, true, false, true, true, true]);
    // Reads are another kind: untouched.
    assert!((0..4).all(|_| read(&mut *q, &dev, 0, 1).is_ok()));
    // The failed write never reached the media.
    let image = inner.snapshot();
    assert!(block(&image, 2).iter().all(|&b| b == 0));
    assert!(block(&image, 3).iter().all(|&b| b == 1));
    assert_eq!(dev.stats().write_errors, 1);
}

#[test]
fn nth_op_persistent_fails_every_later_op() {
    let inner = mem();
    let rule = ErrorRule::nth(OpKind::Read, 2).persistent();
    assert_eq!(rule.persistence, Persistence::Persistent);
    let dev = fault(
        &inner,
        FaultConfig {
            errors: vec![rule],
            ..Default::default()
        },
    );
    let mut q = dev.queue(2).unwrap();
    let results: Vec<bool> = (0..5).map(|_| read(&mut *q, &dev, 0, 1).is_ok()).collect();
    assert_eq!(results, [true, false, false, false, false]);
    assert!(write(&mut *q, &dev, 0, 1, 1, false).is_ok());
    assert_eq!(dev.stats().read_errors, 4);
}

#[test]
fn lba_range_limits_a_rule() {
    let inner = mem();
    let rule = ErrorRule {
        kind: OpKind::Write,
        trigger: Trigger::Probability(1.0),
        persistence: Persistence::Once,
        lba_range: Some((10, 12)),
    }
    .persistent();
    let dev = fault(
        &inner,
        FaultConfig {
            errors: vec![rule],
            ..Default::default()
        },
    );
    let mut q = dev.queue(2).unwrap();
    assert!(write(&mut *q, &dev, 8, 2, 1, false).is_ok()); // blocks 8, 9
    assert!(write(&mut *q, &dev, 9, 2, 1, false).is_err()); // 9, 10 overlaps
    assert!(write(&mut *q, &dev, 11, 1, 1, false).is_err());
    assert!(write(&mut *q, &dev, 12, 4, 1, false).is_ok());
}

#[test]
fn error_probability_is_plausible() {
    let seed = testkit::seed!();
    let inner = mem();
    let p = 0.3;
    let config = FaultConfig {
        seed,
        errors: vec![ErrorRule::probability(OpKind::Read, p)],
        ..Default::default()
    };
    let dev = fault(&inner, config);
    let mut q = dev.queue(1).unwrap();
    let n = 4000;
    let failed = (0..n)
        .filter(|_| read(&mut *q, &dev, 0, 1).is_err())
        .count();
    // Within 5 standard deviations of n·p: a false alarm about once in 3 million runs.
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (failed as f64 - n as f64 * p).abs() < 5.0 * sd,
        "{failed} of {n} failed"
    );
    assert_eq!(dev.stats().read_errors, failed as u64);
}

#[test]
fn errors_surface_in_completions_never_vanish() {
    let seed = testkit::seed!();
    let inner = mem();
    let config = FaultConfig {
        seed,
        errors: vec![
            ErrorRule::probability(OpKind::Write, 0.5),
            ErrorRule::probability(OpKind::WriteZeroes, 0.5),
        ],
        latency: Some(Latency {
            read_us: 0,
            write_us: 50,
            jitter_us: 200,
        }),
        ..Default::default()
    };
    let dev = fault(&inner, config);
    let mut q = dev.queue(16).unwrap();
    let (mut submitted, mut done, mut failed) = (0u64, Vec::new(), 0u64);
    let mut reaped = Vec::<Completion>::with_capacity(16);
    while submitted < 200 || q.in_flight() > 0 {
        while submitted < 200 && q.in_flight() < q.depth() {
            let op = if submitted % 3 == 0 {
                Op::WriteZeroes {
                    lba: Lba(submitted % BLOCKS),
                    blocks: 1,
                    fua: false,
                }
            } else {
                Op::Write {
                    lba: Lba(submitted % BLOCKS),
                    bufs: Bufs::One(pattern_buf(&dev, 1, 7)),
                    fua: false,
                }
            };
            q.submit(submitted, op).unwrap();
            submitted += 1;
        }
        q.poll(&mut reaped);
        for c in reaped.drain(..) {
            if let Err(e) = &c.result {
                assert!(matches!(e, IoError::Media { .. }), "{e}");
                failed += 1;
            }
            done.push(c.tag);
        }
    }
    done.sort_unstable();
    assert_eq!(
        done,
        (0..200).collect::<Vec<_>>(),
        "each request completes exactly once"
    );
    let stats = dev.stats();
    assert_eq!(stats.write_errors + stats.write_zeroes_errors, failed);
    assert!(failed > 0 && failed < 200);
}

#[test]
fn latency_holds_completions_until_their_deadline() {
    let inner = mem();
    let latency = Latency {
        read_us: 20_000,
        write_us: 5_000,
        jitter_us: 0,
    };
    let dev = fault(
        &inner,
        FaultConfig {
            latency: Some(latency),
            ..Default::default()
        },
    );
    let mut q = dev.queue(2).unwrap();
    let start = Instant::now();
    q.submit(
        1,
        Op::Read {
            lba: Lba(0),
            bufs: Bufs::One(dev.alloc_buf(BS).unwrap()),
        },
    )
    .unwrap();
    let mut done = Vec::with_capacity(2);
    assert_eq!(q.poll(&mut done), 0, "not before the deadline");
    assert_eq!(q.in_flight(), 1);
    while q.poll(&mut done) == 0 {
        std::thread::yield_now();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!((done[0].tag, done[0].result.clone()), (1, Ok(())));
    assert_eq!(q.in_flight(), 0);
    assert_eq!(dev.stats().delayed, 1);
}

#[test]
fn torn_write_leaves_a_prefix_of_blocks() {
    let seed = testkit::seed!();
    let mut kept_counts = std::collections::BTreeSet::new();
    for s in 0..16 {
        let inner = mem();
        let config = FaultConfig {
            seed: seed.wrapping_add(s),
            torn_write_probability: 1.0,
            ..Default::default()
        };
        let dev = fault(&inner, config);
        let mut q = dev.queue(1).unwrap();
        assert_eq!(
            write(&mut *q, &dev, 4, 8, 100, false),
            Ok(()),
            "a torn write reports success"
        );
        assert_eq!(dev.stats().torn_writes, 1);
        let image = inner.snapshot();
        let landed: Vec<bool> = (4..12)
            .map(|b| block(&image, b).iter().any(|&x| x != 0))
            .collect();
        let kept = landed.iter().take_while(|&&l| l).count();
        assert!(
            landed[kept..].iter().all(|&l| !l),
            "not a prefix: {landed:?}"
        );
        assert!(kept < 8, "a torn write loses at least its last block");
        for b in 0..kept as u64 {
            assert!(block(&image, 4 + b).iter().all(|&x| x == 100 + b as u8));
        }
        kept_counts.insert(kept);
    }
    assert!(
        kept_counts.len() > 1,
        "tearing point varies with the seed: {kept_counts:?}"
    );
    // Single-block writes are atomic.
    let inner = mem();
    let dev = fault(
        &inner,
        FaultConfig {
            torn_write_probability: 1.0,
            ..Default::default()
        },
    );
    let mut q = dev.queue(1).unwrap();
    write(&mut *q, &dev, 0, 1, 5, false).unwrap();
    assert!(block(&inner.snapshot(), 0).iter().all(|&x| x == 5));
}

#[test]
fn misdirected_write_lands_elsewhere_whole() {
    let seed = testkit::seed!();
    let inner = mem();
    let dev = fault(
        &inner,
        FaultConfig {
            seed,
            misdirect_write_probability: 1.0,
            ..Default::default()
        },
    );
    let mut q = dev.queue(1).unwrap();
    let buf = pattern_buf(&dev, 2, 9);
    let (op, result) = wait::run(
        &mut *q,
        Op::Write {
            lba: Lba(10),
            bufs: Bufs::One(buf),
            fua: false,
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!(
        op.lba(),
        Some(Lba(10)),
        "the caller gets its request back as it sent it"
    );
    let image = inner.snapshot();
    let written: Vec<u64> = (0..BLOCKS)
        .filter(|&b| block(&image, b).iter().any(|&x| x != 0))
        .collect();
    assert_eq!(written.len(), 2, "the write landed whole, and only once");
    assert_ne!(written[0], 10, "it landed at another LBA");
    assert_eq!(written[1], written[0] + 1);
    assert!(block(&image, written[0]).iter().all(|&x| x == 9));
    assert!(block(&image, written[1]).iter().all(|&x| x == 10));
    assert_eq!(dev.stats().misdirected_writes, 1);
}

#[test]
fn corrupted_read_differs_in_a_few_bytes_media_intact() {
    let seed = testkit::seed!();
    let inner = mem();
    let dev = fault(
        &inner,
        FaultConfig {
            seed,
            corrupt_read_probability: 1.0,
            ..Default::default()
        },
    );
    let mut q = dev.queue(1).unwrap();
    write(&mut *q, &dev, 3, 2, 50, false).unwrap();
    let data = read(&mut *q, &dev, 3, 2).unwrap();
    let image = inner.snapshot();
    let expected = &image[3 * BS..5 * BS];
    let diff = data.iter().zip(expected).filter(|(a, b)| a != b).count();
    assert!((1..=4).contains(&diff), "{diff} bytes differ");
    assert!(
        expected
            .iter()
            .enumerate()
            .all(|(i, &x)| x == 50 + (i / BS) as u8),
        "media untouched"
    );
    assert_eq!(dev.stats().corrupted_reads, 1);
}

#[test]
fn no_faults_is_a_pass_through() {
    let inner = mem();
    let dev = fault(&inner, FaultConfig::default());
    assert_eq!(dev.geometry(), inner.geometry());
    let mut q = dev.queue(2).unwrap();
    write(&mut *q, &dev, 5, 3, 1, true).unwrap();
    assert_eq!(
        read(&mut *q, &dev, 5, 3).unwrap(),
        inner.snapshot()[5 * BS..8 * BS].to_vec()
    );
    // Invalid requests are rejected at submission, as on the inner device.
    let r = q
        .submit(
            1,
            Op::Unmap {
                lba: Lba(BLOCKS),
                blocks: 1,
            },
        )
        .unwrap_err();
    assert!(!r.is_queue_full());
    assert_eq!(dev.stats(), Default::default());
}

#[test]
fn bad_configs_are_refused_with_the_device_name() {
    let bad = [
        FaultConfig {
            corrupt_read_probability: 1.5,
            ..Default::default()
        },
        FaultConfig {
            torn_write_probability: f64::NAN,
            ..Default::default()
        },
        FaultConfig {
            errors: vec![ErrorRule::nth(OpKind::Read, 0)],
            ..Default::default()
        },
        FaultConfig {
            errors: vec![ErrorRule::probability(OpKind::Write, -0.1)],
            ..Default::default()
        },
        FaultConfig {
            errors: vec![ErrorRule::nth(OpKind::Flush, 1).in_range(0, 4)],
            ..Default::default()
        },
        FaultConfig {
            errors: vec![ErrorRule::nth(OpKind::Write, 1).in_range(4, 4)],
            ..Default::default()
        },
    ];
    for config in bad {
        let inner = mem();
        match FaultDevice::new("f9", inner as Arc<dyn BlockDevice>, config.clone()) {
            Err(BdevError::Config(msg)) => assert!(msg.starts_with("fault f9: "), "{msg}"),
            Err(e) => panic!("{config:?}: wrong error {e}"),
            Ok(_) => panic!("{config:?} accepted"),
        }
    }
}

#[test]
fn conformance_without_faults() {
    let inner = Arc::new(MemDevice::new("Malloc0", 4096, 512).unwrap());
    common::run_all(&FaultDevice::new("Fault0", inner, FaultConfig::default()).unwrap());
}

#[test]
fn conformance_with_volatile_cache_and_latency() {
    // Faults that keep the contract: the cache is invisible to reads, latency only delays.
    let inner = Arc::new(MemDevice::new("Malloc1", 512, 1024).unwrap());
    let config = FaultConfig {
        seed: 11,
        volatile_cache: true,
        latency: Some(Latency {
            read_us: 10,
            write_us: 30,
            jitter_us: 100,
        }),
        ..FaultConfig::default()
    };
    common::run_all(&FaultDevice::new("Fault1", inner, config).unwrap());
}
