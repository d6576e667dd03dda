//! Directory entries: DIR_ITEM (by name hash, for lookup), DIR_INDEX (by a per-directory
//! sequence number, for readdir) and the child's INODE_REF (its names, for `..`, fsck and
//! link counting). The sequence number is the readdir cookie: it is never reused, so a
//! readdir resumed from a cookie sees every entry that existed throughout, exactly once,
//! whatever was added or removed meanwhile.

use cow::{Direction, Key};

use crate::error::{Error, Result};
use crate::items::{kind, name_hash, DirEntries, DirEntry, FileType, InodeItem, InodeRefs};
use crate::state::{now_ns, Items, ItemsMut};

fn corrupt(what: &str, dir: u64, e: String) -> Error {
    Error::Corrupt(format!("{what} of directory {dir}: {e}"))
}

/// The entry `name` of `dir` and its cookie.
pub(crate) fn dir_lookup(
    it: &mut impl Items,
    dir: u64,
    name: &[u8],
) -> Result<Option<(DirEntry, u64)>> {
    let Some(list) = dir_names(it, dir, name_hash(name))? else {
        return Ok(None);
    };
    Ok(list.0.into_iter().find(|(e, _)| e.name == name))
}

/// Every entry of `dir` whose name hashes to `hash` (its DIR_ITEM), if any.
pub(crate) fn dir_names(it: &mut impl Items, dir: u64, hash: u64) -> Result<Option<DirEntries>> {
    let Some(d) = it.get(Key::new(dir, kind::DIR_ITEM, hash))? else {
        return Ok(None);
    };
    let list = DirEntries::parse(&d).map_err(|e| corrupt("dir item", dir, e))?;
    Ok(Some(list))
}

/// Adds `name → child` to `dir` (whose item the caller saves); returns its cookie.
pub(crate) fn dir_add(
    tx: &mut impl ItemsMut,
    dir: u64,
    dir_item: &mut InodeItem,
    name: &[u8],
    child: u64,
    ftype: FileType,
) -> Result<u64> {
    let index = dir_item.next_index;
    dir_item.next_index += 1;
    dir_item.size += 2 * name.len() as u64;
    let now = now_ns();
    dir_item.mtime_ns = now;
    dir_item.ctime_ns = now;
    let entry = DirEntry {
        ino: child,
        ftype,
        name: name.to_vec(),
    };
    let hkey = Key::new(dir, kind::DIR_ITEM, name_hash(name));
    let mut list = match tx.get(hkey)? {
        Some(d) => DirEntries::parse(&d).map_err(|e| corrupt("dir item", dir, e))?,
        None => DirEntries::default(),
    };
    list.0.push((entry.clone(), index));
    tx.put(hkey, &list.encode())?;
    tx.put(Key::new(dir, kind::DIR_INDEX, index), &entry.encode())?;
    let rkey = Key::new(child, kind::INODE_REF, dir);
    let mut refs = match tx.get(rkey)? {
        Some(d) => InodeRefs::parse(&d).map_err(|e| corrupt("inode ref", dir, e))?,
        None => InodeRefs::default(),
    };
    refs.0.push((index, name.to_vec()));
    let encoded = refs.encode();
    if encoded.len() > tx.max_item_size() {
        // All names of one inode in one directory share its INODE_REF item.
        return Err(Error::TooManyLinks(format!(
            "inode {child} has {} names in directory {dir}, as many as its name list \
             item holds ({} bytes)",
            refs.0.len() - 1,
            tx.max_item_size()
        )));
    }
    tx.put(rkey, &encoded)?;
    Ok(index)
}

/// Removes `name` from `dir` (whose item the caller saves); returns the entry.
pub(crate) fn dir_remove(
    tx: &mut impl ItemsMut,
    dir: u64,
    dir_item: &mut InodeItem,
    name: &[u8],
) -> Result<DirEntry> {
    let hkey = Key::new(dir, kind::DIR_ITEM, name_hash(name));
    let not_found = || Error::NotFound(String::from_utf8_lossy(name).into_owned());
    let d = tx.get(hkey)?.ok_or_else(not_found)?;
    let mut list = DirEntries::parse(&d).map_err(|e| corrupt("dir item", dir, e))?;
    let i = list
        .0
        .iter()
        .position(|(e, _)| e.name == name)
        .ok_or_else(not_found)?;
    let (entry, index) = list.0.remove(i);
    if list.0.is_empty() {
        tx.del(hkey)?;
    } else {
        tx.put(hkey, &list.encode())?;
    }
    tx.del(Key::new(dir, kind::DIR_INDEX, index))?;
    let rkey = Key::new(entry.ino, kind::INODE_REF, dir);
    if let Some(d) = tx.get(rkey)? {
        let mut refs = InodeRefs::parse(&d).map_err(|e| corrupt("inode ref", dir, e))?;
        refs.0.retain(|(ix, _)| *ix != index);
        if refs.0.is_empty() {
            tx.del(rkey)?;
        } else {
            tx.put(rkey, &refs.encode())?;
        }
    }
    dir_item.size = dir_item.size.saturating_sub(2 * name.len() as u64);
    let now = now_ns();
    dir_item.mtime_ns = now;
    dir_item.ctime_ns = now;
    Ok(entry)
}

/// Up to `max` entries of `dir` with cookies from `from` on.
pub(crate) fn readdir_items(
    it: &mut impl Items,
    dir: u64,
    from: u64,
    max: usize,
) -> Result<Vec<(u64, DirEntry)>> {
    let items = it.range(
        Key::new(dir, kind::DIR_INDEX, from),
        Key::new(dir, kind::DIR_INDEX, u64::MAX),
        Direction::Forward,
        max,
    )?;
    items
        .into_iter()
        .map(|(k, d)| {
            let e = DirEntry::parse(&d).map_err(|e| corrupt("dir index", dir, e))?;
            Ok((k.offset, e))
        })
        .collect()
}
