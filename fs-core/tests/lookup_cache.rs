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
        for w in writers {
            w.join().unwrap();
        }
        floors.stop.store(true, Ordering::SeqCst);
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
