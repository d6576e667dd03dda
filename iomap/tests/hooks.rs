//! The filesystem hooks around data: `complete` sees exactly the bytes sent to the device
//! (`IoDone::data`), and `verify_read` sees every device read of file data and can fail it.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bdev::exec::Context;
use bdev::mem::MemDevice;
use bdev::DmaBuf;
use iomap::{
    Ended, FsError, Ino, IoDone, IoMap, Iomap, IomapConfig, IomapError, IomapOps, IterArgs, Maps,
    Result,
};
use support::RefFs;

/// `RefFs` with recording `complete` and a switchable failing `verify_read`.
struct Hooked {
    fs: RefFs,
    fail_reads: AtomicBool,
    /// The next this many reads find their mapping replaced.
    moved: AtomicUsize,
    verified: Mutex<u64>,
    /// (pos, the bytes `complete` was shown).
    completed: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl IomapOps for Hooked {
    fn block_size(&self) -> u32 {
        self.fs.block_size()
    }
    fn size(&self, ino: Ino) -> Result<u64> {
        self.fs.size(ino)
    }
    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        self.fs.set_size(ino, size)
    }
    fn grow_size(&self, ino: Ino, end: u64) -> Result<bool> {
        self.fs.grow_size(ino, end)
    }
    async fn begin(&self, c: &Context, args: IterArgs) -> Result<Maps> {
        self.fs.begin(c, args).await
    }
    async fn end(&self, c: &Context, ended: &Ended<'_>) -> Result<()> {
        if let Some(done) = ended.io {
            self.saw(done);
        }
        self.fs.end(c, ended).await
    }
    async fn complete(&self, c: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()> {
        self.saw(done);
        self.fs.complete(c, ino, done).await
    }
    async fn verify_read(
        &self,
        _: &Context,
        ino: Ino,
        pos: u64,
        _: &IoMap,
        data: &[DmaBuf],
    ) -> Result<()> {
        *self.verified.lock().unwrap() += data.iter().map(|d| d.len() as u64).sum::<u64>();
        if self.fail_reads.load(Ordering::Relaxed) {
            return Err(IomapError::Fs(FsError::msg(format!(
                "inode {ino}: bad checksum at {pos}"
            ))));
        }
        let moved = self.moved.load(Ordering::Relaxed);
        if moved > 0 {
            self.moved.store(moved - 1, Ordering::Relaxed);
            return Err(IomapError::MappingChanged { ino: ino.0, pos });
        }
        Ok(())
    }
}

impl Hooked {
    /// Records the bytes a completion (writeback's `complete`, a direct write's `end`) shows.
    fn saw(&self, done: &IoDone<'_>) {
        let bytes: Vec<u8> = done.data.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(
            bytes.len() as u64,
            done.len,
            "data covers exactly the completion"
        );
        self.completed.lock().unwrap().push((done.pos, bytes));
    }
}

fn setup() -> (Context, Iomap<Hooked>) {
    let mem = Arc::new(MemDevice::new("m", 4096, 1024).unwrap());
    let ctx = Context::new();
    let id = ctx.attach(&*mem, 64).unwrap();
    let ops = Hooked {
        fs: RefFs::new(4096, 1024),
        fail_reads: AtomicBool::new(false),
        moved: AtomicUsize::new(0),
        verified: Mutex::new(0),
        completed: Mutex::new(Vec::new()),
    };
    (
        ctx,
        Iomap::new(ops, mem, id, IomapConfig::default()).unwrap(),
    )
}

#[test]
fn complete_sees_the_bytes_written_and_verify_can_fail_reads() {
    let (ctx, io) = setup();
    let f = Ino(1);
    io.ops().fs.create(f);
    let data: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8 + 1).collect();
    ctx.block_on(io.write(&ctx, f, 0, &data)).unwrap();
    ctx.block_on(io.sync_file(&ctx, f)).unwrap();
    let mut buf = io.alloc_buf(8192).unwrap();
    buf.fill(0xaa);
    io.write_direct_dma(&ctx, f, 16384, &mut buf).unwrap();
    {
        let done = io.ops().completed.lock().unwrap();
        let mut seen = vec![0u8; 24576];
        for (pos, bytes) in done.iter() {
            seen[*pos as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        assert_eq!(&seen[..16384], &data[..]);
        assert!(seen[16384..].iter().all(|&b| b == 0xaa));
    }
    // Reads from the device go through verify_read; a failure fails the read and leaves
    // nothing bad in the cache.
    io.cache().forget(f);
    io.ops().fail_reads.store(true, Ordering::Relaxed);
    let mut out = vec![0u8; 4096];
    assert!(ctx.block_on(io.read(&ctx, f, 0, &mut out)).is_err());
    assert!(io.read_direct_sync(&ctx, f, 16384, &mut out).is_err());
    // A partial buffered overwrite needs the old block: its source read is verified too.
    assert!(ctx.block_on(io.write(&ctx, f, 100, b"x")).is_err());
    io.ops().fail_reads.store(false, Ordering::Relaxed);
    assert_eq!(ctx.block_on(io.read(&ctx, f, 0, &mut out)).unwrap(), 4096);
    assert_eq!(&out[..], &data[..4096]);
    assert!(*io.ops().verified.lock().unwrap() >= 3 * 4096);
}

/// A read whose mapping a concurrent write replaced (`verify_read` says
/// `MappingChanged`) maps and reads again, in every read path, a bounded number of times.
#[test]
fn reads_whose_mapping_moved_are_read_again() {
    let (ctx, io) = setup();
    let f = Ino(1);
    io.ops().fs.create(f);
    let data: Vec<u8> = (0..16384u32).map(|i| (i % 249) as u8 + 1).collect();
    ctx.block_on(io.write(&ctx, f, 0, &data)).unwrap();
    ctx.block_on(io.sync_file(&ctx, f)).unwrap();
    io.cache().forget(f);
    let moved = |n: usize| io.ops().moved.store(n, Ordering::Relaxed);
    let left = || io.ops().moved.load(Ordering::Relaxed);
    let mut out = vec![0u8; 4096];
    // Buffered read (a cache fill).
    moved(3);
    assert_eq!(
        ctx.block_on(io.read(&ctx, f, 4096, &mut out)).unwrap(),
        4096
    );
    assert_eq!(&out[..], &data[4096..8192]);
    assert_eq!(left(), 0, "every moved mapping was read again");
    // Direct read.
    moved(3);
    assert_eq!(io.read_direct_sync(&ctx, f, 8192, &mut out).unwrap(), 4096);
    assert_eq!(&out[..], &data[8192..12288]);
    assert_eq!(left(), 0);
    // A partial buffered overwrite's source read.
    io.cache().forget(f);
    moved(2);
    ctx.block_on(io.write(&ctx, f, 12288 + 100, b"xy")).unwrap();
    assert_eq!(left(), 0);
    assert_eq!(
        ctx.block_on(io.read(&ctx, f, 12288, &mut out)).unwrap(),
        4096
    );
    assert_eq!(&out[..100], &data[12288..12388]);
    assert_eq!(&out[100..102], b"xy");
    assert_eq!(&out[102..], &data[12390..16384]);
    // A mapping that never settles is an error, not a hang.
    io.cache().forget(f);
    moved(usize::MAX);
    let err = ctx.block_on(io.read(&ctx, f, 0, &mut out)).unwrap_err();
    assert!(matches!(err, IomapError::MappingChanged { .. }), "{err}");
    let err = io.read_direct_sync(&ctx, f, 0, &mut out).unwrap_err();
    assert!(matches!(err, IomapError::MappingChanged { .. }), "{err}");
    moved(0);
}

#[test]
fn a_failed_read_ahead_fails_nothing_and_is_read_again() {
    let (ctx, io) = setup();
    let f = Ino(1);
    io.ops().fs.create(f);
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i % 241) as u8 + 1).collect();
    ctx.block_on(io.write(&ctx, f, 0, &data)).unwrap();
    ctx.block_on(io.sync_file(&ctx, f)).unwrap();
    io.cache().forget(f);
    let mut out = vec![0u8; 1 << 20];
    // The first MiB and the read-ahead of the second both fail verification: the read
    // reports it, the read-ahead's pages stay stale.
    io.ops().fail_reads.store(true, Ordering::Relaxed);
    assert!(ctx.block_on(io.read(&ctx, f, 0, &mut out)).is_err());
    let verified = *io.ops().verified.lock().unwrap();
    assert!(verified >= 2 << 20, "the read-ahead was tried: {verified}");
    io.ops().fail_reads.store(false, Ordering::Relaxed);
    // The second MiB comes from the device again, good this time.
    assert_eq!(
        ctx.block_on(io.read(&ctx, f, 1 << 20, &mut out)).unwrap(),
        1 << 20
    );
    assert_eq!(&out[..], &data[1 << 20..]);
    assert!(*io.ops().verified.lock().unwrap() >= verified + (1 << 20));
    assert_eq!(
        ctx.block_on(io.read(&ctx, f, 0, &mut out)).unwrap(),
        1 << 20
    );
    assert_eq!(&out[..], &data[..1 << 20]);
}
