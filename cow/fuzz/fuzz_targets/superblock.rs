//! Fuzzes superblock parsing: `cargo +nightly fuzz run superblock corpus/superblock`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cow::fuzz::superblock(data));
