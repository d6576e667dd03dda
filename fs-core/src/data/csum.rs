//! Data checksums: crc32c per block, computed from the exact buffers sent to the device and
//! checked on every device read of file data.

use bdev::DmaBuf;

/// The crc32c of each `bs`-byte block of the concatenation of `pieces`.
pub(crate) fn block_crcs(pieces: &[DmaBuf], bs: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let (mut crc, mut fill) = (0u32, 0usize);
    for p in pieces {
        let mut s: &[u8] = p;
        while !s.is_empty() {
            let n = (bs - fill).min(s.len());
            crc = crc32c::crc32c_append(crc, &s[..n]);
            fill += n;
            s = &s[n..];
            if fill == bs {
                out.push(crc);
                crc = 0;
                fill = 0;
            }
        }
    }
    out
}

/// The crc32c of the bytes `[from, from + len)` of the concatenation of `pieces`, computed
/// in place (a read verifies every block: no copy of it).
pub(crate) fn crc_of(pieces: &[DmaBuf], from: usize, len: usize) -> u32 {
    let (mut crc, mut skip, mut left) = (0u32, from, len);
    for p in pieces {
        let s: &[u8] = p;
        if skip >= s.len() {
            skip -= s.len();
            continue;
        }
        let take = (s.len() - skip).min(left);
        crc = crc32c::crc32c_append(crc, &s[skip..skip + take]);
        skip = 0;
        left -= take;
        if left == 0 {
            break;
        }
    }
    crc
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
