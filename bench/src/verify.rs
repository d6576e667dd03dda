//! The `verify` workload: write a range, read it back, compare (bdevperf's `-w verify`).
//!
//! Each slot owns two buffers: the data it wrote (kept while the read-back is in flight) and
//! the one it reads into. A cycle counts as one I/O; it fails on an I/O error or when the
//! bytes read differ from the bytes written. Ranges are taken in order and there are at least
//! as many ranges as slots (checked by `plan`), so no two cycles touch the same range at once.

use bdev::{BlockDevice, Bufs, Completion, DmaBuf, Lba, Op};

use crate::error::BenchError;

/// Buffers and state of every slot of a verify job.
pub struct Verifier {
    /// What each slot wrote; `None` while its write is in flight.
    written: Vec<Option<DmaBuf>>,
    /// Each slot's read-back buffer; `None` while its read is in flight.
    readback: Vec<Option<DmaBuf>>,
    lba: Vec<Lba>,
    /// Counts writes, so every write carries data no earlier write had.
    generation: u64,
    seed: u64,
}

/// What a completion means for its slot.
pub struct Step {
    /// The cycle ended: `Ok` or what went wrong.
    pub ended: Option<Result<(), String>>,
    /// The next request of the slot, if any.
    pub next: Option<Op>,
}

impl Verifier {
    /// Allocates two buffers of `io_size` per slot.
    pub fn new(
        dev: &dyn BlockDevice,
        depth: usize,
        io_size: usize,
        seed: u64,
    ) -> Result<Verifier, BenchError> {
        let mut written = Vec::with_capacity(depth);
        let mut readback = Vec::with_capacity(depth);
        for _ in 0..depth {
            written.push(Some(dev.alloc_buf(io_size)?));
            readback.push(Some(dev.alloc_buf(io_size)?));
        }
        Ok(Verifier {
            written,
            readback,
            lba: vec![Lba(0); depth],
            generation: 0,
            seed,
        })
    }

    /// Starts a cycle of slot `tag` at `lba`: the write.
    pub fn first_write(&mut self, tag: u64, lba: Lba) -> Op {
        let slot = tag as usize;
        let mut buf = self.written[slot]
            .take()
            .expect("an idle slot holds its write buffer");
        self.generation += 1;
        fill(&mut buf, self.seed ^ (self.generation << 32) ^ lba.0);
        self.lba[slot] = lba;
        Op::Write {
            lba,
            bufs: Bufs::One(buf),
            fua: false,
        }
    }

    /// Advances slot `c.tag`. Before the deadline (`running`) the slot goes on: a written
    /// range is read back, a compared one is followed by a new write at `next_lba()`.
    pub fn complete(
        &mut self,
        c: Completion,
        running: bool,
        next_lba: impl FnOnce() -> Lba,
    ) -> Step {
        let slot = c.tag as usize;
        let kind = c.op.kind();
        let buf =
            c.op.into_bufs()
                .and_then(Bufs::into_one)
                .expect("verify requests carry one buffer");
        let ended = match (kind, c.result) {
            (bdev::OpKind::Write, Ok(())) => {
                self.written[slot] = Some(buf);
                if !running {
                    return Step {
                        ended: None,
                        next: None,
                    };
                }
                let read = self.readback[slot]
                    .take()
                    .expect("an idle slot holds its read buffer");
                return Step {
                    ended: None,
                    next: Some(Op::Read {
                        lba: self.lba[slot],
                        bufs: Bufs::One(read),
                    }),
                };
            }
            (bdev::OpKind::Write, Err(e)) => {
                self.written[slot] = Some(buf);
                Err(e.to_string())
            }
            (_, result) => {
                let wrote = self.written[slot]
                    .as_deref()
                    .expect("a reading slot keeps what it wrote");
                let ended = match result {
                    Err(e) => Err(e.to_string()),
                    Ok(()) if buf[..] != *wrote => Err(mismatch(self.lba[slot], wrote, &buf)),
                    Ok(()) => Ok(()),
                };
                self.readback[slot] = Some(buf);
                ended
            }
        };
        let next = running.then(|| self.first_write(c.tag, next_lba()));
        Step {
            ended: Some(ended),
            next,
        }
    }
}

/// Fills `buf` with 64-bit words that differ per word, per range and per write.
fn fill(buf: &mut [u8], base: u64) {
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&base.wrapping_add(i as u64).to_le_bytes());
    }
}

#[cold]
fn mismatch(lba: Lba, wrote: &[u8], read: &[u8]) -> String {
    let at = wrote
        .iter()
        .zip(read)
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    format!(
        "verify mismatch: range at LBA {lba}, byte {at}: wrote {:#04x}, read {:#04x}",
        wrote[at], read[at]
    )
}
