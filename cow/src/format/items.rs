//! Item payloads of the root and extent trees. Each `parse` validates; each `encode` writes.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::key::{kind, TreeId};
use super::superblock::RootPtr;

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawRootItem {
    bytenr: U64,
    generation: U64,
    level: u8,
    pad: [u8; 7],
}
const _: () = assert!(size_of::<RawRootItem>() == 24);

/// ROOT_ITEM `(tree id, ROOT_ITEM, 0)` in the root tree: where a tree's root node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootItem(pub RootPtr);

impl RootItem {
    /// The item bytes.
    pub fn encode(&self) -> Vec<u8> {
        RawRootItem {
            bytenr: U64::new(self.0.bytenr),
            generation: U64::new(self.0.generation),
            level: self.0.level,
            pad: [0; 7],
        }
        .as_bytes()
        .to_vec()
    }

    /// Parses item bytes.
    pub fn parse(data: &[u8]) -> Result<RootItem, String> {
        let raw = RawRootItem::read_from_bytes(data)
            .map_err(|_| format!("root item of {} bytes, expected 24", data.len()))?;
        if raw.pad != [0; 7] {
            return Err("root item padding is not zero".into());
        }
        Ok(RootItem(RootPtr {
            bytenr: raw.bytenr.get(),
            generation: raw.generation.get(),
            level: raw.level,
        }))
    }
}

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawExtentItem {
    refs: U64,
    generation: U64,
    flags: U64,
}
const _: () = assert!(size_of::<RawExtentItem>() == 24);

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawInlineRef {
    kind: u8,
    root: U64,
}
const _: () = assert!(size_of::<RawInlineRef>() == 9);

/// Flag of a data extent item.
const FLAG_DATA: u64 = 1;
/// Flag of a metadata extent item.
const FLAG_TREE_BLOCK: u64 = 2;
/// Flag of a data extent item followed by an inline back-reference (EXTENT_DATA_REF bytes).
const FLAG_INLINE_DATA_REF: u64 = 4;
/// Flag of a data extent item whose checksums its referrers keep (none in the csum tree).
const FLAG_CSUMS_ELSEWHERE: u64 = 8;

/// METADATA_ITEM `(bytenr, METADATA_ITEM, level)`: a tree node's reference count and its
/// inline back-references (one TREE_BLOCK_REF per tree that points to it; shared nodes of
/// snapshots will carry several, with no format change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataItem {
    /// The generation that allocated the node.
    pub generation: u64,
    /// The trees referring to the node; the reference count is its length.
    pub roots: Vec<TreeId>,
}

impl MetadataItem {
    /// The item bytes.
    pub fn encode(&self) -> Vec<u8> {
        let head = RawExtentItem {
            refs: U64::new(self.roots.len() as u64),
            generation: U64::new(self.generation),
            flags: U64::new(FLAG_TREE_BLOCK),
        };
        let mut v = head.as_bytes().to_vec();
        for r in &self.roots {
            let raw = RawInlineRef {
                kind: kind::TREE_BLOCK_REF,
                root: U64::new(r.0),
            };
            v.extend_from_slice(raw.as_bytes());
        }
        v
    }

    /// Parses item bytes.
    pub fn parse(data: &[u8]) -> Result<MetadataItem, String> {
        let (head, rest) = RawExtentItem::read_from_prefix(data)
            .map_err(|_| format!("metadata item of {} bytes is too short", data.len()))?;
        if head.flags.get() != FLAG_TREE_BLOCK {
            return Err(format!("metadata item flags {:#x}", head.flags.get()));
        }
        if rest.len() % 9 != 0 || (rest.len() / 9) as u64 != head.refs.get() || rest.is_empty() {
            return Err(format!(
                "metadata item has {} refs but {} bytes of inline references",
                head.refs.get(),
                rest.len()
            ));
        }
        let roots = rest
            .chunks_exact(9)
            .map(|c| {
                let r = RawInlineRef::read_from_bytes(c).expect("9-byte chunk");
                if r.kind != kind::TREE_BLOCK_REF {
                    return Err(format!("inline reference of type {}", r.kind));
                }
                Ok(TreeId(r.root.get()))
            })
            .collect::<Result<_, _>>()?;
        Ok(MetadataItem {
            generation: head.generation.get(),
            roots,
        })
    }
}

/// EXTENT_ITEM `(bytenr, EXTENT_ITEM, length)`: a data extent's reference count, with one
/// back-reference inline (the first referrer's, as btrfs does: most data extents have a
/// single referrer, which then costs one item instead of two). Further back-references are
/// separate EXTENT_DATA_REF items, since a shared extent may have many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentItem {
    /// The inline count plus the counts of the extent's EXTENT_DATA_REF items.
    pub refs: u64,
    /// The generation that allocated the extent.
    pub generation: u64,
    /// The inline back-reference and its count (> 0), if any.
    pub inline: Option<(DataBackref, u32)>,
    /// The checksums of the extent's blocks are kept by its referrers (a filesystem stores
    /// a one-block extent's crc32c in its file extent item), not in the checksum tree.
    pub csums_elsewhere: bool,
}

impl ExtentItem {
    /// The item bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = FLAG_DATA;
        if self.inline.is_some() {
            flags |= FLAG_INLINE_DATA_REF;
        }
        if self.csums_elsewhere {
            flags |= FLAG_CSUMS_ELSEWHERE;
        }
        let mut v = RawExtentItem {
            refs: U64::new(self.refs),
            generation: U64::new(self.generation),
            flags: U64::new(flags),
        }
        .as_bytes()
        .to_vec();
        if let Some((b, count)) = self.inline {
            v.extend_from_slice(&b.encode(count));
        }
        v
    }

    /// Parses item bytes.
    pub fn parse(data: &[u8]) -> Result<ExtentItem, String> {
        let (raw, rest) = RawExtentItem::read_from_prefix(data)
            .map_err(|_| format!("extent item of {} bytes, expected 24 or 52", data.len()))?;
        let flags = raw.flags.get();
        let csums_elsewhere = flags & FLAG_CSUMS_ELSEWHERE != 0;
        let inline = match (flags & !FLAG_CSUMS_ELSEWHERE, rest.len()) {
            (FLAG_DATA, 0) => None,
            (f, 28) if f == FLAG_DATA | FLAG_INLINE_DATA_REF => Some(DataBackref::parse(rest)?),
            _ => {
                return Err(format!(
                    "extent item flags {flags:#x} with {} bytes of inline reference",
                    rest.len()
                ))
            }
        };
        let refs = raw.refs.get();
        if refs == 0 || inline.is_some_and(|(_, c)| u64::from(c) > refs) {
            return Err(format!(
                "extent item refs {refs}, inline count {}",
                inline.map_or(0, |(_, c)| c)
            ));
        }
        Ok(ExtentItem {
            refs,
            generation: raw.generation.get(),
            inline,
            csums_elsewhere,
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawDataRef {
    root: U64,
    objectid: U64,
    offset: U64,
    count: U32,
}
const _: () = assert!(size_of::<RawDataRef>() == 28);

/// Who refers to a data extent: a file (inode `objectid` in tree `root`) at file `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataBackref {
    /// The tree holding the file.
    pub root: TreeId,
    /// The inode number.
    pub objectid: u64,
    /// The file offset the extent is mapped at (minus the offset into the extent).
    pub offset: u64,
}

impl DataBackref {
    /// The key offset of its EXTENT_DATA_REF item: a hash (collisions take the next free
    /// offset, so readers match on content, never on the hash alone).
    pub fn hash(&self) -> u64 {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.root.0.to_le_bytes());
        b[8..16].copy_from_slice(&self.objectid.to_le_bytes());
        b[16..].copy_from_slice(&self.offset.to_le_bytes());
        let hi = crc32c::crc32c(&b);
        let lo = crc32c::crc32c_append(hi ^ 0x5bd1_e995, &b);
        (u64::from(hi) << 31) ^ u64::from(lo)
    }

    /// The EXTENT_DATA_REF item bytes with `count` references.
    pub fn encode(&self, count: u32) -> Vec<u8> {
        RawDataRef {
            root: U64::new(self.root.0),
            objectid: U64::new(self.objectid),
            offset: U64::new(self.offset),
            count: U32::new(count),
        }
        .as_bytes()
        .to_vec()
    }

    /// Parses EXTENT_DATA_REF item bytes into the back-reference and its count.
    pub fn parse(data: &[u8]) -> Result<(DataBackref, u32), String> {
        let raw = RawDataRef::read_from_bytes(data)
            .map_err(|_| format!("data ref item of {} bytes, expected 28", data.len()))?;
        if raw.count.get() == 0 {
            return Err("data ref with count 0".into());
        }
        Ok((
            DataBackref {
                root: TreeId(raw.root.get()),
                objectid: raw.objectid.get(),
                offset: raw.offset.get(),
            },
            raw.count.get(),
        ))
    }
}
