//! Range iteration in both directions.
//!
//! The iterator keeps the path from the root to the current leaf (shared `Arc`s of immutable
//! nodes), so stepping to the next leaf costs one node load, not a new descent.

use std::sync::Arc;

use bdev::IoQueue;

use super::{child_slot, NodeAddr, NodeSource};
use crate::error::Result;
use crate::format::{ItemData, Key, Node, TreeId};

/// Which way an [`Iter`] walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Backward,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Running,
    Done,
}

/// Items of a tree with keys in `lo..=hi`, in the chosen direction. Yields `(key, data)`
/// (small data copied, larger data shared with the node); an error ends the iteration.
pub struct Iter<'a> {
    src: &'a dyn NodeSource,
    io: &'a mut dyn IoQueue,
    tree: TreeId,
    lo: Key,
    hi: Key,
    dir: Direction,
    /// Nodes from the root down to the current leaf and the slot taken in each; or, when
    /// the walk started in a transaction's finger leaf, that leaf alone.
    path: Vec<(Arc<Node>, usize)>,
    /// For a walk that started in a finger leaf (`path` holds only the leaf): the finger's
    /// upper bound, where the walk continues past the leaf's last item.
    finger_hi: Option<Option<Key>>,
    state: State,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(
        src: &'a dyn NodeSource,
        io: &'a mut dyn IoQueue,
        tree: TreeId,
        lo: Key,
        hi: Key,
        dir: Direction,
    ) -> Iter<'a> {
        Iter {
            src,
            io,
            tree,
            lo,
            hi,
            dir,
            path: Vec::new(),
            finger_hi: None,
            state: if lo <= hi { State::Start } else { State::Done },
        }
    }

    /// Positions on the first item `>= key` (forward) or the last `<= key` (backward).
    /// Returns whether there is such an item.
    fn seek(&mut self, key: Key) -> Result<bool> {
        self.path.clear();
        self.finger_hi = None;
        if let Some((leaf, hi)) = self.src.finger_leaf(self.tree, key) {
            // The leaf holds `key`'s place and its first key is <= `key`, so a backward walk
            // always starts in it; a forward one does unless `key` is past its last item.
            let items = leaf.items();
            let slot = match self.dir {
                Direction::Forward => items.partition_point(|i| i.key < key),
                Direction::Backward => items.partition_point(|i| i.key <= key) - 1,
            };
            if slot < items.len() {
                self.path.push((leaf, slot));
                self.finger_hi = Some(hi);
                return Ok(true);
            }
        }
        self.seek_from_root(key)
    }

    /// [`Iter::seek`] by a descent from the root.
    fn seek_from_root(&mut self, key: Key) -> Result<bool> {
        let mut at = NodeAddr::root(self.src.root(self.tree)?);
        // The first key of the next subtree on the path: where the leaf's keys end.
        let mut hi: Option<Key> = None;
        loop {
            let node = self.src.load(self.io, self.tree, &at)?;
            if node.level == 0 {
                self.src.note_leaf(self.tree, &node, hi);
                let items = node.items();
                let len = items.len();
                return Ok(match self.dir {
                    Direction::Forward => {
                        let ge = items.partition_point(|i| i.key < key);
                        self.path.push((node, ge));
                        ge < len || self.next_leaf()?
                    }
                    Direction::Backward => {
                        let le_end = items.partition_point(|i| i.key <= key);
                        self.path.push((node, le_end.saturating_sub(1)));
                        le_end > 0 || self.prev_leaf()?
                    }
                });
            }
            let slot = child_slot(node.ptrs(), key);
            if let Some(next) = node.ptrs().get(slot + 1) {
                hi = Some(next.key);
            }
            at = NodeAddr::child(&node, slot);
            self.path.push((node, slot));
        }
    }

    /// Leaves a finger leaf (which has no path above it) by a descent: forward to the
    /// finger's upper bound, backward to the key just below the leaf's first key. `None`
    /// when the walk did not start in a finger leaf.
    fn leave_finger_leaf(&mut self) -> Option<Result<bool>> {
        let hi = self.finger_hi.take()?;
        let (leaf, _) = self.path.pop()?;
        let next = match self.dir {
            Direction::Forward => hi,
            Direction::Backward => leaf.first_key().and_then(Key::pred),
        };
        self.path.clear();
        Some(match next {
            Some(k) => self.seek_from_root(k),
            None => Ok(false),
        })
    }

    /// Moves to the first item of the next leaf.
    fn next_leaf(&mut self) -> Result<bool> {
        if let Some(r) = self.leave_finger_leaf() {
            return r;
        }
        self.path.pop();
        while let Some((node, slot)) = self.path.last_mut() {
            if *slot + 1 < node.ptrs().len() {
                *slot += 1;
                let at = NodeAddr::child(node, *slot);
                return self.descend_edge(at, true);
            }
            self.path.pop();
        }
        Ok(false)
    }

    /// Moves to the last item of the previous leaf.
    fn prev_leaf(&mut self) -> Result<bool> {
        if let Some(r) = self.leave_finger_leaf() {
            return r;
        }
        self.path.pop();
        while let Some((node, slot)) = self.path.last_mut() {
            if *slot > 0 {
                *slot -= 1;
                let at = NodeAddr::child(node, *slot);
                return self.descend_edge(at, false);
            }
            self.path.pop();
        }
        Ok(false)
    }

    fn descend_edge(&mut self, mut at: NodeAddr, leftmost: bool) -> Result<bool> {
        loop {
            let node = self.src.load(self.io, self.tree, &at)?;
            let n = node.nritems();
            let slot = if leftmost { 0 } else { n.saturating_sub(1) };
            if node.level == 0 {
                self.path.push((node, slot));
                return Ok(n > 0);
            }
            at = NodeAddr::child(&node, slot);
            self.path.push((node, slot));
        }
    }

    fn advance(&mut self) -> Result<bool> {
        let Some((leaf, slot)) = self.path.last_mut() else {
            return Ok(false);
        };
        match self.dir {
            Direction::Forward if *slot + 1 < leaf.nritems() => {
                *slot += 1;
                Ok(true)
            }
            Direction::Forward => self.next_leaf(),
            Direction::Backward if *slot > 0 => {
                *slot -= 1;
                Ok(true)
            }
            Direction::Backward => self.prev_leaf(),
        }
    }

    fn step(&mut self) -> Result<Option<(Key, ItemData)>> {
        let found = match self.state {
            State::Done => return Ok(None),
            State::Start => {
                self.state = State::Running;
                let start = match self.dir {
                    Direction::Forward => self.lo,
                    Direction::Backward => self.hi,
                };
                self.seek(start)?
            }
            State::Running => self.advance()?,
        };
        let item = found
            .then(|| self.path.last())
            .flatten()
            .map(|(leaf, slot)| &leaf.items()[*slot])
            .filter(|it| it.key >= self.lo && it.key <= self.hi);
        match item {
            Some(it) => Ok(Some((it.key, it.data.clone()))),
            None => {
                self.state = State::Done;
                Ok(None)
            }
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<(Key, ItemData)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(v) => v.map(Ok),
            Err(e) => {
                self.state = State::Done;
                self.path.clear();
                Some(Err(e))
            }
        }
    }
}
