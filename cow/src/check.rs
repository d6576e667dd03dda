//! A consistency check of a committed state (the core of fsck): every reachable node is read
//! and validated, and the extent tree's metadata items match the reachable nodes exactly.

use std::collections::BTreeMap;

use bdev::IoQueue;

use crate::btree::{NodeAddr, NodeSource};
use crate::error::{Error, Result};
use crate::format::{kind, Key, MetadataItem, TreeId};
use crate::volume::ReadTxn;

/// How often (in nodes) [`ReadTxn::nodes_with_progress`] reports progress.
const PROGRESS_NODES: usize = 256;

/// A node found by [`ReadTxn::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The tree it belongs to.
    pub tree: TreeId,
    /// Its address.
    pub bytenr: u64,
    /// Its level (0: leaf).
    pub level: u8,
    /// Items (leaf) or pointers (internal node).
    pub items: usize,
}

/// What [`ReadTxn::check`] found in a consistent volume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Trees walked.
    pub trees: usize,
    /// Nodes read and validated.
    pub nodes: usize,
    /// Leaf items seen.
    pub items: usize,
}

impl ReadTxn<'_> {
    /// Every node reachable in this snapshot, tree by tree, depth first (each read and
    /// validated on the way).
    pub fn nodes(&self, io: &mut dyn IoQueue) -> Result<Vec<NodeInfo>> {
        self.nodes_with_progress(io, &mut |_| {})
    }

    /// [`ReadTxn::nodes`], calling `progress` with the number of nodes read so far every
    /// 256 nodes (and once at the end).
    pub fn nodes_with_progress(
        &self,
        io: &mut dyn IoQueue,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<NodeInfo>> {
        let mut out = Vec::new();
        for tree in self.trees() {
            let mut stack = vec![NodeAddr::root(self.root(tree)?)];
            while let Some(at) = stack.pop() {
                let node = self.load(io, tree, &at)?;
                out.push(NodeInfo {
                    tree,
                    bytenr: at.bytenr,
                    level: at.level,
                    items: node.nritems(),
                });
                if out.len() % PROGRESS_NODES == 0 {
                    progress(out.len());
                }
                stack.extend(
                    (0..node.ptrs().len())
                        .rev()
                        .map(|i| NodeAddr::child(&node, i)),
                );
            }
        }
        progress(out.len());
        Ok(out)
    }

    /// Reads every node of every tree (validating each) and checks that the extent tree
    /// records exactly the reachable nodes, each at its level and owned by its tree.
    pub fn check(&self, io: &mut dyn IoQueue) -> Result<CheckReport> {
        self.check_with_progress(io, &mut |_| {})
    }

    /// [`ReadTxn::check`], calling `progress` with the number of nodes read so far while
    /// the trees are walked (see [`ReadTxn::nodes_with_progress`]).
    pub fn check_with_progress(
        &self,
        io: &mut dyn IoQueue,
        progress: &mut dyn FnMut(usize),
    ) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut reachable: BTreeMap<u64, (u8, TreeId)> = BTreeMap::new();
        report.trees = self.trees().len();
        for n in self.nodes_with_progress(io, progress)? {
            report.nodes += 1;
            if n.level == 0 {
                report.items += n.items;
            }
            if reachable.insert(n.bytenr, (n.level, n.tree)).is_some() {
                return Err(Error::Corrupt(format!(
                    "node {:#x} is reachable twice (second time from tree {})",
                    n.bytenr, n.tree
                )));
            }
        }
        let lo = Key::new(0, 0, 0);
        for item in self.iter(io, TreeId::EXTENT, lo, Key::MAX, crate::Direction::Forward) {
            let (k, data) = item?;
            if k.kind != kind::METADATA_ITEM {
                continue;
            }
            let m = MetadataItem::parse(&data)
                .map_err(|e| Error::Corrupt(format!("extent tree item {k}: {e}")))?;
            match reachable.remove(&k.objectid) {
                Some((level, tree)) if u64::from(level) == k.offset && m.roots == [tree] => {}
                Some((level, tree)) => {
                    return Err(Error::Corrupt(format!(
                    "extent item {k} says {:?}, but the node is at level {level} of tree {tree}",
                    m.roots
                )))
                }
                None => {
                    return Err(Error::Corrupt(format!(
                        "extent item {k} records a node no tree reaches (leaked)"
                    )))
                }
            }
        }
        if let Some((b, (_, tree))) = reachable.into_iter().next() {
            return Err(Error::Corrupt(format!(
                "node {b:#x} of tree {tree} has no extent item"
            )));
        }
        Ok(report)
    }
}
