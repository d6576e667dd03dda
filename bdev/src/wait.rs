//! Synchronous helpers: submit one request and poll until it completes.
//!
//! For tests, tools and set-up paths. The hot paths of upper layers keep many requests in
//! flight instead.

use crate::device::{Bufs, Completion, IoQueue, Op};
use crate::dma::DmaBuf;
use crate::error::{IoError, SubmitError};
use crate::types::Lba;

/// Submits `op` and polls `queue` until it completes (retrying while the queue is full).
/// Completions of other requests reaped meanwhile are appended to `others`.
pub fn run_with(
    queue: &mut dyn IoQueue,
    op: Op,
    others: &mut Vec<Completion>,
) -> (Op, Result<(), IoError>) {
    const TAG: u64 = u64::MAX;
    let mut op = op;
    loop {
        match queue.submit(TAG, op) {
            Ok(()) => break,
            Err(r) if r.error == SubmitError::QueueFull => {
                op = r.op;
                queue.poll(others);
            }
            Err(r) => {
                let SubmitError::Rejected(e) = r.error else {
                    unreachable!()
                };
                return (r.op, Err(e));
            }
        }
    }
    let mut done = Vec::with_capacity(queue.depth());
    loop {
        queue.poll(&mut done);
        if let Some(i) = done.iter().position(|c| c.tag == TAG) {
            let c = done.swap_remove(i);
            others.append(&mut done);
            return (c.op, c.result);
        }
        others.append(&mut done);
    }
}

/// Submits `op` on an otherwise idle queue and waits for it.
pub fn run(queue: &mut dyn IoQueue, op: Op) -> (Op, Result<(), IoError>) {
    let mut others = Vec::new();
    let r = run_with(queue, op, &mut others);
    debug_assert!(
        others.is_empty(),
        "run() used on a queue with other requests in flight"
    );
    r
}

/// Reads into `buf` from `lba` and gives the buffer back.
pub fn read(queue: &mut dyn IoQueue, lba: Lba, buf: DmaBuf) -> Result<DmaBuf, (DmaBuf, IoError)> {
    let (op, r) = run(
        queue,
        Op::Read {
            lba,
            bufs: Bufs::One(buf),
        },
    );
    let buf = op
        .into_bufs()
        .and_then(Bufs::into_one)
        .expect("a read returns its buffer");
    match r {
        Ok(()) => Ok(buf),
        Err(e) => Err((buf, e)),
    }
}

/// Writes `buf` at `lba` and gives the buffer back.
pub fn write(
    queue: &mut dyn IoQueue,
    lba: Lba,
    buf: DmaBuf,
    fua: bool,
) -> Result<DmaBuf, (DmaBuf, IoError)> {
    let (op, r) = run(
        queue,
        Op::Write {
            lba,
            bufs: Bufs::One(buf),
            fua,
        },
    );
    let buf = op
        .into_bufs()
        .and_then(Bufs::into_one)
        .expect("a write returns its buffer");
    match r {
        Ok(()) => Ok(buf),
        Err(e) => Err((buf, e)),
    }
}

/// Flushes the device's volatile cache.
pub fn flush(queue: &mut dyn IoQueue) -> Result<(), IoError> {
    run(queue, Op::Flush).1
}
