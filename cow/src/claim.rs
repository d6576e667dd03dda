//! The mount claim: who has a volume mounted read-write, written on the device itself, for
//! the openers a lock on this host cannot see (another host on the same NVMe-oF namespace,
//! a bdev of another program over the same file).
//!
//! One 4 KiB block at [`CLAIM_OFFSET`] (in the reserved area after the primary superblock):
//! a read-write mount writes "mounted by host H (boot B), process P (started S), nonce N,
//! since T" and flushes before it changes anything; a clean unmount writes "clean". A
//! mount that finds the block mounted:
//! - by this process, under a claim still held on the same device (the same object, or
//!   one driving the same storage: an SPDK bdev of the same name): refused;
//! - by a live process of this boot (its start time matches): refused, naming it;
//! - by a process of this boot that is gone, a claim of this process no longer held (a
//!   dropped mount, a simulated crash), or an earlier boot of this host: stale, taken over
//!   with a warning (that mount crashed; replay recovers what it committed and logged);
//! - by another host: refused unless the caller takes it over ([`ClaimPolicy::TakeOver`]),
//!   like ZFS's `import -f`: only the user can know that the other host is down.
//!
//! A block that does not parse, or belongs to another volume (another `fsid`), is no claim.
//! Read-only mounts do not write it; they are refused only while a live process of this
//! boot holds it (what they would see is not a consistent state).

// On-disk integers are little-endian on every host: no host- or big-endian conversions.
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bdev::{wait, BlockDevice, IoQueue, Lba};

use crate::error::{Error, Result};

/// Where the claim block lives: right after the primary superblock copy's 4 KiB.
pub const CLAIM_OFFSET: u64 = 68 << 10;
const CLAIM_AREA: usize = 4096;
const CHECKED: usize = 512;
const MAGIC: &[u8; 8] = b"BFSCLAIM";
const HOST_LEN: usize = 64;

/// How a read-write mount treats a claim of another host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClaimPolicy {
    /// Refuse it (the default).
    #[default]
    Refuse,
    /// Take it over: the caller vouches that the other host no longer has the volume.
    TakeOver,
}

/// A read-write mount's claim on the device; release it at a clean unmount. Dropping it
/// without release leaves the block saying "mounted", as a crash does (taken over later).
#[derive(Debug)]
pub struct Claim {
    nonce: u64,
    fsid: [u8; 16],
}

/// Who a claim block names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    fsid: [u8; 16],
    mounted: bool,
    pid: u32,
    since_ns: i64,
    nonce: u64,
    proc_start: u64,
    boot_id: [u8; 36],
    host: String,
}

/// Which device a claim of this process is on: the object (its address), and the storage
/// it drives when another object could drive it too (`BlockDevice::storage_id`).
#[derive(Debug, PartialEq, Eq)]
struct DevKey {
    object: usize,
    storage: Option<String>,
}

impl DevKey {
    fn of(dev: &dyn BlockDevice) -> DevKey {
        DevKey {
            object: dev as *const dyn BlockDevice as *const () as usize,
            storage: dev.storage_id(),
        }
    }

    /// Both name the same storage: the same object, or the same shared storage.
    fn same(&self, other: &DevKey) -> bool {
        self.object == other.object || (self.storage.is_some() && self.storage == other.storage)
    }
}

/// Claims of this process still held: nonce → the device they are on.
static HELD: Mutex<Option<HashMap<u64, DevKey>>> = Mutex::new(None);

fn held() -> MutexGuard<'static, Option<HashMap<u64, DevKey>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

impl Holder {
    fn encode(&self) -> [u8; CHECKED] {
        let mut b = [0u8; CHECKED];
        b[4..12].copy_from_slice(MAGIC);
        b[12..28].copy_from_slice(&self.fsid);
        b[28..32].copy_from_slice(&u32::from(self.mounted).to_le_bytes());
        b[32..36].copy_from_slice(&self.pid.to_le_bytes());
        b[36..44].copy_from_slice(&self.since_ns.to_le_bytes());
        b[44..52].copy_from_slice(&self.nonce.to_le_bytes());
        b[52..60].copy_from_slice(&self.proc_start.to_le_bytes());
        b[60..96].copy_from_slice(&self.boot_id);
        let host = self.host.as_bytes();
        let n = host.len().min(HOST_LEN);
        b[96..96 + n].copy_from_slice(&host[..n]);
        let csum = crc32c::crc32c(&b[4..]);
        b[0..4].copy_from_slice(&csum.to_le_bytes());
        b
    }

    fn parse(b: &[u8]) -> Option<Holder> {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        if b.len() < CHECKED || &b[4..12] != MAGIC || u32_at(0) != crc32c::crc32c(&b[4..CHECKED]) {
            return None;
        }
        let host = &b[96..96 + HOST_LEN];
        let host_len = host.iter().position(|&c| c == 0).unwrap_or(HOST_LEN);
        Some(Holder {
            fsid: b[12..28].try_into().ok()?,
            mounted: u32_at(28) == 1,
            pid: u32_at(32),
            since_ns: u64_at(36) as i64,
            nonce: u64_at(44),
            proc_start: u64_at(52),
            boot_id: b[60..96].try_into().ok()?,
            host: String::from_utf8_lossy(&host[..host_len]).into_owned(),
        })
    }

    /// This process, now.
    fn me(fsid: [u8; 16], nonce: u64) -> Holder {
        let since_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let pid = std::process::id();
        Holder {
            fsid,
            mounted: true,
            pid,
            since_ns,
            nonce,
            proc_start: proc_start(pid).unwrap_or(0),
            boot_id: boot_id(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        }
    }

    fn who(&self) -> String {
        let cmd = std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .ok()
            .filter(|_| self.same_boot())
            .map(|c| {
                let s: Vec<String> = c
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                format!(" ({})", s.join(" "))
            })
            .unwrap_or_default();
        format!(
            "host {} (boot {}), pid {}{cmd}, mounted at {} s since the epoch",
            self.host,
            String::from_utf8_lossy(&self.boot_id),
            self.pid,
            self.since_ns / 1_000_000_000
        )
    }

    fn same_boot(&self) -> bool {
        self.boot_id == boot_id()
    }

    /// A process of this boot with the holder's pid and start time runs.
    fn alive(&self) -> bool {
        self.same_boot() && proc_start(self.pid).is_some_and(|s| s == self.proc_start)
    }
}

fn boot_id() -> [u8; 36] {
    let mut out = [b'?'; 36];
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        let s = s.trim().as_bytes();
        let n = s.len().min(36);
        out[..n].copy_from_slice(&s[..n]);
    }
    out
}

/// The start time of process `pid` (clock ticks since boot, `/proc/PID/stat` field 22).
fn proc_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn read_block(dev: &dyn BlockDevice, io: &mut dyn IoQueue) -> Result<Option<Holder>> {
    let bs = u64::from(dev.geometry().block_size);
    let buf = dev.alloc_buf(CLAIM_AREA)?;
    let buf = wait::read(io, Lba(CLAIM_OFFSET / bs), buf).map_err(|(_, e)| Error::Io {
        context: format!("reading the mount claim at {CLAIM_OFFSET:#x}"),
        source: e,
    })?;
    Ok(Holder::parse(&buf))
}

fn write_block(dev: &dyn BlockDevice, io: &mut dyn IoQueue, h: &Holder) -> Result<()> {
    let bs = u64::from(dev.geometry().block_size);
    let mut buf = dev.alloc_buf(CLAIM_AREA)?;
    buf.fill(0);
    buf[..CHECKED].copy_from_slice(&h.encode());
    let context = || format!("writing the mount claim at {CLAIM_OFFSET:#x}");
    wait::write(io, Lba(CLAIM_OFFSET / bs), buf, false).map_err(|(_, e)| Error::Io {
        context: context(),
        source: e,
    })?;
    wait::flush(io).map_err(|e| Error::Io {
        context: context(),
        source: e,
    })
}

fn fresh_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// Why a mount of volume `fsid` on `dev` must not go on, if it must not (a live holder);
/// `Ok(Some(h))` names a stale or foreign claim the caller decides about.
fn check(dev: &dyn BlockDevice, io: &mut dyn IoQueue, fsid: [u8; 16]) -> Result<Option<Holder>> {
    let Some(h) = read_block(dev, io)? else {
        return Ok(None);
    };
    if h.fsid != fsid || !h.mounted {
        return Ok(None);
    }
    if h.pid == std::process::id() && h.same_boot() {
        let here = DevKey::of(dev);
        let live_here = held()
            .as_ref()
            .and_then(|m| m.get(&h.nonce))
            .is_some_and(|d| d.same(&here));
        if live_here {
            return Err(Error::InUse(format!(
                "{} is already mounted read-write by this process",
                dev.name()
            )));
        }
        return Ok(Some(h));
    }
    if h.alive() {
        return Err(Error::InUse(format!(
            "{} is mounted read-write by {}; unmount it first",
            dev.name(),
            h.who()
        )));
    }
    Ok(Some(h))
}

/// Claims volume `fsid` on `dev` for a read-write mount (module doc).
pub fn claim(
    dev: &dyn BlockDevice,
    io: &mut dyn IoQueue,
    fsid: [u8; 16],
    policy: ClaimPolicy,
) -> Result<Claim> {
    if let Some(h) = check(dev, io, fsid)? {
        if !h.same_boot() && policy == ClaimPolicy::Refuse {
            let host_differs = !h.host.is_empty() && h.host != Holder::me(fsid, 0).host;
            if host_differs {
                return Err(Error::InUse(format!(
                    "{} was mounted read-write by {} and not unmounted cleanly. If that host \
                     still has it mounted, a second writer would corrupt it; if that host is \
                     down, take the volume over (`-o takeover`, MountOptions::take_over)",
                    dev.name(),
                    h.who()
                )));
            }
        }
        log::warn!(
            "cow: {}: taking over the claim of {} (that mount ended without unmounting)",
            dev.name(),
            h.who()
        );
    }
    let nonce = fresh_nonce();
    write_block(dev, io, &Holder::me(fsid, nonce))?;
    held()
        .get_or_insert_with(HashMap::new)
        .insert(nonce, DevKey::of(dev));
    Ok(Claim { nonce, fsid })
}

/// Refuses a read-only mount of volume `fsid` while a live process of this boot has it
/// mounted read-write (module doc).
pub fn check_read_only(dev: &dyn BlockDevice, io: &mut dyn IoQueue, fsid: [u8; 16]) -> Result<()> {
    match check(dev, io, fsid) {
        Err(Error::InUse(why)) => Err(Error::InUse(format!(
            "{why} (a read-only view of a volume being written is not consistent)"
        ))),
        Err(e) => Err(e),
        Ok(Some(h)) if !h.same_boot() => {
            log::warn!(
                "cow: {} was mounted read-write by {} and not unmounted cleanly: showing its \
                 last committed state",
                dev.name(),
                h.who()
            );
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

impl Claim {
    /// A clean unmount: the block says "clean".
    pub fn release(self, dev: &dyn BlockDevice, io: &mut dyn IoQueue) -> Result<()> {
        let mut h = Holder::me(self.fsid, self.nonce);
        h.mounted = false;
        write_block(dev, io, &h)
        // `Drop` forgets the nonce.
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(m) = held().as_mut() {
            m.remove(&self.nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdev::mem::MemDevice;

    const FSID: [u8; 16] = [9; 16];

    fn mem() -> MemDevice {
        MemDevice::new("claimed", 4096, 256).unwrap()
    }

    fn put(dev: &MemDevice, h: &Holder) {
        let mut io = dev.queue(4).unwrap();
        write_block(dev, &mut *io, h).unwrap();
    }

    fn in_use(r: Result<Claim>) -> String {
        match r {
            Err(Error::InUse(m)) => m,
            other => panic!("expected InUse, got {other:?}"),
        }
    }

    #[test]
    fn a_live_process_of_this_boot_keeps_its_claim_and_a_gone_one_loses_it() {
        let dev = mem();
        let mut io = dev.queue(4).unwrap();
        let init = Holder {
            pid: 1,
            proc_start: proc_start(1).expect("pid 1 runs"),
            ..Holder::me(FSID, 5)
        };
        put(&dev, &init);
        let m = in_use(claim(&dev, &mut *io, FSID, ClaimPolicy::TakeOver));
        assert!(m.contains("pid 1"), "{m}");
        let e = check_read_only(&dev, &mut *io, FSID).unwrap_err();
        assert!(e.to_string().contains("read-only view"), "{e}");
        // Same pid, another start time: that process is gone (its pid was reused).
        put(
            &dev,
            &Holder {
                proc_start: init.proc_start + 1,
                ..init
            },
        );
        let c = claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse).unwrap();
        assert_eq!(read_block(&dev, &mut *io).unwrap().unwrap().nonce, c.nonce);
    }

    #[test]
    fn another_hosts_claim_is_taken_over_only_when_asked() {
        let dev = mem();
        let mut io = dev.queue(4).unwrap();
        let elsewhere = Holder {
            boot_id: [b'e'; 36],
            host: "elsewhere".into(),
            ..Holder::me(FSID, 6)
        };
        put(&dev, &elsewhere);
        let m = in_use(claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse));
        assert!(
            m.contains("host elsewhere") && m.contains("takeover"),
            "{m}"
        );
        // A read-only look is allowed (with a warning): the last committed state.
        check_read_only(&dev, &mut *io, FSID).unwrap();
        claim(&dev, &mut *io, FSID, ClaimPolicy::TakeOver).unwrap();
        // This host after a reboot: its own old claim is stale without asking.
        put(
            &dev,
            &Holder {
                boot_id: [b'r'; 36],
                ..Holder::me(FSID, 7)
            },
        );
        claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse).unwrap();
    }

    #[test]
    fn this_process_holds_one_claim_per_device_until_it_is_dropped_or_released() {
        let dev = mem();
        let mut io = dev.queue(4).unwrap();
        let first = claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse).unwrap();
        let m = in_use(claim(&dev, &mut *io, FSID, ClaimPolicy::TakeOver));
        assert!(m.contains("this process"), "{m}");
        // Another device object with the same bytes (a crash image) is not this mount.
        let copy = mem();
        put(&copy, &read_block(&dev, &mut *io).unwrap().unwrap());
        let mut cio = copy.queue(4).unwrap();
        drop(claim(&copy, &mut *cio, FSID, ClaimPolicy::Refuse).unwrap());
        // Dropped without release, as by a crash: stale.
        drop(first);
        let second = claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse).unwrap();
        second.release(&dev, &mut *io).unwrap();
        assert!(!read_block(&dev, &mut *io).unwrap().unwrap().mounted);
        check_read_only(&dev, &mut *io, FSID).unwrap();
        // A claim of another volume (the device was formatted again) is no claim.
        put(
            &dev,
            &Holder {
                fsid: [1; 16],
                pid: 1,
                ..Holder::me(FSID, 8)
            },
        );
        claim(&dev, &mut *io, FSID, ClaimPolicy::Refuse).unwrap();
    }

    #[test]
    fn devices_that_drive_one_storage_are_one_device() {
        let a = DevKey {
            object: 1,
            storage: Some("spdk bdev Nvme0n1".into()),
        };
        let b = DevKey {
            object: 2,
            storage: a.storage.clone(),
        };
        assert!(a.same(&b), "two objects over one SPDK bdev");
        let (c, d) = (
            DevKey {
                object: 3,
                storage: None,
            },
            DevKey {
                object: 4,
                storage: None,
            },
        );
        assert!(
            !c.same(&d),
            "two RAM devices (a crash image and its original)"
        );
        assert!(c.same(&DevKey {
            object: 3,
            storage: None
        }));
    }

    #[test]
    fn a_block_round_trips_and_a_flipped_bit_is_no_claim() {
        let h = Holder::me([7; 16], 42);
        let mut b = h.encode().to_vec();
        assert_eq!(Holder::parse(&b), Some(h));
        b[40] ^= 1;
        assert_eq!(Holder::parse(&b), None);
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Holder::me([1; 16], 1);
        assert!(me.alive());
        let gone = Holder {
            proc_start: me.proc_start + 1,
            ..me.clone()
        };
        assert!(!gone.alive(), "same pid, another start time: pid reuse");
        let other_boot = Holder {
            boot_id: [b'x'; 36],
            ..me
        };
        assert!(!other_boot.alive());
    }
}
