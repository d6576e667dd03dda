//! Reading every superblock copy of a device and choosing the ones a volume may open from.
//!
//! Rules (docs/FORMAT.md, "Superblock"):
//! - a copy is usable when it parses (magic, checksum, version, its own offset, sane
//!   fields) and also fits the device it was read from: the volume it describes is no
//!   larger than the device, its sectors are no smaller than the device's blocks, and the
//!   copy's own offset is one that volume writes;
//! - when the primary copy is usable, it defines the volume: locations beyond that volume
//!   are not part of it (a larger filesystem formatted there earlier may have left a mirror
//!   in them) and are neither used nor reported;
//! - [`Volume::open`](crate::Volume::open) tries the usable copies newest generation first
//!   (the primary first among equals) and falls back to the next when the trees of one do
//!   not load as valid metadata, saying so in a warning.

// On-disk integers are little-endian on every host: no host- or big-endian conversions.
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

use bdev::{wait, BlockDevice, IoQueue, Lba};

use crate::error::{Error, Result};
use crate::format::SUPERBLOCK_OFFSETS;
use crate::format::{parse_superblock, superblock_offsets, Superblock, SUPERBLOCK_AREA};

/// One superblock location of a device, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperblockCopy {
    /// Its byte offset (one of [`SUPERBLOCK_OFFSETS`]).
    pub offset: u64,
    /// The copy, validated and checked against the device, or why it is not usable.
    pub state: std::result::Result<Superblock, String>,
}

impl SuperblockCopy {
    /// "primary superblock at 0x10000" or "superblock mirror at 0x4000000".
    pub fn name(&self) -> String {
        if self.offset == SUPERBLOCK_OFFSETS[0] {
            format!("primary superblock at {:#x}", self.offset)
        } else {
            format!("superblock mirror at {:#x}", self.offset)
        }
    }
}

/// Reads every superblock location that fits in `dev` and validates each copy. A read that
/// fails is that copy's state, not an error of the call.
pub fn read_superblock_copies(dev: &dyn BlockDevice, io: &mut dyn IoQueue) -> Vec<SuperblockCopy> {
    let geo = dev.geometry();
    let bs = u64::from(geo.block_size);
    let size = geo.size_bytes();
    superblock_offsets(size)
        .into_iter()
        .map(|offset| {
            let state = dev
                .alloc_buf(SUPERBLOCK_AREA)
                .map_err(|e| format!("no buffer to read it: {e}"))
                .and_then(|buf| {
                    wait::read(io, Lba(offset / bs), buf).map_err(|(_, e)| format!("read: {e}"))
                })
                .and_then(|buf| parse_superblock(&buf, offset))
                .and_then(|sb| fits(&sb, offset, size, geo.block_size).map(|()| sb));
            SuperblockCopy { offset, state }
        })
        .collect()
}

/// What a checksummed copy must also satisfy on this device.
fn fits(sb: &Superblock, offset: u64, device_bytes: u64, block_size: u32) -> Result<(), String> {
    if sb.total_bytes > device_bytes {
        return Err(format!(
            "describes a volume of {} bytes on a device of {device_bytes}",
            sb.total_bytes
        ));
    }
    if sb.sectorsize < block_size {
        return Err(format!(
            "{}-byte sectors are smaller than the device's {block_size}-byte blocks",
            sb.sectorsize
        ));
    }
    if !superblock_offsets(sb.total_bytes).contains(&offset) {
        return Err(format!(
            "lies outside the volume of {} bytes it describes",
            sb.total_bytes
        ));
    }
    Ok(())
}

/// The copies that belong to the volume on the device: all of them, or when the primary is
/// usable only those at locations its volume writes.
pub fn volume_copies(copies: &[SuperblockCopy]) -> Vec<&SuperblockCopy> {
    let primary = copies
        .iter()
        .find(|c| c.offset == SUPERBLOCK_OFFSETS[0])
        .and_then(|c| c.state.as_ref().ok());
    match primary {
        Some(p) => {
            let ours = superblock_offsets(p.total_bytes);
            copies.iter().filter(|c| ours.contains(&c.offset)).collect()
        }
        None => copies.iter().collect(),
    }
}

/// The usable copies of the volume in the order to try them (newest generation first, the
/// lower offset first among equals, identical copies once), and why the others are not
/// usable; `NoSuperblock` when none is.
pub(crate) fn candidates(copies: &[SuperblockCopy], device_bytes: u64) -> Result<Candidates> {
    let mut usable: Vec<(u64, Superblock)> = Vec::new();
    let mut unusable = Vec::new();
    for c in volume_copies(copies) {
        match &c.state {
            Ok(sb) if usable.iter().any(|(_, u)| u == sb) => {}
            Ok(sb) => usable.push((c.offset, sb.clone())),
            Err(why) => unusable.push(format!("copy at {:#x}: {why}", c.offset)),
        }
    }
    if usable.is_empty() {
        return Err(Error::NoSuperblock(if unusable.is_empty() {
            format!("device of {device_bytes} bytes is too small for a superblock")
        } else {
            unusable.join("; ")
        }));
    }
    usable.sort_by_key(|(off, sb)| (std::cmp::Reverse(sb.generation), *off));
    Ok(Candidates { usable, unusable })
}

/// See [`candidates`].
pub(crate) struct Candidates {
    /// `(offset, copy)` in the order to try.
    pub(crate) usable: Vec<(u64, Superblock)>,
    /// "copy at 0x…: why", one per unusable copy of the volume.
    pub(crate) unusable: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RootPtr;

    fn sb(generation: u64, total_bytes: u64) -> Superblock {
        Superblock {
            fsid: [1; 16],
            generation,
            root: RootPtr {
                bytenr: 1 << 20,
                generation,
                level: 0,
            },
            nodesize: 4096,
            sectorsize: 4096,
            total_bytes,
            bytes_used: 4096,
        }
    }

    #[test]
    fn copies_beyond_a_usable_primary_are_not_the_volume_s() {
        let (p, m) = (SUPERBLOCK_OFFSETS[0], SUPERBLOCK_OFFSETS[1]);
        let old_mirror = Superblock {
            fsid: [2; 16],
            ..sb(50, 128 << 20)
        };
        let copies = vec![
            SuperblockCopy {
                offset: p,
                state: Ok(sb(3, 32 << 20)),
            },
            SuperblockCopy {
                offset: m,
                state: Ok(old_mirror.clone()),
            },
        ];
        let c = candidates(&copies, 128 << 20).unwrap();
        assert_eq!(c.usable, vec![(p, sb(3, 32 << 20))]);
        assert!(c.unusable.is_empty());
        // Without a usable primary the mirror is all there is.
        let copies = vec![
            SuperblockCopy {
                offset: p,
                state: Err("bad magic".into()),
            },
            SuperblockCopy {
                offset: m,
                state: Ok(old_mirror.clone()),
            },
        ];
        let c = candidates(&copies, 128 << 20).unwrap();
        assert_eq!(c.usable, vec![(m, old_mirror)]);
        assert_eq!(c.unusable, vec!["copy at 0x10000: bad magic".to_string()]);
    }

    #[test]
    fn copies_that_do_not_fit_the_device_are_unusable() {
        let off = SUPERBLOCK_OFFSETS[0];
        assert!(fits(&sb(1, 32 << 20), off, 32 << 20, 4096).is_ok());
        assert!(fits(&sb(1, 64 << 20), off, 32 << 20, 4096)
            .unwrap_err()
            .contains("on a device of"));
        assert!(fits(&sb(1, 32 << 20), off, 32 << 20, 8192)
            .unwrap_err()
            .contains("smaller than"));
        assert!(
            fits(&sb(1, 32 << 20), SUPERBLOCK_OFFSETS[1], 128 << 20, 4096)
                .unwrap_err()
                .contains("outside the volume")
        );
    }
}
