//! C's DMA buffers by address, each idle or lent to one request.
//!
//! Invariants:
//! - Every buffer `bfs_dma_alloc` returned is in `BUFFERS` under its address until
//!   `bfs_dma_free`, either idle (the `DmaBuf` is there, C may use the memory) or lent to
//!   one request (`None`: the request owns the `DmaBuf`, and C promised not to touch the
//!   memory until `bfs_poll` hands out the request's completion, which gives it back).
//! - So a buffer is in at most one request at a time, and never freed while in one: a
//!   second lending is `EBUSY`, as is forgetting a lent buffer.

use std::collections::HashMap;
use std::sync::Mutex;

use bdev::DmaBuf;

use super::guard::CResult;

/// A buffer of C's: idle (`Some`) or lent to a request (`None`).
struct Slot {
    buf: Option<DmaBuf>,
}

/// C's buffers by address.
static BUFFERS: Mutex<Option<HashMap<usize, Slot>>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut HashMap<usize, Slot>) -> T) -> T {
    let mut g = BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn addr(buf: &DmaBuf) -> usize {
    buf[..].as_ptr() as usize
}

/// Puts a buffer a request finished with back into C's hands.
pub(crate) fn give_back(buf: DmaBuf) {
    let at = addr(&buf);
    with(|m| match m.get_mut(&at) {
        Some(slot) if slot.buf.is_none() => slot.buf = Some(buf),
        // Unreachable by the invariants: a lent buffer stays in the map until it is back.
        _ => log::error!("bypassfs C API: DMA buffer {at:#x} came back but was not lent"),
    });
}

/// Takes C's buffer at `at` for a request of `len` bytes: the buffer cut to `len`, and
/// the rest to join back on completion. `EINVAL` for an address `bfs_dma_alloc` did not
/// return or a `len` of 0 or past the buffer, `EBUSY` if it is lent already.
pub(crate) fn lend(at: usize, len: usize) -> CResult<(DmaBuf, DmaBuf)> {
    with(|m| {
        let slot = m.get_mut(&at).ok_or(libc::EINVAL)?;
        let cap = slot.buf.as_ref().ok_or(libc::EBUSY)?.len();
        if len == 0 || len > cap {
            return Err(libc::EINVAL);
        }
        let mut buf = slot.buf.take().ok_or(libc::EBUSY)?;
        let rest = buf.split_off(len);
        Ok((buf, rest))
    })
}

/// The request's buffer and the rest, whole again.
pub(crate) fn rejoin(mut buf: DmaBuf, rest: DmaBuf) -> DmaBuf {
    if let Err(rest) = buf.unsplit(rest) {
        // fs-core gives back the buffer it was given; if it ever did not, the memory is
        // still valid (both halves hold their allocation), and the error says where.
        log::error!("bypassfs C API: a DMA buffer came back from a request in another shape");
        drop(rest);
    }
    buf
}

/// Keeps C's new buffer `buf`, whose first byte is at `at`, idle.
pub(crate) fn keep(at: usize, buf: DmaBuf) {
    with(|m| m.insert(at, Slot { buf: Some(buf) }));
}

/// Drops C's buffer at `at` (C frees it): `EINVAL` if there is none, `EBUSY` if it is lent.
pub(crate) fn forget(at: usize) -> CResult<DmaBuf> {
    with(|m| {
        let slot = m.get(&at).ok_or(libc::EINVAL)?;
        if slot.buf.is_none() {
            return Err(libc::EBUSY);
        }
        let slot = m.remove(&at).ok_or(libc::EINVAL)?;
        slot.buf.ok_or(libc::EBUSY)
    })
}
