//! Entry points shared by the fuzz targets (`cow/fuzz/`) and the stable corpus test
//! (`tests/fuzz_corpus.rs`): parse untrusted bytes; whatever parses must re-encode to bytes
//! that parse to the same value. Neither may panic on any input.
//!
//! Input layout: one flag byte, then the structure's bytes. Flag bit 0 asks to recompute the
//! checksum first (so mutations reach the checks behind it); bits 1–2 pick the node size
//! (1, 2, 4 or 8 KiB; the bytes are cut or zero-padded to it).

use crate::format::{parse_node, parse_superblock, SUPERBLOCK_CHECKED};

const FSID: [u8; 16] = [0x42; 16];

/// Parses a node image; see the module docs for the input layout.
pub fn node(input: &[u8]) {
    let Some((&flag, rest)) = input.split_first() else {
        return;
    };
    let size = 1024usize << ((flag >> 1) & 3);
    let mut bytes = rest[..rest.len().min(size)].to_vec();
    bytes.resize(size, 0);
    if flag & 1 == 1 {
        let csum = crc32c::crc32c(&bytes[4..]);
        bytes[..4].copy_from_slice(&csum.to_le_bytes());
    }
    let bytenr = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
    if let Ok(n) = parse_node(&bytes, &FSID, bytenr) {
        let mut again = vec![0u8; size];
        n.encode(&FSID, &mut again).expect("a parsed node encodes");
        assert_eq!(
            parse_node(&again, &FSID, bytenr).as_ref(),
            Ok(&n),
            "round trip"
        );
    }
}

/// Parses a superblock copy; see the module docs for the input layout.
pub fn superblock(input: &[u8]) {
    let Some((&flag, rest)) = input.split_first() else {
        return;
    };
    let mut bytes = rest[..rest.len().min(SUPERBLOCK_CHECKED)].to_vec();
    bytes.resize(SUPERBLOCK_CHECKED, 0);
    if flag & 1 == 1 {
        let csum = crc32c::crc32c(&bytes[4..]);
        bytes[..4].copy_from_slice(&csum.to_le_bytes());
    }
    let bytenr = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
    if let Ok(sb) = parse_superblock(&bytes, bytenr) {
        let again = sb.encode(bytenr).expect("a parsed superblock encodes");
        assert_eq!(
            parse_superblock(&again, bytenr).as_ref(),
            Ok(&sb),
            "round trip"
        );
    }
}
