//! `bypassfs stat`: a path's attributes.

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Context, Result};
use crate::cli::output::out;

/// `stat DEVICE PATH`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Absolute path inside the filesystem.
    #[arg(value_name = "PATH")]
    pub path: String,
}

pub fn run(a: &Args) -> Result<u8> {
    let (fs, _ctx) = a.device.mount(true)?;
    let st = fs.stat(&a.path).context(|| format!("stat {}", a.path))?;
    out!("  File: {}", a.path);
    out!(
        "  Size: {:<12} Type: {:?}{}",
        st.size,
        st.file_type,
        if st.nocow { " (NOCOW)" } else { "" }
    );
    out!(
        "Inode: {:<12} Links: {:<6} Blocks: {}{}",
        st.ino,
        st.nlink,
        st.blocks,
        if st.rdev != 0 {
            // The kernel's encoding: major in bits 8-19, minor in 0-7 and 20-31.
            let (major, minor) = (
                (st.rdev >> 8) & 0xfff,
                (st.rdev & 0xff) | ((st.rdev >> 12) & !0xff),
            );
            format!("  Device type: {major},{minor}")
        } else {
            String::new()
        }
    );
    out!(
        "Access: ({:04o}/{})  Uid: {}  Gid: {}",
        st.mode & 0o7777,
        mode_string(st.mode),
        st.uid,
        st.gid
    );
    out!("Access: {}", utc(st.atime_ns));
    out!("Modify: {}", utc(st.mtime_ns));
    out!("Change: {}", utc(st.ctime_ns));
    out!(" Birth: {}", utc(st.btime_ns));
    Ok(exit::OK)
}

/// `ls -l`'s mode column: `drwxr-xr-x`.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o100000 => '-',
        0o010000 => 'p',
        0o140000 => 's',
        0o020000 => 'c',
        0o060000 => 'b',
        _ => '?',
    };
    let mut s = String::from(kind);
    // The set-user-ID, set-group-ID and sticky bits take the execute slot of their class,
    // lower-case when execute is set too (as ls).
    for (shift, special, mark) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (mode & special != 0, bits & 1 != 0) {
            (true, true) => mark,
            (true, false) => mark.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A time in ns since the epoch as `YYYY-MM-DD HH:MM:SS.nnnnnnnnn UTC` (no time-zone
/// database: the CLI depends on no date crate for one column).
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:09} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_modes_format_like_coreutils() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(
            utc(1_700_000_000_123_456_789),
            "2023-11-14 22:13:20.123456789 UTC"
        );
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o042775), "drwxrwsr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o104644), "-rwSr--r--");
        assert_eq!(mode_string(0o010640), "prw-r-----");
        assert_eq!(mode_string(0o020666), "crw-rw-rw-");
        assert_eq!(mode_string(0o060660), "brw-rw----");
        assert_eq!(mode_string(0o140755), "srwxr-xr-x");
    }
}
