//! B+tree nodes: a 64-byte header, then leaf items (headers from the front, data from the
//! back, as in btrfs) or internal key pointers.
//!
//! Invariants of a valid node (checked by [`parse_node`] after every read and by
//! [`Node::encode`] before every write):
//! - the checksum (crc32c of every byte after the checksum field) matches, the magic and the
//!   filesystem id are ours, and the node says it lives where it was read from;
//! - keys are strictly increasing; an internal node has at least one pointer, and no child is
//!   newer than its parent;
//! - leaf item data lies packed from the end of the node backwards in item order, never
//!   overlapping the item headers.

use std::sync::Arc;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::key::{DiskKey, Key, TreeId};

/// Bytes of the node header.
pub const NODE_HEADER_SIZE: usize = 64;
/// Bytes of a leaf item header.
pub const ITEM_HEADER_SIZE: usize = 25;
/// Bytes of an internal node's key pointer.
pub const KEY_PTR_SIZE: usize = 33;
/// Levels are `0..MAX_LEVEL` (0 = leaf).
pub const MAX_LEVEL: usize = 8;
/// Smallest node size (for tests that want deep trees; real volumes use 16 KiB).
pub const MIN_NODESIZE: u32 = 1024;
/// Largest node size.
pub const MAX_NODESIZE: u32 = 64 << 10;
/// The magic at byte 4 of every node.
pub const NODE_MAGIC: [u8; 4] = *b"BFSN";

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawHeader {
    csum: U32,
    magic: [u8; 4],
    fsid: [u8; 16],
    bytenr: U64,
    generation: U64,
    owner: U64,
    nritems: U32,
    level: u8,
    pad: [u8; 3],
    flags: U64,
}
const _: () = assert!(size_of::<RawHeader>() == NODE_HEADER_SIZE);

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawItem {
    key: DiskKey,
    /// Offset of the item's data from the start of the node.
    offset: U32,
    size: U32,
}
const _: () = assert!(size_of::<RawItem>() == ITEM_HEADER_SIZE);

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawKeyPtr {
    key: DiskKey,
    bytenr: U64,
    generation: U64,
}
const _: () = assert!(size_of::<RawKeyPtr>() == KEY_PTR_SIZE);

/// The largest item data a leaf of `nodesize` accepts: a quarter of the leaf minus an item
/// header, so that splitting an overfull leaf in two always yields two leaves that fit.
pub fn max_item_size(nodesize: u32) -> usize {
    (nodesize as usize - NODE_HEADER_SIZE) / 4 - ITEM_HEADER_SIZE
}

/// A leaf item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its key.
    pub key: Key,
    /// Its data.
    pub data: ItemData,
}

/// Data bytes an item holds in itself: file extent (33, 37 with its checksum), extent (24,
/// 52 with its inline back-reference), back-reference (28), metadata-reference (33 for one
/// tree) and single-block checksum items all fit; an [`Item`] is then 80 bytes.
const INLINE_DATA: usize = 54;
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Item>() == 80);

/// An item's data: small data inside the item, so copying a leaf on write (every leaf a
/// transaction changes) copies plain bytes, with no allocation and no reference count per
/// item; larger data (inodes, long names, multi-block checksums) shared between the copies.
#[derive(Clone)]
pub enum ItemData {
    /// At most `INLINE_DATA` (54) bytes: the first `len` of `bytes`.
    Inline {
        /// How many bytes of `bytes` are the data.
        len: u8,
        /// The data, then zeroes.
        bytes: [u8; INLINE_DATA],
    },
    /// Larger data.
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for ItemData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ItemData::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ItemData::Shared(a) => a,
        }
    }
}

impl From<&[u8]> for ItemData {
    fn from(d: &[u8]) -> ItemData {
        if d.len() <= INLINE_DATA {
            let mut bytes = [0; INLINE_DATA];
            bytes[..d.len()].copy_from_slice(d);
            ItemData::Inline {
                len: d.len() as u8,
                bytes,
            }
        } else {
            ItemData::Shared(d.into())
        }
    }
}

impl From<Vec<u8>> for ItemData {
    fn from(d: Vec<u8>) -> ItemData {
        ItemData::from(d.as_slice())
    }
}

impl PartialEq for ItemData {
    fn eq(&self, other: &ItemData) -> bool {
        **self == **other
    }
}

impl Eq for ItemData {}

impl std::fmt::Debug for ItemData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An internal node's pointer to a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPtr {
    /// The child's first key.
    pub key: Key,
    /// The child's address.
    pub bytenr: u64,
    /// The child's generation: a lost or misdirected write of the child shows up as a mismatch.
    pub generation: u64,
}

/// A node's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Level 0: items.
    Leaf(Vec<Item>),
    /// Level > 0: pointers to children one level down.
    Internal(Vec<KeyPtr>),
}

/// A validated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Where it lives.
    pub bytenr: u64,
    /// The transaction that wrote it.
    pub generation: u64,
    /// The tree it belongs to.
    pub owner: TreeId,
    /// 0 for leaves.
    pub level: u8,
    /// Items or pointers.
    pub body: Body,
}

impl Node {
    /// A copy to modify: like `clone`, with room for a quarter more items or pointers (at
    /// least 4). A leaf copied on write usually takes several inserts in the same
    /// transaction (a fold changes each tree in key order); growing the vector by doubling
    /// reallocated and copied it again, and those reallocations were most of the fresh
    /// memory the allocator had to zero during random writes.
    pub fn copy_for_write(&self) -> Node {
        fn room(len: usize) -> usize {
            len + len / 4 + 4
        }
        let body = match &self.body {
            Body::Leaf(items) => {
                let mut v = Vec::with_capacity(room(items.len()));
                v.extend_from_slice(items);
                Body::Leaf(v)
            }
            Body::Internal(ptrs) => {
                let mut v = Vec::with_capacity(room(ptrs.len()));
                v.extend_from_slice(ptrs);
                Body::Internal(v)
            }
        };
        Node { body, ..*self }
    }

    /// "leaf" or "node", for messages.
    pub fn what(&self) -> &'static str {
        if self.level == 0 {
            "leaf"
        } else {
            "node"
        }
    }

    /// Number of items or pointers.
    pub fn nritems(&self) -> usize {
        match &self.body {
            Body::Leaf(items) => items.len(),
            Body::Internal(ptrs) => ptrs.len(),
        }
    }

    /// The first key, if the node is not empty.
    pub fn first_key(&self) -> Option<Key> {
        match &self.body {
            Body::Leaf(items) => items.first().map(|i| i.key),
            Body::Internal(ptrs) => ptrs.first().map(|p| p.key),
        }
    }

    /// Bytes used after the header.
    pub fn used_bytes(&self) -> usize {
        match &self.body {
            Body::Leaf(items) => items.iter().map(|i| ITEM_HEADER_SIZE + i.data.len()).sum(),
            Body::Internal(ptrs) => ptrs.len() * KEY_PTR_SIZE,
        }
    }

    /// Bytes available after the header in a node of `nodesize`.
    pub fn capacity(nodesize: u32) -> usize {
        nodesize as usize - NODE_HEADER_SIZE
    }

    /// Whether the content fits in a node of `nodesize`.
    pub fn fits(&self, nodesize: u32) -> bool {
        self.used_bytes() <= Self::capacity(nodesize)
    }

    /// The leaf's items (empty for internal nodes).
    pub fn items(&self) -> &[Item] {
        match &self.body {
            Body::Leaf(items) => items,
            Body::Internal(_) => &[],
        }
    }

    /// The internal node's pointers (empty for leaves).
    pub fn ptrs(&self) -> &[KeyPtr] {
        match &self.body {
            Body::Leaf(_) => &[],
            Body::Internal(ptrs) => ptrs,
        }
    }

    /// Checks what can be checked without the bytes: order, fit, level/body agreement.
    pub fn check_structure(&self, nodesize: u32) -> Result<(), String> {
        if usize::from(self.level) >= MAX_LEVEL {
            return Err(format!("level {} is too deep", self.level));
        }
        // One pass per body: sizes, key order and fill (this runs before every node write).
        let (used, disorder) = match &self.body {
            Body::Leaf(items) if self.level == 0 => {
                let max = max_item_size(nodesize);
                let mut used = 0;
                for (i, it) in items.iter().enumerate() {
                    if it.data.len() > max {
                        return Err(format!("item {i} is {} bytes, over {max}", it.data.len()));
                    }
                    used += ITEM_HEADER_SIZE + it.data.len();
                }
                (used, items.windows(2).position(|w| w[0].key >= w[1].key))
            }
            Body::Internal(ptrs) if self.level > 0 => {
                if ptrs.is_empty() {
                    return Err("internal node without pointers".into());
                }
                if let Some((i, p)) = ptrs
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.generation > self.generation || p.bytenr == 0)
                {
                    return Err(format!(
                        "pointer {i} to {:#x} has generation {} newer than its parent's {}",
                        p.bytenr, p.generation, self.generation
                    ));
                }
                (
                    ptrs.len() * KEY_PTR_SIZE,
                    ptrs.windows(2).position(|w| w[0].key >= w[1].key),
                )
            }
            _ => return Err(format!("level {} does not match the body kind", self.level)),
        };
        if let Some(i) = disorder {
            return Err(format!("key order broken at slot {}", i + 1));
        }
        if used > Self::capacity(nodesize) {
            return Err(format!("{used} bytes of content do not fit in {nodesize}"));
        }
        Ok(())
    }

    /// Writes the node into `out` (exactly `nodesize` bytes), checksummed; refuses an invalid
    /// node (the paired assertion before writing).
    pub fn encode(&self, fsid: &[u8; 16], out: &mut [u8]) -> Result<(), String> {
        let nodesize = out.len() as u32;
        self.check_structure(nodesize)?;
        let header = RawHeader {
            csum: U32::new(0),
            magic: NODE_MAGIC,
            fsid: *fsid,
            bytenr: U64::new(self.bytenr),
            generation: U64::new(self.generation),
            owner: U64::new(self.owner.0),
            nritems: U32::new(self.nritems() as u32),
            level: self.level,
            pad: [0; 3],
            flags: U64::new(0),
        };
        out[..NODE_HEADER_SIZE].copy_from_slice(header.as_bytes());
        match &self.body {
            Body::Leaf(items) => encode_leaf(items, out),
            Body::Internal(ptrs) => {
                for (i, p) in ptrs.iter().enumerate() {
                    let raw = RawKeyPtr {
                        key: p.key.into(),
                        bytenr: U64::new(p.bytenr),
                        generation: U64::new(p.generation),
                    };
                    let at = NODE_HEADER_SIZE + i * KEY_PTR_SIZE;
                    out[at..at + KEY_PTR_SIZE].copy_from_slice(raw.as_bytes());
                }
                out[NODE_HEADER_SIZE + ptrs.len() * KEY_PTR_SIZE..].fill(0);
            }
        }
        let csum = crc32c::crc32c(&out[4..]);
        out[..4].copy_from_slice(&csum.to_le_bytes());
        Ok(())
    }
}

fn encode_leaf(items: &[Item], out: &mut [u8]) {
    let mut data_end = out.len();
    for (i, it) in items.iter().enumerate() {
        let start = data_end - it.data.len();
        out[start..data_end].copy_from_slice(&it.data);
        let raw = RawItem {
            key: it.key.into(),
            offset: U32::new(start as u32),
            size: U32::new(it.data.len() as u32),
        };
        let at = NODE_HEADER_SIZE + i * ITEM_HEADER_SIZE;
        out[at..at + ITEM_HEADER_SIZE].copy_from_slice(raw.as_bytes());
        data_end = start;
    }
    // Every byte is written: the free space between item headers and data is zeroed.
    out[NODE_HEADER_SIZE + items.len() * ITEM_HEADER_SIZE..data_end].fill(0);
}

/// Validates the node bytes read from `bytenr` (the whole node). The error says what is wrong;
/// the caller adds which tree and address.
pub fn parse_node(bytes: &[u8], fsid: &[u8; 16], bytenr: u64) -> Result<Node, String> {
    let nodesize = bytes.len();
    if !(MIN_NODESIZE as usize..=MAX_NODESIZE as usize).contains(&nodesize) {
        return Err(format!("node size {nodesize} is not valid"));
    }
    let header = RawHeader::read_from_bytes(&bytes[..NODE_HEADER_SIZE])
        .map_err(|_| "unreadable header".to_string())?;
    let csum = crc32c::crc32c(&bytes[4..]);
    if header.csum.get() != csum {
        return Err(format!(
            "checksum mismatch (stored {:#010x}, computed {csum:#010x})",
            header.csum.get()
        ));
    }
    if header.magic != NODE_MAGIC {
        return Err("bad magic".into());
    }
    if &header.fsid != fsid {
        return Err("belongs to another filesystem (fsid mismatch)".into());
    }
    if header.bytenr.get() != bytenr {
        return Err(format!(
            "says it lives at {:#x} (misdirected write)",
            header.bytenr.get()
        ));
    }
    if header.pad != [0; 3] || header.flags.get() != 0 {
        return Err("reserved header bytes are not zero".into());
    }
    let level = header.level;
    let nritems = header.nritems.get() as usize;
    let body = if level == 0 {
        Body::Leaf(parse_items(bytes, nritems)?)
    } else {
        Body::Internal(parse_ptrs(bytes, nritems)?)
    };
    let node = Node {
        bytenr,
        generation: header.generation.get(),
        owner: TreeId(header.owner.get()),
        level,
        body,
    };
    node.check_structure(nodesize as u32)?;
    Ok(node)
}

fn parse_items(bytes: &[u8], nritems: usize) -> Result<Vec<Item>, String> {
    let headers_end = nritems
        .checked_mul(ITEM_HEADER_SIZE)
        .map(|n| n + NODE_HEADER_SIZE)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("{nritems} items do not fit"))?;
    let mut items = Vec::with_capacity(nritems);
    let mut data_end = bytes.len();
    for i in 0..nritems {
        let at = NODE_HEADER_SIZE + i * ITEM_HEADER_SIZE;
        let raw = RawItem::read_from_bytes(&bytes[at..at + ITEM_HEADER_SIZE])
            .map_err(|_| format!("item {i} unreadable"))?;
        let (off, size) = (raw.offset.get() as usize, raw.size.get() as usize);
        if off.checked_add(size) != Some(data_end) || off < headers_end {
            return Err(format!(
                "item {i} data {off}+{size} is out of place (expected to end at {data_end}, \
                 after {headers_end})"
            ));
        }
        items.push(Item {
            key: raw.key.into(),
            data: bytes[off..data_end].into(),
        });
        data_end = off;
    }
    Ok(items)
}

fn parse_ptrs(bytes: &[u8], nritems: usize) -> Result<Vec<KeyPtr>, String> {
    let end = nritems
        .checked_mul(KEY_PTR_SIZE)
        .map(|n| n + NODE_HEADER_SIZE)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("{nritems} pointers do not fit"))?;
    Ok(bytes[NODE_HEADER_SIZE..end]
        .chunks_exact(KEY_PTR_SIZE)
        .map(|c| {
            let raw = RawKeyPtr::read_from_bytes(c).expect("chunk has the struct's size");
            KeyPtr {
                key: raw.key.into(),
                bytenr: raw.bytenr.get(),
                generation: raw.generation.get(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Node {
        Node {
            bytenr: 0x20000,
            generation: 3,
            owner: TreeId(256),
            level: 0,
            body: Body::Leaf(
                (0..10)
                    .map(|i| Item {
                        key: Key::new(i, 1, 2),
                        data: vec![i as u8; i as usize].into(),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn round_trip_and_flips_are_caught() {
        let fsid = [1; 16];
        let n = leaf();
        let mut buf = vec![0; 1024];
        n.encode(&fsid, &mut buf).unwrap();
        assert_eq!(parse_node(&buf, &fsid, 0x20000).unwrap(), n);
        assert!(parse_node(&buf, &[2; 16], 0x20000).is_err());
        assert!(parse_node(&buf, &fsid, 0x30000)
            .unwrap_err()
            .contains("misdirected"));
        for i in (0..1024).step_by(7) {
            let mut b = buf.clone();
            b[i] ^= 1;
            assert!(parse_node(&b, &fsid, 0x20000).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn encoding_writes_every_byte_of_a_reused_buffer() {
        let fsid = [1; 16];
        let internal = Node {
            level: 1,
            body: Body::Internal(
                (0..5)
                    .map(|i| KeyPtr {
                        key: Key::new(i, 1, 0),
                        bytenr: 0x40000 + i * 0x1000,
                        generation: 2,
                    })
                    .collect(),
            ),
            ..leaf()
        };
        for n in [leaf(), internal] {
            let (mut clean, mut reused) = (vec![0; 1024], vec![0xa5; 1024]);
            n.encode(&fsid, &mut clean).unwrap();
            n.encode(&fsid, &mut reused).unwrap();
            assert!(clean == reused, "{} bytes differ", n.what());
            assert_eq!(parse_node(&reused, &fsid, 0x20000).unwrap(), n);
        }
    }

    #[test]
    fn oversized_items_and_overfull_nodes_are_not_encoded() {
        let mut n = leaf();
        if let Body::Leaf(items) = &mut n.body {
            items[4].data = vec![0; max_item_size(1024) + 1].into();
        }
        let err = n.encode(&[0; 16], &mut vec![0; 1024]).unwrap_err();
        assert!(err.contains("item 4 is"), "{err}");
        let mut n = leaf();
        if let Body::Leaf(items) = &mut n.body {
            items.extend((10..40).map(|i| Item {
                key: Key::new(i, 1, 2),
                data: vec![0; 20].into(),
            }));
        }
        let err = n.encode(&[0; 16], &mut vec![0; 1024]).unwrap_err();
        assert!(err.contains("do not fit in 1024"), "{err}");
    }

    #[test]
    fn invalid_nodes_are_not_encoded() {
        let mut n = leaf();
        if let Body::Leaf(items) = &mut n.body {
            items.swap(2, 3);
        }
        let err = n.encode(&[0; 16], &mut vec![0; 1024]).unwrap_err();
        assert!(err.contains("key order broken at slot 3"), "{err}");
    }
}
