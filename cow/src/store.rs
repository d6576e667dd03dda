//! Node and superblock I/O: reads validated through the cache, batched concurrent writes,
//! flushes. Every node read is parsed and checked against its parent before anyone sees it.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bdev::{wait, BlockDevice, Bufs, Completion, DmaBuf, IoError, IoQueue, Lba, Op};

use crate::btree::{check_context, NodeAddr, NodeCache};
use crate::error::{Error, Result};
use crate::format::{parse_node, superblock_offsets, Node, Superblock, TreeId, SUPERBLOCK_AREA};

/// What does not change while a volume is open.
pub(crate) struct Shared {
    pub dev: Arc<dyn BlockDevice>,
    pub fsid: [u8; 16],
    pub nodesize: u32,
    pub sectorsize: u32,
    pub total_bytes: u64,
    pub block_size: u32,
    pub cache: NodeCache,
    /// The most nodes one commit has written since the volume was opened.
    pub peak_commit_nodes: AtomicU64,
    /// B-tree nodes in the last committed state (`Volume::metadata_reserve`).
    pub tree_nodes: AtomicU64,
}

impl Shared {
    fn lba(&self, bytenr: u64) -> Lba {
        Lba(bytenr / u64::from(self.block_size))
    }

    /// Reads `len` bytes at `bytenr` into a fresh DMA buffer.
    pub fn read_raw(&self, io: &mut dyn IoQueue, bytenr: u64, len: usize) -> Result<DmaBuf> {
        let buf = self.dev.alloc_buf(len)?;
        wait::read(io, self.lba(bytenr), buf)
            .map_err(|(_, e)| Error::io(format!("reading {len} bytes at {bytenr:#x}"), e))
    }

    /// The node at `at` of `tree`, from the cache or the device, validated.
    pub fn read_node(
        &self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        at: &NodeAddr,
    ) -> Result<Arc<Node>> {
        if let Some(n) = self.cache.get(at.bytenr, at.generation) {
            check_context(&n, tree, at)?;
            return Ok(n);
        }
        let what = if at.level == 0 { "leaf" } else { "node" };
        let end = at.bytenr.checked_add(u64::from(self.nodesize));
        if at.bytenr % u64::from(self.sectorsize) != 0 || end.is_none_or(|e| e > self.total_bytes) {
            return Err(Error::node(
                what,
                at.bytenr,
                tree,
                "address outside the volume or unaligned",
            ));
        }
        let buf = self
            .read_raw(io, at.bytenr, self.nodesize as usize)
            .map_err(|e| match e {
                Error::Io { source, .. } => Error::io(
                    format!("reading {what} {:#x} of tree {tree}", at.bytenr),
                    source,
                ),
                e => e,
            })?;
        let node = parse_node(&buf, &self.fsid, at.bytenr)
            .map_err(|p| Error::node(what, at.bytenr, tree, p))?;
        check_context(&node, tree, at)?;
        let node = Arc::new(node);
        self.cache.insert(Arc::clone(&node));
        Ok(node)
    }

    /// Writes `nodes` with as many requests in flight as the queue allows. Each node is
    /// validated as it is encoded; an invalid one is never written.
    pub fn write_nodes<'n>(
        &self,
        io: &mut dyn IoQueue,
        nodes: impl Iterator<Item = &'n Node>,
    ) -> Result<()> {
        // Encoded as the queue takes them, into buffers of finished writes: a commit's
        // thousands of nodes need a queue's depth of buffers, not one each.
        let mut nodes = nodes;
        self.write_stream(io, false, "node", |spare| {
            let n = nodes.next()?;
            let buf = match spare {
                Some(b) => Ok(b),
                None => self
                    .dev
                    .alloc_buf(self.nodesize as usize)
                    .map_err(Error::from),
            };
            Some(buf.and_then(|mut buf| {
                n.encode(&self.fsid, &mut buf).map_err(|p| {
                    Error::node(
                        n.what(),
                        n.bytenr,
                        n.owner,
                        format!("refusing to write: {p}"),
                    )
                })?;
                Ok((n.bytenr, buf))
            }))
        })
    }

    /// Submits the writes `next` produces (it gets the buffer of a finished write to reuse,
    /// if there is one), keeping the queue full, and waits for all of them, even after a
    /// failure, so nothing of ours stays in flight. A production error stops production.
    /// Returns the first error.
    fn write_stream(
        &self,
        io: &mut dyn IoQueue,
        fua: bool,
        what: &str,
        mut next: impl FnMut(Option<DmaBuf>) -> Option<Result<(u64, DmaBuf)>>,
    ) -> Result<()> {
        // Device addresses by tag, for error messages.
        let mut addrs: Vec<u64> = Vec::new();
        let mut spare: Vec<DmaBuf> = Vec::new();
        // A write the full queue refused, to submit first.
        let mut held: Option<(usize, DmaBuf)> = None;
        let (mut in_flight, mut producing) = (0usize, true);
        let mut first_err: Option<Error> = None;
        let mut done: Vec<Completion> = Vec::with_capacity(io.depth());
        loop {
            loop {
                let (i, buf) = match held.take() {
                    Some(h) => h,
                    None if producing => match next(spare.pop()) {
                        Some(Ok((addr, buf))) => {
                            addrs.push(addr);
                            (addrs.len() - 1, buf)
                        }
                        Some(Err(e)) => {
                            first_err.get_or_insert(e);
                            producing = false;
                            break;
                        }
                        None => {
                            producing = false;
                            break;
                        }
                    },
                    None => break,
                };
                let op = Op::Write {
                    lba: self.lba(addrs[i]),
                    bufs: Bufs::One(buf),
                    fua,
                };
                match io.submit(i as u64, op) {
                    Ok(()) => in_flight += 1,
                    Err(r) if r.is_queue_full() => {
                        let buf = r.op.into_bufs().and_then(Bufs::into_one);
                        held = Some((i, buf.expect("a write gives its buffer back")));
                        break;
                    }
                    Err(r) => {
                        let e = IoError::Invalid(r.error.to_string());
                        first_err
                            .get_or_insert(Error::io(format!("writing {what} {:#x}", addrs[i]), e));
                    }
                }
            }
            if in_flight == 0 && held.is_none() {
                break;
            }
            done.clear();
            io.poll(&mut done);
            for c in done.drain(..) {
                in_flight -= 1;
                if let Err(e) = c.result {
                    let at = addrs[c.tag as usize];
                    first_err.get_or_insert(Error::io(format!("writing {what} {at:#x}"), e));
                }
                spare.extend(c.op.into_bufs().and_then(Bufs::into_one));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Makes every completed write durable.
    pub fn flush(&self, io: &mut dyn IoQueue, why: &str) -> Result<()> {
        wait::flush(io).map_err(|e| Error::io(format!("flush {why}"), e))
    }

    /// Writes every superblock copy with FUA.
    pub fn write_superblocks(&self, io: &mut dyn IoQueue, sb: &Superblock) -> Result<()> {
        let mut ops = Vec::new();
        for off in superblock_offsets(self.total_bytes) {
            let sector = sb
                .encode(off)
                .map_err(|p| Error::Corrupt(format!("refusing to write superblock: {p}")))?;
            let mut buf = self.dev.alloc_buf(SUPERBLOCK_AREA)?;
            buf[..sector.len()].copy_from_slice(&sector);
            ops.push((off, buf));
        }
        let mut ops = ops.into_iter();
        self.write_stream(io, true, "superblock", |_| ops.next().map(Ok))
    }
}
