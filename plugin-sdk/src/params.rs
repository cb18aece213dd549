//! Plugin parameters: parsing with field-naming errors, and their docs.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::check::ParamDoc;

/// Parameter documentation, shown by `vigil plugins`.
///
/// Derive it with `#[derive(Params)]`: each field's `///` comment becomes its
/// description, its type as written becomes `type_name`, and it is required
/// unless it is an `Option` or has a serde default.
pub trait ParamDocs {
    /// One entry per parameter, in declaration order.
    fn param_docs() -> Vec<ParamDoc>;
}

/// Parameters of a plugin that takes none: accepts `{}` (or an empty string)
/// and rejects any field.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl ParamDocs for NoParams {
    fn param_docs() -> Vec<ParamDoc> {
        Vec::new()
    }
}

impl ParamDocs for () {
    fn param_docs() -> Vec<ParamDoc> {
        Vec::new()
    }
}

/// Parses parameters from JSON, naming the offending field on error.
///
/// An empty (or all-whitespace) string counts as `{}`. The message starts
/// with `invalid params:`, then the path of the field when there is one
/// (``invalid params: `headers.x`: invalid type: ...``), then serde_json's
/// own text, which already names unknown and missing fields. serde_json's
/// "at line L column C" is dropped: the JSON is the host's rendering of the
/// user's TOML, so its positions would only mislead.
pub fn parse_params<P: DeserializeOwned>(json: &str) -> Result<P, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let mut de = serde_json::Deserializer::from_str(json);
    let params = serde_path_to_error::deserialize::<_, P>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // Unknown and missing field errors already name the field; a path of
        // "." means the error is about the top-level object itself.
        let text = without_position(&inner);
        if path == "." || path.is_empty() || is_named_field_error(&inner) {
            format!("invalid params: {text}")
        } else {
            format!("invalid params: `{path}`: {text}")
        }
    })?;
    de.end()
        .map_err(|e| format!("invalid params: {}", without_position(&e)))?;
    Ok(params)
}

/// serde_json's message without its " at line L column C" suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(t) => t.to_string(),
        None => text,
    }
}

fn is_named_field_error(err: &serde_json::Error) -> bool {
    let text = err.to_string();
    text.starts_with("unknown field") || text.starts_with("missing field")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_params::<P>(r#"{"url": 3}"#).unwrap_err();
        assert_eq!(
            err,
            "invalid params: `url`: invalid type: integer `3`, expected a string"
        );
        let err = parse_params::<P>(r#"{"url": "x", "headers": {"a": 1}}"#).unwrap_err();
        assert!(
            err.starts_with("invalid params: `headers.a`: invalid type: integer `1`"),
            "{err}"
        );
        let err = parse_params::<P>(r#"{"url": "x", "hedaers": {}}"#).unwrap_err();
        assert!(
            err.starts_with("invalid params: unknown field `hedaers`, expected `url` or `headers`"),
            "{err}"
        );
        let err = parse_params::<P>("").unwrap_err();
        assert!(
            err.starts_with("invalid params: missing field `url`"),
            "{err}"
        );
        let err = parse_params::<P>("[").unwrap_err();
        assert!(err.starts_with("invalid params: "), "{err}");
    }

    #[test]
    fn no_params_accepts_empty_objects_only() {
        assert!(parse_params::<NoParams>("{}").is_ok());
        assert!(parse_params::<NoParams>("  ").is_ok());
        let err = parse_params::<NoParams>(r#"{"x": 1}"#).unwrap_err();
        assert!(err.contains("unknown field `x`"), "{err}");
    }
}
