//! The name and attribute caches (`state/lookups.rs`) under concurrent change: eight threads
//! (more than the machine's cores) resolve and stat names while others rename, exchange,
//! unlink and create them, change attributes, grow a file through truncates and logged
//! writes, and commit. Readers must never see a state older than one a finished operation
//! established (a stale entry cached by a lookup that raced a change would show one), and
//! the writers read their own changes back at once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use fs_core::{Error, Filesystem, RenameFlags, SetAttr};
use testkit::Rng;

/// Names that are unlinked and created again, each time as a new inode.
const RECREATED: u64 = 6;
/// Pairs of files renamed back and forth (and exchanged with a third).
const PAIRS: u64 = 3;
const READERS: usize = 4;

/// What finished operations established, for readers to compare with.
struct Floors {
    /// The inode of `/r/n{j}` created last (0: none yet).
    recreated: Vec<AtomicU64>,
    /// The size `/g` reached, and the uid it was given last.
    size: AtomicU64,
    uid: AtomicU64,
    stop: AtomicBool,
}

fn is_not_found(r: &fs_core::Result<u64>) -> bool {
    matches!(r, Err(Error::NotFound(_)))
}

/// Unlinks and creates `/r/n{j}` in turns; each operation checked by lookups right after.
fn recreate(fs: &Filesystem, floors: &Floors, rounds: u64) {
    let ctx = fs.context().unwrap();
    for round in 0..rounds {
        for j in 0..RECREATED {
            let p = format!("/r/n{j}");
            fs.unlink(&p).unwrap();
            assert!(is_not_found(&fs.lookup(&p)), "{p} after its unlink");
            drop(fs.open(&ctx, &p, rw(), 0o644).unwrap());
            let ino = fs.lookup(&p).unwrap();
            assert!(ino > floors.recreated[j as usize].load(Ordering::SeqCst));
            assert_eq!(fs.stat(&p).unwrap().ino, ino, "{p} in round {round}");
            floors.recreated[j as usize].store(ino, Ordering::SeqCst);
        }
    }
}

/// Renames `/m/a{k}` to `/m/b{k}` and back, or exchanges it with `/m/c{k}`; checks each.
fn rename(fs: &Filesystem, rng: &mut Rng, rounds: u64) {
    let mut inos: Vec<(u64, u64)> = (0..PAIRS)
        .map(|k| {
            let a = fs.lookup(&format!("/m/a{k}")).unwrap();
            (a, fs.lookup(&format!("/m/c{k}")).unwrap())
        })
        .collect();
    let none = RenameFlags::default();
    for _ in 0..rounds {
        let k = rng.below(PAIRS);
        let (a, b, c) = (format!("/m/a{k}"), format!("/m/b{k}"), format!("/m/c{k}"));
        let (ia, ic) = inos[k as usize];
        if rng.below(3) == 0 {
            let x = RenameFlags {
                exchange: true,
                ..none
            };
            fs.rename(&a, &c, x).unwrap();
            inos[k as usize] = (ic, ia);
            assert_eq!(fs.lookup(&a).unwrap(), ic, "{a} after the exchange");
            assert_eq!(fs.stat(&c).unwrap().ino, ia, "{c} after the exchange");
        } else {
            fs.rename(&a, &b, none).unwrap();
            assert!(is_not_found(&fs.lookup(&a)), "{a} renamed away");
            assert_eq!(fs.lookup(&b).unwrap(), ia);
            let nr = RenameFlags {
                noreplace: true,
                ..none
            };
            fs.rename(&b, &a, nr).unwrap();
            assert!(is_not_found(&fs.lookup(&b)), "{b} renamed away");
            assert_eq!(fs.stat(&a).unwrap().ino, ia);
        }
    }
}

/// Grows `/g` by truncates (committed) and by logged writes (folded), and gives it a new uid
/// each time (a pending namespace change).
fn grow(fs: &Filesystem, floors: &Floors, rounds: u64) {
    let ctx = fs.context().unwrap();
    for i in 1..=rounds {
        let size = i * 4096;
        if i % 2 == 0 {
            let attr = SetAttr {
                size: Some(size),
                ..SetAttr::default()
            };
            fs.set_attr(&ctx, "/g", &attr).unwrap();
        } else {
            let f = fs.open(&ctx, "/g", rw(), 0).unwrap();
            f.write_at(&ctx, size - 4096, &[1u8; 4096]).unwrap();
            f.fdatasync(&ctx).unwrap();
        }
        assert_eq!(fs.stat("/g").unwrap().size, size, "/g after round {i}");
        floors.size.store(size, Ordering::SeqCst);
        let uid = SetAttr {
            uid: Some(i as u32),
            ..SetAttr::default()
        };
        fs.set_attr(&ctx, "/g", &uid).unwrap();
        assert_eq!(fs.stat("/g").unwrap().uid, i as u32);
        floors.uid.store(i, Ordering::SeqCst);
    }
}

/// Resolves and stats everything until told to stop; returns how many checks it made.
fn read(fs: &Filesystem, floors: &Floors, pairs: &[(u64, u64)], by_ino: bool) -> u64 {
    let r = fs.lookup("/r").unwrap();
    let mut checks = 0;
    while !floors.stop.load(Ordering::SeqCst) {
        for j in 0..RECREATED {
            let floor = floors.recreated[j as usize].load(Ordering::SeqCst);
            let got = if by_ino {
                fs.lookup_at(r, format!("n{j}").as_bytes())
            } else {
                fs.lookup(&format!("/r/n{j}"))
            };
            match got {
                Ok(ino) => assert!(ino >= floor, "/r/n{j}: inode {ino} after {floor}"),
                Err(Error::NotFound(_)) => {}
                Err(e) => panic!("/r/n{j}: {e}"),
            }
            checks += 1;
        }
        for (k, &(ia, ic)) in pairs.iter().enumerate() {
            for n in ["a", "b", "c"] {
                match fs.lookup(&format!("/m/{n}{k}")) {
                    Ok(ino) => assert!(ino == ia || ino == ic, "/m/{n}{k}: inode {ino}"),
                    Err(Error::NotFound(_)) => {}
                    Err(e) => panic!("/m/{n}{k}: {e}"),
                }
            }
        }
        let (size, uid) = (
            floors.size.load(Ordering::SeqCst),
            floors.uid.load(Ordering::SeqCst),
        );
        let st = fs.stat("/g").unwrap();
        assert!(st.size >= size, "/g: size {} after {size}", st.size);
        assert!(u64::from(st.uid) >= uid, "/g: uid {} after {uid}", st.uid);
        checks += 1;
    }
    checks
}

#[test]
fn lookups_never_go_back_in_time() {
    run(fs_core::DEFAULT_LOOKUP_CACHE_ENTRIES);
}

/// With room for a few entries, most lookups miss and fill: fills race changes all along.
#[test]
fn lookups_never_go_back_in_time_with_a_tiny_cache() {
    run(24);
}

fn run(entries: usize) {
    // Printed by the macro; it replays the renamer's choices (not the interleaving).
    let seed = testkit::seed!();
    let dev = mem(64);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let opts = fs_core::MountOptions {
        lookup_cache_entries: entries,
        ..mount_opts()
    };
    let fs = Filesystem::mount(dev.clone(), opts.clone()).unwrap();
    let ctx = fs.context().unwrap();
    for d in ["/r", "/m"] {
        fs.mkdir(d, 0o755).unwrap();
    }
    for j in 0..RECREATED {
        drop(fs.open(&ctx, &format!("/r/n{j}"), rw(), 0o644).unwrap());
    }
    let mut pairs = Vec::new();
    for k in 0..PAIRS {
        let a = fs.create(&format!("/m/a{k}"), 0o644).unwrap();
        pairs.push((a, fs.create(&format!("/m/c{k}"), 0o644).unwrap()));
    }
    drop(fs.open(&ctx, "/g", rw(), 0o644).unwrap());
    let floors = Floors {
        recreated: (0..RECREATED).map(|_| AtomicU64::new(0)).collect(),
        size: AtomicU64::new(0),
        uid: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let checks: u64 = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|i| {
                s.spawn({
                    let (fs, floors, pairs) = (&fs, &floors, &pairs);
                    move || read(fs, floors, pairs, i % 2 == 1)
                })
            })
            .collect();
        let syncer = s.spawn(|| {
            let ctx = fs.context().unwrap();
            while !floors.stop.load(Ordering::SeqCst) {
                fs.sync(&ctx).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        let writers = [
            s.spawn(|| recreate(&fs, &floors, 150)),
            s.spawn(|| rename(&fs, &mut Rng::new(seed), 300)),
            s.spawn(|| grow(&fs, &floors, 60)),
        ];
        // Every writer joined before any result is unwrapped: a failed one must still stop
        // the readers, or the scope would wait for them forever.
        let ended: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        floors.stop.store(true, Ordering::SeqCst);
        for e in ended {
            e.unwrap();
        }
        syncer.join().unwrap();
        readers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    eprintln!("{checks} checks by {READERS} readers");
    assert!(checks > 0);
    // What the caches answer is what the trees hold, before and after a remount.
    let before: Vec<_> = (0..RECREATED)
        .map(|j| fs.lookup(&format!("/r/n{j}")).unwrap())
        .collect();
    let g = fs.stat("/g").unwrap();
    assert_eq!((g.size, g.uid), (60 * 4096, 60));
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let fs = Filesystem::mount(dev, opts).unwrap();
    for (j, &ino) in before.iter().enumerate() {
        assert_eq!(fs.lookup(&format!("/r/n{j}")).unwrap(), ino);
    }
    let g2 = fs.stat("/g").unwrap();
    assert_eq!((g2.size, g2.uid, g2.blocks), (g.size, g.uid, g.blocks));
}

/// Two mounts, one with the caches and one without, take the same random operations; after
/// each, every path of the small namespace they share stats the same on both (times
/// aside), and resolves the same by inode too.
#[test]
fn cached_and_uncached_mounts_agree_after_every_operation() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let both: Vec<_> = [fs_core::DEFAULT_LOOKUP_CACHE_ENTRIES, 0]
        .into_iter()
        .map(|entries| {
            let dev = mem(64);
            Filesystem::format(dev.clone(), small_format()).unwrap();
            let opts = fs_core::MountOptions {
                lookup_cache_entries: entries,
                ..mount_opts()
            };
            let fs = Filesystem::mount(dev, opts).unwrap();
            let ctx = fs.context().unwrap();
            for d in ["/d0", "/d1"] {
                fs.mkdir(d, 0o755).unwrap();
            }
            (fs, ctx)
        })
        .collect();
    let paths: Vec<String> = ["/d0", "/d1", "/d0/s"]
        .iter()
        .flat_map(|d| {
            let names = (0..3).map(move |n| format!("{d}/n{n}"));
            std::iter::once(d.to_string()).chain(names)
        })
        .collect();
    let mut done = 0;
    for step in 0..600 {
        let a = &paths[rng.below(paths.len() as u64) as usize];
        let b = &paths[rng.below(paths.len() as u64) as usize];
        let op = rng.below(20);
        let results: Vec<String> = both
            .iter()
            .map(|(fs, ctx)| outcome(apply(fs, ctx, op, a, b, step)))
            .collect();
        assert_eq!(results[0], results[1], "step {step}: op {op} on {a}, {b}");
        done += u64::from(results[0] == "ok");
        for p in &paths {
            let st: Vec<_> = both.iter().map(|(fs, _)| shape(fs, p)).collect();
            assert_eq!(st[0], st[1], "step {step} (op {op} on {a}, {b}): {p}");
        }
    }
    eprintln!("{done} of 600 operations succeeded");
    assert!(done > 60, "only {done} of 600 operations succeeded");
}

fn outcome(r: fs_core::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        // The variant: messages may name inodes differently.
        Err(e) => format!("{e:?}")
            .split('(')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// One random operation `op` on paths `a` and `b`.
fn apply(
    fs: &Filesystem,
    ctx: &fs_core::Context,
    op: u64,
    a: &str,
    b: &str,
    step: u64,
) -> fs_core::Result<()> {
    let flags = |x: bool, n: bool| RenameFlags {
        exchange: x,
        noreplace: n,
    };
    match op {
        0..=4 => fs.create(a, 0o644).map(drop),
        5..=7 => fs.mkdir(a, 0o755).map(drop),
        8 | 19 => fs.unlink(a),
        9 => fs.rmdir(a),
        18 => fs.symlink(b, a).map(drop),
        10 => fs.rename(a, b, flags(false, false)),
        11 => fs.rename(a, b, flags(true, false)),
        12 => fs.rename(a, b, flags(false, true)),
        13 => fs.link(a, b),
        14 => {
            let attr = SetAttr {
                uid: Some(step as u32),
                mode: Some(0o600 + (step as u32 % 64)),
                ..SetAttr::default()
            };
            fs.set_attr(ctx, a, &attr)
        }
        15 => {
            let attr = SetAttr {
                size: Some(step * 1000),
                ..SetAttr::default()
            };
            fs.set_attr(ctx, a, &attr)
        }
        16 => {
            let rw = fs_core::OpenFlags {
                create: false,
                ..rw()
            };
            let f = fs.open(ctx, a, rw, 0)?;
            f.write_at(ctx, step * 512, &[3u8; 5000])?;
            f.fdatasync(ctx)
        }
        _ => fs.sync(ctx),
    }
}

/// What a stat of `p` shows but the times, and its inode by lookup in its parent.
fn shape(fs: &Filesystem, p: &str) -> String {
    let st = fs.stat(p).map(|s| {
        let (parent, name) = fs.lookup_parent(p).unwrap();
        let by_ino = fs.lookup_at(parent, name.as_bytes()).ok();
        (
            s.ino,
            s.mode,
            s.nlink,
            s.uid,
            s.size,
            s.blocks,
            s.file_type,
            by_ino,
        )
    });
    outcome(st.as_ref().map(drop).map_err(|e| e.clone())) + &format!("{:?}", st.ok())
}
