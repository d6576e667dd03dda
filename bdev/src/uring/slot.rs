//! One entry of a queue's slot table: a request in flight, its iovec array, and how far
//! it got. A slot turns its request into one SQE at a time and reads each CQE to decide
//! whether the request is finished or needs another SQE (the rest of a short transfer, the
//! hole-punch fallback of write-zeroes, the datasync of a FUA write-zeroes).

use io_uring::{opcode, squeue, types};

use crate::device::Op;
use crate::error::IoError;

/// The most bytes one read or write SQE asks for; a longer buffer goes in several steps,
/// like a short transfer. A multiple of every block size, and below the kernel's
/// `MAX_RW_COUNT`.
const MAX_SQE_BYTES: u64 = 1 << 30;

/// The most iovecs one readv/writev SQE may carry (`UIO_MAXIOV`).
const MAX_SQE_IOVECS: usize = libc::UIO_MAXIOV as usize;

/// The iovecs each slot holds room for up front, so ordinary vectored requests never
/// allocate. A request with more segments grows its slot's array once; it stays grown.
const IOVECS_PER_SLOT: usize = 8;

/// What the queue knows about the device that a slot needs to build SQEs.
pub(super) struct Target {
    pub(super) fd: types::Fd,
    pub(super) block_size: u64,
    /// Cleared when the filesystem refuses `FALLOC_FL_ZERO_RANGE` (tmpfs does), so later
    /// write-zeroes go straight to the hole-punch fallback.
    pub(super) zero_range_works: bool,
}

/// What the device sits on; it decides how unmap is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Backing {
    /// A regular file: unmap punches a hole.
    File,
    /// A block device: unmap is a `BLKDISCARD`.
    BlockDevice,
}

/// How a [`UringDevice`](super::UringDevice)'s queues carry requests out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// [`Dispatch::InlineWhenIdle`] for a file on tmpfs whose reads refuse `RWF_NOWAIT`
    /// (probed at open), [`Dispatch::Ring`] for everything else.
    #[default]
    Auto,
    /// Through the queue's io_uring: `poll` enters the kernel with what was submitted.
    Ring,
    /// Like `Ring`, except that a small batch (a few requests, a few pages) that `poll`
    /// finds while nothing is on the ring is carried out there and then, with a system
    /// call each (`preadv2`, `pwritev2` with `RWF_DSYNC` for FUA, `fdatasync`,
    /// `fallocate`), and returned by that same `poll`. Meant for a file in memory (tmpfs):
    /// a request is a copy that takes less than the system call, while io_uring would hand
    /// every one to a kernel worker thread (tmpfs has no `FMODE_NOWAIT`), a thread switch
    /// costing more than the copy. On a slow file `poll` would block for the device's
    /// latency, which is why `Auto` picks it only for tmpfs.
    InlineWhenIdle,
}

/// The step of a request the current SQE carries out.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stage {
    /// Reading or writing data (a FUA write carries `RWF_DSYNC`).
    Transfer,
    /// `fallocate(ZERO_RANGE | KEEP_SIZE)`: write-zeroes.
    ZeroRange,
    /// `fallocate(PUNCH_HOLE | KEEP_SIZE)`: unmap of a file, or write-zeroes where
    /// `ZERO_RANGE` is refused (a hole reads as zeroes).
    PunchHole,
    /// `fdatasync`: a flush, or the durability step of a FUA write-zeroes.
    Sync,
    /// Already carried out at submit (a block-device discard) with this result, 0 or
    /// `-errno`; a NOP brings the completion through the ring like any other.
    DoneAtSubmit(i32),
}

/// What a CQE means for the request.
pub(super) enum Step {
    /// Push the slot's next SQE.
    Again,
    /// The request is over.
    Finished(Result<(), IoError>),
}

pub(super) struct Slot {
    req: Option<(u64, Op)>,
    stage: Stage,
    /// Bytes of the transfer already through, and the total.
    done: u64,
    total: u64,
    /// The segments of a vectored request; `iovecs[next_iovec..]` are still to transfer
    /// (the first of them possibly in part).
    iovecs: Vec<libc::iovec>,
    next_iovec: usize,
}

impl Slot {
    pub(super) fn new() -> Slot {
        Slot {
            req: None,
            stage: Stage::Transfer,
            done: 0,
            total: 0,
            iovecs: Vec::with_capacity(IOVECS_PER_SLOT),
            next_iovec: 0,
        }
    }

    /// Takes `op` in, starting at `stage`. The slot must be free.
    pub(super) fn start(&mut self, tag: u64, mut op: Op, stage: Stage) {
        debug_assert!(self.req.is_none(), "slot reused while in flight");
        self.stage = stage;
        self.done = 0;
        self.total = op.bufs().map_or(0, |b| b.len() as u64);
        self.iovecs.clear();
        self.next_iovec = 0;
        if let Op::Read { bufs, .. } | Op::Write { bufs, .. } = &mut op {
            if bufs.segments().len() > 1 {
                self.iovecs
                    .extend(bufs.segments_mut().iter_mut().map(|seg| libc::iovec {
                        iov_base: seg.as_mut_ptr().cast(),
                        iov_len: seg.len(),
                    }));
            }
        }
        self.req = Some((tag, op));
    }

    /// The bytes the request moves (0 for requests without data).
    pub(super) fn bytes(&self) -> u64 {
        self.total
    }

    /// Gives the finished request back and frees the slot.
    pub(super) fn take(&mut self) -> (u64, Op) {
        self.req.take().expect("a finished slot holds its request")
    }

    /// The SQE for the current stage (without its user data). Its addresses point into
    /// this slot's request buffers and iovec array, which must stay put until its CQE.
    pub(super) fn entry(&mut self, target: &Target) -> squeue::Entry {
        let fd = target.fd;
        let bs = target.block_size;
        let Some((_, op)) = self.req.as_ref() else {
            unreachable!("only occupied slots are submitted")
        };
        match (self.stage, op) {
            (Stage::Transfer, _) => self.transfer_entry(fd, bs),
            (
                stage @ (Stage::ZeroRange | Stage::PunchHole),
                Op::WriteZeroes { lba, blocks, .. } | Op::Unmap { lba, blocks },
            ) => {
                let mode = falloc_mode(stage);
                opcode::Fallocate::new(fd, *blocks * bs)
                    .offset(lba.0 * bs)
                    .mode(mode)
                    .build()
            }
            (Stage::Sync, _) => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            (Stage::DoneAtSubmit(_), _) => opcode::Nop::new().build(),
            (stage, op) => unreachable!("{stage:?} chosen for a {}", op.kind().name()),
        }
    }

    /// The SQE moving the rest of a read or write: read/write for one buffer, readv/writev
    /// for several.
    fn transfer_entry(&mut self, fd: types::Fd, bs: u64) -> squeue::Entry {
        let (lba, bufs, write, fua) = match self.req.as_mut() {
            Some((_, Op::Read { lba, bufs })) => (*lba, bufs, false, false),
            Some((_, Op::Write { lba, bufs, fua })) => (*lba, bufs, true, *fua),
            _ => unreachable!("only reads and writes transfer data"),
        };
        let off = lba.0 * bs + self.done;
        // RWF_DSYNC is a real per-write FUA: the block layer sends REQ_FUA, a filesystem
        // syncs just this write's data and the metadata needed to read it.
        let flags = if fua { libc::RWF_DSYNC } else { 0 };
        if let [buf] = bufs.segments_mut() {
            let len = (self.total - self.done).min(MAX_SQE_BYTES) as u32;
            let at = self.done as usize;
            return if write {
                opcode::Write::new(fd, buf.as_ptr().wrapping_add(at), len)
                    .offset(off)
                    .rw_flags(flags)
                    .build()
            } else {
                let ptr = buf.as_mut_ptr().wrapping_add(at);
                opcode::Read::new(fd, ptr, len).offset(off).build()
            };
        }
        let (iov, n) = self.pending_iovecs();
        if write {
            opcode::Writev::new(fd, iov, n)
                .offset(off)
                .rw_flags(flags)
                .build()
        } else {
            opcode::Readv::new(fd, iov, n).offset(off).build()
        }
    }

    /// Carries out the current stage with a system call on this thread, for a queue that
    /// runs requests inline, and returns what the stage's CQE would have held (bytes moved,
    /// or 0, or `-errno`), so [`Slot::complete`] reads both alike. The call's memory is the
    /// slot's own request buffers and iovec array, borrowed through `&mut self` until it
    /// returns.
    pub(super) fn run_now(&mut self, target: &Target) -> i32 {
        let fd = target.fd.0;
        let bs = target.block_size;
        let Some((_, op)) = self.req.as_ref() else {
            unreachable!("only occupied slots are run")
        };
        let ret = match (self.stage, op) {
            (Stage::Transfer, _) => return self.transfer_now(fd, bs),
            (
                stage @ (Stage::ZeroRange | Stage::PunchHole),
                Op::WriteZeroes { lba, blocks, .. } | Op::Unmap { lba, blocks },
            ) => {
                let mode = falloc_mode(stage);
                let (off, len) = ((lba.0 * bs) as libc::off_t, (*blocks * bs) as libc::off_t);
                // SAFETY: fallocate passes the kernel no memory; the queue's file keeps the
                // fd open.
                unsafe { libc::fallocate(fd, mode, off, len) }
            }
            // SAFETY: fdatasync passes the kernel no memory; the fd stays open as above.
            (Stage::Sync, _) => unsafe { libc::fdatasync(fd) },
            (Stage::DoneAtSubmit(r), _) => return r,
            (stage, op) => unreachable!("{stage:?} chosen for a {}", op.kind().name()),
        };
        if ret < 0 {
            -last_errno()
        } else {
            0
        }
    }

    /// The rest of a read or write (as much as one SQE would carry) with `preadv2` or
    /// `pwritev2`; a FUA write carries `RWF_DSYNC` as on the ring.
    fn transfer_now(&mut self, fd: libc::c_int, bs: u64) -> i32 {
        let (lba, bufs, write, fua) = match self.req.as_mut() {
            Some((_, Op::Read { lba, bufs })) => (*lba, bufs, false, false),
            Some((_, Op::Write { lba, bufs, fua })) => (*lba, bufs, true, *fua),
            _ => unreachable!("only reads and writes transfer data"),
        };
        let off = (lba.0 * bs + self.done) as libc::off_t;
        let flags = if fua { libc::RWF_DSYNC } else { 0 };
        let one;
        let (iov, n) = if let [buf] = bufs.segments_mut() {
            let at = self.done as usize;
            one = libc::iovec {
                iov_base: buf.as_mut_ptr().wrapping_add(at).cast(),
                iov_len: (self.total - self.done).min(MAX_SQE_BYTES) as usize,
            };
            (&raw const one, 1)
        } else {
            self.pending_iovecs()
        };
        let n = n as libc::c_int;
        loop {
            // SAFETY: every iovec points into a DmaBuf of this slot's request (`one` at
            // `done` bytes into the single buffer, within its length; the array's at the
            // segments still to move), and `&mut self` keeps the request, its buffers and
            // the iovec array in place and out of anyone else's reach until the call
            // returns. A read writes only into those buffers; the fd stays open as above.
            let r = unsafe {
                if write {
                    libc::pwritev2(fd, iov, n, off, flags)
                } else {
                    libc::preadv2(fd, iov, n, off, 0)
                }
            };
            match r {
                r if r >= 0 => return r as i32,
                _ if last_errno() == libc::EINTR => continue,
                _ => return -last_errno(),
            }
        }
    }

    /// The iovecs still to transfer, at most as many as one SQE takes.
    fn pending_iovecs(&self) -> (*const libc::iovec, u32) {
        let rest = &self.iovecs[self.next_iovec..];
        (rest.as_ptr(), rest.len().min(MAX_SQE_IOVECS) as u32)
    }

    /// Reads the CQE result `res` of the slot's SQE.
    pub(super) fn complete(&mut self, res: i32, target: &mut Target) -> Step {
        let Some((_, op)) = self.req.as_ref() else {
            unreachable!("a completion names an occupied slot")
        };
        let name = op.kind().name();
        let (res, needs_sync) = match self.stage {
            Stage::DoneAtSubmit(r) => (r, false),
            Stage::Transfer => return self.transferred(res, target.block_size),
            Stage::ZeroRange | Stage::PunchHole => (res, op.fua()),
            Stage::Sync => (res, false),
        };
        match res {
            e if e == -libc::EOPNOTSUPP => {
                if let Stage::ZeroRange = self.stage {
                    target.zero_range_works = false;
                    self.stage = Stage::PunchHole;
                    return Step::Again;
                }
                Step::Finished(Err(IoError::Unsupported(name)))
            }
            e if e < 0 => Step::Finished(Err(IoError::Os {
                op: name,
                errno: -e,
            })),
            _ if needs_sync => {
                self.stage = Stage::Sync;
                Step::Again
            }
            _ => Step::Finished(Ok(())),
        }
    }

    /// A read or write moved `res` bytes (or failed with `-res`).
    fn transferred(&mut self, res: i32, bs: u64) -> Step {
        let Some((_, op)) = self.req.as_ref() else {
            unreachable!("a completion names an occupied slot")
        };
        if res < 0 {
            let name = op.kind().name();
            return Step::Finished(Err(IoError::Os {
                op: name,
                errno: -res,
            }));
        }
        // Nothing moved: the file ends before the device does (someone truncated it).
        // A transfer that stopped mid-block cannot be resumed with O_DIRECT alignment.
        let moved = res as u64;
        if moved == 0 || (self.done + moved < self.total && moved % bs != 0) {
            return Step::Finished(Err(op.media_error()));
        }
        self.done += moved;
        if self.done >= self.total {
            return Step::Finished(Ok(()));
        }
        self.advance_iovecs(res as usize);
        Step::Again
    }

    /// Skips `n` transferred bytes of the iovec array (nothing for a single buffer, whose
    /// position is `done`).
    fn advance_iovecs(&mut self, mut n: usize) {
        while n > 0 && self.next_iovec < self.iovecs.len() {
            let iov = &mut self.iovecs[self.next_iovec];
            if n < iov.iov_len {
                iov.iov_base = iov.iov_base.cast::<u8>().wrapping_add(n).cast();
                iov.iov_len -= n;
                return;
            }
            n -= iov.iov_len;
            self.next_iovec += 1;
        }
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The `fallocate` mode of a zeroing or punching stage: the file keeps its size.
fn falloc_mode(stage: Stage) -> i32 {
    let mode = match stage {
        Stage::ZeroRange => libc::FALLOC_FL_ZERO_RANGE,
        _ => libc::FALLOC_FL_PUNCH_HOLE,
    };
    mode | libc::FALLOC_FL_KEEP_SIZE
}
