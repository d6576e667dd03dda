//! One writer per image file or block device, whatever program opens it.
//!
//! Decision (issue 20, "two writers on one device"): every [`UringDevice`](super::UringDevice)
//! takes a BSD `flock` on what it opens, for as long as the device (or any of its queues)
//! lives: an exclusive lock for a read-write open, a shared one for a read-only open. So
//! two read-write openers, or a reader and a writer, never run together; readers share.
//! A conflict is refused at once (never waited for), naming the holder from `/proc/locks`
//! and its command line from `/proc/PID/cmdline`.
//!
//! A read-write open of a block device also passes `O_EXCL`, which the kernel refuses
//! while the device is mounted or claimed by another exclusive opener (it does not see
//! our shared locks, so read-only opens do not use it).
//!
//! What these locks cannot see: other hosts sharing the device (NVMe-oF, iSCSI), another
//! device node or loop device over the same storage, and a filesystem whose `flock` is not
//! enforced between clients (some network filesystems). A filesystem that refuses `flock`
//! altogether (`ENOLCK`, `EOPNOTSUPP`) is opened with a warning rather than refused.
//!
//! What no local lock sees, a read-write mount's claim on the device itself covers
//! (`cow::claim`: host, boot and process, refused while live, taken over once gone).
//!
//! Not done yet: SPDK bdevs are not locked (`SpdkDevice::open` should take a write claim,
//! `spdk_bdev_module_claim_bdev`, so a second opener in the same SPDK application is
//! refused; SPDK is not installed where this was written).

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sys::{self, Flock};
use crate::error::BdevError;

/// How a device is opened: it decides the open mode and the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Read and write; exclusive: refused while anyone else has the device open.
    #[default]
    ReadWrite,
    /// Read only (the file is opened `O_RDONLY`); shared with other readers, refused while
    /// a writer has the device open.
    ReadOnly,
}

/// An open device file and its lock, which is released when the last holder (the device
/// and its queues, each with an `Arc` of it, after their requests ended) drops it: at
/// once, even while a forked child still shares the descriptor until it execs, so the
/// device can be opened again right after it was closed.
pub(super) struct LockedFile(File);

impl Deref for LockedFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        // Closing releases the lock anyway once no descriptor shares the file; a failure
        // here only means that, so it is not worth more than a debug line.
        if let Err(e) = sys::unlock(&self.0) {
            log::debug!("bdev uring: unlocking the device file: {e}");
        }
    }
}

/// Locks `file` (opened from `path`) for `access`, or says who holds it.
pub(super) fn lock(file: File, path: &Path, access: Access) -> Result<LockedFile, BdevError> {
    match sys::try_flock(&file, access == Access::ReadWrite) {
        Ok(Flock::Taken) => Ok(LockedFile(file)),
        Ok(Flock::Held) => Err(BdevError::InUse(in_use_message(&file, path, access))),
        Err(e) if lock_unsupported(&e) => {
            log::warn!(
                "{}: the filesystem does not support flock ({e}); nothing keeps a second \
                 writer out",
                path.display()
            );
            Ok(LockedFile(file))
        }
        Err(e) => Err(BdevError::os(format!("{}: flock", path.display()), e)),
    }
}

fn lock_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::EINVAL)
    )
}

/// "two.img is in use: opened read-write by pid 1234 (bypassfs mount two.img m1); ..."
fn in_use_message(file: &File, path: &Path, access: Access) -> String {
    let shown = path.display();
    let holders = file
        .metadata()
        .ok()
        .map(|m| holders(m.dev(), m.ino()))
        .unwrap_or_default();
    let remedy = match access {
        Access::ReadWrite => "unmount it (or let that program end) first",
        Access::ReadOnly => {
            "a reader could see it change under it; unmount it first, or read it through \
             the mount"
        }
    };
    if holders.is_empty() {
        return format!(
            "{shown} is in use by another program (which released it just now, or is not \
             visible in /proc/locks); {remedy}"
        );
    }
    let list = holders
        .iter()
        .map(Holder::describe)
        .collect::<Vec<_>>()
        .join(", ");
    format!("{shown} is in use: {list}; {remedy}")
}

/// A process holding a `flock` on the device, as `/proc/locks` shows it.
#[derive(Debug, PartialEq, Eq)]
struct Holder {
    pid: u32,
    write: bool,
}

impl Holder {
    fn describe(&self) -> String {
        let mode = if self.write {
            "opened read-write"
        } else {
            "opened read-only"
        };
        let who = if self.pid == std::process::id() {
            "this process".to_string()
        } else {
            match command_line(self.pid) {
                Some(cmd) => format!("pid {} ({cmd})", self.pid),
                None => format!("pid {}", self.pid),
            }
        };
        format!("{mode} by {who}")
    }
}

/// The `flock` holders of the inode `(dev, ino)`.
fn holders(dev: u64, ino: u64) -> Vec<Holder> {
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    parse_locks(&text, dev, ino)
}

/// Parses `/proc/locks` lines such as `1: FLOCK  ADVISORY  WRITE 1234 fe:00:10018869 0 EOF`
/// (the device as hex major:minor, the inode in decimal); blocked waiters (`1: -> FLOCK …`)
/// hold nothing and are skipped.
fn parse_locks(text: &str, dev: u64, ino: u64) -> Vec<Holder> {
    let want = format!("{:02x}:{:02x}:{ino}", major(dev), minor(dev));
    let mut out: Vec<Holder> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&"FLOCK") || f.get(5) != Some(&want.as_str()) {
            continue;
        }
        let Some(pid) = f.get(4).and_then(|p| p.parse().ok()) else {
            continue;
        };
        let h = Holder {
            pid,
            write: f.get(3) == Some(&"WRITE"),
        };
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// glibc's `gnu_dev_major`.
fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000)
}

/// glibc's `gnu_dev_minor`.
fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
}

/// The command line of `pid`, its arguments joined by spaces.
fn command_line(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_locked_file_releases_the_lock_a_shared_descriptor_still_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.img");
        let open = || {
            File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let locked = lock(open(), &path, Access::ReadWrite).unwrap();
        // What a child forked by another thread holds until it execs: the same open file
        // description, so the same lock.
        let shared = locked.try_clone().unwrap();
        assert!(matches!(
            lock(open(), &path, Access::ReadOnly),
            Err(BdevError::InUse(_))
        ));
        drop(locked);
        let again = lock(open(), &path, Access::ReadWrite);
        assert!(
            again.is_ok(),
            "still locked after the device dropped its file"
        );
        drop(shared);
    }

    #[test]
    fn proc_locks_lines_name_the_holders_of_one_inode() {
        let text = "\
1: FLOCK  ADVISORY  WRITE 1234 fe:00:10018869 0 EOF
1: -> FLOCK  ADVISORY  WRITE 999 fe:00:10018869 0 EOF
2: FLOCK  ADVISORY  READ 77 fe:00:10018869 0 EOF
3: POSIX  ADVISORY  WRITE 55 fe:00:10018869 0 EOF
4: FLOCK  ADVISORY  WRITE 66 fe:01:10018869 0 EOF
5: FLOCK  ADVISORY  WRITE 88 fe:00:1001886 0 EOF
";
        let dev = 0xfe << 8; // fe:00
        let got = parse_locks(text, dev, 10018869);
        assert_eq!(
            got,
            vec![
                Holder {
                    pid: 1234,
                    write: true
                },
                Holder {
                    pid: 77,
                    write: false
                }
            ]
        );
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(259, 300): the minor's high bits go to bits 20..
        let dev: u64 = (259 << 8) | (300 & 0xff) | ((300 & !0xff) << 12);
        assert_eq!((major(dev), minor(dev)), (259, 300));
        let big: u64 = (0x1234_u64 & !0xfff) << 32 | (0x1234 & 0xfff) << 8 | 0x56;
        assert_eq!(major(big), 0x1234);
        assert_eq!(minor(big), 0x56);
    }
}
