//! `SpdkQueue`: an SPDK thread and io channel owned by one OS thread, and the slot table of
//! the requests in flight on it.
//!
//! `submit` validates, takes a free slot and calls the bdev I/O function; SPDK's `-ENOMEM`
//! (no `spdk_bdev_io` free on this thread) gives the request back as `QueueFull`, the same
//! "poll, then retry" as a full queue, rather than queueing an `spdk_bdev_io_wait_entry`
//! that would keep the request hidden from the caller. `poll` polls the SPDK thread (the
//! completion callbacks fill the ring of `slot::Completions`) and finishes slots; a FUA
//! write goes on to its flush there.

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::Arc;

use spdk_sys as sys;

use super::desc::Desc;
use super::slot::{io_done, Completions, Slot, Stage};
use super::thread::IoThread;
use crate::device::{Completion, IoQueue, Op, Rejected};
use crate::error::{BdevError, IoError, SubmitError};
use crate::validate;

pub(super) struct SpdkQueue {
    slots: Box<[Slot]>,
    /// Indices of the empty slots.
    free: Vec<usize>,
    in_flight: usize,
    /// Slots whose FUA flush SPDK refused with `-ENOMEM`, to submit again at the next poll.
    retry: Vec<usize>,
    /// Scratch for the completions taken from the ring (capacity: the depth).
    reaped: Vec<(usize, bool)>,
    completions: NonNull<Completions>,
    channel: NonNull<sys::spdk_io_channel>,
    /// Dropped (exited, releasing the channel put in `drop`) before `desc`, which may
    /// then close the descriptor.
    thread: IoThread,
    desc: Arc<Desc>,
}

impl SpdkQueue {
    pub(super) fn new(name: &str, desc: Arc<Desc>, depth: usize) -> Result<SpdkQueue, BdevError> {
        let thread = IoThread::new(&format!("bfs_{name}"))?;
        thread.enter();
        // SAFETY: the descriptor is open (we hold it); the channel belongs to the current
        // SPDK thread, `thread`, and is only used and put on it.
        let channel = unsafe { sys::spdk_bdev_get_io_channel(desc.as_ptr()) };
        let Some(channel) = NonNull::new(channel) else {
            return Err(BdevError::Config(format!(
                "{name}: SPDK could not create an io channel (out of memory?)"
            )));
        };
        Ok(SpdkQueue {
            slots: (0..depth).map(|_| Slot::new()).collect(),
            free: (0..depth).rev().collect(),
            in_flight: 0,
            retry: Vec::with_capacity(depth),
            reaped: Vec::with_capacity(depth),
            completions: Completions::new(depth),
            channel,
            thread,
            desc,
        })
    }

    fn completions(&self) -> &Completions {
        // SAFETY: allocated in `new`, freed only in `drop`; only shared access is made.
        unsafe { self.completions.as_ref() }
    }

    /// Why `op` is finished without SPDK, if it is.
    #[inline(always)]
    fn refuse(&self, op: &Op) -> Option<IoError> {
        let geo = &self.desc.geometry;
        if self.desc.removal.is_removed() {
            return Some(IoError::Removed);
        }
        match op {
            Op::Flush if !geo.flush_honoured => Some(IoError::Unsupported(self.desc.refused_flush)),
            Op::Unmap { .. } if !self.desc.supports.unmap => Some(IoError::Unsupported("unmap")),
            Op::WriteZeroes { .. } if !self.desc.supports.write_zeroes => {
                Some(IoError::Unsupported("write-zeroes"))
            }
            _ if op.fua() && !geo.fua_honoured => Some(IoError::Unsupported(self.desc.refused_fua)),
            _ => None,
        }
    }

    /// Hands slot `idx`'s current step to SPDK: the request (of `blocks` blocks, as
    /// validated), or the flush of a FUA write. Returns SPDK's result (0 or a negative
    /// errno).
    #[inline(always)]
    fn issue(&mut self, idx: usize, blocks: u64) -> c_int {
        let desc = self.desc.as_ptr();
        let ch = self.channel.as_ptr();
        let arg = self.completions().ticket(idx);
        let cb = Some(io_done as unsafe extern "C" fn(_, _, _));
        let slot = &mut self.slots[idx];
        self.thread.enter();
        if let Stage::FuaFlush = slot.stage {
            let blocks = self.desc.geometry.block_count;
            // SAFETY: see `submit_op`; a flush has no buffers.
            return unsafe { sys::spdk_bdev_flush_blocks(desc, ch, 0, blocks, cb, arg) };
        }
        let single = slot.single_buf();
        let (iov, iovcnt) = slot.iovecs();
        let op = slot.op();
        // SAFETY: `desc` is open and `ch` is its channel on the current SPDK thread; `arg`
        // points to this slot's ticket, alive until the queue is dropped (which waits for
        // every completion). The buffers (and the iovec array) belong to the request held
        // by `slots[idx]`, which keeps them, untouched and unreachable by the caller, until
        // `io_done` has reported this I/O; the request was validated against the geometry.
        unsafe {
            match (op, single) {
                (Op::Read { lba, .. }, Some(buf)) => {
                    sys::spdk_bdev_read_blocks(desc, ch, buf, lba.0, blocks, cb, arg)
                }
                (Op::Read { lba, .. }, None) => {
                    sys::spdk_bdev_readv_blocks(desc, ch, iov, iovcnt, lba.0, blocks, cb, arg)
                }
                (Op::Write { lba, .. }, Some(buf)) => {
                    sys::spdk_bdev_write_blocks(desc, ch, buf, lba.0, blocks, cb, arg)
                }
                (Op::Write { lba, .. }, None) => {
                    sys::spdk_bdev_writev_blocks(desc, ch, iov, iovcnt, lba.0, blocks, cb, arg)
                }
                (Op::Flush, _) => {
                    let all = self.desc.geometry.block_count;
                    sys::spdk_bdev_flush_blocks(desc, ch, 0, all, cb, arg)
                }
                (Op::Unmap { lba, blocks }, _) => {
                    sys::spdk_bdev_unmap_blocks(desc, ch, lba.0, *blocks, cb, arg)
                }
                (Op::WriteZeroes { lba, blocks, .. }, _) => {
                    sys::spdk_bdev_write_zeroes_blocks(desc, ch, lba.0, *blocks, cb, arg)
                }
            }
        }
    }

    /// Whether a successful write of slot `idx` must still be flushed to honour its FUA.
    #[inline(always)]
    fn needs_fua_flush(&self, idx: usize) -> bool {
        let slot = &self.slots[idx];
        matches!(slot.stage, Stage::Main)
            && slot.op().fua()
            && self.desc.geometry.volatile_write_cache
    }

    /// The outcome of slot `idx`'s last bdev I/O.
    #[inline(always)]
    fn outcome(&mut self, idx: usize, success: bool) -> Result<(), IoError> {
        let slot = &mut self.slots[idx];
        if let Stage::Local(e) = std::mem::replace(&mut slot.stage, Stage::Main) {
            return Err(e);
        }
        if success {
            Ok(())
        } else if self.desc.removal.is_removed() {
            Err(IoError::Removed)
        } else {
            Err(slot.op().media_error())
        }
    }

    /// Moves slot `idx` on after a completion: to its FUA flush, or out to `done`.
    #[inline(always)]
    fn advance(&mut self, idx: usize, success: bool, done: &mut Vec<Completion>) -> bool {
        if success && self.needs_fua_flush(idx) {
            self.slots[idx].stage = Stage::FuaFlush;
            self.flush_for_fua(idx);
            return false;
        }
        let result = self.outcome(idx, success);
        self.finish(idx, result, done);
        true
    }

    fn flush_for_fua(&mut self, idx: usize) {
        match self.issue(idx, 0) {
            0 => {}
            e if e == -libc::ENOMEM => self.retry.push(idx),
            e => self.fail_locally(
                idx,
                IoError::Os {
                    op: "flush",
                    errno: -e,
                },
            ),
        }
    }

    /// Finishes slot `idx` with `e` at the next poll.
    fn fail_locally(&mut self, idx: usize, e: IoError) {
        self.slots[idx].stage = Stage::Local(e);
        self.completions().push(idx as u32, false);
    }

    #[inline(always)]
    fn finish(&mut self, idx: usize, result: Result<(), IoError>, done: &mut Vec<Completion>) {
        let (tag, op) = self.slots[idx].take();
        self.free.push(idx);
        self.in_flight -= 1;
        done.push(Completion { tag, op, result });
    }
}

impl IoQueue for SpdkQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        if self.in_flight >= self.slots.len() {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        let blocks = match validate::check(&self.desc.geometry, &op)
            .and_then(|blocks| check_write_unit(&op, blocks, self.desc.write_unit_blocks))
        {
            Ok(blocks) => blocks,
            Err(e) => {
                return Err(Rejected {
                    tag,
                    op,
                    error: e.into(),
                })
            }
        };
        let idx = self.free.pop().expect("fewer in flight than slots");
        if let Some(e) = self.refuse(&op) {
            self.slots[idx].start(tag, op, Stage::Local(e));
            self.completions().push(idx as u32, false);
            self.in_flight += 1;
            return Ok(());
        }
        self.slots[idx].start(tag, op, Stage::Main);
        match self.issue(idx, blocks) {
            0 => {
                self.in_flight += 1;
                Ok(())
            }
            rc => {
                let (tag, op) = self.slots[idx].take();
                self.free.push(idx);
                let error = if rc == -libc::ENOMEM {
                    SubmitError::QueueFull
                } else {
                    let name = op.kind().name();
                    SubmitError::Rejected(IoError::Os {
                        op: name,
                        errno: -rc,
                    })
                };
                Err(Rejected { tag, op, error })
            }
        }
    }

    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        // Polled even when idle: SPDK may have messages for this thread (a channel
        // iteration of a bdev being removed waits for every thread to answer).
        self.thread.poll();
        let retries = self.retry.len();
        for i in 0..retries {
            // Refused again, it goes to the end of the list, after `retries`.
            let idx = self.retry[i];
            self.flush_for_fua(idx);
        }
        self.retry.drain(..retries);
        let mut reaped = std::mem::take(&mut self.reaped);
        self.completions().take_into(&mut reaped);
        let mut finished = 0;
        for &(idx, success) in &reaped {
            finished += usize::from(self.advance(idx, success, done));
        }
        reaped.clear();
        self.reaped = reaped;
        finished
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn depth(&self) -> usize {
        self.slots.len()
    }
}

/// Writes must cover whole write units (a raid5f stripe, a zoned bdev's unit …).
#[inline(always)]
fn check_write_unit(op: &Op, blocks: u64, unit: u32) -> Result<u64, IoError> {
    let writes = matches!(op, Op::Write { .. } | Op::WriteZeroes { .. });
    let unit = u64::from(unit);
    if writes && unit > 1 && (blocks % unit != 0 || op.lba().map_or(0, |l| l.0) % unit != 0) {
        return Err(IoError::Invalid(format!(
            "{} of {blocks} blocks: this bdev writes whole units of {unit} blocks",
            op.kind().name()
        )));
    }
    Ok(blocks)
}

impl Drop for SpdkQueue {
    /// Polls until SPDK has completed every request in flight (only then may their buffers
    /// and the callback state be freed), then puts the channel and exits the thread.
    fn drop(&mut self) {
        let mut done = Vec::with_capacity(self.slots.len());
        while self.in_flight > 0 {
            self.poll(&mut done);
            done.clear();
            if self.in_flight > 0 {
                std::thread::yield_now();
            }
        }
        self.thread.enter();
        // SAFETY: the channel was got on this thread, which is current, and is put once;
        // no I/O is in flight, so no callback will name the completion state again.
        unsafe {
            sys::spdk_put_io_channel(self.channel.as_ptr());
            Completions::free(self.completions);
        }
        // `thread` drops after this: exits (releasing the channel) and is destroyed.
    }
}
