//! Alignment to powers of two without division.
//!
//! Device sectors and filesystem blocks are powers of two (`Iomap::new` refuses anything
//! else), and a 64-bit division costs tens of cycles: a direct read checks and rounds about
//! ten offsets, which as divisions would cost more than the rest of its bookkeeping.

/// `x % align`, `align` a power of two.
pub(crate) fn rem(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x & (align - 1)
}

/// `x / align`, `align` a power of two.
pub(crate) fn div(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x >> align.trailing_zeros()
}

/// `x` rounded down to a multiple of `align`, a power of two.
pub(crate) fn down(x: u64, align: u64) -> u64 {
    x - rem(x, align)
}

/// `x` rounded up to a multiple of `align`, a power of two.
pub(crate) fn up(x: u64, align: u64) -> u64 {
    match rem(x, align) {
        0 => x,
        r => x + (align - r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_division() {
        for align in [1u64, 512, 4096, 1 << 16] {
            for x in [
                0u64,
                1,
                511,
                512,
                513,
                4095,
                4096,
                4097,
                1 << 40,
                (1 << 40) + 3,
            ] {
                assert_eq!(rem(x, align), x % align);
                assert_eq!(div(x, align), x / align);
                assert_eq!(down(x, align), x / align * align);
                assert_eq!(up(x, align), x.div_ceil(align) * align);
            }
        }
    }
}
