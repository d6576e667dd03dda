//! bfsperf (bring-up)
#![forbid(unsafe_code)]
fn main() {}
