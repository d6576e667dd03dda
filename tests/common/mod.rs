//! What the FUSE-level tests that run the real `bypassfs mount` binary share: skipping
//! without root or /dev/fuse, formatting an image, a mount in a child process that a test
//! can end cleanly or with SIGKILL, and shell commands with their output.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bypassfs");

/// Whether FUSE tests can run here; prints why not (SKIPPED) when they cannot.
pub fn fuse_usable(test: &str) -> bool {
    if !Path::new("/dev/fuse").exists() {
        println!("{test} SKIPPED: no /dev/fuse on this machine");
        return false;
    }
    let uid = sh_out("id -u");
    if uid.trim() != "0" {
        println!("{test} SKIPPED: needs root (mounts with allow_other and chowns files)");
        return false;
    }
    true
}

/// Runs `cmd` in `sh -c`; panics with its output when it fails.
pub fn sh_in(dir: &Path, cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh_out(cmd: &str) -> String {
    sh_in(Path::new("/"), cmd)
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn is_mounted(mnt: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mnt.to_str().unwrap();
    m.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// Formats a fresh image file of `size` (e.g. "256M") with the CLI.
pub fn mkfs(img: &Path, size: &str) {
    sh_out(&format!("{BIN} mkfs --size {size} {}", img.display()));
}

/// `bypassfs mount IMG MNT -o OPTS` running in a child process. Dropping it kills the
/// child and detaches the mount, so a failing test leaves no mount behind.
pub struct MountProc {
    child: Option<Child>,
    pub mnt: PathBuf,
}

impl MountProc {
    /// Starts the mount and waits until the kernel lists it.
    pub fn start(img: &Path, mnt: &Path, opts: &str) -> MountProc {
        Self::start_with(&[img.as_os_str()], mnt, opts)
    }

    /// [`MountProc::start`] with DEVICE and its flags (`--spdk`, `--bdev NAME` …) given as
    /// `device_args`.
    pub fn start_with(device_args: &[&std::ffi::OsStr], mnt: &Path, opts: &str) -> MountProc {
        let mut cmd = Command::new(BIN);
        cmd.arg("mount")
            .args(device_args)
            .arg(mnt)
            .stdin(Stdio::null());
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let child = cmd.spawn().unwrap();
        let mut m = MountProc {
            child: Some(child),
            mnt: mnt.to_path_buf(),
        };
        let start = Instant::now();
        while !is_mounted(mnt) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("`bypassfs mount` ended at once: {st}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "mount did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// Simulates `kill -9` of the mount: no final sync, no clean unmount. The dead
    /// connection's mountpoint is then detached as an administrator would (`umount -l`).
    pub fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        detach(&self.mnt);
    }

    /// Unmounts (`umount`) and waits for `bypassfs mount` to sync, unmount the filesystem
    /// and exit 0.
    pub fn unmount(mut self) {
        sh_out(&format!("umount {}", self.mnt.display()));
        let st = self.child.take().unwrap().wait().unwrap();
        assert!(st.success(), "`bypassfs mount` after umount: {st}");
        assert!(!is_mounted(&self.mnt));
    }
}

impl Drop for MountProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            detach(&self.mnt);
        }
    }
}

fn detach(mnt: &Path) {
    if is_mounted(mnt) {
        let _ = Command::new("umount").arg("-l").arg(mnt).status();
    }
    assert!(!is_mounted(mnt), "{} still mounted", mnt.display());
}

/// Reads a file out of an unmounted image with `bypassfs cat`.
pub fn cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(BIN)
        .arg("cat")
        .arg(img)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`bypassfs cat {path}`: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `bypassfs fsck IMG` exits 0.
pub fn fsck_clean(img: &Path) {
    let out = Command::new(BIN).arg("fsck").arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "`bypassfs fsck` ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic bytes (xorshift from `seed`).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
