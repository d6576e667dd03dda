//! Where the filesystem's device I/O waits, on any SPDK bdev (feature `spdk`): formats the
//! bdev, writes a file once, then runs direct 4 KiB random writes (or reads) at a queue
//! depth on it for some seconds, with every device queue wrapped in a counter, and prints
//! per OS thread (the I/O thread, the folder thread, SPDK's) and kind of request: how many,
//! their mean latency, how many went out with nothing else in flight on their queue, and how
//! long the queue spent with 0, 1, 2-7 and 8 or more requests in flight.
//!
//! ```text
//! spdk_waits -c CONFIG.json -b BDEV [--no-huge] [-s MB] [-q 32] [-t 5] [--read]
//!            [--file-mib 64]
//! ```
//!
//! A queue that spends its time at one request in flight is a thread waiting on one I/O at
//! a time; over a network (NVMe/TCP) each such wait is a round trip.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdev::spdk::{SpdkDevice, SpdkEnv, SpdkEnvOptions};
use bdev::{BdevError, BlockDevice, Completion, DmaBuf, Geometry, IoQueue, Op, Rejected};
use fs_core::{Filesystem, FormatOptions, MountOptions, OpenFlags};

/// Counts of one kind of request on one thread.
#[derive(Default, Clone)]
struct Kind {
    count: u64,
    latency_ns: u128,
    alone: u64,
}

/// What the queues of one OS thread saw.
#[derive(Default, Clone)]
struct ThreadStats {
    kinds: BTreeMap<&'static str, Kind>,
    /// Time with 0, 1, 2-7 and 8+ requests in flight, from the queue's first request on.
    depth_ns: [u128; 4],
}

static STATS: Mutex<BTreeMap<String, ThreadStats>> = Mutex::new(BTreeMap::new());
/// Bumped when the timed part starts: each queue then forgets what it counted before.
static EPOCH: AtomicU64 = AtomicU64::new(0);

struct Counted {
    inner: Arc<dyn BlockDevice>,
}

impl BlockDevice for Counted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        Ok(Box::new(CountedQueue {
            inner: self.inner.queue(depth)?,
            thread: std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string(),
            started: BTreeMap::new(),
            stats: ThreadStats::default(),
            last: None,
            epoch: EPOCH.load(Ordering::Relaxed),
        }))
    }
    fn alloc_buf(&self, len: usize) -> Result<DmaBuf, BdevError> {
        self.inner.alloc_buf(len)
    }
    fn storage_id(&self) -> Option<String> {
        self.inner.storage_id()
    }
}

struct CountedQueue {
    inner: Box<dyn IoQueue>,
    thread: String,
    started: BTreeMap<u64, (Instant, &'static str)>,
    stats: ThreadStats,
    /// When the in-flight count last changed.
    last: Option<Instant>,
    epoch: u64,
}

impl CountedQueue {
    fn check_epoch(&mut self) {
        let now = EPOCH.load(Ordering::Relaxed);
        if now != self.epoch {
            self.epoch = now;
            self.stats = ThreadStats::default();
            self.last = None;
        }
    }

    /// Charges the time since the last change to the current in-flight bucket.
    fn tick(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let bucket = match self.inner.in_flight() {
                0 => 0,
                1 => 1,
                2..=7 => 2,
                _ => 3,
            };
            self.stats.depth_ns[bucket] += now.duration_since(last).as_nanos();
        }
        self.last = Some(now);
    }
}

impl IoQueue for CountedQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        self.check_epoch();
        let now = Instant::now();
        let kind = op.kind().name();
        let alone = self.inner.in_flight() == 0;
        self.tick(now);
        self.inner.submit(tag, op)?;
        let k = self.stats.kinds.entry(kind).or_default();
        k.count += 1;
        k.alone += u64::from(alone);
        self.started.insert(tag, (now, kind));
        Ok(())
    }
    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        self.check_epoch();
        let from = done.len();
        let n = self.inner.poll(done);
        if n > 0 {
            let now = Instant::now();
            // The requests just reaped counted as in flight until now.
            if let Some(last) = self.last {
                let before = self.inner.in_flight() + n;
                let bucket = match before {
                    0 => 0,
                    1 => 1,
                    2..=7 => 2,
                    _ => 3,
                };
                self.stats.depth_ns[bucket] += now.duration_since(last).as_nanos();
            }
            self.last = Some(now);
            for c in &done[from..] {
                if let Some((at, kind)) = self.started.remove(&c.tag) {
                    self.stats.kinds.entry(kind).or_default().latency_ns +=
                        now.duration_since(at).as_nanos();
                }
            }
        }
        n
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
    fn depth(&self) -> usize {
        self.inner.depth()
    }
    fn wait(&mut self) -> bool {
        self.inner.wait()
    }
    fn merge_limit(&self) -> usize {
        self.inner.merge_limit()
    }
}

impl Drop for CountedQueue {
    fn drop(&mut self) {
        let mut all = STATS.lock().unwrap_or_else(|e| e.into_inner());
        let t = all.entry(self.thread.clone()).or_default();
        for (kind, k) in &self.stats.kinds {
            let e = t.kinds.entry(kind).or_default();
            e.count += k.count;
            e.latency_ns += k.latency_ns;
            e.alone += k.alone;
        }
        for (a, b) in t.depth_ns.iter_mut().zip(self.stats.depth_ns) {
            *a += b;
        }
    }
}

struct Args {
    config: String,
    bdev: String,
    opts: SpdkEnvOptions,
    depth: usize,
    seconds: f64,
    read: bool,
    file_mib: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        config: String::new(),
        bdev: String::new(),
        opts: SpdkEnvOptions {
            name: "spdk_waits".into(),
            ..SpdkEnvOptions::default()
        },
        depth: 32,
        seconds: 5.0,
        read: false,
        file_mib: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("{v}: not a number"));
        match flag.as_str() {
            "-c" => {
                let path = value()?;
                a.config = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            }
            "-b" => a.bdev = value()?,
            "--no-huge" => a.opts.no_huge = true,
            "-s" => a.opts.mem_size_mb = Some(num(value()?)? as u32),
            "-q" => a.depth = num(value()?)? as usize,
            "-t" => a.seconds = num(value()?)?,
            "--file-mib" => a.file_mib = num(value()?)? as u64,
            "--read" => a.read = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.config.is_empty() || a.bdev.is_empty() || a.depth == 0 {
        return Err(
            "usage: spdk_waits -c CONFIG.json -b BDEV [--no-huge] [-s MB] [-q 32] \
                    [-t 5] [--read] [--file-mib 64]"
                .into(),
        );
    }
    Ok(a)
}

fn main() {
    let a = parse().unwrap_or_else(|e| {
        eprintln!("spdk_waits: {e}");
        std::process::exit(2)
    });
    let env = SpdkEnv::start(&a.config, a.opts.clone()).unwrap_or_else(|e| {
        eprintln!("spdk_waits: {e}");
        std::process::exit(2)
    });
    let inner: Arc<dyn BlockDevice> =
        Arc::new(SpdkDevice::open(&env, &a.bdev).unwrap_or_else(|e| {
            eprintln!("spdk_waits: {}: {e}", a.bdev);
            std::process::exit(2)
        }));
    let dev: Arc<dyn BlockDevice> = Arc::new(Counted { inner });
    Filesystem::format(Arc::clone(&dev), FormatOptions::default()).expect("format");
    let fs = Filesystem::mount(Arc::clone(&dev), MountOptions::default()).expect("mount");
    let ctx = fs.context().expect("context");
    let size = a.file_mib << 20;
    let flags = OpenFlags {
        direct: true,
        ..OpenFlags::read_write_create()
    };
    let f = fs.open(&ctx, "/f", flags, 0o644).expect("open");
    let chunk = vec![0x5au8; 1 << 20];
    for off in (0..size).step_by(chunk.len()) {
        f.write_at(&ctx, off, &chunk).expect("prefill");
    }
    f.fsync(&ctx).expect("fsync");
    // Only the timed part counts.
    STATS.lock().unwrap().clear();
    EPOCH.fetch_add(1, Ordering::Relaxed);
    let read = a.read;
    let blocks = size / 4096;
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let ios = std::cell::Cell::new(0u64);
    let failed = std::cell::Cell::new(0u64);
    let started = Instant::now();
    let workers = (0..a.depth as u64).map(|w| {
        let (f, ctx, ios, failed) = (&f, &ctx, &ios, &failed);
        let mut buf = f.alloc_buf(4096).expect("buffer");
        buf.fill(w as u8);
        async move {
            let mut x = w.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            while Instant::now() < deadline {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = (x % blocks) * 4096;
                let (b, r) = if read {
                    f.read_at_async(ctx, pos, buf).await
                } else {
                    f.write_at_async(ctx, pos, buf).await
                };
                buf = b;
                if r.is_ok() {
                    ios.set(ios.get() + 1);
                } else {
                    failed.set(failed.get() + 1);
                }
            }
        }
    });
    let cpu_before = thread_cpu();
    ctx.block_on(bdev::exec::join_all(workers));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = thread_cpu();
    // Queues report when dropped: the file, this thread's context, then the mount.
    drop(f);
    let folds = fs.background_folds();
    fs.unmount(&ctx).expect("unmount");
    drop(ctx);
    let n = ios.get();
    println!(
        "{} 4 KiB direct {} QD {} on {}: {n} done, {} failed, {:.0} IOPS over {elapsed:.1} s; \
         background folds {folds}",
        if a.read {
            "random reads"
        } else {
            "random writes"
        },
        if a.read { "read" } else { "write" },
        a.depth,
        a.bdev,
        failed.get(),
        n as f64 / elapsed
    );
    println!(
        "{:16} {:6} {:>9} {:>9} {:>10} {:>7} | time at 0 / 1 / 2-7 / 8+ in flight (ms)",
        "thread", "kind", "count", "per I/O", "mean lat", "alone"
    );
    for (thread, t) in STATS.lock().unwrap().iter() {
        for (kind, k) in &t.kinds {
            println!(
                "{thread:16} {kind:6} {:>9} {:>9.3} {:>8.1}us {:>6.1}%",
                k.count,
                k.count as f64 / n.max(1) as f64,
                k.latency_ns as f64 / k.count.max(1) as f64 / 1e3,
                100.0 * k.alone as f64 / k.count.max(1) as f64
            );
        }
        let ms: Vec<String> = t
            .depth_ns
            .iter()
            .map(|ns| format!("{:.0}", *ns as f64 / 1e6))
            .collect();
        println!("{thread:16} {:>47} | {}", "", ms.join(" / "));
    }
    // CPU the threads received while timed: a thread short of the wall time was blocked
    // (or had to share its core).
    for (name, after) in &cpu_after {
        let before = cpu_before.get(name).copied().unwrap_or(0.0);
        println!(
            "CPU {name:16} {:6.2} s of {elapsed:.2} s ({:.2} us per I/O)",
            after - before,
            (after - before) * 1e6 / n.max(1) as f64
        );
    }
}

/// CPU seconds (user + system) each thread of this process has used, summed by thread name.
fn thread_cpu() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let path = t.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() == 2 {
            *out.entry(comm.trim().to_string()).or_default() += (f[0] + f[1]) / 100.0;
        }
    }
    out
}
