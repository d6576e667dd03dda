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
                w.u8(if k == ExtentKind::Regular { 1 } else { 2 })
                    .u64(self.disk_bytenr)
                    .u64(self.disk_len)
                    .u64(self.offset)
                    .u64(self.num_bytes);
            }
        }
        w.0
    }

    /// Parses and validates item bytes.
    pub fn parse(data: &[u8]) -> Result<FileExtent, String> {
        let mut r = Reader::new(data, "file extent");
        let kind = match r.u8()? {
            0 => {
                return Ok(FileExtent::inline(&data[1..]));
            }
            1 => ExtentKind::Regular,
            2 => ExtentKind::Prealloc,
            k => return Err(format!("file extent: unknown kind {k}")),
        };
        let e = FileExtent::disk(kind, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
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
