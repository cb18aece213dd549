//! Generated bindings of the `notifier` world of `vigil:plugin@0.2.0` (unchanged since 0.1.0), with
//! helpers on the generated types.
//!
//! Use these through `vigil_plugin_sdk` (`vigil_plugin_sdk::notifier`); this
//! crate exists on its own so that a notifier plugin links only the
//! `notifier` world's component type metadata.
#![deny(missing_docs)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/vigil-plugin-0.2.0.wit",
        world: "vigil:plugin/notifier@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_notifier",
        default_bindings_module: "vigil_plugin_sdk::__private::notifier",
        additional_derives: [PartialEq],
    });
}

pub use bindings::*;

impl AlertStatus {
    /// `"firing"` or `"resolved"`, as Alertmanager spells them.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// The value of label (or annotation) `name`, if present.
pub fn lookup<'a>(pairs: &'a [Pair], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Alert {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        lookup(&self.labels, name)
    }

    /// The value of annotation `name`, if present.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        lookup(&self.annotations, name)
    }
}

impl HttpRequest {
    /// A `POST` of `body` with `Content-Type: application/json`.
    pub fn post_json(url: impl Into<String>, body: impl Into<String>) -> Self {
        HttpRequest {
            method: "POST".to_string(),
            url: url.into(),
            headers: vec![("Content-Type".to_string(), "application/json".to_string())],
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl From<HttpRequest> for Delivery {
    fn from(r: HttpRequest) -> Self {
        Delivery::Http(r)
    }
}

impl From<Email> for Delivery {
    fn from(e: Email) -> Self {
        Delivery::Email(e)
    }
}
