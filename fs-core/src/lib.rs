//! The filesystem core of bypassfs: inodes, directories, files, fsync and mount. It
//! implements `iomap`'s operations on top of `cow` and is the only crate that joins the two.
//!
//! Not built yet: this crate holds only its role until the fs-core issue lands.
#![forbid(unsafe_code)]
