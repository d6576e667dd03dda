//! A human-readable dump of a tree (for debugging, fsck and the CLI).

use std::fmt::Write;

use bdev::IoQueue;

use crate::btree::{NodeAddr, NodeSource};
use crate::error::Result;
use crate::format::{kind, DataBackref, ExtentItem, Item, MetadataItem, RootItem, TreeId};
use crate::volume::ReadTxn;

fn describe(item: &Item) -> String {
    let d = &item.data;
    let parsed = match item.key.kind {
        kind::ROOT_ITEM => RootItem::parse(d).map(|r| format!("{:?}", r.0)),
        kind::METADATA_ITEM => MetadataItem::parse(d).map(|m| format!("{m:?}")),
        kind::EXTENT_ITEM => ExtentItem::parse(d).map(|e| format!("{e:?}")),
        kind::EXTENT_DATA_REF => DataBackref::parse(d).map(|(b, c)| format!("{b:?} count {c}")),
        kind::EXTENT_CSUM => Ok(format!("{} checksums", d.len() / 4)),
        _ => Ok(format!(
            "{} bytes {:02x?}{}",
            d.len(),
            &d[..d.len().min(16)],
            if d.len() > 16 { "…" } else { "" }
        )),
    };
    parsed.unwrap_or_else(|e| format!("UNPARSABLE: {e}"))
}

impl ReadTxn<'_> {
    /// Writes every node of `tree`, depth first, with its header and decoded items.
    pub fn dump_tree(&self, io: &mut dyn IoQueue, tree: TreeId, out: &mut dyn Write) -> Result<()> {
        let _ = writeln!(out, "tree {tree} generation {}", self.generation());
        let mut stack = vec![NodeAddr::root(self.root(tree)?)];
        while let Some(at) = stack.pop() {
            let node = self.load(io, tree, &at)?;
            let indent = "  ".repeat(usize::from(4u8.saturating_sub(node.level.min(4))));
            let _ = writeln!(
                out,
                "{indent}{} {:#x} level {} generation {} items {}",
                node.what(),
                node.bytenr,
                node.level,
                node.generation,
                node.nritems()
            );
            for (i, it) in node.items().iter().enumerate() {
                let _ = writeln!(out, "{indent}  [{i}] {} {}", it.key, describe(it));
            }
            for (i, p) in node.ptrs().iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{indent}  [{i}] {} -> {:#x} generation {}",
                    p.key, p.bytenr, p.generation
                );
            }
            stack.extend(
                (0..node.ptrs().len())
                    .rev()
                    .map(|i| NodeAddr::child(&node, i)),
            );
        }
        Ok(())
    }
}
