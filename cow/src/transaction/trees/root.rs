//! The root tree: one ROOT_ITEM per tree other than itself.

use std::collections::BTreeMap;

use bdev::IoQueue;

use crate::btree::{Direction, Iter, NodeSource};
use crate::error::{Error, Result};
use crate::format::{kind, Key, RootItem, RootPtr, TreeId};

/// Every tree's root, read from the root tree (the root tree's own root included).
pub(crate) fn load_roots(
    src: &dyn NodeSource,
    io: &mut dyn IoQueue,
) -> Result<BTreeMap<TreeId, RootPtr>> {
    let mut roots = BTreeMap::from([(TreeId::ROOT, src.root(TreeId::ROOT)?)]);
    for item in Iter::new(
        src,
        io,
        TreeId::ROOT,
        Key::MIN,
        Key::MAX,
        Direction::Forward,
    ) {
        let (key, data) = item?;
        let bad = |what: String| Error::Corrupt(format!("root tree item {key}: {what}"));
        if key.kind != kind::ROOT_ITEM || key.offset != 0 || key.objectid == TreeId::ROOT.0 {
            return Err(bad("unexpected item".into()));
        }
        let r = RootItem::parse(&data).map_err(bad)?;
        roots.insert(TreeId(key.objectid), r.0);
    }
    for t in [TreeId::EXTENT, TreeId::CSUM] {
        if !roots.contains_key(&t) {
            return Err(Error::Corrupt(format!(
                "root tree has no root for tree {t}"
            )));
        }
    }
    Ok(roots)
}
