//! Crash tests of namespace changes in the fsync log (`docs/decisions/namespace-log.md`):
//! fsync of a file whose names are new and fsync of a directory whose entries changed write
//! one log record carrying the pending namespace changes instead of committing.
//!
//! Every workload runs on a `record` device. At every crash point (unflushed writes
//! dropped, all landed, and randomly landed; `FS_CRASH_SWEEP=full` draws 16 random
//! landings per point instead of 1) the image checks clean before and after the replay,
//! a read-only mount (replay into memory) shows the same namespace as a read-write one
//! (replay committed) and as a second read-write mount (replay ran once), that namespace
//! is one the workload passed through (never half an operation) and never older than the
//! last persistence point's, and the workload's own invariant holds. At each persistence
//! point what it promises is there. `BFS_SEED` picks the random landings.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::record::{CrashPick, LogEntry, RecordDevice};
use bdev::BlockDevice;
use common::*;
use fs_core::{Context, Filesystem, MountOptions};

type Listing = BTreeMap<String, bool>;
/// A workload's check of one crash state, given its mounted filesystem.
type Invariant = dyn Fn(&Filesystem, &Context) -> Result<(), String>;

/// What a persistence point promises: files with their contents, and names that are gone.
#[derive(Clone, Default)]
struct Promise {
    files: Vec<(String, Vec<u8>)>,
    dirs: Vec<String>,
    gone: Vec<String>,
}

/// A recorded workload: the namespaces it passed through, its persistence points (log
/// length, index of the namespace then, the promise).
struct Rig {
    fs: Filesystem,
    rec: Arc<RecordDevice>,
    namespaces: Vec<Listing>,
    points: Vec<(usize, usize, Promise)>,
}

impl Rig {
    /// A filesystem with `/A` (holding `/A/foo`, 16 KiB of 7s) and `/B` committed, mounted
    /// on a record device; one commit in this mount already ran, so records may carry
    /// names (the log's rule for volumes of older versions).
    fn new() -> (Rig, Context) {
        let dev = mem(8);
        let (fs, ctx) = fresh(dev.clone());
        fs.mkdir("/A", 0o755).unwrap();
        fs.mkdir("/B", 0o755).unwrap();
        let f = fs.open(&ctx, "/A/foo", rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &[7u8; 16384]).unwrap();
        drop(f);
        fs.unmount(&ctx).unwrap();
        let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
        let fs = Filesystem::mount(rec.clone(), mount_opts()).unwrap();
        let ctx = fs.context().unwrap();
        fs.sync(&ctx).unwrap();
        let mut rig = Rig {
            fs,
            rec,
            namespaces: Vec::new(),
            points: Vec::new(),
        };
        rig.passed();
        (rig, ctx)
    }

    fn passed(&mut self) {
        let ns = listing(&self.fs);
        self.namespaces.push(ns);
    }

    fn persisted(&mut self, p: Promise) {
        let at = self.namespaces.len() - 1;
        self.points.push((self.rec.len(), at, p));
    }

    /// `(FUA writes, flushes)` since log entry `at`: a record is one FUA write, with a
    /// flush when it names data; a commit would show two flushes.
    fn syncs_since(&self, at: usize) -> (usize, usize) {
        let log = self.rec.log();
        let fua = log[at..].iter();
        let fua = fua.filter(|e| matches!(e, LogEntry::Write { fua: true, .. }));
        let flushes = log[at..].iter();
        let flushes = flushes.filter(|e| matches!(e, LogEntry::Flush { .. }));
        (fua.count(), flushes.count())
    }

    /// Checks every crash state; returns how many.
    fn check(self, invariant: &Invariant) -> u64 {
        let seed = testkit::seed!();
        let full = std::env::var("FS_CRASH_SWEEP").as_deref() == Ok("full");
        let randoms = if full { 16 } else { 1 };
        let mut states = 0;
        for point in self.rec.crash_points() {
            let mut picks = vec![CrashPick::None, CrashPick::All];
            picks.extend((0..randoms).map(|i: u64| CrashPick::Random {
                seed: seed ^ (point as u64) ^ (i << 32),
            }));
            for pick in &picks {
                verify(&self, point, pick, None, invariant);
                states += 1;
            }
        }
        for (len, _, promise) in &self.points {
            verify(&self, *len, &CrashPick::None, Some(promise), invariant);
            states += 1;
        }
        states
    }
}

fn verify(rig: &Rig, point: usize, pick: &CrashPick, promise: Option<&Promise>, inv: &Invariant) {
    let what = || format!("crash point {point}, pick {pick:?}");
    let dev: Arc<dyn BlockDevice> = Arc::new(rig.rec.materialize(point, pick).unwrap());
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap();
    assert!(rep.is_clean(), "{}: fsck {:?}", what(), rep.errors);
    // Read-only first: it replays into memory and writes nothing.
    let ro = MountOptions {
        read_only: true,
        ..mount_opts()
    };
    let fs = Filesystem::mount(dev.clone(), ro).unwrap_or_else(|e| panic!("{}: {e}", what()));
    let ro_ns = listing(&fs);
    drop(fs);
    let fs =
        Filesystem::mount(dev.clone(), mount_opts()).unwrap_or_else(|e| panic!("{}: {e}", what()));
    let ctx = fs.context().unwrap();
    let ns = listing(&fs);
    assert_eq!(
        ns,
        ro_ns,
        "{}: read-only and read-write replays differ",
        what()
    );
    let j = rig.namespaces.iter().rposition(|n| *n == ns);
    let j = j.unwrap_or_else(|| panic!("{}: namespace {ns:?} never existed (torn)", what()));
    let floor = rig.points.iter().filter(|p| p.0 <= point).map(|p| p.1);
    let floor = floor.max().unwrap_or(0);
    assert!(j >= floor, "{}: namespace {j} older than {floor}", what());
    if let Err(e) = inv(&fs, &ctx) {
        panic!("{}: {e}; namespace {ns:?}", what());
    }
    if let Some(p) = promise {
        for (path, data) in &p.files {
            assert_eq!(&read_all(&fs, &ctx, path), data, "{}: file {path}", what());
        }
        for d in &p.dirs {
            assert_eq!(ns.get(d), Some(&true), "{}: directory {d}", what());
        }
        for g in &p.gone {
            assert!(!ns.contains_key(g), "{}: {g} is back", what());
        }
    }
    fs.unmount(&ctx).unwrap();
    // The replayed state checks clean, and a second mount finds nothing more to replay.
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap();
    assert!(
        rep.is_clean(),
        "{}: fsck after replay {:?}",
        what(),
        rep.errors
    );
    let (fs, ctx) = mount(dev);
    assert_eq!(listing(&fs), ns, "{}: a second mount differs", what());
    fs.unmount(&ctx).unwrap();
}

fn no_invariant(_: &Filesystem, _: &Context) -> Result<(), String> {
    Ok(())
}

fn bytes(b: u8, n: usize) -> Vec<u8> {
    vec![b; n]
}

/// Creates, writes and fsyncs new files: each fsync is one record with one flush (no
/// commit), and after a crash a file either is absent or has its whole fsync'd contents.
#[test]
fn create_write_fsync_is_one_record() {
    let (mut r, ctx) = Rig::new();
    let fs = r.fs.clone();
    for i in 0..6u8 {
        let at = r.rec.len();
        let path = format!("/A/new{i}");
        let f = fs.open(&ctx, &path, rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &bytes(i + 1, 5000)).unwrap();
        r.passed();
        f.fsync(&ctx).unwrap();
        assert_eq!(r.syncs_since(at), (1, 1), "fsync of {path}: one record");
        r.persisted(Promise {
            files: vec![(path, bytes(i + 1, 5000))],
            ..Promise::default()
        });
    }
    let inv = |fs: &Filesystem, ctx: &Context| {
        for i in 0..6u8 {
            let path = format!("/A/new{i}");
            if fs.lookup(&path).is_ok() && read_all(fs, ctx, &path) != bytes(i + 1, 5000) {
                return Err(format!("{path} exists without its fsync'd contents"));
            }
        }
        Ok(())
    };
    let states = r.check(&inv);
    eprintln!("crash: create+write+fsync, {states} crash states checked");
}

/// Unlinks (of a closed file, and of one still open) made durable by an fsync of their
/// directory: one record each; the open file's inode goes at the next mount.
#[test]
fn fsync_dir_after_unlink_is_one_record() {
    let (mut r, ctx) = Rig::new();
    let fs = r.fs.clone();
    let a = fs.lookup("/A").unwrap();
    let open = fs.open(&ctx, "/A/foo", rw(), 0).unwrap();
    for (path, byte) in [("/A/x", 1u8), ("/A/y", 2)] {
        let f = fs.open(&ctx, path, rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &bytes(byte, 5000)).unwrap();
        f.fsync(&ctx).unwrap();
        r.passed();
    }
    let at = r.rec.len();
    fs.unlink("/A/x").unwrap();
    r.passed();
    fs.fsync_dir_ino(a).unwrap();
    assert_eq!(
        r.syncs_since(at),
        (1, 0),
        "fsync_dir after unlink: one record"
    );
    r.persisted(Promise {
        gone: vec!["/A/x".into()],
        files: vec![("/A/y".into(), bytes(2, 5000))],
        ..Promise::default()
    });
    // Unlinked while open: gone from the namespace, its inode kept until close (here:
    // until the mount after the crash deletes the orphan).
    fs.unlink("/A/foo").unwrap();
    r.passed();
    fs.fsync_dir_ino(a).unwrap();
    r.persisted(Promise {
        gone: vec!["/A/foo".into()],
        ..Promise::default()
    });
    let mut buf = vec![0u8; 16384];
    assert_eq!(open.read_at(&ctx, 0, &mut buf).unwrap(), 16384);
    assert_eq!(buf, bytes(7, 16384), "the open file keeps its data");
    // A name added and removed between records: neither record shows it.
    fs.create("/A/tmp", 0o644).unwrap();
    r.passed();
    fs.unlink("/A/tmp").unwrap();
    r.passed();
    fs.fsync_dir_ino(a).unwrap();
    r.persisted(Promise {
        gone: vec!["/A/tmp".into()],
        ..Promise::default()
    });
    let states = r.check(&no_invariant);
    drop(open);
    eprintln!("crash: fsync_dir after unlink, {states} crash states checked");
}

/// rename over an existing name, then fsync of the renamed file: at every crash point
/// either the rename did not happen (both names, old contents) or it did (one name, the
/// new contents), never a mix; a hard link made durable the same way keeps its count.
#[test]
fn rename_over_and_fsync_are_atomic() {
    let (mut r, ctx) = Rig::new();
    let fs = r.fs.clone();
    let f = fs.open(&ctx, "/B/new", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &bytes(9, 8192)).unwrap();
    f.fsync(&ctx).unwrap();
    r.passed();
    r.persisted(Promise {
        files: vec![("/B/new".into(), bytes(9, 8192))],
        ..Promise::default()
    });
    let at = r.rec.len();
    fs.rename("/B/new", "/A/foo", Default::default()).unwrap();
    r.passed();
    f.fsync(&ctx).unwrap();
    assert_eq!(r.syncs_since(at), (1, 0), "rename + fsync: one record");
    r.persisted(Promise {
        files: vec![("/A/foo".into(), bytes(9, 8192))],
        gone: vec!["/B/new".into()],
        ..Promise::default()
    });
    fs.link("/A/foo", "/B/hard").unwrap();
    r.passed();
    f.fsync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![("/B/hard".into(), bytes(9, 8192))],
        ..Promise::default()
    });
    drop(f);
    let inv = |fs: &Filesystem, ctx: &Context| {
        let foo = read_all(fs, ctx, "/A/foo");
        let new_name = fs.lookup("/B/new").is_ok();
        match (foo == bytes(7, 16384), foo == bytes(9, 8192)) {
            // Before the rename (/B/new not created yet, or created and synced).
            (true, _) => Ok(()),
            (_, true) if !new_name => Ok(()),
            (_, true) => Err("/A/foo has the new contents and /B/new is still there".into()),
            _ => Err(format!("/A/foo has {} bytes of neither", foo.len())),
        }
    };
    let states = r.check(&inv);
    eprintln!("crash: rename over + fsync, {states} crash states checked");
}

/// A file in a new directory three levels deep, fsync'd: the record carries the whole
/// chain, so the file never shows without its parents (fsck would find a dangling name).
#[test]
fn a_file_in_new_nested_directories_is_durable_with_them() {
    let (mut r, ctx) = Rig::new();
    let fs = r.fs.clone();
    for d in ["/C", "/C/D", "/C/D/E"] {
        fs.mkdir(d, 0o755).unwrap();
        r.passed();
    }
    let f = fs.open(&ctx, "/C/D/E/deep", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &bytes(3, 5000)).unwrap();
    r.passed();
    let at = r.rec.len();
    f.fsync(&ctx).unwrap();
    assert_eq!(
        r.syncs_since(at),
        (1, 1),
        "nested create + fsync: one record"
    );
    r.persisted(Promise {
        files: vec![("/C/D/E/deep".into(), bytes(3, 5000))],
        dirs: vec!["/C".into(), "/C/D".into(), "/C/D/E".into()],
        ..Promise::default()
    });
    drop(f);
    let states = r.check(&no_invariant);
    eprintln!("crash: file in new nested directories, {states} crash states checked");
}

/// SQLite's rollback-journal (DELETE) pattern in a loop: create `db-journal`, write and
/// fsync it, overwrite the database's block and fsync it, unlink the journal and fsync the
/// directory. No commit runs; after every crash the database is the last transaction's
/// or, while that transaction's journal is there whole, the one before.
#[test]
fn sqlite_delete_mode_transactions() {
    const TX: u8 = 8;
    let (mut r, ctx) = Rig::new();
    let fs = r.fs.clone();
    let a = fs.lookup("/A").unwrap();
    let db = fs.open(&ctx, "/A/db", rw(), 0o644).unwrap();
    db.write_at(&ctx, 0, &bytes(0, 4096)).unwrap();
    db.fsync(&ctx).unwrap();
    fs.fsync_dir_ino(a).unwrap();
    r.passed();
    let at = r.rec.len();
    for t in 1..=TX {
        let j = fs.open(&ctx, "/A/db-journal", rw(), 0o644).unwrap();
        j.write_at(&ctx, 0, &bytes(100 + t, 4608)).unwrap();
        r.passed();
        j.fsync(&ctx).unwrap();
        db.write_at(&ctx, 0, &bytes(t, 4096)).unwrap();
        db.fsync(&ctx).unwrap();
        drop(j);
        fs.unlink("/A/db-journal").unwrap();
        r.passed();
        fs.fsync_dir_ino(a).unwrap();
        r.persisted(Promise {
            files: vec![("/A/db".into(), bytes(t, 4096))],
            gone: vec!["/A/db-journal".into()],
            ..Promise::default()
        });
    }
    let (records, flushes) = r.syncs_since(at);
    assert_eq!(
        (records, flushes),
        (3 * TX as usize, 2 * TX as usize),
        "three records per transaction (the directory's without a flush), no commit"
    );
    drop(db);
    let inv = |fs: &Filesystem, ctx: &Context| {
        let journal = fs.lookup("/A/db-journal").is_ok();
        if fs.lookup("/A/db").is_err() {
            // Before the database was made durable.
            return match journal {
                false => Ok(()),
                true => Err("a journal without its database".into()),
            };
        }
        let db = read_all(fs, ctx, "/A/db");
        let t = db[0];
        if db != bytes(t, 4096) || t > TX {
            return Err(format!("torn database (first byte {t})"));
        }
        if !journal {
            return Ok(());
        }
        let j = read_all(fs, ctx, "/A/db-journal");
        let jt = j.first().map_or(0, |b| b.wrapping_sub(100));
        if j != bytes(100 + jt, 4608) || !(1..=TX).contains(&jt) {
            return Err(format!("journal of {} bytes, not whole", j.len()));
        }
        if t != jt && t + 1 != jt {
            return Err(format!("journal of transaction {jt} beside database {t}"));
        }
        Ok(())
    };
    let states = r.check(&inv);
    eprintln!("crash: SQLite DELETE-mode transactions, {states} crash states checked");
}

/// A damaged record of namespace changes with a valid one after it is media damage: a
/// read-write mount refuses, naming it; a read-only mount shows the records before it.
#[test]
fn a_damaged_namespace_record_is_reported() {
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    fs.sync(&ctx).unwrap();
    let root = fs.lookup("/").unwrap();
    for name in ["/one", "/two", "/three"] {
        fs.create(name, 0o644).unwrap();
        fs.fsync_dir_ino(root).unwrap();
    }
    let img = dev.snapshot();
    let gen_at =
        |i: usize| u64::from_le_bytes(img[i * 4096 + 16..i * 4096 + 24].try_into().unwrap());
    let records: Vec<usize> = (0..img.len() / 4096)
        .filter(|&i| &img[i * 4096..i * 4096 + 8] == b"BFSFSLOG")
        .collect();
    let newest = records.iter().map(|&i| gen_at(i)).max().unwrap();
    let mut slots: Vec<(u64, usize)> = records
        .into_iter()
        .filter(|&i| gen_at(i) == newest)
        .map(|i| {
            (
                u64::from_le_bytes(img[i * 4096 + 24..i * 4096 + 32].try_into().unwrap()),
                i,
            )
        })
        .collect();
    slots.sort();
    assert_eq!(slots.len(), 3, "one record per fsync_dir");
    let mut bad = img.clone();
    bad[slots[1].1 * 4096 + 60] ^= 0x10;
    let crashed = || -> Arc<dyn BlockDevice> {
        Arc::new(bdev::mem::MemDevice::from_image("crashed", 4096, &bad).unwrap())
    };
    let rep = fs_core::fsck(crashed(), &fs_core::FsckOptions::default()).unwrap();
    assert_eq!(rep.exit_code(), 4, "{:?}", rep.errors);
    let e = Filesystem::mount(crashed(), mount_opts())
        .err()
        .expect("mounted");
    assert!(e.to_string().contains("record 1 "), "{e}");
    let ro = MountOptions {
        read_only: true,
        ..mount_opts()
    };
    let cfs = Filesystem::mount(crashed(), ro).unwrap();
    let names: Vec<String> = listing(&cfs).into_keys().collect();
    assert_eq!(
        names,
        vec!["/one".to_string()],
        "the record before the damage only"
    );
    drop(cfs);
    fs.unmount(&ctx).unwrap();
}

/// What a record does not take commits instead: the first fsync of a new name in a mount
/// (until this code commits, the superblock may be an older version's, whose code would
/// drop namespace entries), and pending changes with an explicit mtime. The commit writes
/// format version 3 into the superblock.
#[test]
fn what_a_record_cannot_take_commits() {
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    fs.unmount(&ctx).unwrap();
    let rec = Arc::new(RecordDevice::new("rec", dev.clone()).unwrap());
    let fs = Filesystem::mount(rec.clone(), mount_opts()).unwrap();
    let ctx = fs.context().unwrap();
    let syncs = |at: usize| {
        let log = rec.log();
        let fua = log[at..].iter();
        let fua = fua.filter(|e| matches!(e, LogEntry::Write { fua: true, .. }));
        let flushes = log[at..].iter();
        let flushes = flushes.filter(|e| matches!(e, LogEntry::Flush { .. }));
        (fua.count(), flushes.count())
    };
    let at = rec.len();
    let a = fs.open(&ctx, "/a", rw(), 0o644).unwrap();
    a.fsync(&ctx).unwrap();
    assert!(
        syncs(at).1 >= 2,
        "the mount's first fsync commits: {:?}",
        syncs(at)
    );
    let at = rec.len();
    let b = fs.open(&ctx, "/b", rw(), 0o644).unwrap();
    b.fsync(&ctx).unwrap();
    assert_eq!(syncs(at), (1, 0), "then a new name is one record");
    let at = rec.len();
    let utimes = fs_core::SetAttr {
        mtime_ns: Some(1_000_000_000),
        ..fs_core::SetAttr::default()
    };
    fs.set_attr(&ctx, "/b", &utimes).unwrap();
    b.fsync(&ctx).unwrap();
    assert!(
        syncs(at).1 >= 2,
        "an explicit mtime commits: {:?}",
        syncs(at)
    );
    let sb = &dev.snapshot()[64 << 10..];
    assert_eq!(
        u32::from_le_bytes(sb[4..8].try_into().unwrap()),
        3,
        "version"
    );
    drop((a, b));
    fs.unmount(&ctx).unwrap();
    let (fs, ctx) = mount(dev);
    assert_eq!(fs.stat("/b").unwrap().mtime_ns, 1_000_000_000);
    fs.unmount(&ctx).unwrap();
}
