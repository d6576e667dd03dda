//! The record device: the initial image, the log, and crash states rebuilt from them.

use std::sync::Arc;

use crate::device::{BlockDevice, Bufs, IoQueue, Op};
use crate::error::BdevError;
use crate::mem::MemDevice;
use crate::types::{Geometry, Lba};
use crate::wait;

use super::log::{self, CrashPick, LogEntry, Shared};
use super::queue::RecordQueue;

/// A wrapper that logs every successful write and flush of any block device, so every
/// crash state of a run can be rebuilt (see the [module](super) docs).
pub struct RecordDevice {
    name: String,
    inner: Arc<dyn BlockDevice>,
    initial: Vec<u8>,
    shared: Arc<Shared>,
}

/// Bytes read per request while copying the initial image.
const SNAPSHOT_CHUNK: usize = 1 << 20;

impl RecordDevice {
    /// Wraps `inner`, first copying its whole content (so keep test devices small). Every
    /// later write must go through this wrapper for the log to describe the device.
    pub fn new(name: &str, inner: Arc<dyn BlockDevice>) -> Result<RecordDevice, BdevError> {
        let initial = read_image(name, &*inner)?;
        let shared = Arc::new(Shared::default());
        Ok(RecordDevice {
            name: name.to_owned(),
            inner,
            initial,
            shared,
        })
    }

    /// The device content when recording started.
    pub fn initial_image(&self) -> &[u8] {
        &self.initial
    }

    /// A copy of the log (the write data is shared, not copied).
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.lock().entries.clone()
    }

    /// Number of log entries.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Whether nothing has been logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Log indices of the writes that are not durable after the first `point` entries (not
    /// FUA, not covered by a flush logged before `point`), in log order: the writes a
    /// [`CrashPick`] chooses among.
    pub fn unflushed_writes(&self, point: usize) -> Vec<usize> {
        let log = self.shared.lock();
        log::unflushed(&log.entries, point.min(log.entries.len()))
    }

    /// How many writes are not durable after the first `point` entries.
    pub fn unflushed_at(&self, point: usize) -> usize {
        self.unflushed_writes(point).len()
    }

    /// The points (log prefix lengths) at which a crash can give new states: the start,
    /// after each write, and after each flush that made some write durable. (A flush that
    /// covers no new non-FUA write changes nothing a crash could show.)
    pub fn crash_points(&self) -> Vec<usize> {
        let log = self.shared.lock();
        let entries = &log.entries;
        let mut points = vec![0];
        let mut durable = 0;
        for (i, entry) in entries.iter().enumerate() {
            let distinct = match *entry {
                LogEntry::Write { .. } => true,
                LogEntry::Flush { covers, .. } if covers > durable => {
                    let newly = &entries[durable..covers];
                    durable = covers;
                    newly
                        .iter()
                        .any(|e| matches!(e, LogEntry::Write { fua: false, .. }))
                }
                LogEntry::Flush { .. } => false,
            };
            if distinct {
                points.push(i + 1);
            }
        }
        points
    }

    /// The device as it could be after a crash following the first `point` log entries:
    /// the initial image, then the log up to `point` in log order, where durable writes
    /// always land and unflushed ones as `pick` says. Writes land in log (completion) order,
    /// so a later write wins over an earlier one to the same block.
    pub fn materialize(&self, point: usize, pick: &CrashPick) -> Result<MemDevice, BdevError> {
        let log = self.shared.lock();
        let entries = &log.entries;
        if point > entries.len() {
            return Err(BdevError::Config(format!(
                "record {}: crash point {point} is past the end of the {}-entry log",
                self.name,
                entries.len()
            )));
        }
        let unflushed = log::unflushed(entries, point);
        let blocks: Vec<u64> = unflushed
            .iter()
            .map(|&i| write_blocks(&entries[i]))
            .collect();
        let landings = log::landings(&self.name, pick, &blocks)?;
        let bs = self.inner.geometry().block_size;
        let mut image = self.initial.clone();
        let mut next_unflushed = unflushed.iter().zip(&landings).peekable();
        for (i, entry) in entries[..point].iter().enumerate() {
            match next_unflushed.peek() {
                Some(&(&u, landing)) if u == i => {
                    log::apply(&mut image, bs as usize, entry, landing);
                    next_unflushed.next();
                }
                _ => log::apply(&mut image, bs as usize, entry, &log::Landing::Whole),
            }
        }
        drop(log);
        MemDevice::from_image(&format!("{}@{point}", self.name), bs, &image)
    }
}

fn write_blocks(entry: &LogEntry) -> u64 {
    match entry {
        LogEntry::Write { blocks, .. } => *blocks,
        LogEntry::Flush { .. } => 0,
    }
}

/// Reads the whole of `dev` through a queue.
fn read_image(name: &str, dev: &dyn BlockDevice) -> Result<Vec<u8>, BdevError> {
    let geo = dev.geometry();
    let bs = geo.block_size as usize;
    let size = usize::try_from(geo.size_bytes()).map_err(|_| {
        BdevError::Config(format!(
            "record {name}: the device is too large to copy in memory"
        ))
    })?;
    let mut image = Vec::new();
    image
        .try_reserve_exact(size)
        .map_err(|e| BdevError::NoMemory {
            len: size,
            reason: format!("record {name}: initial image: {e}"),
        })?;
    let chunk = SNAPSHOT_CHUNK.max(bs) / bs * bs;
    let mut queue = dev.queue(1)?;
    let mut buf = dev.alloc_buf(chunk)?;
    while image.len() < size {
        let len = chunk.min(size - image.len());
        buf.truncate(len);
        let lba = Lba((image.len() / bs) as u64);
        let (op, result) = wait::run(
            &mut *queue,
            Op::Read {
                lba,
                bufs: Bufs::One(buf),
            },
        );
        buf = op
            .into_bufs()
            .and_then(Bufs::into_one)
            .expect("a read returns its buffer");
        result?;
        image.extend_from_slice(&buf);
    }
    Ok(image)
}

impl BlockDevice for RecordDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        if depth == 0 {
            return Err(BdevError::Config(format!(
                "{}: queue depth must be positive",
                self.name
            )));
        }
        let inner = self.inner.queue(depth)?;
        let bs = self.inner.geometry().block_size;
        Ok(Box::new(RecordQueue::new(
            Arc::clone(&self.shared),
            inner,
            depth,
            bs,
        )))
    }
}
