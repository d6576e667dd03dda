//! EXTENT_DATA: what file bytes `[key.offset, key.offset + num_bytes)` are.

use super::codec::{Reader, Writer};

/// The kind of a file extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// Bytes held in the item itself (symlink targets).
    Inline,
    /// Written data at `disk_bytenr + offset`.
    Regular,
    /// Allocated, never written: reads as zeroes (fallocate).
    Prealloc,
}

/// A file extent item. For `Regular` and `Prealloc`, the file maps `num_bytes` bytes at
/// `disk_bytenr + offset` of the data extent `[disk_bytenr, disk_bytenr + disk_len)`; several
/// file extents may point into one data extent (after a partial overwrite), each holding a
/// reference counted in the extent tree under the back-reference
/// `(tree, ino, key.offset - offset)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileExtent {
    /// What it is.
    pub kind: ExtentKind,
    /// Start of the data extent (0 for inline).
    pub disk_bytenr: u64,
    /// Length of the data extent.
    pub disk_len: u64,
    /// Offset of the file bytes in the data extent.
    pub offset: u64,
    /// File bytes mapped.
    pub num_bytes: u64,
    /// Inline data.
    pub inline: Vec<u8>,
    /// The crc32c of a one-block regular extent's block, kept here instead of in the
    /// checksum tree (the fsync log's fold writes extents so; see `docs/FORMAT.md`).
    pub csum: Option<u32>,
}

impl FileExtent {
    /// A regular or prealloc extent.
    pub fn disk(kind: ExtentKind, disk_bytenr: u64, disk_len: u64, offset: u64, n: u64) -> Self {
        FileExtent {
            kind,
            disk_bytenr,
            disk_len,
            offset,
            num_bytes: n,
            inline: Vec::new(),
            csum: None,
        }
    }

    /// A one-block regular extent of `bs` bytes at `disk_bytenr` whose block has the
    /// crc32c `csum`.
    pub fn one_block(disk_bytenr: u64, bs: u64, csum: u32) -> Self {
        FileExtent {
            csum: Some(csum),
            ..FileExtent::disk(ExtentKind::Regular, disk_bytenr, bs, 0, bs)
        }
    }

    /// An inline extent.
    pub fn inline(data: &[u8]) -> FileExtent {
        FileExtent {
            kind: ExtentKind::Inline,
            disk_bytenr: 0,
            disk_len: 0,
            offset: 0,
            num_bytes: data.len() as u64,
            inline: data.to_vec(),
            csum: None,
        }
    }

    /// The device address of the first file byte.
    pub fn addr(&self) -> u64 {
        self.disk_bytenr + self.offset
    }

    /// The item bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self.kind {
            ExtentKind::Inline => {
                w.u8(0).bytes(&self.inline);
            }
            k => {
                let tag = match (k, self.csum) {
                    (ExtentKind::Regular, None) => 1,
                    (ExtentKind::Regular, Some(_)) => 3,
                    _ => 2,
                };
                w.u8(tag)
                    .u64(self.disk_bytenr)
                    .u64(self.disk_len)
                    .u64(self.offset)
                    .u64(self.num_bytes);
                if let (ExtentKind::Regular, Some(c)) = (k, self.csum) {
                    w.u32(c);
                }
            }
        }
        w.0
    }

    /// Parses and validates item bytes.
    pub fn parse(data: &[u8]) -> Result<FileExtent, String> {
        let mut r = Reader::new(data, "file extent");
        let tag = r.u8()?;
        let kind = match tag {
            0 => {
                return Ok(FileExtent::inline(&data[1..]));
            }
            1 | 3 => ExtentKind::Regular,
            2 => ExtentKind::Prealloc,
            k => return Err(format!("file extent: unknown kind {k}")),
        };
        let mut e = FileExtent::disk(kind, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        if tag == 3 {
            e.csum = Some(r.u32()?);
            if e.offset != 0 || e.num_bytes != e.disk_len {
                return Err(format!(
                    "file extent with its checksum maps {} bytes at {} of a {}-byte extent \
                     (only whole one-block extents carry one)",
                    e.num_bytes, e.offset, e.disk_len
                ));
            }
        }
        r.finish()?;
        let end = e.offset.checked_add(e.num_bytes);
        if e.num_bytes == 0 || end.is_none_or(|x| x > e.disk_len) || e.disk_bytenr == 0 {
            return Err(format!(
                "file extent: {} bytes at {} of a {}-byte extent at {:#x}",
                e.num_bytes, e.offset, e.disk_len, e.disk_bytenr
            ));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_block_extent_carries_its_checksum_and_others_cannot() {
        let e = FileExtent::one_block(0x10_0000, 4096, 0xdead_beef);
        let bytes = e.encode();
        assert_eq!(bytes[0], 3);
        assert_eq!(FileExtent::parse(&bytes).unwrap(), e);
        let plain = FileExtent::disk(ExtentKind::Regular, 0x10_0000, 8192, 4096, 4096);
        assert_eq!(FileExtent::parse(&plain.encode()).unwrap(), plain);
        // A piece of an extent with a checksum is refused: only whole extents carry one.
        let cut = FileExtent {
            csum: Some(1),
            ..plain
        };
        assert!(FileExtent::parse(&cut.encode())
            .unwrap_err()
            .contains("whole one-block"));
        let mut short = bytes.clone();
        short.pop();
        assert!(FileExtent::parse(&short).is_err());
    }
}
