//! Request checks shared by every backend, run before anything reaches the media.

use crate::device::Op;
use crate::error::IoError;
use crate::types::Geometry;

/// Checks `op` against the geometry: whole blocks, aligned buffers, inside the device.
/// On success returns the number of blocks the request covers (0 for a flush).
#[inline]
pub(crate) fn check(geo: &Geometry, op: &Op) -> Result<u64, IoError> {
    let bs = u64::from(geo.block_size);
    let blocks = match op {
        Op::Flush => return Ok(0),
        Op::Read { bufs, .. } | Op::Write { bufs, .. } => {
            let segs = bufs.segments();
            if segs.is_empty() {
                return Err(IoError::Invalid(format!(
                    "{} with no buffers",
                    op.kind().name()
                )));
            }
            let mut total = 0u64;
            for (i, seg) in segs.iter().enumerate() {
                if seg.is_empty() || rem(seg.len() as u64, bs) != 0 {
                    return Err(IoError::Invalid(format!(
                        "buffer {i} is {} bytes, not a positive multiple of the {bs}-byte block size",
                        seg.len()
                    )));
                }
                if !seg.is_aligned(geo.buf_align) {
                    return Err(IoError::Invalid(format!(
                        "buffer {i} is not aligned to the device's {}-byte buffer alignment: \
                         allocate it with BlockDevice::alloc_buf or DmaBuf::alloc",
                        geo.buf_align
                    )));
                }
                total += seg.len() as u64;
            }
            blocks_in(total, bs)
        }
        Op::Unmap { blocks, .. } | Op::WriteZeroes { blocks, .. } => {
            if *blocks == 0 {
                return Err(IoError::Invalid(format!(
                    "{} of zero blocks",
                    op.kind().name()
                )));
            }
            *blocks
        }
    };
    let lba = op.lba().expect("data and range ops have an LBA").0;
    match lba.checked_add(blocks) {
        Some(end) if end <= geo.block_count => Ok(blocks),
        _ => Err(IoError::Invalid(format!(
            "{} of {blocks} blocks at LBA {lba} is beyond the device's {} blocks",
            op.kind().name(),
            geo.block_count
        ))),
    }
}

/// `bytes / bs`, by a shift for the usual power-of-two block size: a 64-bit division costs
/// more than the rest of this check, and every request pays one or two.
#[inline(always)]
pub(crate) fn blocks_in(bytes: u64, bs: u64) -> u64 {
    if bs.is_power_of_two() {
        bytes >> bs.trailing_zeros()
    } else {
        bytes / bs
    }
}

/// `bytes % bs`, by a mask for a power-of-two block size (see [`blocks_in`]).
#[inline(always)]
fn rem(bytes: u64, bs: u64) -> u64 {
    if bs.is_power_of_two() {
        bytes & (bs - 1)
    } else {
        bytes % bs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_and_masks_agree_with_division() {
        for bs in [512u64, 520, 4096, 4160, 1 << 16] {
            for bytes in [
                0u64,
                1,
                511,
                512,
                520,
                4095,
                4096,
                4160,
                8192,
                1 << 20,
                u64::MAX,
            ] {
                assert_eq!(blocks_in(bytes, bs), bytes / bs, "{bytes} / {bs}");
                assert_eq!(rem(bytes, bs), bytes % bs, "{bytes} % {bs}");
            }
        }
    }
}
