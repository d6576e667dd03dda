//! The `spdk` backend (feature `spdk`, SPDK installed): the conformance suite on SPDK's
//! malloc bdev (4 KiB and 512-byte blocks), on its uring bdev over a file and on a passthru
//! bdev, plus what is particular to SPDK: truthful durability (uring and null cannot flush),
//! FUA emulated as write + flush, hot remove, `-ENOMEM` as `QueueFull`, one environment per
//! process.
//!
//! SPDK starts once per process, so every test shares one environment (started from the
//! config below by the first test to run) and takes `LOCK` so that they run one at a time.
//! Hugepages are used when enough are free, else `no_huge`; `BDEV_SPDK_TEST_NO_HUGE=1`
//! forces `no_huge`.
#![cfg(feature = "spdk")]

mod common;

use common::{filled, pattern};

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bdev::spdk::{SpdkDevice, SpdkEnv, SpdkEnvOptions};
use bdev::{wait, BlockDevice, Bufs, Completion, DmaBuf, IoError, Lba, Op};

const BDEV_IO_POOL: usize = 1024;
/// Malloc0's UUID, which SPDK also registers as an alias of it.
const MALLOC0_UUID: &str = "5e7d3c2a-8f41-4b6e-9a0d-1c2b3a4d5e6f";

struct Fixture {
    env: Arc<SpdkEnv>,
    config: String,
    opts: SpdkEnvOptions,
    _dir: tempfile::TempDir,
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests and starts SPDK on first use.
fn setup() -> (MutexGuard<'static, ()>, &'static Fixture) {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    (guard, FIXTURE.get_or_init(start))
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("uring.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let config = config(&image);
    let opts = env_options();
    eprintln!(
        "SPDK test environment: {}",
        if opts.no_huge {
            "no hugepages"
        } else {
            "hugepages"
        }
    );
    let env = SpdkEnv::start(&config, opts.clone()).expect("SPDK starts");
    Fixture {
        env,
        config,
        opts,
        _dir: dir,
    }
}

fn config(image: &std::path::Path) -> String {
    serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_set_options",
         "params": {"bdev_io_pool_size": BDEV_IO_POOL, "bdev_io_cache_size": 16}},
        {"method": "bdev_malloc_create",
         "params": {"name": "Malloc0", "num_blocks": 4096, "block_size": 4096,
                    "uuid": MALLOC0_UUID}},
        {"method": "bdev_malloc_create",
         "params": {"name": "Malloc512", "num_blocks": 2048, "block_size": 512}},
        {"method": "bdev_malloc_create",
         "params": {"name": "Malloc1", "num_blocks": 1024, "block_size": 4096}},
        {"method": "bdev_passthru_create",
         "params": {"base_bdev_name": "Malloc1", "name": "Pass0"}},
        {"method": "bdev_malloc_create",
         "params": {"name": "Malloc2", "num_blocks": 1024, "block_size": 4096}},
        {"method": "bdev_error_create", "params": {"base_name": "Malloc2"}},
        {"method": "bdev_error_inject_error",
         "params": {"name": "EE_Malloc2", "io_type": "flush", "error_type": "failure", "num": 1}},
        {"method": "bdev_malloc_create",
         "params": {"name": "Victim", "num_blocks": 1024, "block_size": 4096}},
        {"method": "bdev_uring_create",
         "params": {"name": "Uring0", "filename": image, "block_size": 4096}},
        {"method": "bdev_null_create",
         "params": {"name": "Null0", "num_blocks": 1024, "block_size": 4096}}
    ]}]})
    .to_string()
}

/// Hugepages if at least 512 MiB of them are free, else ordinary memory.
fn env_options() -> SpdkEnvOptions {
    let forced = std::env::var_os("BDEV_SPDK_TEST_NO_HUGE").is_some_and(|v| v == "1");
    let free_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let field = |name: &str| -> Option<u64> {
                m.lines()
                    .find(|l| l.starts_with(name))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            };
            Some(field("HugePages_Free:")? * field("Hugepagesize:")? / 1024)
        })
        .unwrap_or(0);
    let no_huge = forced || free_mib < 512;
    SpdkEnvOptions {
        name: "bdev_spdk_test".into(),
        no_huge,
        mem_size_mb: no_huge.then_some(512),
        ..SpdkEnvOptions::default()
    }
}

fn open(f: &Fixture, name: &str) -> SpdkDevice {
    SpdkDevice::open(&f.env, name).unwrap_or_else(|e| panic!("open {name}: {e}"))
}

fn read_vec(dev: &dyn BlockDevice, lba: u64, len: usize) -> Vec<u8> {
    let mut q = dev.queue(2).unwrap();
    wait::read(&mut *q, Lba(lba), dev.alloc_buf(len).unwrap())
        .map_err(|(_, e)| e)
        .unwrap()
        .to_vec()
}

#[test]
fn conformance_on_malloc() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc0");
    let geo = dev.geometry();
    assert_eq!((geo.block_size, geo.block_count), (4096, 4096));
    // SPDK's malloc bdev needs no alignment; the floor is a sector.
    assert_eq!(geo.buf_align, 512);
    assert_eq!(dev.module_name(), "malloc");
    assert_eq!(dev.product_name(), "Malloc disk");
    // SPDK's malloc bdev says it has a write cache, and it honours flush.
    assert!(geo.flush_honoured && geo.fua_honoured && !geo.durability_unknowable());
    common::run_all(&dev);
}

#[test]
fn storage_id_names_the_bdev_whichever_alias_opened_it() {
    let (_g, f) = setup();
    let by_name = open(f, "Malloc0");
    let by_alias = open(f, MALLOC0_UUID);
    assert_eq!(by_alias.name(), MALLOC0_UUID);
    assert_eq!(by_name.storage_id().as_deref(), Some("spdk bdev Malloc0"));
    assert_eq!(by_alias.storage_id(), by_name.storage_id());
    let other = open(f, "Malloc512");
    assert_ne!(other.storage_id(), by_name.storage_id());
}

#[test]
fn conformance_on_malloc_512() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc512");
    assert_eq!(dev.geometry().block_size, 512);
    assert_eq!(dev.geometry().buf_align, 512);
    common::run_all(&dev);
}

#[test]
fn conformance_on_uring_over_a_file() {
    let (_g, f) = setup();
    let dev = open(f, "Uring0");
    assert_eq!(dev.module_name(), "uring");
    assert_eq!(dev.geometry().block_count, 4096);
    common::run_all(&dev);
}

#[test]
fn conformance_on_a_stacked_bdev_and_its_base_is_claimed() {
    let (_g, f) = setup();
    let dev = open(f, "Pass0");
    common::run_all(&dev);
    let err = SpdkDevice::open(&f.env, "Malloc1").unwrap_err().to_string();
    assert!(err.contains("claimed"), "{err}");
    let err = SpdkDevice::open(&f.env, "NoSuchBdev")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no SPDK bdev named") && err.contains("Malloc0"),
        "{err}"
    );
}

/// SPDK's uring and null bdevs cannot flush: the geometry says durability is unknowable,
/// flush and FUA fail as unsupported, and a refused FUA write writes nothing.
#[test]
fn bdevs_without_flush_say_so() {
    let (_g, f) = setup();
    for name in ["Uring0", "Null0"] {
        let dev = open(f, name);
        let geo = dev.geometry();
        assert!(
            geo.volatile_write_cache && !geo.flush_honoured && !geo.fua_honoured,
            "{name}: {geo:?}"
        );
        assert!(geo.durability_unknowable(), "{name}");
        let mut q = dev.queue(4).unwrap();
        assert_eq!(
            wait::flush(&mut *q),
            Err(IoError::Unsupported("flush")),
            "{name}"
        );
        let r = wait::write(&mut *q, Lba(7), filled(&dev, &pattern(1, 4096)), true);
        assert!(
            matches!(r, Err((_, IoError::Unsupported("FUA")))),
            "{name}: {r:?}"
        );
    }
    let dev = open(f, "Uring0");
    assert!(read_vec(&dev, 7, 4096).iter().all(|&b| b == 0));
}

/// FUA is a write then a flush: on an error bdev whose first flush fails, the first FUA
/// write fails (so the flush was sent), later ones succeed.
#[test]
fn fua_is_emulated_with_a_flush() {
    let (_g, f) = setup();
    let dev = open(f, "EE_Malloc2");
    assert!(dev.geometry().fua_honoured);
    let mut q = dev.queue(4).unwrap();
    let data = pattern(2, 8192);
    let r = wait::write(&mut *q, Lba(3), filled(&dev, &data), true);
    assert!(
        matches!(
            r,
            Err((
                _,
                IoError::Media {
                    op: "write",
                    lba: 3
                }
            ))
        ),
        "{r:?}"
    );
    // The write itself went through; only its flush failed.
    assert_eq!(read_vec(&dev, 3, data.len()), data);
    wait::write(&mut *q, Lba(5), filled(&dev, &data), true).unwrap();
    wait::flush(&mut *q).unwrap();
    assert_eq!(read_vec(&dev, 5, data.len()), data);
    // A FUA write-zeroes goes the same way.
    let zero = Op::WriteZeroes {
        lba: Lba(5),
        blocks: 2,
        fua: true,
    };
    wait::run(&mut *q, zero).1.unwrap();
    assert!(read_vec(&dev, 5, 8192).iter().all(|&b| b == 0));
}

/// SPDK out of `spdk_bdev_io`s (a pool of BDEV_IO_POOL here) is QueueFull below the
/// queue's depth, with the request given back intact, and a retry after polling works.
#[test]
fn enomem_is_queue_full() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc0");
    let depth = 4 * BDEV_IO_POOL;
    let mut q = dev.queue(depth).unwrap();
    let mut rejected = None;
    for tag in 0..depth as u64 {
        let op = Op::Read {
            lba: Lba(tag % 4096),
            bufs: dev.alloc_buf(4096).unwrap().into(),
        };
        if let Err(r) = q.submit(tag, op) {
            rejected = Some(r);
            break;
        }
    }
    let r = rejected.expect("SPDK ran out of bdev I/Os before the queue was full");
    assert!(r.is_queue_full(), "{r}");
    assert!(q.in_flight() < depth && q.in_flight() <= BDEV_IO_POOL);
    assert_eq!(
        r.op.bufs().unwrap().len(),
        4096,
        "request given back intact"
    );
    let mut done: Vec<Completion> = Vec::with_capacity(depth);
    while done.is_empty() {
        q.poll(&mut done);
    }
    q.submit(r.tag, r.op).unwrap();
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert!(done.iter().all(|c| c.result.is_ok()));
}

/// Hot remove: requests in flight complete, new ones fail with `Removed`, nothing crashes,
/// and SPDK finishes the removal once the device is dropped.
#[test]
fn hot_remove_fails_new_requests() {
    let (_g, f) = setup();
    let dev = open(f, "Victim");
    let mut q = dev.queue(16).unwrap();
    for i in 0..8u64 {
        let op = Op::Write {
            lba: Lba(i),
            bufs: filled(&dev, &pattern(i, 4096)).into(),
            fua: false,
        };
        q.submit(i, op).unwrap();
    }
    f.env.unregister_bdev("Victim").unwrap();
    let mut done = Vec::with_capacity(16);
    let since = Instant::now();
    while !dev.is_removed() || q.in_flight() > 0 {
        q.poll(&mut done);
        assert!(since.elapsed() < Duration::from_secs(10), "no remove event");
    }
    assert_eq!(done.len(), 8, "requests in flight completed");
    let r = wait::read(&mut *q, Lba(0), dev.alloc_buf(4096).unwrap());
    assert!(matches!(r, Err((_, IoError::Removed))), "{r:?}");
    assert_eq!(wait::flush(&mut *q), Err(IoError::Removed));
    drop(q);
    drop(dev);
    let since = Instant::now();
    while f.env.bdev_names().iter().any(|n| n == "Victim") {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "removal never ends"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(SpdkDevice::open(&f.env, "Victim").is_err());
}

#[test]
fn one_environment_per_process() {
    let (_g, f) = setup();
    let again = SpdkEnv::start(&f.config, f.opts.clone()).unwrap();
    assert!(Arc::ptr_eq(&again, &f.env));
    assert!(Arc::ptr_eq(&SpdkEnv::running().unwrap(), &f.env));
    let other = r#"{"subsystems":[{"subsystem":"bdev","config":[]}]}"#;
    let err = SpdkEnv::start(other, f.opts.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("already running"), "{err}");
    let err = SpdkEnv::start("{", f.opts.clone()).unwrap_err().to_string();
    assert!(err.contains("not valid JSON"), "{err}");
    // open_config with the running config joins it and lists the unclaimed bdevs.
    let devices = bdev::spdk::open_config(&f.config, f.opts.clone()).unwrap();
    let names: Vec<&str> = devices.iter().map(|(n, _)| n.as_str()).collect();
    for name in ["Malloc0", "Pass0", "EE_Malloc2", "Uring0", "Null0"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for claimed in ["Malloc1", "Malloc2"] {
        assert!(!names.contains(&claimed), "{claimed} is claimed: {names:?}");
    }
}

#[test]
fn queues_on_many_threads() {
    let (_g, f) = setup();
    let dev = Arc::new(open(f, "Malloc0"));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let dev = Arc::clone(&dev);
            std::thread::spawn(move || {
                let mut q = dev.queue(8).unwrap();
                for i in 0..32 {
                    let lba = 1000 + t * 32 + i;
                    let buf = filled(&*dev, &pattern(lba, 4096));
                    wait::write(&mut *q, Lba(lba), buf, false).unwrap();
                }
                wait::flush(&mut *q).unwrap();
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    for lba in 1000..1128u64 {
        assert!(
            read_vec(&*dev, lba, 4096) == pattern(lba, 4096),
            "block {lba}"
        );
    }
}

/// Dropping a queue with requests in flight waits for them; the buffers are not reused
/// while SPDK still writes them.
#[test]
fn dropping_a_busy_queue_waits() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc0");
    for round in 0..4u64 {
        let mut q = dev.queue(64).unwrap();
        for i in 0..64u64 {
            let op = Op::Write {
                lba: Lba(2000 + i * 4),
                bufs: filled(&dev, &pattern(round * 64 + i, 4 * 4096)).into(),
                fua: i % 8 == 0,
            };
            q.submit(i, op).unwrap();
        }
        drop(q);
        let got = read_vec(&dev, 2000 + 63 * 4, 4 * 4096);
        assert!(got == pattern(round * 64 + 63, 4 * 4096), "round {round}");
    }
}

/// Buffers of the native pool work too (malloc copies with the CPU), vectored or not.
#[test]
fn native_buffers_and_vectors() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc0");
    let mut q = dev.queue(4).unwrap();
    let data = pattern(9, 3 * 4096);
    let mut native = DmaBuf::alloc(data.len(), 4096).unwrap();
    native.copy_from_slice(&data);
    wait::write(&mut *q, Lba(300), native, false).unwrap();
    let segs = vec![
        DmaBuf::alloc(4096, 4096).unwrap(),
        dev.alloc_buf(2 * 4096).unwrap(),
    ];
    let (op, r) = wait::run(
        &mut *q,
        Op::Read {
            lba: Lba(300),
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
    assert_eq!(got, data);
    let b = dev.alloc_buf(5000).unwrap();
    assert!(b.is_aligned(dev.geometry().buf_align) && b.len() == 5000 && b.iter().all(|&x| x == 0));
    assert!(dev.queue(0).is_err());
}

#[test]
fn idle_poll_returns_nothing() {
    let (_g, f) = setup();
    let dev = open(f, "Malloc0");
    let mut q = dev.queue(8).unwrap();
    let mut done: Vec<Completion> = Vec::new();
    for _ in 0..1000 {
        assert_eq!(q.poll(&mut done), 0);
    }
    assert_eq!(q.in_flight(), 0);
}
