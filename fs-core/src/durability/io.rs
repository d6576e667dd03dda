//! Synchronous device I/O on the thread's metadata queue, for the log.

use bdev::{Bufs, Completion, IoQueue, Lba, Op};

use crate::core::Core;
use crate::error::{Error, Result};

fn run(io: &mut dyn IoQueue, mut op: Op) -> Result<Op> {
    loop {
        match io.submit(u64::MAX, op) {
            Ok(()) => break,
            Err(rej) if rej.is_queue_full() => {
                op = rej.op;
                let mut done = Vec::new();
                io.poll(&mut done);
            }
            Err(rej) => return Err(Error::Io(format!("log I/O refused: {rej}"))),
        }
    }
    let mut done: Vec<Completion> = Vec::with_capacity(io.depth());
    loop {
        io.poll(&mut done);
        if let Some(i) = done.iter().position(|c| c.tag == u64::MAX) {
            let c = done.swap_remove(i);
            return c
                .result
                .map(|()| c.op)
                .map_err(|e| Error::Io(format!("log I/O: {e}")));
        }
        std::hint::spin_loop();
    }
}

/// Reads `len` bytes at device byte `addr`.
pub(crate) fn read(core: &Core, addr: u64, len: u64) -> Result<Vec<u8>> {
    let sector = u64::from(core.dev.geometry().block_size);
    let buf = core.dev.alloc_buf(len as usize)?;
    let op = Op::Read {
        lba: Lba(addr / sector),
        bufs: Bufs::One(buf),
    };
    let op = core.with_io(|io| run(io, op))?;
    let buf = op.into_bufs().and_then(Bufs::into_one);
    Ok(buf.map(|b| b.to_vec()).unwrap_or_default())
}

/// Writes `data` at device byte `addr`, then flushes: durable on return.
pub(crate) fn write_flush(core: &Core, addr: u64, data: &[u8]) -> Result<()> {
    let sector = u64::from(core.dev.geometry().block_size);
    let mut buf = core.dev.alloc_buf(data.len())?;
    buf.copy_from_slice(data);
    let op = Op::Write {
        lba: Lba(addr / sector),
        bufs: Bufs::One(buf),
        fua: false,
    };
    core.with_io(|io| {
        run(io, op)?;
        run(io, Op::Flush)?;
        Ok(())
    })
}
