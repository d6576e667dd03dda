//! The trees `cow` itself maintains: the root tree (roots of all others), the extent tree
//! (reference counts and back-references) and the checksum tree.

pub(crate) mod csum;
pub(crate) mod extent;
pub(crate) mod root;
