//! The contract's promise on calls into the filesystem: a direct write of one mapping is
//! `begin`, `submit_direct`, `end` and nothing else, and `begin`'s `private` comes back
//! untouched to the other two.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bdev::exec::Context;
use bdev::mem::MemDevice;
use bdev::{Bufs, DmaBuf};
use iomap::{
    DirectWrite, Ended, Ino, IoCounters, IoDone, IoMap, Iomap, IomapConfig, IomapOps, IterArgs,
    Maps, Result, Submitted,
};
use support::RefFs;

/// `RefFs` that counts every call itself and tags each write map with a fresh token.
struct Counting {
    fs: RefFs,
    calls: Mutex<Vec<&'static str>>,
    next_token: AtomicU64,
    /// Tokens handed out by `begin` and not yet seen by `end`.
    open: Mutex<Vec<u64>>,
}

impl Counting {
    fn call(&self, what: &'static str) {
        self.calls.lock().unwrap().push(what);
    }

    fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl IomapOps for Counting {
    fn block_size(&self) -> u32 {
        self.fs.block_size()
    }
    fn size(&self, ino: Ino) -> Result<u64> {
        self.call("size");
        self.fs.size(ino)
    }
    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        self.call("set_size");
        self.fs.set_size(ino, size)
    }
    fn grow_size(&self, ino: Ino, end: u64) -> Result<bool> {
        self.call("grow_size");
        self.fs.grow_size(ino, end)
    }
    async fn begin(&self, c: &Context, args: IterArgs) -> Result<Maps> {
        self.call("begin");
        let mut maps = self.fs.begin(c, args).await?;
        let token = self.next_token.fetch_add(1, Ordering::Relaxed) + 1;
        maps.write.private = token;
        self.open.lock().unwrap().push(token);
        Ok(maps)
    }
    async fn end(&self, c: &Context, ended: &Ended<'_>) -> Result<()> {
        self.call("end");
        let token = ended.write_map.private;
        {
            let mut open = self.open.lock().unwrap();
            let at = open.iter().position(|&t| t == token);
            assert!(at.is_some(), "end got token {token}, not one begin gave");
            open.swap_remove(at.unwrap());
        }
        self.fs.end(c, ended).await
    }
    async fn submit_direct(&self, c: &Context, w: &DirectWrite<'_>, bufs: Bufs) -> Submitted {
        self.call("submit_direct");
        let token = w.write_map.private;
        assert!(self.open.lock().unwrap().contains(&token), "token {token}");
        self.fs.submit_direct(c, w, bufs).await
    }
    async fn complete(&self, c: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()> {
        self.call("complete");
        self.fs.complete(c, ino, done).await
    }
    async fn verify_read(
        &self,
        c: &Context,
        ino: Ino,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> Result<()> {
        self.call("verify_read");
        self.fs.verify_read(c, ino, pos, map, data).await
    }
}

#[test]
fn a_direct_write_is_three_calls_and_private_comes_back() {
    let mem = Arc::new(MemDevice::new("m", 4096, 1024).unwrap());
    let ctx = Context::new();
    let id = ctx.attach(&*mem, 64).unwrap();
    let ops = Counting {
        fs: RefFs::new(4096, 1024),
        calls: Mutex::new(Vec::new()),
        next_token: AtomicU64::new(0),
        open: Mutex::new(Vec::new()),
    };
    let io = Iomap::new(ops, mem, id, IomapConfig::default()).unwrap();
    let f = Ino(1);
    io.ops().fs.create(f);
    let mut buf = io.alloc_buf(4096).unwrap();
    let three = ["begin", "submit_direct", "end"];
    for (what, pos, byte, size_after) in [
        ("grows the file", 0u64, 1u8, 4096u64),
        ("grows the file again", 4096, 2, 8192),
        ("overwrites", 0, 3, 8192),
    ] {
        buf.fill(byte);
        let before = io.counters().upcalls.total();
        let begins = IoCounters::get(&io.counters().upcalls.begin);
        io.ops().take_calls();
        assert_eq!(io.write_direct_dma(&ctx, f, pos, &mut buf).unwrap(), 4096);
        assert_eq!(
            io.ops().take_calls(),
            three,
            "a 4 KiB direct write that {what}"
        );
        let total = io.counters().upcalls.total() - before;
        assert_eq!(total, 3, "the layer's own count agrees ({what})");
        assert_eq!(IoCounters::get(&io.counters().upcalls.begin), begins + 1);
        assert_eq!(io.ops().fs.size(f).unwrap(), size_after, "{what}");
        assert!(
            io.ops().open.lock().unwrap().is_empty(),
            "every begin ended"
        );
    }
    let mut out = vec![0u8; 8192];
    assert_eq!(io.read_direct_sync(&ctx, f, 0, &mut out).unwrap(), 8192);
    assert!(out[..4096].iter().all(|&b| b == 3));
    assert!(out[4096..].iter().all(|&b| b == 2));
}
