//! SPDK JSON configs run through SPDK itself: every method SPDK knows, not only the ones
//! [`crate::config`] maps onto native backends.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::device::SpdkDevice;
use super::env::{SpdkEnv, SpdkEnvOptions};
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

/// Parses the config far enough to give clear errors before SPDK sees it (SPDK would only
/// log them): valid JSON, a `subsystems` array of objects each naming its subsystem.
pub(super) fn check(text: &str) -> Result<Value, BdevError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| BdevError::Config(format!("not valid JSON: {e}")))?;
    let subsystems = doc
        .get("subsystems")
        .and_then(Value::as_array)
        .ok_or_else(|| BdevError::Config("missing the top-level \"subsystems\" array".into()))?;
    for (i, sub) in subsystems.iter().enumerate() {
        if sub.get("subsystem").and_then(Value::as_str).is_none() {
            return Err(BdevError::Config(format!(
                "subsystems[{i}] has no \"subsystem\" name"
            )));
        }
        match sub.get("config") {
            None | Some(Value::Null | Value::Array(_)) => {}
            Some(_) => {
                return Err(BdevError::Config(format!(
                    "subsystems[{i}]: \"config\" is not an array"
                )))
            }
        }
    }
    Ok(doc)
}

/// Whether the config's `bdev_nvme_set_options` sets `enable_flush` (the last one wins, as
/// SPDK applies them in order).
pub(super) fn nvme_flush_enabled(doc: &Value) -> bool {
    let mut enabled = false;
    let methods = doc
        .get("subsystems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("subsystem").and_then(Value::as_str) == Some("bdev"))
        .filter_map(|s| s.get("config").and_then(Value::as_array))
        .flatten();
    for entry in methods {
        if entry.get("method").and_then(Value::as_str) == Some("bdev_nvme_set_options") {
            if let Some(flag) = entry
                .get("params")
                .and_then(|p| p.get("enable_flush"))
                .and_then(Value::as_bool)
            {
                enabled = flag;
            }
        }
    }
    enabled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_named() {
        let e = |t: &str| check(t).unwrap_err().to_string();
        assert!(e("{").contains("not valid JSON"));
        assert!(e("{}").contains("subsystems"));
        assert!(e(r#"{"subsystems":[{}]}"#).contains("subsystems[0]"));
        assert!(e(r#"{"subsystems":[{"subsystem":"bdev","config":{}}]}"#).contains("array"));
        check(r#"{"subsystems":[{"subsystem":"bdev","config":null}]}"#).unwrap();
    }

    #[test]
    fn enable_flush_is_found() {
        let doc = |p: &str| {
            check(&format!(
                r#"{{"subsystems":[{{"subsystem":"bdev","config":[
                {{"method":"bdev_nvme_set_options","params":{p}}}]}}]}}"#
            ))
            .unwrap()
        };
        assert!(nvme_flush_enabled(&doc(r#"{"enable_flush":true}"#)));
        assert!(!nvme_flush_enabled(&doc(r#"{"enable_flush":false}"#)));
        assert!(!nvme_flush_enabled(&doc(r#"{"action_on_timeout":"none"}"#)));
    }
}
