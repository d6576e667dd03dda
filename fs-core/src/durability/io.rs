//! Synchronous device I/O on the thread's metadata queue, for the log.

use bdev::{Bufs, Completion, IoError, IoQueue, Lba, Op};

use crate::error::{Error, Result};
use crate::state::Core;

/// A device request's outcome.
type IoResult = std::result::Result<(), IoError>;

fn run(io: &mut dyn IoQueue, op: Op) -> Result<Op> {
    let mut done = run_together(io, vec![op])?;
    Ok(done.pop().expect("one op in, one out"))
}

/// Submits `ops` one after another without waiting in between, then waits for all of them
/// (even after a failure, so none stays in flight). Returns the first failure, else the
/// ops back in their order.
fn run_together(io: &mut dyn IoQueue, ops: Vec<Op>) -> Result<Vec<Op>> {
    run_each(io, ops)
        .into_iter()
        .map(|(op, r)| r.map(|()| op))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Io(format!("log I/O: {e}")))
}

/// [`run_together`] with each op's own outcome, and each op back (its buffers), failed or
/// not.
pub(crate) fn run_each(io: &mut dyn IoQueue, ops: Vec<Op>) -> Vec<(Op, IoResult)> {
    let n = ops.len();
    // Tags from the top of the range, which no other user of the queue takes.
    let tag = |i: usize| u64::MAX - i as u64;
    let mut back: Vec<Option<(Op, IoResult)>> = (0..n).map(|_| None).collect();
    let mut done: Vec<Completion> = Vec::with_capacity(io.depth());
    let mut reap = |io: &mut dyn IoQueue, back: &mut Vec<Option<(Op, IoResult)>>| {
        io.poll(&mut done);
        for c in done.drain(..) {
            if let Some(i) = (0..n).find(|&i| tag(i) == c.tag) {
                back[i] = Some((c.op, c.result));
            }
        }
    };
    for (i, mut op) in ops.into_iter().enumerate() {
        loop {
            match io.submit(tag(i), op) {
                Ok(()) => break,
                Err(rej) if rej.is_queue_full() => {
                    op = rej.op;
                    reap(io, &mut back);
                }
                Err(rej) => {
                    let why = IoError::Invalid(format!("refused: {}", rej.error));
                    back[i] = Some((rej.op, Err(why)));
                    break;
                }
            }
        }
    }
    while back.iter().any(Option::is_none) {
        reap(io, &mut back);
        std::hint::spin_loop();
    }
    back.into_iter().map(|r| r.expect("all finished")).collect()
}

/// Reads `len` bytes at device byte `addr`.
pub(crate) fn read(core: &Core, addr: u64, len: u64) -> Result<Vec<u8>> {
    let sector = u64::from(core.dev().geometry().block_size);
    let buf = core.dev().alloc_buf(len as usize)?;
    let op = Op::Read {
        lba: Lba(addr / sector),
        bufs: Bufs::One(buf),
    };
    let op = core.with_io(|io| run(io, op))?;
    let buf = op.into_bufs().and_then(Bufs::into_one);
    Ok(buf.map(|b| b.to_vec()).unwrap_or_default())
}

/// Writes `data` at device byte `addr` with FUA and flushes, both in flight at once: on
/// return the write is durable (FUA), and so is every write that completed before the call
/// (the flush), which is what an fsync record needs: the data it names completed before
/// the record was written. One device round trip instead of a write and then a flush.
pub(crate) fn write_fua_flush(core: &Core, addr: u64, data: &[u8]) -> Result<()> {
    let op = fua_write(core, addr, data)?;
    core.with_io(|io| run_together(io, vec![op, Op::Flush]).map(drop))
}

/// Writes `data` at device byte `addr` with FUA: durable on return, with no promise about
/// other writes (a record that names no data: `fsync.rs`).
pub(crate) fn write_fua(core: &Core, addr: u64, data: &[u8]) -> Result<()> {
    let op = fua_write(core, addr, data)?;
    core.with_io(|io| run(io, op).map(drop))
}

/// A write of a copy of `data` at device byte `addr` with FUA.
pub(crate) fn fua_write(core: &Core, addr: u64, data: &[u8]) -> Result<Op> {
    let sector = u64::from(core.dev().geometry().block_size);
    let mut buf = core.dev().alloc_buf(data.len())?;
    buf.copy_from_slice(data);
    Ok(Op::Write {
        lba: Lba(addr / sector),
        bufs: Bufs::One(buf),
        fua: true,
    })
}
