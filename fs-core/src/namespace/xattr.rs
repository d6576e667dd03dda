//! Extended attributes, in XATTR_ITEMs keyed by name hash.

use cow::{Direction, Key};

use crate::error::{Error, Result};
use crate::items::{kind, name_hash, Xattrs, NAME_MAX};
use crate::namespace::{load_inode, save_inode};
use crate::state::{now_ns, Items, ItemsMut};

/// Largest value, so an item always fits a 16 KiB leaf with room to spare.
pub const XATTR_VALUE_MAX: usize = 2048;

/// `setxattr` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XattrFlags {
    /// Fail with `EEXIST` if it exists (`XATTR_CREATE`).
    pub create: bool,
    /// Fail with `ENODATA` if it does not exist (`XATTR_REPLACE`).
    pub replace: bool,
}

fn key(ino: u64, name: &[u8]) -> Key {
    Key::new(ino, kind::XATTR_ITEM, name_hash(name))
}

fn load(it: &mut impl Items, ino: u64, name: &[u8]) -> Result<Xattrs> {
    match it.get(key(ino, name))? {
        Some(d) => Xattrs::parse(&d).map_err(|e| Error::Corrupt(format!("inode {ino}: {e}"))),
        None => Ok(Xattrs::default()),
    }
}

fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

pub(crate) fn xattr_set(
    tx: &mut impl ItemsMut,
    ino: u64,
    name: &[u8],
    value: &[u8],
    flags: XattrFlags,
) -> Result<()> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Error::NameTooLong(format!(
            "xattr name of {} bytes",
            name.len()
        )));
    }
    if value.len() > XATTR_VALUE_MAX {
        return Err(Error::NoSpace(format!(
            "xattr value of {} bytes (at most {XATTR_VALUE_MAX})",
            value.len()
        )));
    }
    let mut inode = load_inode(tx, ino)?;
    let mut x = load(tx, ino, name)?;
    let at = x.0.iter().position(|(n, _)| n == name);
    match (at, flags.create, flags.replace) {
        (Some(_), true, _) => return Err(Error::Exists(shown(name))),
        (None, _, true) => return Err(Error::NoAttr(shown(name))),
        (Some(i), _, _) => x.0[i].1 = value.to_vec(),
        (None, _, _) => x.0.push((name.to_vec(), value.to_vec())),
    }
    tx.put(key(ino, name), &x.encode())?;
    inode.ctime_ns = now_ns();
    save_inode(tx, ino, &inode)
}

pub(crate) fn xattr_get(it: &mut impl Items, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
    load_inode(it, ino)?;
    let x = load(it, ino, name)?;
    x.0.into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| Error::NoAttr(shown(name)))
}

pub(crate) fn xattr_list(it: &mut impl Items, ino: u64) -> Result<Vec<Vec<u8>>> {
    load_inode(it, ino)?;
    let items = it.range(
        Key::new(ino, kind::XATTR_ITEM, 0),
        Key::new(ino, kind::XATTR_ITEM, u64::MAX),
        Direction::Forward,
        usize::MAX,
    )?;
    let mut out = Vec::new();
    for (_, d) in items {
        let x = Xattrs::parse(&d).map_err(|e| Error::Corrupt(format!("inode {ino}: {e}")))?;
        out.extend(x.0.into_iter().map(|(n, _)| n));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn xattr_remove(tx: &mut impl ItemsMut, ino: u64, name: &[u8]) -> Result<()> {
    let mut inode = load_inode(tx, ino)?;
    let mut x = load(tx, ino, name)?;
    let before = x.0.len();
    x.0.retain(|(n, _)| n != name);
    if x.0.len() == before {
        return Err(Error::NoAttr(shown(name)));
    }
    if x.0.is_empty() {
        tx.del(key(ino, name))?;
    } else {
        tx.put(key(ino, name), &x.encode())?;
    }
    inode.ctime_ns = now_ns();
    save_inode(tx, ino, &inode)
}
