//! Devices from SPDK's JSON config format.
//!
//! The same file drives every backend:
//! `{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{…}}]}]}`.
//! Methods are applied in order, so a wrapper names a base bdev defined before it.
//! Understood: `bdev_malloc_create` → [`mem`](crate::mem), `bdev_uring_create` and
//! `bdev_aio_create` → [`uring`](crate::uring), `bdev_error_create` and
//! `bdev_error_inject_error` → [`fault`](crate::fault), `bdev_delay_create` → fault latency.
//! Other subsystems (accel, iobuf, sock …) are skipped; an unknown bdev method or parameter
//! is an error naming it, as SPDK's own decoder does.
//!
//! The result lists the bdevs no wrapper claimed, in config order: the ones a job runs on,
//! as in SPDK's bdevperf.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::device::{BlockDevice, OpKind};
use crate::error::BdevError;
use crate::fault::{ErrorRule, FaultConfig, FaultDevice, Latency};
use crate::mem::MemDevice;
use crate::uring::{UringDevice, UringOptions};

/// A device built from a config, with the name the config gave it.
pub type NamedDevice = (String, Arc<dyn BlockDevice>);

/// Reads an SPDK JSON config file and builds its bdevs.
pub fn open_config_file(path: &Path) -> Result<Vec<NamedDevice>, BdevError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BdevError::os(format!("reading config {}", path.display()), e))?;
    open_from_json(&text).map_err(|e| match e {
        BdevError::Config(msg) => BdevError::Config(format!("{}: {msg}", path.display())),
        other => other,
    })
}

/// Builds the bdevs of an SPDK JSON config given as text.
pub fn open_from_json(text: &str) -> Result<Vec<NamedDevice>, BdevError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| BdevError::Config(format!("not valid JSON: {e}")))?;
    let subsystems = doc
        .get("subsystems")
        .and_then(Value::as_array)
        .ok_or_else(|| BdevError::Config("missing the top-level \"subsystems\" array".into()))?;
    let mut set = Builder::default();
    for sub in subsystems {
        if sub.get("subsystem").and_then(Value::as_str) != Some("bdev") {
            continue;
        }
        let Some(config) = sub.get("config") else {
            continue;
        };
        let config = config.as_array().ok_or_else(|| {
            BdevError::Config("bdev subsystem: \"config\" is not an array".into())
        })?;
        for (i, entry) in config.iter().enumerate() {
            set.apply(entry).map_err(|e| match e {
                BdevError::Config(msg) => {
                    BdevError::Config(format!("bdev config entry {i}: {msg}"))
                }
                other => other,
            })?;
        }
    }
    let mut devices = Vec::new();
    for entry in set.devices.into_iter().filter(|d| !d.claimed) {
        devices.push((entry.name.clone(), entry.build()?));
    }
    if devices.is_empty() {
        return Err(BdevError::Config("the config defines no bdev".into()));
    }
    Ok(devices)
}

struct Entry {
    name: String,
    device: Slot,
    claimed: bool,
}

/// An error bdev collects `bdev_error_inject_error` rules until something uses it.
enum Slot {
    Built(Arc<dyn BlockDevice>),
    Error {
        base: Arc<dyn BlockDevice>,
        config: FaultConfig,
    },
}

impl Entry {
    fn build(self) -> Result<Arc<dyn BlockDevice>, BdevError> {
        match self.device {
            Slot::Built(d) => Ok(d),
            Slot::Error { base, config } => {
                Ok(Arc::new(FaultDevice::new(&self.name, base, config)?))
            }
        }
    }
}

#[derive(Default)]
struct Builder {
    devices: Vec<Entry>,
}

impl Builder {
    fn apply(&mut self, entry: &Value) -> Result<(), BdevError> {
        let method = entry
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| BdevError::Config("entry has no \"method\" string".into()))?;
        let empty = Map::new();
        let params = match entry.get("params") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(BdevError::Config(format!(
                    "{method}: \"params\" is not an object"
                )))
            }
        };
        let p = Params {
            method,
            map: params,
        };
        match method {
            "bdev_malloc_create" => self.malloc(&p),
            "bdev_uring_create" => self.file(&p, &["filename", "name", "block_size", "uuid"]),
            "bdev_aio_create" => self.file(
                &p,
                &[
                    "filename",
                    "name",
                    "block_size",
                    "readonly",
                    "fallocate",
                    "uuid",
                ],
            ),
            "bdev_error_create" => self.error_create(&p),
            "bdev_error_inject_error" => self.error_inject(&p),
            "bdev_delay_create" => self.delay_create(&p),
            // Settings of the bdev layer itself; nothing to build.
            "bdev_set_options"
            | "bdev_wait_for_examine"
            | "bdev_nvme_set_options"
            | "bdev_nvme_set_hotplug"
            | "bdev_iscsi_set_options" => Ok(()),
            // The front ends (bypassfs, bfsperf) all name SPDK `--spdk`; the C API's
            // BFS_DEVICE_SPDK is named too, as its users read this in their log.
            other => Err(BdevError::Config(format!(
                "unknown method \"{other}\": the native backends serve only \
                 bdev_malloc_create, bdev_uring_create, bdev_aio_create, bdev_error_create, \
                 bdev_error_inject_error and bdev_delay_create; for the others add --spdk to \
                 run the config through SPDK itself (C API: BFS_DEVICE_SPDK), in a build \
                 with --features spdk, on a host with SPDK installed"
            ))),
        }
    }

    fn add(&mut self, name: String, device: Arc<dyn BlockDevice>) -> Result<(), BdevError> {
        if self.devices.iter().any(|d| d.name == name) {
            return Err(BdevError::Config(format!(
                "bdev \"{name}\" is defined twice"
            )));
        }
        self.devices.push(Entry {
            name,
            device: Slot::Built(device),
            claimed: false,
        });
        Ok(())
    }

    /// Marks `base` as claimed by a wrapper and returns it.
    fn claim(&mut self, method: &str, base: &str) -> Result<Arc<dyn BlockDevice>, BdevError> {
        let entry = self
            .devices
            .iter_mut()
            .find(|d| d.name == base)
            .ok_or_else(|| {
                BdevError::Config(format!(
                    "{method}: base bdev \"{base}\" is not defined before it"
                ))
            })?;
        if entry.claimed {
            return Err(BdevError::Config(format!(
                "{method}: bdev \"{base}\" is already claimed"
            )));
        }
        entry.claimed = true;
        if let Slot::Error { base, config } = &entry.device {
            let built: Arc<dyn BlockDevice> = Arc::new(FaultDevice::new(
                &entry.name,
                Arc::clone(base),
                config.clone(),
            )?);
            entry.device = Slot::Built(built);
        }
        match &entry.device {
            Slot::Built(d) => Ok(Arc::clone(d)),
            Slot::Error { .. } => unreachable!("built just above"),
        }
    }

    fn malloc(&mut self, p: &Params) -> Result<(), BdevError> {
        p.only(&[
            "name",
            "num_blocks",
            "block_size",
            "uuid",
            "optimal_io_boundary",
            "physical_block_size",
            "md_size",
            "md_interleave",
            "dif_type",
            "dif_is_head_of_md",
        ])?;
        for unsupported in ["md_size", "dif_type"] {
            if p.opt_u64(unsupported)?.unwrap_or(0) != 0 {
                return Err(p.bad(unsupported, "metadata and DIF are not supported"));
            }
        }
        let name = match p.opt_str("name")? {
            Some(n) => n.to_owned(),
            None => format!("Malloc{}", self.devices.len()),
        };
        let block_size = p.u32("block_size")?;
        let device = MemDevice::new(&name, block_size, p.u64("num_blocks")?)?;
        self.add(name, Arc::new(device))
    }

    fn file(&mut self, p: &Params, known: &[&str]) -> Result<(), BdevError> {
        p.only(known)?;
        if p.opt_bool("readonly")?.unwrap_or(false) {
            return Err(p.bad("readonly", "read-only file bdevs are not supported"));
        }
        let name = p.str("name")?.to_owned();
        let opts = UringOptions {
            block_size: p.opt_u32("block_size")?,
            ..UringOptions::default()
        };
        let device = UringDevice::open(&name, Path::new(p.str("filename")?), opts)?;
        self.add(name, Arc::new(device))
    }
}

impl Builder {
    fn error_create(&mut self, p: &Params) -> Result<(), BdevError> {
        p.only(&["base_name", "uuid"])?;
        let base_name = p.str("base_name")?;
        let base = self.claim(p.method, base_name)?;
        let name = format!("EE_{base_name}");
        if self.devices.iter().any(|d| d.name == name) {
            return Err(BdevError::Config(format!(
                "bdev \"{name}\" is defined twice"
            )));
        }
        let device = Slot::Error {
            base,
            config: FaultConfig::default(),
        };
        self.devices.push(Entry {
            name,
            device,
            claimed: false,
        });
        Ok(())
    }

    /// SPDK's error bdev: the next `num` requests of `io_type` fail (`num` 0 disables).
    fn error_inject(&mut self, p: &Params) -> Result<(), BdevError> {
        p.only(&[
            "name",
            "io_type",
            "error_type",
            "num",
            "queue_depth",
            "corrupt_offset",
            "corrupt_value",
        ])?;
        let name = p.str("name")?;
        let io_type = p.str("io_type")?;
        let kinds: &[OpKind] = match io_type {
            "read" => &[OpKind::Read],
            "write" => &[OpKind::Write],
            "unmap" => &[OpKind::Unmap],
            "flush" => &[OpKind::Flush],
            "write_zeroes" => &[OpKind::WriteZeroes],
            "all" | "clear" => &[
                OpKind::Read,
                OpKind::Write,
                OpKind::Unmap,
                OpKind::Flush,
                OpKind::WriteZeroes,
            ],
            other => {
                let why = format!("unknown value \"{other}\" (expected read, write, unmap, flush, write_zeroes, all or clear)");
                return Err(p.bad("io_type", &why));
            }
        };
        let clear = io_type == "clear";
        let error_type = p.str("error_type")?;
        if error_type != "failure" && !clear {
            return Err(p.bad(
                "error_type",
                "only \"failure\" is served natively (pending, corrupt_data and nomem need SPDK: bfsperf --spdk)",
            ));
        }
        let num = p.opt_u64("num")?.unwrap_or(1);
        let entry = self
            .devices
            .iter_mut()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                BdevError::Config(format!(
                    "{}: no error bdev \"{name}\" defined before it",
                    p.method
                ))
            })?;
        let Slot::Error { config, .. } = &mut entry.device else {
            return Err(p.bad(
                "name",
                &format!("\"{name}\" is not an error bdev, or is already in use"),
            ));
        };
        config.errors.retain(|r| !kinds.contains(&r.kind));
        if !clear && num > 0 {
            config
                .errors
                .extend(kinds.iter().map(|&k| ErrorRule::first(k, num)));
        }
        Ok(())
    }

    /// SPDK's delay bdev. Latencies are in microseconds; the spread between the average
    /// and the 99th percentile becomes uniform jitter.
    fn delay_create(&mut self, p: &Params) -> Result<(), BdevError> {
        p.only(&[
            "base_bdev_name",
            "name",
            "avg_read_latency",
            "p99_read_latency",
            "avg_write_latency",
            "p99_write_latency",
            "uuid",
        ])?;
        let name = p.str("name")?.to_owned();
        let (read, read99) = (p.u64("avg_read_latency")?, p.u64("p99_read_latency")?);
        let (write, write99) = (p.u64("avg_write_latency")?, p.u64("p99_write_latency")?);
        if read99 < read || write99 < write {
            return Err(p.bad("p99_read_latency", "a 99th percentile below its average"));
        }
        let base = self.claim(p.method, p.str("base_bdev_name")?)?;
        let latency = Latency {
            read_us: read,
            write_us: write,
            jitter_us: (read99 - read).max(write99 - write),
        };
        let config = FaultConfig {
            latency: Some(latency),
            ..FaultConfig::default()
        };
        let device = FaultDevice::new(&name, base, config)?;
        self.add(name, Arc::new(device))
    }
}

/// The `params` object of one method, with typed getters whose errors name the method and
/// the parameter.
pub(crate) struct Params<'a> {
    pub(crate) method: &'a str,
    pub(crate) map: &'a Map<String, Value>,
}

impl Params<'_> {
    pub(crate) fn bad(&self, key: &str, why: &str) -> BdevError {
        BdevError::Config(format!("{}: parameter \"{key}\": {why}", self.method))
    }

    /// Refuses parameters outside `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), BdevError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.bad(
                k,
                &format!("unknown parameter (known: {})", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, BdevError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "expected a non-negative integer")),
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Result<u64, BdevError> {
        self.opt_u64(key)?.ok_or_else(|| self.bad(key, "required"))
    }

    pub(crate) fn opt_u32(&self, key: &str) -> Result<Option<u32>, BdevError> {
        self.opt_u64(key)?
            .map(|v| u32::try_from(v).map_err(|_| self.bad(key, "too large")))
            .transpose()
    }

    pub(crate) fn u32(&self, key: &str) -> Result<u32, BdevError> {
        self.opt_u32(key)?.ok_or_else(|| self.bad(key, "required"))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&str>, BdevError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.bad(key, "expected a string")),
        }
    }

    pub(crate) fn str(&self, key: &str) -> Result<&str, BdevError> {
        self.opt_str(key)?.ok_or_else(|| self.bad(key, "required"))
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, BdevError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.bad(key, "expected true or false")),
        }
    }
}
