//! The trees `cow` itself maintains: the root tree (roots of all others), the extent tree
//! (reference counts and back-references) and the checksum tree. They live under
//! `transaction` because they are its bookkeeping: a transaction's commit updates them and
//! their updates go through the transaction, so neither stands without the other.

// On-disk integers are little-endian on every host: no host- or big-endian conversions.
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

pub(crate) mod csum;
pub(crate) mod extent;
pub(crate) mod root;
