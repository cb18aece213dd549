//! Check plugins: one call per rule evaluation with every series in it.

use std::sync::Arc;

use wasmtime::Store;

use super::wasi::HostState;
use super::{
    Limits, ParamDoc, Plugin, PluginError, PluginInfo, PluginKind, Pre, Sandbox, Slot, World,
    arm_deadline, classify,
};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "check",
        path: "../plugin-sdk/wit",
    });
}

/// Every window of one rule evaluation, column-wise (see the WIT `batch`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub series: Vec<u64>,
    /// One more than `series`: series `i` owns `offsets[i]..offsets[i+1]`.
    pub offsets: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// Per-series opaque state, column-wise, aligned with a batch's series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesState {
    pub offsets: Vec<u32>,
    pub data: Vec<u8>,
}

impl SeriesState {
    /// State for `n` series that have none yet.
    pub fn empty(n: usize) -> Self {
        SeriesState {
            offsets: vec![0; n + 1],
            data: Vec::new(),
        }
    }

    /// The bytes of series `i` (empty when out of range).
    pub fn get(&self, i: usize) -> &[u8] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) if a <= b => self.data.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Firing,
    NoData,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Band {
    pub lower: f64,
    pub upper: f64,
}

/// A check's judgement of one series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub status: Status,
    pub score: f64,
    pub message: Option<String>,
    pub band: Option<Band>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckOutput {
    /// One per batch series, in batch order.
    pub verdicts: Vec<Verdict>,
    /// The new state, aligned with the batch series.
    pub state: SeriesState,
}

impl World for bindings::Check {
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        match &plugin.pre {
            Pre::Check(pre) => pre.instantiate(store),
            Pre::Notifier(_) => Err(wasmtime::Error::msg("not a check plugin")),
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

/// One rule's instance of a check plugin, configured with the rule's params.
pub struct CheckInstance {
    slot: Slot<bindings::Check>,
}

impl CheckInstance {
    /// Instantiates and configures: bad parameters fail here, before any tick.
    pub fn new(
        sandbox: &Sandbox,
        plugin: Arc<Plugin>,
        params: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, PluginError> {
        if plugin.info.kind != PluginKind::Check {
            return Err(PluginError::KindMismatch {
                expected: PluginKind::Check,
                found: plugin.info.kind,
            });
        }
        Ok(CheckInstance {
            slot: Slot::new(sandbox, plugin, params, limits)?,
        })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.slot.plugin
    }

    /// Judges every series of `batch` in one call.
    ///
    /// `batch` and `state` are moved into the call and handed back so their
    /// buffers can be reused; on error the caller's state is untouched
    /// (the returned state is the one passed in).
    pub fn evaluate(
        &mut self,
        now_ms: i64,
        batch: Batch,
        state: SeriesState,
    ) -> (Batch, SeriesState, Result<CheckOutput, PluginError>) {
        let n = batch.series.len();
        let wit_batch = bindings::Batch {
            series: batch.series,
            offsets: batch.offsets,
            timestamps: batch.timestamps,
            values: batch.values,
        };
        let wit_state = bindings::State {
            offsets: state.offsets,
            data: state.data,
        };
        let result = self
            .slot
            .call(|w, store| w.call_evaluate(store, now_ms, &wit_batch, &wit_state));
        let batch = Batch {
            series: wit_batch.series,
            offsets: wit_batch.offsets,
            timestamps: wit_batch.timestamps,
            values: wit_batch.values,
        };
        let state = SeriesState {
            offsets: wit_state.offsets,
            data: wit_state.data,
        };
        let out = match result {
            Ok(Ok(out)) => convert_output(out, n),
            Ok(Err(msg)) => Err(PluginError::Failed(msg)),
            Err(e) => Err(e),
        };
        (batch, state, out)
    }
}

fn convert_output(out: bindings::Output, n: usize) -> Result<CheckOutput, PluginError> {
    if out.verdicts.len() != n {
        return Err(PluginError::BadOutput(format!(
            "{} verdicts for {n} series",
            out.verdicts.len()
        )));
    }
    let offsets_ok = out.state.offsets.len() == n + 1
        && out.state.offsets.windows(2).all(|w| w[0] <= w[1])
        && out
            .state
            .offsets
            .last()
            .is_some_and(|&l| l as usize == out.state.data.len());
    if !offsets_ok {
        return Err(PluginError::BadOutput(format!(
            "state offsets do not describe {n} series over {} bytes",
            out.state.data.len()
        )));
    }
    let verdicts = out
        .verdicts
        .into_iter()
        .map(|v| Verdict {
            status: match v.status {
                bindings::Status::Ok => Status::Ok,
                bindings::Status::Firing => Status::Firing,
                bindings::Status::NoData => Status::NoData,
            },
            score: v.score,
            message: v.message,
            band: v.band.map(|b| Band {
                lower: b.lower,
                upper: b.upper,
            }),
        })
        .collect();
    Ok(CheckOutput {
        verdicts,
        state: SeriesState {
            offsets: out.state.offsets,
            data: out.state.data,
        },
    })
}

/// Calls `info` on a fresh instance, under the load limits.
pub(crate) fn read_info(
    sandbox: &Sandbox,
    pre: &bindings::CheckPre<HostState>,
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
        kind: PluginKind::Check,
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
