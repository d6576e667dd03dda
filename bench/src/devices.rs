//! Opening the bdevs of an SPDK JSON config.
//!
//! STAND-IN: replace `open_config_file` below by `bdev::config::open_config_file` once that
//! lands on main (it builds every backend; this one only knows `bdev_malloc_create`).

use std::path::Path;
use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::{BdevError, BlockDevice};
use serde_json::Value;

/// The bdevs of a config, in config order, with their names.
pub type Bdevs = Vec<(String, Arc<dyn BlockDevice>)>;

/// STAND-IN for `bdev::config::open_config_file`: reads `path` and builds its
/// `bdev_malloc_create` entries as RAM devices; any other method is an error.
pub fn open_config_file(path: &Path) -> Result<Bdevs, BdevError> {
    let text = std::fs::read_to_string(path).map_err(|e| BdevError::Os {
        context: format!("reading config {}", path.display()),
        source: e,
    })?;
    open_from_json(&text)
}

/// STAND-IN for `bdev::config::open_from_json`.
fn open_from_json(text: &str) -> Result<Bdevs, BdevError> {
    let config = |m: String| BdevError::Config(m);
    let doc: Value = serde_json::from_str(text).map_err(|e| config(format!("not JSON: {e}")))?;
    let subsystems = doc["subsystems"]
        .as_array()
        .ok_or_else(|| config("no \"subsystems\" array at the top level".into()))?;
    let mut out: Bdevs = Vec::new();
    for sub in subsystems.iter().filter(|s| s["subsystem"] == "bdev") {
        for entry in sub["config"].as_array().into_iter().flatten() {
            let method = entry["method"].as_str().unwrap_or("<no method>");
            match method {
                "bdev_malloc_create" => {
                    let name = malloc_name(&entry["params"], out.len());
                    let dev = malloc(&name, &entry["params"])?;
                    out.push((name, Arc::new(dev)));
                }
                // SPDK configs carry global options too; they do not create a bdev.
                "bdev_set_options" | "bdev_wait_for_examine" => {}
                other => {
                    return Err(config(format!(
                        "method {other:?} is not supported by bfsperf's stand-in config reader \
                         (only bdev_malloc_create until bdev::config lands)"
                    )))
                }
            }
        }
    }
    if out.is_empty() {
        return Err(config(
            "the config creates no bdev (bdev subsystem, bdev_malloc_create)".into(),
        ));
    }
    Ok(out)
}

/// SPDK names unnamed malloc bdevs Malloc0, Malloc1, … in creation order.
fn malloc_name(params: &Value, index: usize) -> String {
    params["name"]
        .as_str()
        .map_or_else(|| format!("Malloc{index}"), str::to_owned)
}

fn malloc(name: &str, params: &Value) -> Result<MemDevice, BdevError> {
    let field = |key: &str| {
        params[key].as_u64().ok_or_else(|| {
            BdevError::Config(format!(
                "bdev_malloc_create {name}: \"{key}\" must be a positive integer"
            ))
        })
    };
    let block_size = u32::try_from(field("block_size")?).map_err(|_| {
        BdevError::Config(format!("bdev_malloc_create {name}: block_size too large"))
    })?;
    MemDevice::new(name, block_size, field("num_blocks")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_entries_become_ram_devices() {
        let text = r#"{"subsystems":[{"subsystem":"bdev","config":[
            {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":64,"block_size":512}},
            {"method":"bdev_malloc_create","params":{"num_blocks":8,"block_size":4096}}]}]}"#;
        let devs = open_from_json(text).unwrap();
        let names: Vec<&str> = devs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["M", "Malloc1"]);
        assert_eq!(devs[0].1.geometry().block_count, 64);
        assert_eq!(devs[1].1.geometry().block_size, 4096);
    }

    #[test]
    fn unknown_methods_and_empty_configs_are_errors() {
        let uring = r#"{"subsystems":[{"subsystem":"bdev","config":[
            {"method":"bdev_uring_create","params":{"name":"U","filename":"/x"}}]}]}"#;
        let Err(e) = open_from_json(uring) else {
            panic!("bdev_uring_create accepted")
        };
        assert!(e.to_string().contains("bdev_uring_create"), "{e}");
        assert!(open_from_json(r#"{"subsystems":[]}"#).is_err());
        assert!(open_from_json("nope").is_err());
    }
}
