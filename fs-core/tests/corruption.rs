//! Corrupted images: random and targeted byte flips. fsck reports (never panics), mount
//! refuses or the damaged parts fail with an error, and a read that succeeds returns
//! exactly the bytes written: wrong bytes are never shown. `BFS_SEED` reproduces;
//! `FS_CORRUPT_ROUNDS` sets the number of random images (default 40).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::mem::MemDevice;
use common::*;
use fs_core::{Context, FileType, Filesystem, OpenFlags};
use testkit::Rng;

fn build() -> (Arc<MemDevice>, BTreeMap<String, Vec<u8>>) {
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    let mut files = BTreeMap::new();
    fs.mkdir("/d", 0o755).unwrap();
    for i in 0..12u8 {
        let p = if i % 2 == 0 {
            format!("/d/f{i}")
        } else {
            format!("/f{i}")
        };
        let data: Vec<u8> = (0..(i as usize + 1) * 9000)
            .map(|j| (j as u8) ^ i)
            .collect();
        let flags = OpenFlags {
            direct: i % 3 == 0,
            ..rw()
        };
        let f = fs.open(&ctx, &p, flags, 0o644).unwrap();
        let mut buf = data.clone();
        buf.resize(data.len().div_ceil(4096) * 4096, 0);
        f.write_at(&ctx, 0, if flags.direct { &buf } else { &data })
            .unwrap();
        if flags.direct {
            f.set_len(&ctx, data.len() as u64).unwrap();
        }
        fs.set_xattr(&p, "user.k", &[i; 30], Default::default())
            .unwrap();
        files.insert(p, data);
    }
    fs.unmount(&ctx).unwrap();
    (dev, files)
}

/// Mounts and reads everything; every success must show the right bytes.
fn exercise(dev: Arc<MemDevice>, files: &BTreeMap<String, Vec<u8>>) -> (bool, usize) {
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default());
    let clean = matches!(&rep, Ok(r) if r.is_clean());
    let Ok(fs) = Filesystem::mount(dev, mount_opts()) else {
        return (clean, 0);
    };
    let Ok(ctx) = fs.context() else {
        return (clean, 0);
    };
    let _ = walk(&fs, "/");
    let mut good = 0;
    for (p, want) in files {
        if let Some(got) = try_read(&fs, &ctx, p) {
            assert_eq!(
                &got, want,
                "{p}: a successful read must show the written bytes"
            );
            good += 1;
        }
    }
    let _ = fs.create("/new", 0o644);
    let _ = fs.sync(&ctx);
    (clean, good)
}

fn walk(fs: &Filesystem, dir: &str) -> fs_core::Result<()> {
    for e in fs.readdir(dir, 0, 1000)? {
        let p = format!("{}/{}", dir.trim_end_matches('/'), e.name_lossy());
        let _ = fs.stat(&p);
        if e.file_type == FileType::Dir {
            let _ = walk(fs, &p);
        }
    }
    Ok(())
}

fn try_read(fs: &Filesystem, ctx: &Context, p: &str) -> Option<Vec<u8>> {
    let f = fs.open(ctx, p, OpenFlags::read_only(), 0).ok()?;
    let size = f.size().ok()? as usize;
    let mut v = vec![0u8; size];
    let n = f.read_at(ctx, 0, &mut v).ok()?;
    (n == size).then_some(v)
}

#[test]
fn random_byte_flips_never_show_wrong_bytes() {
    let seed = testkit::seed!();
    let rounds: u64 = std::env::var("FS_CORRUPT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let (dev, files) = build();
    let image = dev.snapshot();
    let used: Vec<usize> = (0..image.len() / 4096)
        .filter(|&b| image[b * 4096..(b + 1) * 4096].iter().any(|&x| x != 0))
        .collect();
    let mut rng = Rng::new(seed);
    let mut detected = 0;
    for _ in 0..rounds {
        let mut img = image.clone();
        for _ in 0..1 + rng.below(4) {
            let blk = used[rng.below(used.len() as u64) as usize];
            let at = blk * 4096 + rng.below(4096) as usize;
            img[at] ^= 1 << rng.below(8);
        }
        let d = Arc::new(MemDevice::from_image("c", 4096, &img).unwrap());
        let (clean, _) = exercise(d, &files);
        detected += usize::from(!clean);
    }
    eprintln!("corruption: {detected} of {rounds} flipped images reported by fsck");
}

#[test]
fn targeted_flips() {
    let (dev, files) = build();
    let image = dev.snapshot();
    // The superblock gone (one copy on an 8 MiB device): mount refuses with a clear message, fsck reports.
    let mut img = image.clone();
    img[64 << 10] ^= 0xff;
    let d = Arc::new(MemDevice::from_image("c", 4096, &img).unwrap());
    let e = Filesystem::mount(d.clone(), mount_opts())
        .err()
        .expect("mount refuses");
    assert!(e.to_string().contains("superblock"), "{e}");
    assert_eq!(
        fs_core::fsck(d, &Default::default()).unwrap().exit_code(),
        4
    );
    // Each node in turn (the first byte after the checksum): detected by fsck, no panic.
    let nodes: Vec<usize> = {
        let mut io = bdev::BlockDevice::queue(&*dev, 8).unwrap();
        let vol = cow::Volume::open(dev.clone(), &mut *io, &Default::default()).unwrap();
        let r = vol.reader();
        let live = r.nodes(&mut *io).unwrap();
        live.iter().map(|n| n.bytenr as usize / 4096).collect()
    };
    assert!(nodes.len() > 3);
    for b in nodes {
        let mut img = image.clone();
        img[b * 4096 + 100] ^= 0x40;
        let d = Arc::new(MemDevice::from_image("c", 4096, &img).unwrap());
        let (clean, _) = exercise(d, &files);
        assert!(!clean, "a flip in node {b:#x} must be reported");
    }
}

/// A one-block overwrite folded from the fsync log keeps its block's checksum in its file
/// extent item (none in the checksum tree). A flipped byte in that block is found by
/// fsck and is EIO on read, never wrong bytes; the blocks around it still read.
#[test]
fn a_one_block_extent_keeps_its_checksum_in_the_file_extent() {
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    let mut data = vec![0x11u8; 16 * 4096];
    f.write_at(&ctx, 0, &data).unwrap();
    // A block no other place on the device holds.
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect();
    f.write_at(&ctx, 5 * 4096, &block).unwrap();
    data[5 * 4096..6 * 4096].copy_from_slice(&block);
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let image = dev.snapshot();
    {
        // Reads check the block against the checksum its mapping brought.
        let (fs, ctx) = mount(Arc::new(MemDevice::from_image("c", 4096, &image).unwrap()));
        assert_eq!(read_all(&fs, &ctx, "/f"), data);
    }
    let at = image
        .chunks(4096)
        .position(|c| c == &block[..])
        .expect("the block is on the device") as u64
        * 4096;
    {
        let mut io = bdev::BlockDevice::queue(&*dev, 8).unwrap();
        let vol = cow::Volume::open(dev.clone(), &mut *io, &Default::default()).unwrap();
        assert_eq!(
            vol.reader().csum_lookup(&mut *io, at).unwrap(),
            None,
            "the checksum is not in the checksum tree"
        );
    }
    let mut img = image.clone();
    img[at as usize + 100] ^= 0x01;
    let d = Arc::new(MemDevice::from_image("c", 4096, &img).unwrap());
    let rep = fs_core::fsck(d.clone(), &Default::default()).unwrap();
    assert_eq!(rep.exit_code(), 4, "fsck finds the flipped byte");
    let fs = Filesystem::mount(d, mount_opts()).unwrap();
    let ctx = fs.context().unwrap();
    let f = fs.open(&ctx, "/f", OpenFlags::read_only(), 0).unwrap();
    let mut buf = vec![0u8; 4096];
    let e = f.read_at(&ctx, 5 * 4096, &mut buf).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert_eq!(e.errno(), 5, "EIO");
    for b in [4u64, 6] {
        f.read_at(&ctx, b * 4096, &mut buf).unwrap();
        assert_eq!(buf, data[b as usize * 4096..][..4096]);
    }
}
