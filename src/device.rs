//! Opening a device from what a user types: an SPDK JSON config or a file path.

use std::path::Path;
use std::sync::Arc;

use bdev::uring::{UringDevice, UringOptions};
use bdev::{BdevError, BlockDevice};

/// Opens `spec`: a path ending in `.json` is an SPDK JSON config (its first bdev no wrapper
/// claims); anything else is an image file or block device driven through io_uring with
/// `O_DIRECT` (a regular file must already have its size: `truncate -s 1G image`).
pub fn open(spec: &str) -> Result<Arc<dyn BlockDevice>, BdevError> {
    let path = Path::new(spec);
    if path.extension().is_some_and(|e| e == "json") {
        let mut devs = bdev::config::open_config_file(path)?;
        return Ok(devs.remove(0).1);
    }
    let name = path
        .file_name()
        .map_or_else(|| "dev".to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Arc::new(UringDevice::open(
        &name,
        path,
        UringOptions::default(),
    )?))
}
