//! Data checksums: crc32c per block, computed from the exact buffers sent to the device and
//! checked on every device read of file data.

use bdev::DmaBuf;
use crc_fast::{CrcAlgorithm, Digest};

/// crc32c (Castagnoli, as iSCSI) of one contiguous block. crc-fast folds the block with
/// carry-less multiplies (AVX-512 VPCLMULQDQ where the CPU has it): a 4 KiB block in about
/// 100 ns here, where the `crc32c` crate's three interleaved CRC32 instructions take about
/// 250 ns, and every direct read and write checksums one. The values are the same.
fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// A crc32c over pieces of a block that straddles buffers.
fn digest() -> Digest {
    Digest::new(CrcAlgorithm::Crc32Iscsi)
}

/// The crc32c of each `bs`-byte block of the concatenation of `pieces`.
pub(crate) fn block_crcs(pieces: &[DmaBuf], bs: usize) -> Vec<u32> {
    let mut out = Vec::new();
    // The block begun in an earlier piece, and its bytes so far.
    let (mut partial, mut fill) = (digest(), 0usize);
    for p in pieces {
        let mut s: &[u8] = p;
        while !s.is_empty() {
            let n = (bs - fill).min(s.len());
            if n == bs {
                out.push(crc32c(&s[..n]));
            } else {
                partial.update(&s[..n]);
                fill += n;
                if fill == bs {
                    out.push(partial.finalize_reset() as u32);
                    fill = 0;
                }
            }
            s = &s[n..];
        }
    }
    out
}

/// The crc32c of the bytes `[from, from + len)` of the concatenation of `pieces`, computed
/// in place (a read verifies every block: no copy of it).
pub(crate) fn crc_of(pieces: &[DmaBuf], from: usize, len: usize) -> u32 {
    let (mut d, mut skip, mut left) = (digest(), from, len);
    for p in pieces {
        let s: &[u8] = p;
        if skip >= s.len() {
            skip -= s.len();
            continue;
        }
        let take = (s.len() - skip).min(left);
        if take == len {
            return crc32c(&s[skip..skip + take]);
        }
        d.update(&s[skip..skip + take]);
        skip = 0;
        left -= take;
        if left == 0 {
            break;
        }
    }
    d.finalize() as u32
}

/// The bytes `[from, from + len)` of the concatenation of `pieces`.
pub(crate) fn gather(pieces: &[DmaBuf], from: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut skip = from;
    for p in pieces {
        let s: &[u8] = p;
        if skip >= s.len() {
            skip -= s.len();
            continue;
        }
        let take = (s.len() - skip).min(len - out.len());
        out.extend_from_slice(&s[skip..skip + take]);
        skip = 0;
        if out.len() == len {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdev::mem::MemDevice;
    use bdev::BlockDevice;

    /// `bytes` split into DMA buffers at `cuts`.
    fn pieces(bytes: &[u8], cuts: &[usize]) -> Vec<DmaBuf> {
        let dev = MemDevice::new("t", 512, 16).unwrap();
        let mut at = 0;
        let mut out = Vec::new();
        for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let mut b = dev.alloc_buf(end - at).unwrap();
            b.copy_from_slice(&bytes[at..end]);
            out.push(b);
            at = end;
        }
        out
    }

    #[test]
    fn block_checksums_are_crc32c_however_the_buffers_split_them() {
        let bytes: Vec<u8> = (0..4 * 4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let want: Vec<u32> = bytes.chunks(4096).map(::crc32c::crc32c).collect();
        for cuts in [
            &[][..],
            &[4096, 8192],
            &[512, 4608, 12800],
            &[100, 5000, 5001],
        ] {
            let p = pieces(&bytes, cuts);
            assert_eq!(block_crcs(&p, 4096), want, "cut at {cuts:?}");
            for (i, w) in want.iter().enumerate() {
                assert_eq!(crc_of(&p, i * 4096, 4096), *w, "block {i}, cut at {cuts:?}");
            }
        }
        assert_eq!(
            crc_of(&pieces(&bytes, &[]), 3, 9),
            ::crc32c::crc32c(&bytes[3..12])
        );
    }
}
