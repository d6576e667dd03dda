//! The superblock: where the root tree is, which generation is current, and the geometry.
//!
//! Invariants:
//! - a copy lives at each offset of [`SUPERBLOCK_OFFSETS`] that fits in the volume; all copies of
//!   one commit are identical except for the `bytenr` field (the copy's own offset);
//! - only the first [`SUPERBLOCK_CHECKED`] bytes (one 512-byte sector) carry meaning and are
//!   checksummed, so a torn multi-sector write can never mix two superblocks: each copy is
//!   either entirely old or entirely new (the sector-atomicity assumption of `docs/FORMAT.md`);
//! - open picks the valid copy with the highest generation.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::node::{MAX_LEVEL, MAX_NODESIZE, MIN_NODESIZE};

/// Offsets of the superblock copies (btrfs's): 64 KiB, 64 MiB, 256 GiB.
pub const SUPERBLOCK_OFFSETS: [u64; 3] = [64 << 10, 64 << 20, 256 << 30];
/// Bytes written for each copy (the rest after the checked sector is zero).
pub const SUPERBLOCK_AREA: usize = 4096;
/// Bytes that carry meaning and are checksummed.
pub const SUPERBLOCK_CHECKED: usize = 512;
/// The magic at byte 8.
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"BYPFSCOW";
/// The format version this code writes (every commit writes it into the superblock).
/// Version 3 changes no cow structure: it tells older code, which refuses it, that the
/// filesystem's log may hold records it could not replay (fs-core's namespace records).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this code reads: version 1 is version 2 without inline data
/// back-references, so a version-1 volume is a valid version-2 one, and a version-2 one a
/// valid version-3 one (its first commit makes it one).
pub const OLDEST_READ_VERSION: u32 = 1;
/// The smallest volume: room for the primary superblock and a useful number of nodes.
pub const MIN_DEVICE_BYTES: u64 = 1 << 20;
/// Bytes reserved at the start of the volume (boot area + primary superblock).
const RESERVED_START: u64 = 128 << 10;
/// Bytes reserved at each mirror copy (so the copy never shares space with a node).
const RESERVED_MIRROR: u64 = 64 << 10;

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
struct RawSuperblock {
    csum: U32,
    version: U32,
    magic: [u8; 8],
    fsid: [u8; 16],
    bytenr: U64,
    generation: U64,
    root_bytenr: U64,
    root_generation: U64,
    total_bytes: U64,
    bytes_used: U64,
    nodesize: U32,
    sectorsize: U32,
    root_level: u8,
    pad: [u8; 7],
    reserved: [u8; 416],
}
const _: () = assert!(size_of::<RawSuperblock>() == SUPERBLOCK_CHECKED);

/// Where a tree's root node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootPtr {
    /// Address of the root node.
    pub bytenr: u64,
    /// Generation of the root node (checked when it is read).
    pub generation: u64,
    /// Level of the root node (0: the root is a leaf).
    pub level: u8,
}

/// A validated superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Filesystem id, also in every node header.
    pub fsid: [u8; 16],
    /// The generation of the last committed transaction.
    pub generation: u64,
    /// The root of the root tree.
    pub root: RootPtr,
    /// Node size in bytes.
    pub nodesize: u32,
    /// Sector size in bytes: the unit of allocation and of data checksums.
    pub sectorsize: u32,
    /// Size of the volume in bytes.
    pub total_bytes: u64,
    /// Bytes allocated to extents (metadata and data), informational.
    pub bytes_used: u64,
}

/// The offsets of the superblock copies that fit in a volume of `total_bytes`.
pub fn superblock_offsets(total_bytes: u64) -> Vec<u64> {
    SUPERBLOCK_OFFSETS
        .iter()
        .copied()
        .filter(|&o| o + RESERVED_MIRROR <= total_bytes)
        .collect()
}

/// Byte ranges `(start, len)` that are never allocated: the start area and each mirror copy.
pub fn reserved_ranges(total_bytes: u64) -> Vec<(u64, u64)> {
    let mut v = vec![(0, RESERVED_START)];
    v.extend(
        superblock_offsets(total_bytes)
            .into_iter()
            .skip(1)
            .map(|o| (o, RESERVED_MIRROR)),
    );
    v
}

impl Superblock {
    fn check(&self) -> Result<(), String> {
        let sane_size = |s: u32, lo: u32, hi: u32| s.is_power_of_two() && (lo..=hi).contains(&s);
        if !sane_size(self.sectorsize, 512, 4096) {
            return Err(format!("sector size {} is not 512..4096", self.sectorsize));
        }
        if !sane_size(self.nodesize, MIN_NODESIZE, MAX_NODESIZE) || self.nodesize < self.sectorsize
        {
            return Err(format!(
                "node size {} is not a power of two in {MIN_NODESIZE}..{MAX_NODESIZE} and \
                 at least the sector size",
                self.nodesize
            ));
        }
        if self.total_bytes < MIN_DEVICE_BYTES || self.total_bytes % u64::from(self.sectorsize) != 0
        {
            return Err(format!("total bytes {} is not valid", self.total_bytes));
        }
        if self.generation == 0 || self.root.generation > self.generation {
            return Err(format!(
                "generation {} / root generation {} are not valid",
                self.generation, self.root.generation
            ));
        }
        let r = self.root.bytenr;
        if r < RESERVED_START
            || r % u64::from(self.sectorsize) != 0
            || r.checked_add(u64::from(self.nodesize))
                .is_none_or(|e| e > self.total_bytes)
        {
            return Err(format!("root tree root address {r:#x} is not valid"));
        }
        if usize::from(self.root.level) >= MAX_LEVEL {
            return Err(format!("root tree level {} is too deep", self.root.level));
        }
        if self.bytes_used > self.total_bytes {
            return Err(format!(
                "bytes used {} exceed total bytes {}",
                self.bytes_used, self.total_bytes
            ));
        }
        Ok(())
    }

    /// The checked sector of the copy at `bytenr`, validated before it is handed out.
    pub fn encode(&self, bytenr: u64) -> Result<[u8; SUPERBLOCK_CHECKED], String> {
        self.check()?;
        let mut raw = RawSuperblock {
            csum: U32::new(0),
            version: U32::new(FORMAT_VERSION),
            magic: SUPERBLOCK_MAGIC,
            fsid: self.fsid,
            bytenr: U64::new(bytenr),
            generation: U64::new(self.generation),
            root_bytenr: U64::new(self.root.bytenr),
            root_generation: U64::new(self.root.generation),
            total_bytes: U64::new(self.total_bytes),
            bytes_used: U64::new(self.bytes_used),
            nodesize: U32::new(self.nodesize),
            sectorsize: U32::new(self.sectorsize),
            root_level: self.root.level,
            pad: [0; 7],
            reserved: [0; 416],
        };
        raw.csum = U32::new(crc32c::crc32c(&raw.as_bytes()[4..]));
        let mut out = [0u8; SUPERBLOCK_CHECKED];
        out.copy_from_slice(raw.as_bytes());
        debug_assert_eq!(parse_superblock(&out, bytenr).as_ref(), Ok(self));
        Ok(out)
    }
}

/// Validates the superblock copy read from `bytenr`. The error says what is wrong.
pub fn parse_superblock(bytes: &[u8], bytenr: u64) -> Result<Superblock, String> {
    let Some(head) = bytes.get(..SUPERBLOCK_CHECKED) else {
        return Err(format!("only {} bytes", bytes.len()));
    };
    let raw = RawSuperblock::read_from_bytes(head).map_err(|_| "unreadable".to_string())?;
    if raw.magic != SUPERBLOCK_MAGIC {
        return Err("bad magic (not a bypassfs cow volume, or overwritten)".into());
    }
    let csum = crc32c::crc32c(&head[4..]);
    if raw.csum.get() != csum {
        return Err(format!(
            "checksum mismatch (stored {:#010x}, computed {csum:#010x})",
            raw.csum.get()
        ));
    }
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&raw.version.get()) {
        return Err(format!(
            "format version {} is not supported (this code reads {OLDEST_READ_VERSION} to \
             {FORMAT_VERSION})",
            raw.version.get()
        ));
    }
    if raw.bytenr.get() != bytenr {
        return Err(format!(
            "copy says it lives at {:#x} but was read from {bytenr:#x} (misdirected write)",
            raw.bytenr.get()
        ));
    }
    if raw.pad != [0; 7] || raw.reserved.iter().any(|&b| b != 0) {
        return Err("reserved bytes are not zero".into());
    }
    let sb = Superblock {
        fsid: raw.fsid,
        generation: raw.generation.get(),
        root: RootPtr {
            bytenr: raw.root_bytenr.get(),
            generation: raw.root_generation.get(),
            level: raw.root_level,
        },
        nodesize: raw.nodesize.get(),
        sectorsize: raw.sectorsize.get(),
        total_bytes: raw.total_bytes.get(),
        bytes_used: raw.bytes_used.get(),
    };
    sb.check()?;
    Ok(sb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            fsid: [7; 16],
            generation: 9,
            root: RootPtr {
                bytenr: 1 << 20,
                generation: 8,
                level: 1,
            },
            nodesize: 4096,
            sectorsize: 512,
            total_bytes: 8 << 20,
            bytes_used: 3 * 4096,
        }
    }

    #[test]
    fn round_trip_and_every_flipped_byte_is_caught() {
        let sb = sample();
        let bytes = sb.encode(65536).unwrap();
        assert_eq!(parse_superblock(&bytes, 65536).unwrap(), sb);
        assert!(parse_superblock(&bytes, 64 << 20)
            .unwrap_err()
            .contains("misdirected"));
        for i in 0..SUPERBLOCK_CHECKED {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(
                parse_superblock(&b, 65536).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }

    /// Version 1 volumes are read (version 2 only adds an item form); newer ones are not.
    #[test]
    fn older_versions_are_read_and_newer_ones_refused() {
        let sb = sample();
        let bytes = sb.encode(65536).unwrap();
        let with_version = |v: u32| {
            let mut b = bytes;
            b[4..8].copy_from_slice(&v.to_le_bytes());
            let csum = crc32c::crc32c(&b[4..]);
            b[..4].copy_from_slice(&csum.to_le_bytes());
            parse_superblock(&b, 65536)
        };
        assert_eq!(with_version(1).unwrap(), sb);
        assert_eq!(with_version(FORMAT_VERSION).unwrap(), sb);
        assert!(with_version(FORMAT_VERSION + 1)
            .unwrap_err()
            .contains("not supported"));
        assert!(with_version(0).is_err());
    }

    #[test]
    fn offsets_and_reservations_follow_the_size() {
        assert_eq!(superblock_offsets(8 << 20), vec![64 << 10]);
        assert_eq!(superblock_offsets(1 << 30), vec![64 << 10, 64 << 20]);
        assert_eq!(
            reserved_ranges(1 << 30),
            vec![(0, 128 << 10), (64 << 20, 64 << 10)]
        );
    }
}
