//! Shared test support: the reference filesystem and a harness around it.

#![allow(dead_code)]

pub mod refs;

use std::sync::Arc;

use bdev::exec::Context;
use bdev::mem::MemDevice;
use bdev::BlockDevice;
use iomap::{Ino, Iomap, IomapConfig};

pub use refs::RefFs;

/// A reference filesystem on a RAM device, its iomap layer and a context.
pub struct Harness {
    pub ctx: Context,
    pub io: Iomap<RefFs>,
    pub mem: Arc<MemDevice>,
}

impl Harness {
    /// `blocks` filesystem blocks of `bs` bytes on a device with `sector`-byte sectors.
    pub fn new(sector: u32, bs: u32, blocks: u64, cfg: IomapConfig) -> Harness {
        let dev_blocks = blocks * u64::from(bs / sector);
        let mem = Arc::new(MemDevice::new("mem0", sector, dev_blocks).unwrap());
        Harness::on(mem.clone(), mem, bs, blocks, cfg)
    }

    /// The same over any device (`mem` stays the RAM device underneath, for inspection).
    pub fn on(
        dev: Arc<dyn BlockDevice>,
        mem: Arc<MemDevice>,
        bs: u32,
        blocks: u64,
        cfg: IomapConfig,
    ) -> Harness {
        let ctx = Context::new();
        let id = ctx.attach(&*dev, 128).unwrap();
        let io = Iomap::new(RefFs::new(bs, blocks), dev, id, cfg).unwrap();
        Harness { ctx, io, mem }
    }

    pub fn create(&self, ino: u64) -> Ino {
        self.io.ops().create(Ino(ino));
        Ino(ino)
    }

    pub fn read(&self, ino: Ino, pos: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        let n = self
            .ctx
            .block_on(self.io.read(&self.ctx, ino, pos, &mut v))
            .unwrap();
        v.truncate(n);
        v
    }

    pub fn write(&self, ino: Ino, pos: u64, data: &[u8]) {
        let n = self
            .ctx
            .block_on(self.io.write(&self.ctx, ino, pos, data))
            .unwrap();
        assert_eq!(n, data.len());
    }

    pub fn sync(&self, ino: Ino) {
        self.ctx
            .block_on(self.io.sync_file(&self.ctx, ino))
            .unwrap();
    }
}
