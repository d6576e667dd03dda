//! What a device already holds, from the signatures at the start of it: so `mkfs` refuses to
//! format over another filesystem without `--force` (as mkfs.ext4/xfs/btrfs do), and a
//! failed mount never advises `mkfs` for a device that holds a bypassfs.

use bdev::{wait, BlockDevice, Lba};
use cow::format::{SUPERBLOCK_MAGIC, SUPERBLOCK_OFFSETS};

use crate::cli::error::{CliError, Result};

/// Bytes read from the start of the device: every signature below lies in them.
const HEAD: u64 = 68 << 10;

/// `(byte offset, magic, what it is)`, checked in this order; the first match names it.
const SIGNATURES: &[(usize, &[u8], &str)] = &[
    (0, b"LUKS\xba\xbe", "a LUKS encrypted volume"),
    (0, b"XFSB", "an XFS filesystem"),
    (0, b"hsqs", "a squashfs image"),
    (65600, b"_BHRfS_M", "a btrfs filesystem"),
    (1080, &[0x53, 0xef], "an ext2/ext3/ext4 filesystem"),
    (4086, b"SWAPSPACE2", "a Linux swap area"),
    (4086, b"SWAP-SPACE", "a Linux swap area"),
    (512, b"EFI PART", "a GPT partition table"),
    (512, b"LABELONE", "an LVM physical volume"),
    (32769, b"CD001", "an ISO 9660 filesystem"),
    (
        510,
        &[0x55, 0xaa],
        "a DOS partition table or boot sector (MBR, FAT)",
    ),
];

/// What the device holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A bypassfs superblock magic at these offsets (the filesystem may still be damaged).
    Bypassfs(Vec<u64>),
    /// Another known signature.
    Other(&'static str),
    /// No signature known here.
    Nothing,
}

/// Reads the device's first bytes and its bypassfs superblock locations.
pub fn probe(dev: &dyn BlockDevice) -> Result<Found> {
    let geo = dev.geometry();
    let size = geo.size_bytes();
    let bs = u64::from(geo.block_size);
    let mut io = dev
        .queue(1)
        .map_err(|e| CliError(format!("{}: {e}", dev.name())))?;
    let mut read = |off: u64, len: u64| -> Result<Vec<u8>> {
        let len = len.min(size.saturating_sub(off)) / bs * bs;
        if len == 0 {
            return Ok(Vec::new());
        }
        let buf = dev
            .alloc_buf(len as usize)
            .map_err(|e| CliError(format!("{}: {e}", dev.name())))?;
        let buf = wait::read(&mut *io, Lba(off / bs), buf).map_err(|(_, e)| {
            CliError(format!(
                "{}: reading {len} bytes at {off:#x} to see what it holds: {e}",
                dev.name()
            ))
        })?;
        Ok(buf.to_vec())
    };
    let mut magic_at = Vec::new();
    for off in SUPERBLOCK_OFFSETS {
        let sector = read(off, 4096)?;
        if sector.get(8..16) == Some(&SUPERBLOCK_MAGIC[..]) {
            magic_at.push(off);
        }
    }
    if !magic_at.is_empty() {
        return Ok(Found::Bypassfs(magic_at));
    }
    Ok(classify(&read(0, HEAD)?))
}

/// The first signature found in the device's first bytes `head`.
fn classify(head: &[u8]) -> Found {
    SIGNATURES
        .iter()
        .find(|(off, magic, _)| head.get(*off..off + magic.len()) == Some(magic))
        .map_or(Found::Nothing, |(_, _, what)| Found::Other(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signature_is_recognised_and_zeroes_are_nothing() {
        let mut head = vec![0u8; HEAD as usize];
        assert_eq!(classify(&head), Found::Nothing);
        head[1080..1082].copy_from_slice(&[0x53, 0xef]);
        assert_eq!(
            classify(&head),
            Found::Other("an ext2/ext3/ext4 filesystem")
        );
        head[0..4].copy_from_slice(b"XFSB");
        assert_eq!(classify(&head), Found::Other("an XFS filesystem"));
        let mut head = vec![0u8; HEAD as usize];
        head[65600..65608].copy_from_slice(b"_BHRfS_M");
        assert_eq!(classify(&head), Found::Other("a btrfs filesystem"));
        // A short device is read as far as it goes.
        assert_eq!(classify(&head[..4096]), Found::Nothing);
    }
}
