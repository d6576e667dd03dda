//! Crash tests in the style of CrashMonkey's Ace: every 1-operation workload (each op ×
//! fsync / fdatasync / sync) and a sampled set of 2-operation workloads run on a `record`
//! device. At every crash point (after every write and every flush), with the unflushed
//! writes dropped, all landed and randomly landed (torn): the image mounts, fsck is clean,
//! the namespace is one the workload passed through (operations are atomic), and no file
//! holds a byte never written to it. At each persistence point (the state exactly when the
//! fsync/fdatasync/sync returned) the namespace and the persisted files are exactly as the
//! workload left them.
//!
//! `BFS_SEED` picks the 2-op sample; `FS_CRASH_SWEEP=full` runs every 2-op workload and more
//! random picks.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bdev::record::{CrashPick, RecordDevice};
use bdev::BlockDevice;
use common::*;
use fs_core::{Context, FallocMode, File, Filesystem, OpenFlags};
use testkit::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Creat,
    Mkdir,
    WriteBuffered,
    WriteDirect,
    Falloc,
    Link,
    Unlink,
    Rename,
    Truncate,
    SetXattr,
    /// A tiny write to the empty `/bar`: inline when written back by sync.
    WriteTiny,
}

const OPS: [Op; 11] = [
    Op::Creat,
    Op::Mkdir,
    Op::WriteBuffered,
    Op::WriteDirect,
    Op::Falloc,
    Op::Link,
    Op::Unlink,
    Op::Rename,
    Op::Truncate,
    Op::SetXattr,
    Op::WriteTiny,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persist {
    Fsync,
    Fdatasync,
    Sync,
}

const PERSISTS: [Persist; 3] = [Persist::Fsync, Persist::Fdatasync, Persist::Sync];

/// What the workload believes: names → (is dir, file id), and per file its bytes and, per
/// byte, the write ids that ever covered it (a byte may only read as 0 or one of those).
#[derive(Clone, Default)]
struct Model {
    names: BTreeMap<String, (bool, u32)>,
    data: HashMap<u32, Vec<u8>>,
    ever: HashMap<u32, Vec<u32>>,
    next_write: u32,
}

impl Model {
    fn write(&mut self, id: u32, off: usize, len: usize) {
        let w = self.next_write;
        self.next_write += 1;
        let d = self.data.entry(id).or_default();
        if d.len() < off + len {
            d.resize(off + len, 0);
        }
        d[off..off + len].fill(w as u8 + 1);
        let e = self.ever.entry(id).or_default();
        if e.len() < off + len {
            e.resize(off + len, 0);
        }
        for m in &mut e[off..off + len] {
            *m |= 1 << w;
        }
    }

    fn ns(&self) -> BTreeMap<String, bool> {
        self.names.iter().map(|(k, v)| (k.clone(), v.0)).collect()
    }
}

/// A recorded workload: the device, the namespaces passed through, and the persistence
/// points with what they promise.
struct Run {
    rec: Arc<RecordDevice>,
    namespaces: Vec<BTreeMap<String, bool>>,
    /// Names → file ids, for each namespace above.
    ids: Vec<BTreeMap<String, (bool, u32)>>,
    /// (log length, model then, paths whose contents must match exactly).
    points: Vec<(usize, Model, Vec<String>)>,
    model: Model,
}

const FOO: &str = "/A/foo";

fn base() -> (Arc<bdev::mem::MemDevice>, Model) {
    let dev = mem(4);
    let (fs, ctx) = fresh(dev.clone());
    let mut m = Model::default();
    fs.mkdir("/A", 0o755).unwrap();
    fs.mkdir("/B", 0o755).unwrap();
    m.names.insert("/A".into(), (true, 0));
    m.names.insert("/B".into(), (true, 0));
    let f = fs.open(&ctx, FOO, rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &[1u8; 16384]).unwrap();
    m.names.insert(FOO.into(), (false, 1));
    m.write(1, 0, 16384);
    let b = fs.open(&ctx, "/bar", rw(), 0o644).unwrap();
    m.names.insert("/bar".into(), (false, 2));
    m.data.insert(2, Vec::new());
    drop((f, b));
    fs.unmount(&ctx).unwrap();
    (dev, m)
}

/// Runs `op`, returns the file to persist (if the op has one) and its path.
fn apply(
    fs: &Filesystem,
    ctx: &Context,
    m: &mut Model,
    op: Op,
    k: usize,
) -> Option<(File, String)> {
    // Only `creat` creates: the others open existing names.
    let open = |p: &str, flags: OpenFlags| {
        let create = flags.create && op == Op::Creat;
        fs.open(ctx, p, OpenFlags { create, ..flags }, 0o644).ok()
    };
    let id_of = |m: &Model, p: &str| m.names.get(p).map(|x| x.1);
    match op {
        Op::Creat => {
            let p = format!("/A/new{k}");
            let f = open(&p, rw())?;
            let id = 100 + k as u32;
            m.names.insert(p.clone(), (false, id));
            m.data.insert(id, Vec::new());
            Some((f, p))
        }
        Op::Mkdir => {
            let p = format!("/B/dir{k}");
            fs.mkdir(&p, 0o755).ok()?;
            m.names.insert(p, (true, 0));
            None
        }
        Op::WriteBuffered | Op::WriteDirect => {
            let id = id_of(m, FOO)?;
            let direct = op == Op::WriteDirect;
            let (off, len) = if direct {
                (8192, 8192)
            } else {
                (4000 + k * 100, 10000)
            };
            let f = open(FOO, OpenFlags { direct, ..rw() })?;
            let w = m.next_write as u8 + 1;
            f.write_at(ctx, off as u64, &vec![w; len]).unwrap();
            m.write(id, off, len);
            Some((f, FOO.into()))
        }
        Op::Falloc => {
            let id = id_of(m, FOO)?;
            let f = open(FOO, rw())?;
            let mode = FallocMode::Preallocate { keep_size: false };
            f.fallocate(ctx, mode, 12288, 65536).unwrap();
            let d = m.data.get_mut(&id).unwrap();
            d.resize(d.len().max(12288 + 65536), 0);
            Some((f, FOO.into()))
        }
        Op::Link => {
            let id = id_of(m, FOO)?;
            let p = format!("/B/link{k}");
            fs.link(FOO, &p).ok()?;
            m.names.insert(p.clone(), (false, id));
            Some((open(&p, rw())?, p))
        }
        Op::Unlink => {
            let f = open(FOO, rw())?;
            fs.unlink(FOO).unwrap();
            m.names.remove(FOO);
            Some((f, String::new()))
        }
        Op::Rename => {
            let p = format!("/B/ren{k}");
            fs.rename(FOO, &p, Default::default()).ok()?;
            let v = m.names.remove(FOO).unwrap();
            m.names.insert(p.clone(), v);
            Some((open(&p, rw())?, p))
        }
        Op::Truncate => {
            let id = id_of(m, FOO)?;
            let f = open(FOO, rw())?;
            f.set_len(ctx, 5000).unwrap();
            m.data.get_mut(&id).unwrap().truncate(5000);
            Some((f, FOO.into()))
        }
        Op::WriteTiny => {
            let id = id_of(m, "/bar")?;
            let f = open("/bar", rw())?;
            let w = m.next_write as u8 + 1;
            f.write_at(ctx, 10, &[w; 300]).unwrap();
            m.write(id, 10, 300);
            Some((f, "/bar".into()))
        }
        Op::SetXattr => {
            fs.set_xattr(FOO, "user.x", b"v", Default::default()).ok()?;
            Some((open(FOO, rw())?, FOO.into()))
        }
    }
}

fn record(workload: &[(Op, Persist)]) -> Run {
    let (dev, mut model) = base();
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let (fs, ctx) = mount(rec.clone());
    let mut namespaces = vec![model.ns()];
    let mut ids = vec![model.names.clone()];
    let mut points = Vec::new();
    for (k, &(op, persist)) in workload.iter().enumerate() {
        let target = apply(&fs, &ctx, &mut model, op, k);
        namespaces.push(model.ns());
        ids.push(model.names.clone());
        let exact: Vec<String> = match (persist, &target) {
            (Persist::Sync, _) | (_, None) => {
                fs.sync(&ctx).unwrap();
                model
                    .names
                    .iter()
                    .filter(|(_, v)| !v.0)
                    .map(|(p, _)| p.clone())
                    .collect()
            }
            (Persist::Fsync, Some((f, p))) => {
                f.fsync(&ctx).unwrap();
                vec![p.clone()]
            }
            (Persist::Fdatasync, Some((f, p))) => {
                f.fdatasync(&ctx).unwrap();
                vec![p.clone()]
            }
        };
        points.push((rec.len(), model.clone(), exact));
        drop(target);
    }
    drop(fs);
    Run {
        rec,
        namespaces,
        ids,
        points,
        model,
    }
}

/// Checks one crash state; `exact` holds the persistence point it must equal, if any.
fn verify(run: &Run, point: usize, pick: &CrashPick, exact: Option<&(usize, Model, Vec<String>)>) {
    let what = || format!("crash point {point}, pick {pick:?}");
    let dev: Arc<dyn BlockDevice> = Arc::new(run.rec.materialize(point, pick).unwrap());
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap();
    assert!(rep.is_clean(), "{}: fsck {:?}", what(), rep.errors);
    let fs = Filesystem::mount(dev, mount_opts()).unwrap_or_else(|e| panic!("{}: {e}", what()));
    let ctx = fs.context().unwrap();
    let ns = listing(&fs);
    let j = run.namespaces.iter().rposition(|n| *n == ns);
    let j = j.unwrap_or_else(|| panic!("{}: namespace {ns:?} never existed", what()));
    // Which file each name is: from the last model state with that namespace.
    let names = &run.ids[j];
    for (p, is_dir) in &ns {
        if *is_dir {
            continue;
        }
        let got = read_all(&fs, &ctx, p);
        let id = names.get(p).map(|x| x.1);
        let ever = id.and_then(|i| run.model.ever.get(&i));
        for (i, &b) in got.iter().enumerate() {
            let ok = b == 0
                || ever
                    .and_then(|e| e.get(i))
                    .is_some_and(|m| m >> (b - 1) & 1 == 1);
            assert!(ok, "{}: {p} byte {i} is {b}, never written there", what());
        }
    }
    if let Some((_, m, paths)) = exact {
        assert_eq!(ns, m.ns(), "{}: namespace at the persistence point", what());
        for p in paths.iter().filter(|p| !p.is_empty()) {
            let id = m.names[p].1;
            assert_eq!(
                read_all(&fs, &ctx, p),
                m.data[&id],
                "{}: persisted {p}",
                what()
            );
        }
    }
}

fn check(run: &Run, random_picks: u64) -> u64 {
    let mut states = 0;
    for point in run.rec.crash_points() {
        let mut picks = vec![CrashPick::None, CrashPick::All];
        picks.extend((0..random_picks).map(|s| CrashPick::Random {
            seed: point as u64 * 31 + s,
        }));
        for pick in &picks {
            verify(run, point, pick, None);
            states += 1;
        }
    }
    for p in &run.points {
        verify(run, p.0, &CrashPick::None, Some(p));
        states += 1;
    }
    states
}

fn full() -> bool {
    std::env::var("FS_CRASH_SWEEP").as_deref() == Ok("full")
}

#[test]
fn ace_one_operation_workloads() {
    let mut states = 0;
    let mut workloads = 0;
    for op in OPS {
        for persist in PERSISTS {
            let run = record(&[(op, persist)]);
            states += check(&run, if full() { 8 } else { 2 });
            workloads += 1;
        }
    }
    eprintln!("crash: {workloads} one-op workloads, {states} crash states checked");
}

#[test]
fn ace_two_operation_workloads_sampled() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let all: Vec<[(Op, Persist); 2]> = OPS
        .iter()
        .flat_map(|&a| PERSISTS.iter().map(move |&p| (a, p)))
        .flat_map(|x| {
            OPS.iter()
                .flat_map(|&b| PERSISTS.iter().map(move |&q| (b, q)))
                .map(move |y| [x, y])
        })
        .collect();
    let n = if full() { all.len() } else { 60 };
    let (mut states, mut workloads) = (0, 0);
    for i in 0..n {
        let w = if full() {
            all[i]
        } else {
            all[rng.below(all.len() as u64) as usize]
        };
        let run = record(&w);
        states += check(&run, if full() { 4 } else { 0 });
        workloads += 1;
    }
    eprintln!(
        "crash: {workloads} two-op workloads (of {}), {states} crash states checked",
        all.len()
    );
}

/// Direct writes made durable with their fsync record in one round trip
/// (`durability/synced.rs`): a file written and fdatasync'd a block at a time, overwriting
/// and then growing, once with another file's unsynced write riding in its record, with a
/// crash at every point.
#[test]
fn synced_direct_writes() {
    let (dev, mut model) = base();
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let (fs, ctx) = mount(rec.clone());
    let f = fs.open(&ctx, FOO, direct(), 0).unwrap();
    let id = model.names[FOO].1;
    let mut points = Vec::new();
    let mut free_syncs = 0;
    for k in 0..10usize {
        let off = if k < 5 {
            4096 * (k % 4)
        } else {
            16384 + 4096 * (k - 5)
        };
        if k == 6 {
            // Another file's write, completed and not synced: the next record carries it,
            // so that record goes out with a flush.
            let bar = fs.open(&ctx, "/bar", direct(), 0).unwrap();
            let w = model.next_write as u8 + 1;
            bar.write_at(&ctx, 0, &[w; 4096]).unwrap();
            model.write(model.names["/bar"].1, 0, 4096);
        }
        let w = model.next_write as u8 + 1;
        f.write_at(&ctx, off as u64, &[w; 4096]).unwrap();
        model.write(id, off, 4096);
        let before = rec.len();
        f.fdatasync(&ctx).unwrap();
        // An fdatasync after a synced write has nothing to write.
        free_syncs += usize::from(rec.len() == before);
        points.push((rec.len(), model.clone(), vec![FOO.to_string()]));
    }
    assert!(
        free_syncs >= 5,
        "only {free_syncs} of 10 writes were synced with their record"
    );
    drop(f);
    drop(fs);
    let run = Run {
        rec,
        namespaces: vec![model.ns()],
        ids: vec![model.names.clone()],
        points,
        model,
    };
    let states = check(&run, if full() { 8 } else { 2 });
    eprintln!("crash: synced direct writes, {states} crash states checked");
}
