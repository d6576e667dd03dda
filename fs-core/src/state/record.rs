//! The fsync log's record format: one block per record, a header then entries (the byte
//! layout is in `docs/FORMAT.md`, "The fsync log"). A record says which committed
//! generation it extends (`base_gen`) and its slot (`seq`); its crc32c covers the block.
//! [`decode`] is the only way back from bytes: it checks magic, crc, generation and slot
//! before trusting a length or a count.

// Records are on-disk bytes: little-endian only (see `items/`).
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

use cow::Key;

use crate::items::codec::{Reader, Writer};

/// The inode owning the log area (below the root directory's 256; it has no name).
pub const LOG_INO: u64 = 255;
/// Record magic.
const MAGIC: &[u8; 8] = b"BFSFSLOG";
/// Header bytes of a record.
pub(crate) const HEADER: usize = 40;

/// One logged change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// File `ino` maps `[file_off, file_off + len)` to the whole data extent at `bytenr`,
    /// whose blocks have these crc32c.
    Extent {
        ino: u64,
        file_off: u64,
        bytenr: u64,
        len: u64,
        crcs: Vec<u32>,
    },
    /// File `ino` has `size` bytes.
    Size { ino: u64, size: u64 },
    /// File `ino`'s data was modified at `mtime_ns` (mtime and ctime at least that).
    Times { ino: u64, mtime_ns: i64 },
    /// A namespace operation left the fs-tree item `key` holding `data` (`None`: deleted).
    /// Replay applies these as a commit applies the pending changes (`state/pending.rs`).
    Item { key: Key, data: Option<Vec<u8>> },
    /// A namespace operation unlinked inode `ino` for good: what is left of it (its data)
    /// goes at the replay's commit.
    Forget { ino: u64 },
}

impl Entry {
    /// The inode the entry is about (an orphan item's: the orphan's).
    pub fn ino(&self) -> u64 {
        match self {
            Entry::Extent { ino, .. }
            | Entry::Size { ino, .. }
            | Entry::Times { ino, .. }
            | Entry::Forget { ino } => *ino,
            Entry::Item { key, .. } if key.objectid == crate::items::ORPHAN_OBJECTID => key.offset,
            Entry::Item { key, .. } => key.objectid,
        }
    }

    /// Whether it is a namespace change (entries 4 and 5).
    pub fn is_namespace(&self) -> bool {
        matches!(self, Entry::Item { .. } | Entry::Forget { .. })
    }
}

/// Bytes `e` takes in a record body.
pub(crate) fn encoded_len(e: &Entry) -> usize {
    match e {
        Entry::Extent { crcs, .. } => 1 + 4 * 8 + 4 + 4 * crcs.len(),
        Entry::Size { .. } | Entry::Times { .. } => 1 + 8 + 8,
        Entry::Item { data, .. } => 1 + KEY_BYTES + 4 + data.as_ref().map_or(0, Vec::len),
        Entry::Forget { .. } => 1 + 8,
    }
}

/// Bytes of a key in an entry: objectid u64, kind u8, offset u64.
const KEY_BYTES: usize = 17;
/// An [`Entry::Item`] whose item was deleted has this length.
const DELETED: u32 = u32::MAX;

/// Encodes a record of `entries` into a `bs`-byte block; `None` if they do not fit.
pub(crate) fn encode(base_gen: u64, seq: u64, entries: &[Entry], bs: usize) -> Option<Vec<u8>> {
    let mut body = Writer::default();
    for e in entries {
        match e {
            Entry::Extent {
                ino,
                file_off,
                bytenr,
                len,
                crcs,
            } => {
                body.u8(1).u64(*ino).u64(*file_off).u64(*bytenr).u64(*len);
                body.u32(crcs.len() as u32);
                for c in crcs {
                    body.u32(*c);
                }
            }
            Entry::Size { ino, size } => {
                body.u8(2).u64(*ino).u64(*size);
            }
            Entry::Times { ino, mtime_ns } => {
                body.u8(3).u64(*ino).i64(*mtime_ns);
            }
            Entry::Item { key, data } => {
                body.u8(4).u64(key.objectid).u8(key.kind).u64(key.offset);
                match data {
                    Some(d) => body.u32(u32::try_from(d.len()).ok()?).bytes(d),
                    None => body.u32(DELETED),
                };
            }
            Entry::Forget { ino } => {
                body.u8(5).u64(*ino);
            }
        }
    }
    if HEADER + body.0.len() > bs {
        return None;
    }
    let mut w = Writer::default();
    w.bytes(MAGIC)
        .u32(0)
        .u32(body.0.len() as u32)
        .u64(base_gen)
        .u64(seq);
    w.u32(entries.len() as u32).u32(0).bytes(&body.0);
    let mut block = w.0;
    block.resize(bs, 0);
    let crc = crc32c::crc32c(&block[12..]);
    block[8..12].copy_from_slice(&crc.to_le_bytes());
    Some(block)
}

/// Decodes a record block written for `base_gen` at slot `seq`; `None` if it is not one
/// (another generation's, torn, never written).
pub(crate) fn decode(block: &[u8], base_gen: u64, seq: u64) -> Option<Vec<Entry>> {
    if block.len() < HEADER || &block[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(block[8..12].try_into().ok()?);
    if crc32c::crc32c(&block[12..]) != crc {
        return None;
    }
    let mut r = Reader::new(&block[12..HEADER], "log record header");
    let body_len = r.u32().ok()? as usize;
    if r.u64().ok()? != base_gen || r.u64().ok()? != seq {
        return None;
    }
    let n = r.u32().ok()?;
    let body = block.get(HEADER..HEADER + body_len)?;
    let mut r = Reader::new(body, "log record");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match r.u8().ok()? {
            1 => {
                let (ino, file_off, bytenr, len) =
                    (r.u64().ok()?, r.u64().ok()?, r.u64().ok()?, r.u64().ok()?);
                let k = r.u32().ok()? as usize;
                let crcs = (0..k)
                    .map(|_| r.u32())
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                Entry::Extent {
                    ino,
                    file_off,
                    bytenr,
                    len,
                    crcs,
                }
            }
            2 => Entry::Size {
                ino: r.u64().ok()?,
                size: r.u64().ok()?,
            },
            3 => Entry::Times {
                ino: r.u64().ok()?,
                mtime_ns: r.i64().ok()?,
            },
            4 => {
                let key = Key::new(r.u64().ok()?, r.u8().ok()?, r.u64().ok()?);
                let data = match r.u32().ok()? {
                    DELETED => None,
                    n => Some(r.bytes(n as usize).ok()?.to_vec()),
                };
                Entry::Item { key, data }
            }
            5 => Entry::Forget { ino: r.u64().ok()? },
            _ => return None,
        });
    }
    r.finish().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 4096;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::Extent {
                ino: 7,
                file_off: 8192,
                bytenr: 0x10_0000,
                len: 2 * BS as u64,
                crcs: vec![1, 0xdead_beef],
            },
            Entry::Size {
                ino: 7,
                size: 3 * BS as u64,
            },
            Entry::Times {
                ino: 8,
                mtime_ns: -5,
            },
            Entry::Item {
                key: Key::new(256, 84, 0xabcd),
                data: Some(vec![1, 2, 3]),
            },
            Entry::Item {
                key: Key::new(257, 1, 0),
                data: None,
            },
            Entry::Item {
                key: Key::new(258, 1, 0),
                data: Some(Vec::new()),
            },
            Entry::Forget { ino: 257 },
        ]
    }

    #[test]
    fn a_record_decodes_only_for_its_generation_and_slot() {
        let block = encode(3, 9, &entries(), BS).expect("fits");
        assert_eq!(block.len(), BS);
        let body: usize = entries().iter().map(encoded_len).sum();
        assert_eq!(block[HEADER + body..], vec![0; BS - HEADER - body][..]);
        assert_eq!(decode(&block, 3, 9), Some(entries()));
        assert_eq!(decode(&block, 2, 9), None, "another generation's");
        assert_eq!(decode(&block, 3, 8), None, "another slot's");
        assert_eq!(decode(&vec![0; BS], 3, 9), None, "never written");
    }

    #[test]
    fn a_torn_or_flipped_record_does_not_decode() {
        let block = encode(3, 9, &entries(), BS).expect("fits");
        for at in [0, 8, 12, HEADER, HEADER + 1, BS - 1] {
            let mut bad = block.clone();
            bad[at] ^= 1;
            assert_eq!(decode(&bad, 3, 9), None, "byte {at} flipped");
        }
        assert_eq!(
            decode(&block[..HEADER - 1], 3, 9),
            None,
            "shorter than a header"
        );
    }

    #[test]
    fn entries_past_one_block_do_not_encode() {
        let e = Entry::Size { ino: 1, size: 2 };
        let fit = (BS - HEADER) / encoded_len(&e);
        assert!(encode(1, 0, &vec![e.clone(); fit], BS).is_some());
        assert!(encode(1, 0, &vec![e; fit + 1], BS).is_none());
    }
}
