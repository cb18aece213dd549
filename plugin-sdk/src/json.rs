//! JSON helpers for notifiers that render JSON bodies.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::notifier::Pair;

/// Serializes label or annotation pairs as a JSON object, without copying.
///
/// ```
/// use vigil_plugin_sdk::json::PairMap;
/// let labels = vec![("model".to_string(), "resnet".to_string())];
/// assert_eq!(vigil_plugin_sdk::json::to_string(&PairMap(&labels)).unwrap(), r#"{"model":"resnet"}"#);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PairMap<'a>(pub &'a [Pair]);

impl Serialize for PairMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Serializes `value` as compact JSON, with the error as a string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot render JSON: {e}"))
}

/// Serializes `value` as indented JSON, with the error as a string.
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| format!("cannot render JSON: {e}"))
}
