//! XATTR_ITEM: the extended attributes of an inode whose names share a hash.

use super::codec::{Reader, Writer};

/// Attributes `(name, value)` of one XATTR_ITEM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Xattrs(pub Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for (n, v) in &self.0 {
            w.u16(n.len() as u16).u16(v.len() as u16).bytes(n).bytes(v);
        }
        w.0
    }

    pub fn parse(data: &[u8]) -> Result<Xattrs, String> {
        let mut r = Reader::new(data, "xattr item");
        let mut out = Vec::new();
        while !r.is_empty() {
            let n = r.u16()? as usize;
            let v = r.u16()? as usize;
            let name = r.bytes(n)?.to_vec();
            let value = r.bytes(v)?.to_vec();
            if name.is_empty() || name.len() > super::NAME_MAX {
                return Err(format!("xattr item: name of {} bytes", name.len()));
            }
            out.push((name, value));
        }
        if out.is_empty() {
            return Err("xattr item: empty".into());
        }
        Ok(Xattrs(out))
    }
}
