//! Random namespace and data operations (buffered and direct mixed, fsync, sync, remount,
//! crash right after fdatasync of every file, which replays the fsync log) against an
//! in-memory model. `BFS_SEED` reproduces a run; `FS_MODEL_OPS` sets its length.

mod common;

use std::collections::BTreeMap;
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

const DIRS: [&str; 3] = ["", "/d0", "/d1"];

fn pick_path(rng: &mut Rng) -> String {
    format!("{}/f{}", DIRS[rng.below(3) as usize], rng.below(5))
}

fn trace(s: &str) {
    if std::env::var("FS_MODEL_TRACE").is_ok() {
        eprintln!("{s}");
    }
}

fn check_all(fs: &Filesystem, ctx: &Context, model: &BTreeMap<String, Node>) {
    for (p, n) in model {
        match n {
            Node::Dir => assert!(fs.stat(p).unwrap().file_type == fs_core::FileType::Dir),
            Node::File(data) => {
                let got = read_all(fs, ctx, p);
                let first = got.iter().zip(data.iter()).position(|(a, b)| a != b);
                assert!(
                    got == *data,
                    "contents of {p}: {} bytes, model {}; first difference at {first:?}",
                    got.len(),
                    data.len()
                );
            }
        }
    }
    for d in DIRS {
        let dir = if d.is_empty() { "/" } else { d };
        if d.is_empty() || model.contains_key(d) {
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

fn step(fs: &Filesystem, ctx: &Context, rng: &mut Rng, model: &mut BTreeMap<String, Node>) {
    let p = pick_path(rng);
    let parent_ok = |m: &BTreeMap<String, Node>, p: &str| {
        let d = &p[..p.rfind('/').unwrap()];
        d.is_empty() || m.get(d) == Some(&Node::Dir)
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
                fs.unlink(&p).unwrap();
                model.remove(&p);
            }
            _ => assert!(fs.unlink(&p).is_err()),
        },
        6 => {
            let q = pick_path(rng);
            let ok = matches!(model.get(&p), Some(Node::File(_)))
                && parent_ok(model, &q)
                && !matches!(model.get(&q), Some(Node::Dir));
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
                let f = fs.open(ctx, &p, OpenFlags::read_write_create(), 0).unwrap();
                f.set_len(ctx, size).unwrap();
                d.resize(size as usize, 0);
            }
        }
        8 => {
            let d = DIRS[1 + rng.below(2) as usize];
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
        9 => fs.sync(ctx).unwrap(),
        10 => {
            if let Some(Node::File(d)) = model.get(&p) {
                assert_eq!(&read_all(fs, ctx, &p), d);
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
    model: &BTreeMap<String, Node>,
    dev: &MemDevice,
) -> Arc<MemDevice> {
    for (p, n) in model {
        if let Node::File(_) = n {
            let f = fs.open(ctx, p, OpenFlags::read_write_create(), 0).unwrap();
            f.fdatasync(ctx).unwrap();
        }
    }
    for d in DIRS {
        let dir = if d.is_empty() { "/" } else { d };
        if let Ok(ino) = fs.lookup(dir) {
            fs.fsync_dir_ino(ino).unwrap();
        }
    }
    Arc::new(MemDevice::from_image("crashed", 4096, &dev.snapshot()).unwrap())
}

fn run(seed: u64, ops: usize) {
    let mut rng = Rng::new(seed);
    let mut dev = mem(64);
    let (mut fs, mut ctx) = fresh(dev.clone());
    let mut model = BTreeMap::new();
    for i in 0..ops {
        step(&fs, &ctx, &mut rng, &mut model);
        if rng.chance(2) {
            let crashed = fsync_all_and_crash(&fs, &ctx, &model, &dev);
            drop(fs);
            assert_clean(crashed.clone());
            dev = crashed;
            (fs, ctx) = mount(dev.clone());
            check_all(&fs, &ctx, &model);
        } else if rng.chance(3) || i + 1 == ops {
            fs.unmount(&ctx).unwrap();
            assert_clean(dev.clone());
            (fs, ctx) = mount(dev.clone());
            check_all(&fs, &ctx, &model);
        }
    }
    drop(fs);
    assert_clean(dev);
}

#[test]
fn random_operations_match_the_model() {
    let seed = testkit::seed!();
    let ops = std::env::var("FS_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for i in 0..3 {
        run(seed.wrapping_add(i), ops);
    }
}
