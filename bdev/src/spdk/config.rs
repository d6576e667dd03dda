//! The checks an SPDK JSON config gets before SPDK sees it, and the settings read from it.

use serde_json::Value;

use crate::error::BdevError;

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
