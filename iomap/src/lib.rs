//! The iomap layer of bypassfs: for a byte range a filesystem's `begin` returns a write map
//! and a source map, `end` commits or releases what `begin` reserved; on top of that loop sit a
//! user-space page cache and the buffered and direct I/O paths. It never depends on `cow`.
//!
//! Not built yet: this crate holds only its role until the iomap issue lands.
#![forbid(unsafe_code)]
