//! SPDK JSON configs run through SPDK itself: every method SPDK knows, not only the ones
//! [`crate::config`] maps onto native backends.

use std::path::Path;
use std::sync::Arc;

use super::device::SpdkDevice;
use super::env::SpdkEnv;
use super::options::SpdkEnvOptions;
use crate::config::NamedDevice;
use crate::error::BdevError;

/// Starts SPDK with the config `text` (or joins the running environment if it was started
/// with the same one) and opens every bdev no other bdev claimed, in SPDK's order: the ones
/// a job runs on, as in bdevperf. Mirrors [`crate::config::open_from_json`].
pub fn open_config(text: &str, opts: SpdkEnvOptions) -> Result<Vec<NamedDevice>, BdevError> {
    let env = SpdkEnv::start(text, opts)?;
    let names = env.bdev_names();
    if names.is_empty() {
        return Err(BdevError::Config("the config defines no bdev".into()));
    }
    names
        .into_iter()
        .map(|name| {
            let device = SpdkDevice::open(&env, &name)?;
            Ok((name, Arc::new(device) as _))
        })
        .collect()
}

/// Reads an SPDK JSON config file and runs it through SPDK, as [`open_config`].
pub fn open_config_file(path: &Path, opts: SpdkEnvOptions) -> Result<Vec<NamedDevice>, BdevError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BdevError::os(format!("reading config {}", path.display()), e))?;
    open_config(&text, opts).map_err(|e| match e {
        BdevError::Config(msg) => BdevError::Config(format!("{}: {msg}", path.display())),
        other => other,
    })
}
