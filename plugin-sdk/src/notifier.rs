//! Notifiers: render a group of alerts into deliveries the host performs.
//!
//! A notifier never gets a socket: it returns [`Delivery`] values (HTTP
//! requests or e-mails) and the host sends them after checking them against
//! the receiver's configuration.

use serde::de::DeserializeOwned;

pub use vigil_plugin_sdk_bindings_notifier::{
    Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, Pair, ParamDoc, PluginInfo,
    lookup,
};

/// A notifier: the logic behind a `notifier` component.
///
/// Usually implemented by the [`notifier`](macro@crate::notifier) attribute
/// macro on a function.
pub trait Notifier {
    /// The receiver's `params` table, deserialized from JSON.
    type Params: DeserializeOwned;

    /// Name, version, description and parameter docs.
    fn info() -> PluginInfo;

    /// Checks parameters beyond what their types enforce; the error is
    /// reported by `configure`.
    fn validate(params: &Self::Params) -> Result<(), String> {
        let _ = params;
        Ok(())
    }

    /// Renders one notification into the deliveries to perform.
    fn render(params: &Self::Params, notification: &Notification) -> Result<Vec<Delivery>, String>;
}

/// Parses and validates a notifier's parameters (the receiver's `params` as
/// JSON); errors name the offending field like [`crate::configure`]'s.
pub fn configure<N: Notifier>(json: &str) -> Result<N::Params, String> {
    let params = crate::parse_params::<N::Params>(json)?;
    N::validate(&params).map_err(|e| format!("invalid params: {e}"))?;
    Ok(params)
}

/// Parameter docs in the notifier world's type (the derive produces the
/// check world's, which has the same fields).
pub fn param_docs<P: crate::ParamDocs>() -> Vec<ParamDoc> {
    P::param_docs()
        .into_iter()
        .map(|d| ParamDoc {
            name: d.name,
            type_name: d.type_name,
            required: d.required,
            description: d.description,
        })
        .collect()
}
