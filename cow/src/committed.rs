//! [`Committed`]: what a commit publishes, below the volume so that the B-tree's per-thread
//! caches can keep a copy of it.

use std::collections::BTreeMap;

use crate::format::{RootPtr, TreeId};

/// A committed state: the generation and where every tree's root is.
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    pub generation: u64,
    pub roots: BTreeMap<TreeId, RootPtr>,
    pub bytes_used: u64,
}
