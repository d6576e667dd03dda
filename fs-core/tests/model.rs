//! Random namespace and data operations (buffered and direct mixed, fsync, sync, remount,
//! crash right after fdatasync of every file, which replays the fsync log) against an
//! in-memory model. `BFS_SEED` reproduces a run; `FS_MODEL_OPS` sets its length. The same
//! operations also run on several threads at once, each in its own directory against its
//! own model (`FS_MODEL_THREADS`, default 8).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bdev::mem::MemDevice;

use common::*;
use fs_core::{Context, FallocMode, Filesystem, OpenFlags, RenameFlags};
use testkit::Rng;

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// The directories a model works in: its root ("" for the filesystem's root) and two
/// directories under it that the operations create and remove.
fn dirs(root: &str) -> [String; 3] {
    [root.to_string(), format!("{root}/d0"), format!("{root}/d1")]
}

fn pick_path(rng: &mut Rng, root: &str) -> String {
    format!("{}/f{}", dirs(root)[rng.below(3) as usize], rng.below(5))
}

fn trace(s: &str) {
    if std::env::var("FS_MODEL_TRACE").is_ok() {
        eprintln!("{s}");
    }
}

fn check_all(fs: &Filesystem, ctx: &Context, model: &BTreeMap<String, Node>, root: &str) {
    for (p, n) in model {
        match n {
            Node::Dir => assert!(fs.stat(p).unwrap().file_type == fs_core::FileType::Dir),
            Node::File(data) => check_file(fs, ctx, p, data),
        }
    }
    for d in dirs(root) {
        let d = d.as_str();
        let dir = if d.is_empty() { "/" } else { d };
        if d == root || model.contains_key(d) {
            let names: Vec<String> = fs
                .readdir(dir, 0, 1000)
                .unwrap()
                .into_iter()
                .map(|e| format!("{d}/{}", e.name_lossy()))
                .collect();
            let want: Vec<String> = model
                .keys()
                .filter(|k| k.rfind('/').map(|i| &k[..i]) == Some(d))
                .cloned()
                .collect();
            let mut names = names;
            names.sort();
            assert_eq!(names, want, "listing of {dir}");
        }
    }
}

fn check_file(fs: &Filesystem, ctx: &Context, p: &str, data: &[u8]) {
    let got = read_all(fs, ctx, p);
    let first = got.iter().zip(data.iter()).position(|(a, b)| a != b);
    assert!(
        got == *data,
        "contents of {p}: {} bytes, model {}; first difference at {first:?}{}",
        got.len(),
        data.len(),
        diagnose(fs, ctx, p, data, first)
    );
}

/// More about a file that does not match its model: the bytes at the first difference,
/// and what a direct read (past the page cache) and a second buffered read find there.
fn diagnose(fs: &Filesystem, ctx: &Context, p: &str, data: &[u8], first: Option<usize>) -> String {
    let Some(at) = first else {
        return String::new();
    };
    let blk = at / 4096 * 4096;
    let show = |v: &[u8]| format!("{:?}", &v[at.min(v.len())..(at + 8).min(v.len())]);
    let again = read_all(fs, ctx, p);
    let flags = OpenFlags {
        direct: true,
        ..OpenFlags::read_only()
    };
    let f = fs.open(ctx, p, flags, 0).unwrap();
    let mut buf = vec![0u8; data.len().div_ceil(4096) * 4096];
    let direct = f.read_at(ctx, 0, &mut buf).map(|n| buf[..n].to_vec());
    let direct = match direct {
        Ok(v) => format!(
            "direct read {} bytes, first difference {:?}, bytes {}",
            v.len(),
            v.iter().zip(data).position(|(a, b)| a != b),
            show(&v)
        ),
        Err(e) => format!("direct read failed: {e}"),
    };
    format!(
        "\n  block {blk}: model {}, buffered read again: first difference {:?}, bytes {}\n  {direct}",
        show(data),
        again.iter().zip(data).position(|(a, b)| a != b),
        show(&again)
    )
}

fn write_op(fs: &Filesystem, ctx: &Context, rng: &mut Rng, path: &str, data: &mut Vec<u8>) {
    let is_direct = rng.chance(40);
    let (off, len) = if is_direct {
        (rng.below(40) * 4096, (1 + rng.below(16)) * 4096)
    } else {
        (rng.below(160_000), 1 + rng.below(40_000))
    };
    // Now and then a log writer's pattern: direct writes one after another, each followed by
    // fdatasync, which after a few go out with their fsync record (`durability/synced.rs`).
    let rounds = if is_direct && rng.chance(25) { 8 } else { 1 };
    trace(&format!(
        "write {path} direct {is_direct} {off}+{len} x{rounds}"
    ));
    let flags = OpenFlags {
        direct: is_direct,
        ..OpenFlags::read_write_create()
    };
    let f = fs.open(ctx, path, flags, 0o644).unwrap();
    for r in 0..rounds {
        let off = off + r * len;
        let byte = rng.below(255) as u8 + 1;
        let buf: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8 / 13)).collect();
        f.write_at(ctx, off, &buf).unwrap();
        let end = (off + len) as usize;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[off as usize..end].copy_from_slice(&buf);
        if rounds > 1 {
            f.fdatasync(ctx).unwrap();
        }
    }
    if rng.chance(20) {
        f.fsync(ctx).unwrap();
    }
}

fn step(
    fs: &Filesystem,
    ctx: &Context,
    rng: &mut Rng,
    model: &mut BTreeMap<String, Node>,
    root: &str,
) {
    let p = pick_path(rng, root);
    let parent_ok = |m: &BTreeMap<String, Node>, p: &str| {
        let d = &p[..p.rfind('/').unwrap()];
        d == root || m.get(d) == Some(&Node::Dir)
    };
    match rng.below(13) {
        0..=4 if parent_ok(model, &p) => {
            let mut data = match model.get(&p) {
                Some(Node::File(d)) => d.clone(),
                Some(Node::Dir) => return,
                None => Vec::new(),
            };
            write_op(fs, ctx, rng, &p, &mut data);
            model.insert(p, Node::File(data));
        }
        5 => match model.get(&p) {
            Some(Node::File(_)) => {
                trace(&format!("unlink {p}"));
                fs.unlink(&p).unwrap();
                model.remove(&p);
            }
            _ => assert!(fs.unlink(&p).is_err()),
        },
        6 => {
            let q = pick_path(rng, root);
            let ok = matches!(model.get(&p), Some(Node::File(_)))
                && parent_ok(model, &q)
                && !matches!(model.get(&q), Some(Node::Dir));
            trace(&format!("rename {p} {q}"));
            let r = fs.rename(&p, &q, RenameFlags::default());
            assert_eq!(r.is_ok(), ok, "rename {p} {q}: {r:?}");
            if ok && p != q {
                let n = model.remove(&p).unwrap();
                model.insert(q, n);
            }
        }
        7 => {
            if let Some(Node::File(d)) = model.get_mut(&p) {
                let size = rng.below(200_000);
                trace(&format!("truncate {p} {size}"));
                let f = fs.open(ctx, &p, OpenFlags::read_write_create(), 0).unwrap();
                f.set_len(ctx, size).unwrap();
                d.resize(size as usize, 0);
            }
        }
        8 => {
            let d = dirs(root)[1 + rng.below(2) as usize].clone();
            let d = d.as_str();
            match model.get(d) {
                None => {
                    fs.mkdir(d, 0o755).unwrap();
                    model.insert(d.to_string(), Node::Dir);
                }
                Some(_) => {
                    let empty = !model.keys().any(|k| k.starts_with(&format!("{d}/")));
                    assert_eq!(fs.rmdir(d).is_ok(), empty);
                    if empty {
                        model.remove(d);
                    }
                }
            }
        }
        9 => {
            trace(&format!("sync from {root}"));
            fs.sync(ctx).unwrap()
        }
        10 => {
            if let Some(Node::File(d)) = model.get(&p) {
                check_file(fs, ctx, &p, d);
            }
        }
        _ => {
            if let Some(Node::File(d)) = model.get_mut(&p) {
                falloc_op(fs, ctx, rng, &p, d);
            }
        }
    }
}

fn falloc_op(fs: &Filesystem, ctx: &Context, rng: &mut Rng, p: &str, d: &mut Vec<u8>) {
    let f = fs.open(ctx, p, OpenFlags::read_write_create(), 0).unwrap();
    let (off, len) = (rng.below(150_000), 1 + rng.below(60_000));
    let (o, e) = (off as usize, (off + len) as usize);
    let kind = rng.below(3);
    trace(&format!(
        "falloc {p} kind {kind} {off}+{len} size {}",
        d.len()
    ));
    match kind {
        0 => {
            let keep_size = rng.chance(50);
            f.fallocate(ctx, FallocMode::Preallocate { keep_size }, off, len)
                .unwrap();
            if !keep_size && d.len() < e {
                d.resize(e, 0);
            }
        }
        1 => {
            f.fallocate(ctx, FallocMode::PunchHole, off, len).unwrap();
            let end = e.min(d.len());
            if o < end {
                d[o..end].fill(0);
            }
        }
        _ => {
            let keep_size = rng.chance(50);
            f.fallocate(ctx, FallocMode::ZeroRange { keep_size }, off, len)
                .unwrap();
            let end = e.min(d.len());
            if o < end {
                d[o..end].fill(0);
            }
            if !keep_size && d.len() < e {
                d.resize(e, 0);
            }
        }
    }
}

/// fsyncs every file (through the fsync log) and every directory (names removed or renamed
/// away are durable only so), then "crashes": the device as it is now, without unmount,
/// must replay to exactly the model.
fn fsync_all_and_crash(
    fs: &Filesystem,
    ctx: &Context,
    models: &[(String, BTreeMap<String, Node>)],
    dev: &MemDevice,
) -> Arc<MemDevice> {
    for (root, model) in models {
        for (p, n) in model {
            if let Node::File(_) = n {
                let f = fs.open(ctx, p, OpenFlags::read_write_create(), 0).unwrap();
                f.fdatasync(ctx).unwrap();
            }
        }
        for d in dirs(root) {
            let dir = if d.is_empty() { "/" } else { d.as_str() };
            if let Ok(ino) = fs.lookup(dir) {
                fs.fsync_dir_ino(ino).unwrap();
            }
        }
    }
    Arc::new(MemDevice::from_image("crashed", 4096, &dev.snapshot()).unwrap())
}

fn run(seed: u64, ops: usize) {
    let mut rng = Rng::new(seed);
    let mut dev = mem(64);
    let (mut fs, mut ctx) = fresh(dev.clone());
    let mut models = [(String::new(), BTreeMap::new())];
    for i in 0..ops {
        step(&fs, &ctx, &mut rng, &mut models[0].1, "");
        (fs, ctx, dev) = maybe_remount(fs, ctx, dev, &mut rng, &models, i + 1 == ops);
    }
    drop(fs);
    assert_clean(dev);
}

/// Now and then crashes (after fsyncing everything) or unmounts, remounts and checks every
/// model; always does one of them when `last`.
fn maybe_remount(
    fs: Filesystem,
    ctx: Context,
    dev: Arc<MemDevice>,
    rng: &mut Rng,
    models: &[(String, BTreeMap<String, Node>)],
    last: bool,
) -> (Filesystem, Context, Arc<MemDevice>) {
    let dev = if rng.chance(2) {
        let crashed = fsync_all_and_crash(&fs, &ctx, models, &dev);
        drop(fs);
        assert_clean(crashed.clone());
        crashed
    } else if rng.chance(3) || last {
        fs.unmount(&ctx).unwrap();
        assert_clean(dev.clone());
        dev
    } else {
        return (fs, ctx, dev);
    };
    let (fs, ctx) = mount(dev.clone());
    for (root, model) in models {
        check_all(&fs, &ctx, model, root);
    }
    (fs, ctx, dev)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_operations_match_the_model() {
    let seed = testkit::seed!();
    let ops = env_or("FS_MODEL_OPS", 300);
    for i in 0..3 {
        run(seed.wrapping_add(i), ops);
    }
}

/// Counts a worker thread off when dropped.
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Eight threads (more than this machine's cores) run the model's operations at once, each
/// in its own directory with its own context and model, while one more syncs without pause;
/// between rounds the filesystem is crashed or remounted and every model checked. The operations of one thread do not depend
/// on how the threads interleave, so a failure reproduces from the seed (the interleaving
/// itself may differ).
#[test]
fn threads_each_match_their_model() {
    let seed = testkit::seed!();
    let threads = env_or("FS_MODEL_THREADS", 8);
    let ops = env_or("FS_MODEL_OPS", 300) / 5;
    let mut rng = Rng::new(seed);
    let mut dev = mem(160);
    let (mut fs, mut ctx) = fresh(dev.clone());
    let mut models: Vec<(String, BTreeMap<String, Node>)> = (0..threads)
        .map(|t| {
            let root = format!("/t{t}");
            fs.mkdir(&root, 0o755).unwrap();
            (root, BTreeMap::new())
        })
        .collect();
    let rounds = 4u64;
    for round in 0..rounds {
        let running = AtomicUsize::new(models.len());
        std::thread::scope(|s| {
            for (t, (root, model)) in models.iter_mut().enumerate() {
                let (fs, running) = (&fs, &running);
                s.spawn(move || {
                    // Counted off even when the thread panics, so the syncer stops.
                    let _done = Done(running);
                    let ctx = fs.context().unwrap();
                    let mut rng = Rng::new(seed ^ ((round << 32) | (t as u64 + 1)));
                    for _ in 0..ops {
                        step(fs, &ctx, &mut rng, model, root);
                    }
                    check_all(fs, &ctx, model, root);
                });
            }
            // What the timed commit does, all the time: write everything back and commit
            // while the others write, truncate, preallocate and remove.
            let (fs, running) = (&fs, &running);
            s.spawn(move || {
                let ctx = fs.context().unwrap();
                while running.load(Ordering::Acquire) > 0 {
                    fs.sync(&ctx).unwrap();
                }
            });
        });
        (fs, ctx, dev) = maybe_remount(fs, ctx, dev, &mut rng, &models, round + 1 == rounds);
    }
    drop((fs, ctx));
    assert_clean(dev);
}
