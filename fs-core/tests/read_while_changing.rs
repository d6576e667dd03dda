//! Direct reads of a file that overwrites, hole punches, truncates and commits keep
//! changing. A direct read takes its block's checksum with its mapping and starts its
//! lookups at leaves its thread found before (cow's `LeafCache`, valid for one committed
//! generation): a stale mapping, checksum or leaf would show as another block's bytes, an
//! old version's bytes or a checksum error. Small nodes (4 KiB) so the trees have many
//! leaves and levels.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use fs_core::{Context, FallocMode, File};
use testkit::Rng;

const BS: usize = 4096;

/// Block `blk`'s bytes at version `ver`: every 8-byte word says both, so a block read from
/// the wrong place or a torn mix of versions is recognisable.
fn block(blk: u64, ver: u64) -> Vec<u8> {
    let word = (blk << 32) | ver;
    (0..BS / 8).flat_map(|_| word.to_le_bytes()).collect()
}

/// The version that `data` (one block read at block `blk`) holds: `Some(0)` for zeroes.
fn version_of(blk: u64, data: &[u8]) -> Option<u64> {
    if data.iter().all(|&b| b == 0) {
        return Some(0);
    }
    let word = u64::from_le_bytes(data[..8].try_into().unwrap());
    let whole = data
        .chunks(8)
        .all(|w| u64::from_le_bytes(w.try_into().unwrap()) == word);
    (whole && word >> 32 == blk).then_some(word & 0xffff_ffff)
}

fn read_blocks(f: &File, ctx: &Context, blk: u64, n: usize) -> (usize, Vec<u8>) {
    let mut got = vec![0u8; n * BS];
    let read = f
        .read_at(ctx, blk * BS as u64, &mut got)
        .unwrap_or_else(|e| panic!("direct read of blocks {blk}+{n}: {e}"));
    (read, got)
}

/// One context, a model of the file's bytes: every direct read must equal the model
/// exactly, between overwrites, punches, truncates, fsyncs and commits in seeded order.
#[test]
fn direct_reads_match_a_model_through_changes_and_commits() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    let blocks = 384u64;
    let mut model: Vec<u8> = Vec::new();
    let mut ver = 0u64;
    // Large writes first: multi-block extents whose checksums live in the checksum tree.
    for chunk in (0..blocks).step_by(32) {
        ver += 1;
        let data: Vec<u8> = (chunk..chunk + 32).flat_map(|b| block(b, ver)).collect();
        f.write_at(&ctx, chunk * BS as u64, &data).unwrap();
        model.extend_from_slice(&data);
    }
    fs.sync(&ctx).unwrap();
    let mut reads = 0;
    for step in 0..3000 {
        let size_blocks = (model.len() / BS) as u64;
        match rng.below(100) {
            0..=59 => {
                let blk = rng.below(blocks + 8);
                let n = 1 + rng.below(3) as usize;
                let (read, got) = read_blocks(&f, &ctx, blk, n);
                let from = (blk as usize * BS).min(model.len());
                let to = ((blk as usize + n) * BS).min(model.len());
                assert_eq!(read, to - from, "step {step}: bytes read at block {blk}");
                assert!(
                    got[..read] == model[from..to],
                    "step {step} (seed {seed}): blocks {blk}+{n} differ from the model"
                );
                reads += 1;
            }
            60..=77 => {
                ver += 1;
                let blk = rng.below(blocks);
                let n = 1 + rng.below(4);
                let data: Vec<u8> = (blk..blk + n).flat_map(|b| block(b, ver)).collect();
                f.write_at(&ctx, blk * BS as u64, &data).unwrap();
                let end = (blk + n) as usize * BS;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[blk as usize * BS..end].copy_from_slice(&data);
            }
            78..=83 if size_blocks > 0 => {
                let blk = rng.below(size_blocks);
                let n = 1 + rng.below(8).min(size_blocks - blk - 1);
                let (a, b) = (blk * BS as u64, (blk + n) * BS as u64);
                f.fallocate(&ctx, FallocMode::PunchHole, a, b - a).unwrap();
                model[a as usize..b as usize].fill(0);
            }
            84..=87 => {
                let size = rng.below(blocks + 1) * BS as u64;
                f.set_len(&ctx, size).unwrap();
                model.resize(size as usize, 0);
            }
            88..=93 => f.fsync(&ctx).unwrap(),
            _ => fs.sync(&ctx).unwrap(),
        }
    }
    assert!(reads > 1000, "only {reads} reads");
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// A reader thread reads while a writer thread overwrites, punches, truncates and commits:
/// every block read is one whole version of that block (or zeroes), never another block's
/// bytes, and no read fails its checksum.
#[test]
fn direct_reads_see_whole_versions_while_another_thread_changes_the_file() {
    let seed = testkit::seed!();
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    let blocks = 256u64;
    {
        let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
        let data: Vec<u8> = (0..blocks).flat_map(|b| block(b, 1)).collect();
        f.write_at(&ctx, 0, &data).unwrap();
        fs.sync(&ctx).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fs, done) = (fs.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let ctx = fs.context().unwrap();
            let f = fs.open(&ctx, "/f", direct(), 0).unwrap();
            let mut rng = Rng::new(seed);
            for i in 0..1500u64 {
                let ver = i + 2;
                let blk = rng.below(blocks);
                match rng.below(100) {
                    0..=79 => {
                        let n = 1 + rng.below(4).min(blocks - blk - 1);
                        let data: Vec<u8> = (blk..blk + n).flat_map(|b| block(b, ver)).collect();
                        f.write_at(&ctx, blk * BS as u64, &data).unwrap();
                    }
                    80..=87 => {
                        let b = BS as u64;
                        f.fallocate(&ctx, FallocMode::PunchHole, blk * b, b)
                            .unwrap();
                    }
                    88..=91 => {
                        // Cut the file and grow it back: the blocks past the cut read zeroes.
                        f.set_len(&ctx, blk * BS as u64).unwrap();
                        f.set_len(&ctx, blocks * BS as u64).unwrap();
                    }
                    _ => fs.sync(&ctx).unwrap(),
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let f = fs.open(&ctx, "/f", direct(), 0).unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut reads = 0u64;
    while !done.load(Ordering::Acquire) || reads < 500 {
        let blk = rng.below(blocks);
        let n = 1 + rng.below(2) as usize;
        let (read, got) = read_blocks(&f, &ctx, blk, n);
        for (i, b) in got[..read].chunks(BS).enumerate() {
            let at = blk + i as u64;
            assert!(
                version_of(at, b).is_some(),
                "seed {seed}: block {at} read as neither zeroes nor one version of itself"
            );
        }
        reads += 1;
    }
    writer.join().unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}
