//! Notifier plugins: render a group of alerts into deliveries the host performs.

use std::sync::Arc;

use wasmtime::Store;

use super::wasi::HostState;
use super::{
    Limits, ParamDoc, Plugin, PluginError, PluginInfo, PluginKind, Pre, Sandbox, Slot, World,
    arm_deadline, classify,
};

pub(crate) mod bindings {
    // The notifier world is the same in 0.1.0 and 0.2.0, and component
    // types are structural: these bindings load notifiers of either version.
    wasmtime::component::bindgen!({
        world: "notifier",
        path: "../plugin-sdk/wit/vigil-plugin.wit",
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert as a notifier sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub status: AlertStatus,
    /// Serialized as `[[name, value], ...]`, like the other label lists.
    pub labels: crate::store::labels::Labels,
    pub annotations: Vec<(String, String)>,
    pub value: f64,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub generator_url: String,
    pub fingerprint: String,
}

/// An Alertmanager-style group of alerts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub receiver: String,
    pub status: AlertStatus,
    pub group_key: String,
    pub group_labels: Vec<(String, String)>,
    pub common_labels: Vec<(String, String)>,
    pub common_annotations: Vec<(String, String)>,
    pub external_url: String,
    pub alerts: Vec<Alert>,
    pub truncated_alerts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Email {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Something the host must send on a notifier's behalf.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Delivery {
    Http(HttpRequest),
    Email(Email),
}

impl World for bindings::Notifier {
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        match &plugin.pre {
            Pre::Notifier(pre) => pre.instantiate(store),
            Pre::CheckV0_1(_) | Pre::CheckV0_2(_) => {
                Err(wasmtime::Error::msg("not a notifier plugin"))
            }
        }
    }

    fn configure(
        &self,
        store: &mut Store<HostState>,
        params: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        self.call_configure(store, params)
    }
}

/// One receiver's instance of a notifier plugin.
pub struct NotifierInstance {
    slot: Slot<bindings::Notifier>,
}

impl NotifierInstance {
    pub fn new(
        sandbox: &Sandbox,
        plugin: Arc<Plugin>,
        params: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, PluginError> {
        if plugin.info.kind != PluginKind::Notifier {
            return Err(PluginError::KindMismatch {
                expected: PluginKind::Notifier,
                found: plugin.info.kind,
            });
        }
        Ok(NotifierInstance {
            slot: Slot::new(sandbox, plugin, params, limits)?,
        })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.slot.plugin
    }

    pub fn render(&mut self, n: &Notification) -> Result<Vec<Delivery>, PluginError> {
        let wit = to_wit(n);
        let out = self.slot.call(|w, store| w.call_render(store, &wit))?;
        let deliveries = out.map_err(PluginError::Failed)?;
        Ok(deliveries.into_iter().map(from_wit).collect())
    }
}

fn status_to_wit(s: AlertStatus) -> bindings::AlertStatus {
    match s {
        AlertStatus::Firing => bindings::AlertStatus::Firing,
        AlertStatus::Resolved => bindings::AlertStatus::Resolved,
    }
}

fn to_wit(n: &Notification) -> bindings::Notification {
    bindings::Notification {
        receiver: n.receiver.clone(),
        status: status_to_wit(n.status),
        group_key: n.group_key.clone(),
        group_labels: n.group_labels.clone(),
        common_labels: n.common_labels.clone(),
        common_annotations: n.common_annotations.clone(),
        external_url: n.external_url.clone(),
        alerts: n
            .alerts
            .iter()
            .map(|a| bindings::Alert {
                status: status_to_wit(a.status),
                labels: a.labels.pairs().to_vec(),
                annotations: a.annotations.clone(),
                value: a.value,
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
        truncated_alerts: n.truncated_alerts,
    }
}

fn from_wit(d: bindings::Delivery) -> Delivery {
    match d {
        bindings::Delivery::Http(h) => Delivery::Http(HttpRequest {
            method: h.method,
            url: h.url,
            headers: h.headers,
            body: h.body,
        }),
        bindings::Delivery::Email(e) => Delivery::Email(Email {
            to: e.to,
            cc: e.cc,
            subject: e.subject,
            text: e.text,
            html: e.html,
        }),
    }
}

pub(crate) fn read_info(
    sandbox: &Sandbox,
    pre: &bindings::NotifierPre<HostState>,
    limits: Limits,
) -> Result<PluginInfo, PluginError> {
    let mut store = sandbox.store(limits);
    arm_deadline(&mut store, limits.timeout);
    let info = pre
        .instantiate(&mut store)
        .and_then(|w| w.call_info(&mut store))
        .map_err(|e| classify(&e, &store.data().stderr.take(), limits))?;
    Ok(PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        kind: PluginKind::Notifier,
        contract: super::Contract::V0_1,
        params: info
            .params
            .into_iter()
            .map(|p| ParamDoc {
                name: p.name,
                type_name: p.type_name,
                required: p.required,
                description: p.description,
            })
            .collect(),
    })
}
