//! Opening a device from what a user types: an SPDK JSON config or a file / block device path.
//! The CLI, FUSE mounts and the C API all come through here, so they accept the same things
//! and fail with the same advice.
//!
//! One writer per device: a read-write open ([`Access::ReadWrite`]: `mkfs`, `put`, a
//! read-write mount, `bfs_mount` without `BFS_MOUNT_RDONLY`) locks an image file or block
//! device exclusively, a read-only open ([`Access::ReadOnly`]: `fsck`, `ls`, `cat`, `get`,
//! `stat`, `mount -o ro`) shares the lock with other readers, and a conflicting open is
//! refused at once with [`BdevError::InUse`] naming the holder (pid and command line). The
//! lock lives as long as the device. Devices of an SPDK JSON config are opened read-write
//! whatever `access` says (they are one process's devices). How and what the lock cannot
//! see: `bdev/src/uring/lock.rs`.
//!
//! A JSON config is read by the native backends here, which serve its malloc, uring and aio
//! bdevs; [`spdk::open`] runs it through SPDK itself instead (the `spdk` feature).

use std::path::Path;
use std::sync::Arc;

use bdev::config::NamedDevice;
pub use bdev::uring::Access;
use bdev::uring::{UringDevice, UringOptions};
use bdev::{BdevError, BlockDevice};

pub mod spdk;

/// Opens `spec` (see [`open_with`]) read-write, with no bdev choice and no file creation.
pub fn open(spec: &str) -> Result<Arc<dyn BlockDevice>, BdevError> {
    open_with(Path::new(spec), None, None, Access::ReadWrite)
}

/// Opens `spec` (see [`open_with`]) read-only, with no bdev choice.
pub fn open_read_only(spec: &str) -> Result<Arc<dyn BlockDevice>, BdevError> {
    open_with(Path::new(spec), None, None, Access::ReadOnly)
}

/// Opens `path`: a `*.json` file is an SPDK JSON config, from which `bdev` picks a bdev (it
/// may be omitted when the config has exactly one); anything else is an image file or block
/// device driven through io_uring with `O_DIRECT`, locked for `access`. `create_bytes`
/// creates or extends a regular file to that size (`mkfs --size`; read-write only).
pub fn open_with(
    path: &Path,
    bdev: Option<&str>,
    create_bytes: Option<u64>,
    access: Access,
) -> Result<Arc<dyn BlockDevice>, BdevError> {
    let shown = path.display();
    let refuse = |msg: String| Err(BdevError::Config(msg));
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        if create_bytes.is_some() {
            return refuse(format!(
                "--size creates a file device, but {shown} is a JSON config: size its bdevs \
                 there (num_blocks × block_size)"
            ));
        }
        let devs = bdev::config::open_config_file(path)?;
        return pick(&shown.to_string(), devs, bdev);
    }
    if bdev.is_some() {
        return refuse(format!(
            "--bdev picks a bdev of a JSON config, but {shown} is not a *.json file"
        ));
    }
    if !path.exists() && create_bytes.is_none() {
        return refuse(format!(
            "DEVICE '{shown}' is neither a JSON config nor an existing file: create one with \
             `bypassfs mkfs --size 1G {shown}`"
        ));
    }
    let name = path
        .file_name()
        .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
    let opts = UringOptions {
        block_size: None,
        size_bytes: create_bytes,
        access,
        ..UringOptions::default()
    };
    Ok(Arc::new(UringDevice::open(&name, path, opts)?))
}

/// Zeroes every superblock location (`cow::format::SUPERBLOCK_OFFSETS`) of the whole file
/// or block device at `path` that a volume of `volume_bytes` does not write itself, and
/// returns their offsets. `mkfs --size` smaller than the file (or block device) calls it
/// before formatting, as mkfs.btrfs wipes every superblock copy of the device: a mirror left
/// from an earlier, larger filesystem beyond the new size would otherwise be read back by
/// the next open of the whole file (as an impostor copy, or as the old filesystem itself
/// once the primary is damaged).
///
/// The caller holds the device open read-write (so locked); these locations lie beyond
/// the device it opened, so the buffered writes here never meet its direct I/O.
pub fn wipe_stale_superblocks(path: &Path, volume_bytes: u64) -> Result<Vec<u64>, BdevError> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    let at = path.display();
    let os = |what: &str, e| BdevError::Os {
        context: format!("{at}: {what}"),
        source: e,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| os("open to wipe old superblock copies", e))?;
    // Seeking to the end sizes block devices as well as files.
    let whole = file.seek(SeekFrom::End(0)).map_err(|e| os("seek", e))?;
    let kept = cow::format::superblock_offsets(volume_bytes);
    let stale: Vec<u64> = cow::format::SUPERBLOCK_OFFSETS
        .into_iter()
        .filter(|o| *o < whole && !kept.contains(o))
        .collect();
    for &off in &stale {
        let len = (whole - off).min(cow::format::SUPERBLOCK_AREA as u64) as usize;
        file.write_all_at(&vec![0u8; len], off)
            .map_err(|e| os(&format!("zeroing the superblock location at {off:#x}"), e))?;
    }
    if !stale.is_empty() {
        file.sync_all().map_err(|e| os("fsync", e))?;
    }
    Ok(stale)
}

fn pick(
    config: &str,
    devs: Vec<NamedDevice>,
    want: Option<&str>,
) -> Result<Arc<dyn BlockDevice>, BdevError> {
    let names: Vec<String> = devs.iter().map(|(n, _)| n.clone()).collect();
    let name = pick_name(config, &names, want)?;
    let (_, dev) = devs
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("pick_name returns one of the names");
    Ok(dev)
}

/// The bdev of `config` to use: `want`, or the only one; else an error listing `names`.
fn pick_name(config: &str, names: &[String], want: Option<&str>) -> Result<String, BdevError> {
    let listed = || names.join(", ");
    let msg = match (want, names.len()) {
        (Some(w), _) => match names.iter().find(|n| *n == w) {
            Some(n) => return Ok(n.clone()),
            None => format!(
                "--bdev {w}: {config} has no such bdev (it has: {})",
                listed()
            ),
        },
        (None, 1) => return Ok(names[0].clone()),
        (None, 0) => format!(
            "{config} describes no bdev: add a bdev_malloc_create or bdev_uring_create entry"
        ),
        (None, _) => format!(
            "{config} has several bdevs ({}): pick one with --bdev NAME",
            listed()
        ),
    };
    Err(BdevError::Config(msg))
}
