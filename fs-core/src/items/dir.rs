//! Directory entries (DIR_ITEM by name hash, DIR_INDEX by cookie) and INODE_REF (names of an
//! inode in one parent). Several names may share a DIR_ITEM (hash collision) or an INODE_REF
//! (hard links in one directory), so those items hold lists.

use super::codec::{Reader, Writer};
use super::file_type::FileType;
use super::NAME_MAX;

/// The key offset of a name's DIR_ITEM and XATTR_ITEM: crc32c of the name, as btrfs.
pub fn name_hash(name: &[u8]) -> u64 {
    u64::from(crc32c::crc32c(name))
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode the name points to.
    pub ino: u64,
    /// Its type.
    pub ftype: FileType,
    /// The name (1..=255 bytes, no `/` or NUL).
    pub name: Vec<u8>,
}

fn check_name(name: &[u8], what: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX || name.contains(&b'/') || name.contains(&0) {
        return Err(format!("{what}: bad name of {} bytes", name.len()));
    }
    Ok(())
}

impl DirEntry {
    fn write(&self, w: &mut Writer) {
        w.u64(self.ino)
            .u8(self.ftype.code())
            .u16(self.name.len() as u16)
            .bytes(&self.name);
    }

    fn read(r: &mut Reader<'_>) -> Result<DirEntry, String> {
        let ino = r.u64()?;
        let ftype = FileType::from_code(r.u8()?)?;
        let n = r.u16()? as usize;
        let name = r.bytes(n)?.to_vec();
        check_name(&name, "directory entry")?;
        Ok(DirEntry { ino, ftype, name })
    }

    /// DIR_INDEX item bytes (one entry).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.0
    }

    /// Parses DIR_INDEX item bytes.
    pub fn parse(data: &[u8]) -> Result<DirEntry, String> {
        let mut r = Reader::new(data, "dir index item");
        let e = DirEntry::read(&mut r)?;
        r.finish()?;
        Ok(e)
    }
}

/// A DIR_ITEM: the entries of one directory whose names share a hash (each with its cookie).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DirEntries(pub Vec<(DirEntry, u64)>);

impl DirEntries {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for (e, index) in &self.0 {
            w.u64(*index);
            e.write(&mut w);
        }
        w.0
    }

    pub fn parse(data: &[u8]) -> Result<DirEntries, String> {
        let mut r = Reader::new(data, "dir item");
        let mut v = Vec::new();
        while !r.is_empty() {
            let index = r.u64()?;
            v.push((DirEntry::read(&mut r)?, index));
        }
        if v.is_empty() {
            return Err("dir item: empty".into());
        }
        Ok(DirEntries(v))
    }
}

/// An INODE_REF: the names (with their cookies) of an inode in one parent directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InodeRefs(pub Vec<(u64, Vec<u8>)>);

impl InodeRefs {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for (index, name) in &self.0 {
            w.u64(*index).u16(name.len() as u16).bytes(name);
        }
        w.0
    }

    pub fn parse(data: &[u8]) -> Result<InodeRefs, String> {
        let mut r = Reader::new(data, "inode ref");
        let mut v = Vec::new();
        while !r.is_empty() {
            let index = r.u64()?;
            let n = r.u16()? as usize;
            let name = r.bytes(n)?.to_vec();
            check_name(&name, "inode ref")?;
            v.push((index, name));
        }
        if v.is_empty() {
            return Err("inode ref: empty".into());
        }
        Ok(InodeRefs(v))
    }
}
