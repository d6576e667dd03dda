//! The slot table of a queue and what SPDK's completion callback may touch.
//!
//! SPDK calls `io_done(bdev_io, success, cb_arg)` from inside `spdk_thread_poll`, i.e. while
//! the queue's `poll` holds `&mut self`. So the callback never reaches the slot table: its
//! argument points at a [`Ticket`] in a separate allocation ([`Completions`], owned through a
//! raw pointer so that moving the queue never retags it), and all it does is free the
//! bdev I/O and append `(slot, success)` to a ring of `Cell`s there. `poll` then reads the
//! ring and finishes the slots.

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;

use spdk_sys as sys;

use crate::device::Op;
use crate::error::IoError;

/// Where a slot's request is.
#[derive(Debug)]
pub(super) enum Stage {
    /// The request itself is with SPDK.
    Main,
    /// The write of a FUA request is done; the flush that makes it durable is with SPDK
    /// (or waits for a bdev I/O to be free: `retry`).
    FuaFlush,
    /// Finished without SPDK (unsupported, removed, refused by SPDK); completes at the
    /// next poll with this error.
    Local(IoError),
}

/// One request in flight and the iovec array SPDK reads for it.
pub(super) struct Slot {
    req: Option<(u64, Op)>,
    pub(super) stage: Stage,
    /// The segments of a vectored request. SPDK keeps a pointer to this array until the
    /// request completes, so it is not touched meanwhile (capacity is kept across uses).
    iovecs: Vec<sys::iovec>,
}

impl Slot {
    pub(super) fn new() -> Slot {
        Slot {
            req: None,
            stage: Stage::Main,
            iovecs: Vec::new(),
        }
    }

    /// Takes `op` in. The slot must be free.
    #[inline(always)]
    pub(super) fn start(&mut self, tag: u64, mut op: Op, stage: Stage) {
        debug_assert!(self.req.is_none(), "slot reused while in flight");
        self.iovecs.clear();
        if let Op::Read { bufs, .. } | Op::Write { bufs, .. } = &mut op {
            if bufs.segments().len() > 1 {
                self.iovecs
                    .extend(bufs.segments_mut().iter_mut().map(|seg| sys::iovec {
                        iov_base: seg.as_mut_ptr().cast(),
                        iov_len: seg.len(),
                    }));
            }
        }
        self.stage = stage;
        self.req = Some((tag, op));
    }

    /// The request in the slot.
    #[inline(always)]
    pub(super) fn op(&self) -> &Op {
        &self.req.as_ref().expect("an occupied slot").1
    }

    /// The request's single buffer, or `None` for a vectored one.
    #[inline(always)]
    pub(super) fn single_buf(&mut self) -> Option<*mut c_void> {
        match self.req.as_mut() {
            Some((_, Op::Read { bufs, .. } | Op::Write { bufs, .. })) => {
                match bufs.segments_mut() {
                    [one] => Some(one.as_mut_ptr().cast()),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The iovec array of a vectored request (pointer, count).
    #[inline(always)]
    pub(super) fn iovecs(&mut self) -> (*mut sys::iovec, i32) {
        (self.iovecs.as_mut_ptr(), self.iovecs.len() as i32)
    }

    /// Gives the request back and frees the slot.
    #[inline(always)]
    pub(super) fn take(&mut self) -> (u64, Op) {
        self.stage = Stage::Main;
        self.req.take().expect("a finished slot holds its request")
    }
}

/// The argument SPDK hands back to `io_done`: which slot, and whose ring.
pub(super) struct Ticket {
    owner: *const Completions,
    slot: u32,
}

/// Completions reported by SPDK and not yet read by `poll`. At most one bdev I/O per slot
/// is with SPDK at a time, so the ring (one entry per slot) never overflows.
pub(super) struct Completions {
    tickets: Box<[Ticket]>,
    ring: Box<[Cell<u32>]>,
    len: Cell<usize>,
}

impl Completions {
    /// Allocates the state for `depth` slots, at an address that stays put until
    /// [`Completions::free`].
    pub(super) fn new(depth: usize) -> NonNull<Completions> {
        let raw = Box::into_raw(Box::new(Completions {
            tickets: Box::new([]),
            ring: (0..depth).map(|_| Cell::new(0)).collect(),
            len: Cell::new(0),
        }));
        let tickets = (0..depth as u32)
            .map(|slot| Ticket { owner: raw, slot })
            .collect();
        // SAFETY: `raw` is the fresh, unique allocation made above.
        unsafe { (*raw).tickets = tickets };
        NonNull::new(raw).expect("Box::into_raw is never null")
    }

    /// Frees the state.
    ///
    /// # Safety
    /// `this` came from [`Completions::new`], is freed once, and no bdev I/O whose callback
    /// argument is one of its tickets is still with SPDK.
    pub(super) unsafe fn free(this: NonNull<Completions>) {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(this.as_ptr()) });
    }

    /// The callback argument for slot `slot`.
    pub(super) fn ticket(&self, slot: usize) -> *mut c_void {
        (&raw const self.tickets[slot]).cast_mut().cast()
    }

    /// Records that slot `slot`'s bdev I/O finished.
    pub(super) fn push(&self, slot: u32, success: bool) {
        let n = self.len.get();
        match self.ring.get(n) {
            Some(cell) => {
                cell.set(slot << 1 | u32::from(success));
                self.len.set(n + 1);
            }
            None => log::error!("bdev spdk: more completions than slots (slot {slot} dropped)"),
        }
    }

    /// Moves the recorded completions, oldest first, into `out` as `(slot, success)` and
    /// empties the ring. `out` has room for them if its capacity is the depth.
    pub(super) fn take_into(&self, out: &mut Vec<(usize, bool)>) {
        let n = self.len.get();
        out.extend(self.ring[..n].iter().map(|c| {
            let v = c.get();
            ((v >> 1) as usize, v & 1 == 1)
        }));
        self.len.set(0);
    }
}

/// SPDK's completion callback for every bdev I/O of a queue.
pub(super) unsafe extern "C" fn io_done(
    bdev_io: *mut sys::spdk_bdev_io,
    success: bool,
    cb_arg: *mut c_void,
) {
    // SAFETY: SPDK hands us its bdev I/O to release, once.
    unsafe { sys::spdk_bdev_free_io(bdev_io) };
    // SAFETY: `cb_arg` is a `Ticket` of a live `Completions` (the queue frees it only after
    // the last callback), which is only read; this runs on the queue's OS thread.
    let ticket = unsafe { &*cb_arg.cast::<Ticket>() };
    // SAFETY: as above; `Completions` is only accessed through shared references and
    // `Cell`s.
    let owner = unsafe { &*ticket.owner };
    owner.push(ticket.slot, success);
}
