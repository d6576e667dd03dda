//! The FFI edge: panics stop here, errors become negative errno values, C strings become
//! `&str`.

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use fs_core::Error;

/// An errno value (positive) or a filesystem error.
pub(crate) type CResult<T> = Result<T, i32>;

pub(crate) fn err(e: &Error) -> c_int {
    e.errno()
}

/// Runs `f`, mapping `Err(errno)` to `-errno` and a panic to `-EIO`.
pub(crate) fn guard(f: impl FnOnce() -> CResult<i64>) -> i64 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => -i64::from(e.abs()),
        Err(_) => {
            log::error!("bypassfs C API: a panic was caught at the FFI boundary");
            -i64::from(libc::EIO)
        }
    }
}

/// [`guard`] for functions returning `int`.
pub(crate) fn guard_int(f: impl FnOnce() -> CResult<()>) -> c_int {
    guard(|| f().map(|()| 0)) as i32
}

/// The UTF-8 string at `p`.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn c_str<'a>(p: *const c_char) -> CResult<&'a str> {
    if p.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string valid for the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| libc::EINVAL)
}
