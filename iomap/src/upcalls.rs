//! The calls from the core into the filesystem, counted by kind ([`Upcalls`]): the contract
//! in `ops.rs` promises how many an operation makes (a direct write of one mapping: three),
//! and tests hold it to that.
//!
//! [`Counted`] wraps the filesystem's [`IomapOps`] and is what the operations call, so
//! every call is counted however it is reached (the iteration, a direct read's short path).

use std::sync::Arc;

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf};

use crate::counters::{Counter, IoCounters, Upcalls};
use crate::error::Result;
use crate::map::IoMap;
use crate::ops::{DirectWrite, Ended, Ino, IoDone, IomapOps, IterArgs, Maps, Submitted};

/// The filesystem's ops, each call counted in `counters.upcalls`.
pub(crate) struct Counted<O> {
    pub fs: O,
    pub counters: Arc<IoCounters>,
}

impl<O> Counted<O> {
    fn count(&self, which: impl Fn(&Upcalls) -> &Counter) {
        IoCounters::bump(which(&self.counters.upcalls), 1);
    }
}

impl<O: IomapOps> IomapOps for Counted<O> {
    fn block_size(&self) -> u32 {
        self.fs.block_size()
    }

    fn size(&self, ino: Ino) -> Result<u64> {
        self.count(|u| &u.size);
        self.fs.size(ino)
    }

    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        self.count(|u| &u.size);
        self.fs.set_size(ino, size)
    }

    fn grow_size(&self, ino: Ino, end: u64) -> Result<bool> {
        self.count(|u| &u.size);
        self.fs.grow_size(ino, end)
    }

    async fn begin(&self, ctx: &Context, args: IterArgs) -> Result<Maps> {
        self.count(|u| &u.begin);
        self.fs.begin(ctx, args).await
    }

    async fn end(&self, ctx: &Context, ended: &Ended<'_>) -> Result<()> {
        self.count(|u| &u.end);
        self.fs.end(ctx, ended).await
    }

    async fn submit_direct(&self, ctx: &Context, w: &DirectWrite<'_>, bufs: Bufs) -> Submitted {
        self.count(|u| &u.submit_direct);
        self.fs.submit_direct(ctx, w, bufs).await
    }

    async fn complete(&self, ctx: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()> {
        self.count(|u| &u.complete);
        self.fs.complete(ctx, ino, done).await
    }

    async fn verify_read(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> Result<()> {
        self.count(|u| &u.verify_read);
        self.fs.verify_read(ctx, ino, pos, map, data).await
    }
}
