//! Crash tests of group commit (`durability/group.rs`): namespace operations are atomic at
//! once and durable at the next commit; fsync of a file makes it durable under its names
//! (a new file, a renamed file, a file in a new directory); fsync of a directory makes its
//! entries durable; `MountOptions::dirsync` makes every operation durable on return.
//!
//! Every workload runs on a `record` device. At every crash point (unflushed writes
//! dropped, all landed, and randomly landed) the image checks clean, mounts, and its
//! namespace is one the workload passed through, never older than the last persistence
//! point's (so no operation is torn and nothing durable goes back). At each persistence
//! point the names and data it promises are there. `BFS_SEED` picks the random landings.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::record::{CrashPick, LogEntry, RecordDevice};
use bdev::BlockDevice;
use common::*;
use fs_core::{Context, Filesystem, MountOptions, SetAttr};

/// What a persistence point promises: names that exist (with their contents, for files)
/// and names that do not.
#[derive(Clone, Default)]
struct Promise {
    files: Vec<(String, Vec<u8>)>,
    dirs: Vec<String>,
    gone: Vec<String>,
    /// The whole namespace, when every operation is durable (dirsync).
    exact: Option<BTreeMap<String, bool>>,
}

/// A recorded workload: the namespaces it passed through, and its persistence points
/// (log length, index of the namespace then, what it promises).
struct Run {
    rec: Arc<RecordDevice>,
    namespaces: Vec<BTreeMap<String, bool>>,
    points: Vec<(usize, usize, Promise)>,
}

/// A workload's handle on the filesystem and the log of what it did.
struct Rig {
    fs: Filesystem,
    rec: Arc<RecordDevice>,
    run: Run,
}

impl Rig {
    fn new(opts: MountOptions) -> (Rig, Context) {
        let dev = mem(8);
        let (fs, ctx) = fresh(dev.clone());
        fs.mkdir("/A", 0o755).unwrap();
        fs.mkdir("/B", 0o755).unwrap();
        let f = fs.open(&ctx, "/A/foo", rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &[7u8; 16384]).unwrap();
        drop(f);
        fs.unmount(&ctx).unwrap();
        let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
        let fs = Filesystem::mount(rec.clone(), opts).unwrap();
        let ctx = fs.context().unwrap();
        let mut rig = Rig {
            fs,
            rec: rec.clone(),
            run: Run {
                rec,
                namespaces: Vec::new(),
                points: Vec::new(),
            },
        };
        rig.passed();
        (rig, ctx)
    }

    /// Notes the namespace as it is now (after an operation returned).
    fn passed(&mut self) {
        let ns = listing(&self.fs);
        self.run.namespaces.push(ns);
    }

    /// Notes a persistence point: everything `p` names is durable from here on.
    fn persisted(&mut self, p: Promise) {
        let at = self.run.namespaces.len() - 1;
        self.run.points.push((self.rec.len(), at, p));
    }

    fn write_new(&mut self, ctx: &Context, path: &str, byte: u8) -> fs_core::File {
        let f = self.fs.open(ctx, path, rw(), 0o644).unwrap();
        f.write_at(ctx, 0, &[byte; 5000]).unwrap();
        self.passed();
        f
    }

    fn finish(self) -> Run {
        drop(self.fs);
        self.run
    }
}

/// Checks one crash state; `promise` is the persistence point it is, if it is one.
fn verify(run: &Run, point: usize, pick: &CrashPick, promise: Option<&Promise>) {
    let what = || format!("crash point {point}, pick {pick:?}");
    let dev: Arc<dyn BlockDevice> = Arc::new(run.rec.materialize(point, pick).unwrap());
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap();
    assert!(rep.is_clean(), "{}: fsck {:?}", what(), rep.errors);
    let fs = Filesystem::mount(dev, mount_opts()).unwrap_or_else(|e| panic!("{}: {e}", what()));
    let ctx = fs.context().unwrap();
    let ns = listing(&fs);
    let j = run.namespaces.iter().rposition(|n| *n == ns);
    let j = j.unwrap_or_else(|| panic!("{}: namespace {ns:?} never existed (torn)", what()));
    // The newest persistence point at or before this crash point bounds how old it can be.
    let floor = run
        .points
        .iter()
        .filter(|p| p.0 <= point)
        .map(|p| p.1)
        .max()
        .unwrap_or(0);
    assert!(
        j >= floor,
        "{}: namespace {j} is older than the durable one {floor}: {ns:?}",
        what()
    );
    let Some(p) = promise else { return };
    for (path, data) in &p.files {
        assert_eq!(&read_all(&fs, &ctx, path), data, "{}: file {path}", what());
    }
    for d in &p.dirs {
        assert_eq!(ns.get(d), Some(&true), "{}: directory {d}", what());
    }
    for g in &p.gone {
        assert!(!ns.contains_key(g), "{}: {g} is back", what());
    }
    if let Some(exact) = &p.exact {
        assert_eq!(&ns, exact, "{}: namespace at the persistence point", what());
    }
}

fn check(run: &Run) -> u64 {
    let seed = testkit::seed!();
    let mut states = 0;
    for point in run.rec.crash_points() {
        let picks = [
            CrashPick::None,
            CrashPick::All,
            CrashPick::Random {
                seed: seed ^ point as u64,
            },
        ];
        for pick in &picks {
            verify(run, point, pick, None);
            states += 1;
        }
    }
    for (len, _, promise) in &run.points {
        verify(run, *len, &CrashPick::None, Some(promise));
        states += 1;
    }
    states
}

fn file(path: &str, byte: u8) -> (String, Vec<u8>) {
    (path.to_string(), vec![byte; 5000])
}

/// Namespace operations of every kind without fsync: any crash shows the namespace as one
/// of them left it (never half of one); `sync` makes everything before it durable.
#[test]
fn group_commit_is_atomic_and_sync_makes_it_durable() {
    let (mut r, ctx) = Rig::new(mount_opts());
    let fs = r.fs.clone();
    fs.mkdir("/A/d", 0o755).unwrap();
    r.passed();
    drop(r.write_new(&ctx, "/A/d/one", 1));
    fs.link("/A/foo", "/B/foolink").unwrap();
    r.passed();
    fs.rename("/A/d/one", "/B/one", Default::default()).unwrap();
    r.passed();
    fs.sync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![file("/B/one", 1)],
        dirs: vec!["/A/d".into()],
        gone: vec!["/A/d/one".into()],
        ..Promise::default()
    });
    fs.unlink("/A/foo").unwrap();
    r.passed();
    fs.set_xattr("/B/foolink", "user.k", b"v", Default::default())
        .unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    fs.set_attr(&ctx, "/B/one", &chmod).unwrap();
    fs.rename("/B/one", "/A/d/back", Default::default())
        .unwrap();
    r.passed();
    fs.rmdir("/B").unwrap_err();
    fs.create("/A/d/empty", 0o644).unwrap();
    r.passed();
    // Many operations, one commit: a crash shows all of them or none past the sync.
    for i in 0..40 {
        fs.create(&format!("/B/many{i}"), 0o644).unwrap();
        r.passed();
    }
    fs.sync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![file("/A/d/back", 1)],
        gone: vec!["/A/foo".into(), "/B/one".into()],
        exact: Some(listing(&fs)),
        ..Promise::default()
    });
    let run = r.finish();
    let states = check(&run);
    eprintln!("crash: group commit, {states} crash states checked");
}

/// fsync of a file created since the last commit, of a renamed one, and of one in a new
/// directory makes each durable under its name; fsync of a directory makes a removal in it
/// durable. fdatasync counts the same.
#[test]
fn fsync_makes_new_renamed_and_nested_names_durable() {
    let (mut r, ctx) = Rig::new(mount_opts());
    let fs = r.fs.clone();
    // A new file.
    let f = r.write_new(&ctx, "/A/new", 2);
    f.fsync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![file("/A/new", 2)],
        ..Promise::default()
    });
    drop(f);
    // A renamed file (committed name before), fdatasync'd.
    fs.rename("/A/new", "/B/renamed", Default::default())
        .unwrap();
    r.passed();
    let f = fs.open(&ctx, "/B/renamed", rw(), 0).unwrap();
    f.fdatasync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![file("/B/renamed", 2)],
        gone: vec!["/A/new".into()],
        ..Promise::default()
    });
    drop(f);
    // A file in a new directory, two levels deep.
    fs.mkdir("/C", 0o755).unwrap();
    r.passed();
    fs.mkdir("/C/D", 0o755).unwrap();
    r.passed();
    let f = r.write_new(&ctx, "/C/D/deep", 3);
    f.fsync(&ctx).unwrap();
    r.persisted(Promise {
        files: vec![file("/C/D/deep", 3)],
        dirs: vec!["/C".into(), "/C/D".into()],
        ..Promise::default()
    });
    drop(f);
    // An unlink, made durable by an fsync of its directory.
    fs.unlink("/B/renamed").unwrap();
    r.passed();
    let b = fs.lookup("/B").unwrap();
    fs.fsync_dir_ino(b).unwrap();
    r.persisted(Promise {
        gone: vec!["/B/renamed".into()],
        ..Promise::default()
    });
    let run = r.finish();
    let states = check(&run);
    eprintln!("crash: fsync of new names, {states} crash states checked");
}

/// With `dirsync` every namespace operation is durable when it returns: the namespace at
/// each return is exactly the one after a crash there.
#[test]
fn dirsync_makes_every_operation_durable_on_return() {
    let opts = MountOptions {
        dirsync: true,
        ..mount_opts()
    };
    let (mut r, _ctx) = Rig::new(opts);
    let fs = r.fs.clone();
    type Step = Box<dyn Fn(&Filesystem)>;
    let steps: Vec<Step> = vec![
        Box::new(|fs| {
            fs.mkdir("/A/d", 0o755).unwrap();
        }),
        Box::new(|fs| {
            fs.create("/A/d/x", 0o644).unwrap();
        }),
        Box::new(|fs| fs.link("/A/foo", "/B/l").unwrap()),
        Box::new(|fs| fs.rename("/A/d/x", "/B/x", Default::default()).unwrap()),
        Box::new(|fs| fs.unlink("/A/foo").unwrap()),
        Box::new(|fs| fs.rmdir("/A/d").unwrap()),
    ];
    for step in &steps {
        step(&fs);
        r.passed();
        r.persisted(Promise {
            exact: Some(listing(&fs)),
            ..Promise::default()
        });
    }
    let run = r.finish();
    let states = check(&run);
    eprintln!("crash: dirsync, {states} crash states checked");
}

/// Threads creating files at once under `dirsync` share commits instead of each waiting
/// for its own: fewer commits (two flushes each) than operations.
#[test]
fn dirsync_operations_of_many_threads_share_commits() {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let dev = mem(16);
    drop(fresh(dev.clone()));
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let opts = MountOptions {
        dirsync: true,
        ..mount_opts()
    };
    let fs = Filesystem::mount(rec.clone(), opts).unwrap();
    let before = rec.len();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let fs = &fs;
            s.spawn(move || {
                for i in 0..EACH {
                    fs.create(&format!("/t{t}-{i}"), 0o644).unwrap();
                }
            });
        }
    });
    let flushes = rec.log()[before..]
        .iter()
        .filter(|e| matches!(e, LogEntry::Flush { .. }))
        .count();
    let ops = THREADS * EACH;
    eprintln!("{ops} creates under dirsync from {THREADS} threads: {flushes} flushes");
    assert!(flushes <= 2 * ops, "at most one commit per operation");
    assert_eq!(fs.readdir("/", 0, 1000).unwrap().len(), ops);
    // On 2 cores the threads overlap: some of them must have shared a commit.
    assert!(
        flushes < 2 * ops,
        "{flushes} flushes for {ops} operations: no commit was shared"
    );
    drop(fs);
}
