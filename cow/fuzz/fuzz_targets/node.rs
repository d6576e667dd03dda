//! Fuzzes node parsing: `cargo +nightly fuzz run node corpus/node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cow::fuzz::node(data));
