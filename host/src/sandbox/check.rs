//! Check plugins: one call per rule evaluation with every series in it.
//!
//! Two versions of the check world are loaded side by side, told apart by
//! the types of the component's exports: `vigil:plugin@0.2.0` (labels,
//! vanished series, severities, rule verdicts, rule state) and `@0.1.0`
//! (windows and per-series state only). Callers speak 0.2.0; [`CheckInstance`]
//! adapts a 0.1.0 plugin: it gets only the series the query returned, the
//! vanished ones get an ok verdict (so their alerts resolve, as before
//! 0.2.0) and keep their state, and the rule's state passes through.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::Store;

use super::wasi::HostState;
use super::{
    Contract, Limits, ParamDoc, Plugin, PluginError, PluginInfo, PluginKind, Pre, Sandbox, Slot,
    World, arm_deadline, classify,
};

pub(crate) mod bindings {
    pub(crate) mod v0_1 {
        wasmtime::component::bindgen!({
            world: "check",
            path: "../plugin-sdk/wit/vigil-plugin.wit",
        });
    }
    pub(crate) mod v0_2 {
        wasmtime::component::bindgen!({
            world: "check",
            path: "../plugin-sdk/wit/vigil-plugin-0.2.0.wit",
        });
    }
}

use bindings::{v0_1, v0_2};

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

/// The labels of a batch's series, column-wise with one string table (the
/// WIT `label-columns`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelColumns {
    pub text: String,
    /// String `k` is `text[strings[k]..strings[k+1]]`.
    pub strings: Vec<u32>,
    /// Series `i` owns `names[offsets[i]..offsets[i+1]]` and the same `values`.
    pub offsets: Vec<u32>,
    pub names: Vec<u32>,
    pub values: Vec<u32>,
}

impl Default for LabelColumns {
    /// No series.
    fn default() -> Self {
        LabelColumns {
            text: String::new(),
            strings: vec![0],
            offsets: vec![0],
            names: Vec::new(),
            values: Vec::new(),
        }
    }
}

/// A rule's label columns, rebuilt only when its series change.
///
/// Series labels are fixed for a series' life and a rule's series are
/// usually the same from one evaluation to the next, so the columns of the
/// last batch are kept and sent again: building them interns every string
/// (a hash lookup per label), sending them is a copy.
#[derive(Debug, Default)]
pub struct LabelCache {
    ids: Vec<u64>,
    columns: LabelColumns,
    index: HashMap<String, u32>,
}

impl LabelCache {
    /// Makes the columns describe the series `ids`, asking `labels(k)` for
    /// the labels of `ids[k]` (sorted by name) only when the ids differ from
    /// the last call's. Ids are series fingerprints: the same id, the same
    /// labels.
    pub fn update<'a, I>(&mut self, ids: &[u64], mut labels: impl FnMut(usize) -> I)
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        if self.ids == ids {
            return;
        }
        self.ids.clear();
        self.ids.extend_from_slice(ids);
        self.index.clear();
        let c = &mut self.columns;
        c.text.clear();
        c.strings.clear();
        c.strings.push(0);
        c.offsets.clear();
        c.offsets.push(0);
        c.names.clear();
        c.values.clear();
        for k in 0..ids.len() {
            for (name, value) in labels(k) {
                let n = intern(&mut self.index, c, name);
                let v = intern(&mut self.index, c, value);
                c.names.push(n);
                c.values.push(v);
            }
            c.offsets.push(offset(c.names.len()));
        }
    }

    /// The columns of the last [`LabelCache::update`].
    pub fn columns(&self) -> &LabelColumns {
        &self.columns
    }
}

fn intern(index: &mut HashMap<String, u32>, c: &mut LabelColumns, s: &str) -> u32 {
    if let Some(&k) = index.get(s) {
        return k;
    }
    let k = offset(c.strings.len() - 1);
    c.text.push_str(s);
    c.strings.push(offset(c.text.len()));
    index.insert(s.to_string(), k);
    k
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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

/// A check's judgement of one series (or of the rule).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub status: Status,
    pub score: f64,
    pub message: Option<String>,
    pub band: Option<Band>,
    /// The alert's `severity` label, overriding the rule's; `Some("")`
    /// removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Labels added to the alert; an empty value removes the label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
}

impl Verdict {
    /// An ok verdict with a message and nothing else.
    fn ok(message: &str) -> Self {
        Verdict {
            status: Status::Ok,
            score: 0.0,
            message: Some(message.to_string()),
            band: None,
            severity: None,
            labels: Vec::new(),
        }
    }
}

/// What one evaluation sends besides `now`: the batch, how many of its
/// series the query returned (the first ones; the rest vanished), the
/// per-series state aligned with the batch, and the rule's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckInput {
    pub batch: Batch,
    pub matched: usize,
    pub state: SeriesState,
    pub rule_state: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckOutput {
    /// One per batch series, in batch order.
    pub verdicts: Vec<Verdict>,
    /// The new state, aligned with the batch series.
    pub state: SeriesState,
    /// The verdict on the rule as a whole, if the check gave one.
    pub rule_verdict: Option<Verdict>,
    /// The rule's new state.
    pub rule_state: Vec<u8>,
}

impl World for v0_1::Check {
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        match &plugin.pre {
            Pre::CheckV0_1(pre) => pre.instantiate(store),
            _ => Err(wasmtime::Error::msg(
                "not a vigil:plugin/check@0.1.0 plugin",
            )),
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

impl World for v0_2::Check {
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        match &plugin.pre {
            Pre::CheckV0_2(pre) => pre.instantiate(store),
            _ => Err(wasmtime::Error::msg(
                "not a vigil:plugin/check@0.2.0 plugin",
            )),
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

/// The live instance, in the version the plugin was built against.
enum Versioned {
    V0_1(Slot<v0_1::Check>),
    V0_2(Slot<v0_2::Check>),
}

/// One rule's instance of a check plugin, configured with the rule's params.
pub struct CheckInstance {
    slot: Versioned,
}

impl CheckInstance {
    /// Instantiates and configures: bad parameters fail here, before any tick.
    pub fn new(
        sandbox: &Sandbox,
        plugin: Arc<Plugin>,
        params: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, PluginError> {
        let slot = match &plugin.pre {
            Pre::CheckV0_1(_) => Versioned::V0_1(Slot::new(sandbox, plugin, params, limits)?),
            Pre::CheckV0_2(_) => Versioned::V0_2(Slot::new(sandbox, plugin, params, limits)?),
            Pre::Notifier(_) => {
                return Err(PluginError::KindMismatch {
                    expected: PluginKind::Check,
                    found: plugin.info.kind,
                });
            }
        };
        Ok(CheckInstance { slot })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        match &self.slot {
            Versioned::V0_1(s) => &s.plugin,
            Versioned::V0_2(s) => &s.plugin,
        }
    }

    /// Judges every series of `batch` in one call, as if the query returned
    /// all of them, with no labels and no rule state.
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
        let mut labels = LabelCache::default();
        labels.update(&batch.series, |_| std::iter::empty());
        let input = CheckInput {
            matched: batch.series.len(),
            batch,
            state,
            rule_state: Vec::new(),
        };
        let (input, out) = self.evaluate_rule(now_ms, input, &mut labels);
        (input.batch, input.state, out)
    }

    /// Judges every series of one rule evaluation in one call: the series
    /// the query returned, then (`input.matched..`) the ones that vanished,
    /// with their labels from `labels` (which must describe the batch's
    /// series). Buffers come back as in [`CheckInstance::evaluate`].
    pub fn evaluate_rule(
        &mut self,
        now_ms: i64,
        input: CheckInput,
        labels: &mut LabelCache,
    ) -> (CheckInput, Result<CheckOutput, PluginError>) {
        match &mut self.slot {
            Versioned::V0_2(slot) => evaluate_v0_2(slot, now_ms, input, &mut labels.columns),
            Versioned::V0_1(slot) => evaluate_v0_1(slot, now_ms, input),
        }
    }
}

fn evaluate_v0_2(
    slot: &mut Slot<v0_2::Check>,
    now_ms: i64,
    input: CheckInput,
    labels: &mut LabelColumns,
) -> (CheckInput, Result<CheckOutput, PluginError>) {
    let CheckInput {
        batch,
        matched,
        mut state,
        rule_state,
    } = input;
    let n = batch.series.len();
    // The rule's slot goes after the series' (the caller's state covers the
    // series only), and comes off again afterwards.
    if state.offsets.len() != n + 1 {
        state = SeriesState::empty(n);
    }
    let series_bytes = state.data.len();
    state.data.extend_from_slice(&rule_state);
    state.offsets.push(offset(state.data.len()));
    let wit_batch = v0_2::Batch {
        series: batch.series,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
        values: batch.values,
        labels: std::mem::take(labels).into_wit(),
        matched: offset(matched.min(n)),
    };
    let wit_state = v0_2::State {
        offsets: state.offsets,
        data: state.data,
    };
    let result = slot.call(|w, store| w.call_evaluate(store, now_ms, &wit_batch, &wit_state));
    *labels = LabelColumns::from_wit(wit_batch.labels);
    let batch = Batch {
        series: wit_batch.series,
        offsets: wit_batch.offsets,
        timestamps: wit_batch.timestamps,
        values: wit_batch.values,
    };
    let mut state = SeriesState {
        offsets: wit_state.offsets,
        data: wit_state.data,
    };
    state.offsets.pop();
    state.data.truncate(series_bytes);
    let out = match result {
        Ok(Ok(out)) => convert_v0_2(out, n),
        Ok(Err(msg)) => Err(PluginError::Failed(msg)),
        Err(e) => Err(e),
    };
    let input = CheckInput {
        batch,
        matched,
        state,
        rule_state,
    };
    (input, out)
}

fn evaluate_v0_1(
    slot: &mut Slot<v0_1::Check>,
    now_ms: i64,
    input: CheckInput,
) -> (CheckInput, Result<CheckOutput, PluginError>) {
    let CheckInput {
        mut batch,
        matched,
        mut state,
        rule_state,
    } = input;
    let n = batch.series.len();
    let matched = matched.min(n);
    if state.offsets.len() != n + 1 {
        state = SeriesState::empty(n);
    }
    // 0.1.0 knows only the series the query returned: send those, keep the
    // vanished ones' state aside and put it back after their ok verdicts.
    let vanished: Vec<Vec<u8>> = (matched..n).map(|i| state.get(i).to_vec()).collect();
    let points = batch.offsets.get(matched).copied().unwrap_or(0) as usize;
    batch.series.truncate(matched);
    batch.offsets.truncate(matched + 1);
    batch.timestamps.truncate(points);
    batch.values.truncate(points);
    let bytes = state.offsets.get(matched).copied().unwrap_or(0) as usize;
    state.offsets.truncate(matched + 1);
    state.data.truncate(bytes);

    let wit_batch = v0_1::Batch {
        series: batch.series,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
        values: batch.values,
    };
    let wit_state = v0_1::State {
        offsets: state.offsets,
        data: state.data,
    };
    let result = slot.call(|w, store| w.call_evaluate(store, now_ms, &wit_batch, &wit_state));
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
        Ok(Ok(out)) => convert_v0_1(out, matched).map(|mut o| {
            for bytes in &vanished {
                o.verdicts.push(Verdict::ok("series vanished"));
                o.state.data.extend_from_slice(bytes);
                o.state.offsets.push(offset(o.state.data.len()));
            }
            o.rule_state = rule_state.clone();
            o
        }),
        Ok(Err(msg)) => Err(PluginError::Failed(msg)),
        Err(e) => Err(e),
    };
    // The caller gets its buffers back covering the series sent; it refills
    // them next time.
    let input = CheckInput {
        batch,
        matched,
        state,
        rule_state,
    };
    (input, out)
}

impl LabelColumns {
    fn into_wit(self) -> v0_2::LabelColumns {
        v0_2::LabelColumns {
            text: self.text,
            strings: self.strings,
            offsets: self.offsets,
            names: self.names,
            values: self.values,
        }
    }

    fn from_wit(c: v0_2::LabelColumns) -> Self {
        LabelColumns {
            text: c.text,
            strings: c.strings,
            offsets: c.offsets,
            names: c.names,
            values: c.values,
        }
    }
}

/// `offsets` describes `slots` slots over `len` bytes.
fn offsets_ok(offsets: &[u32], slots: usize, len: usize) -> bool {
    offsets.len() == slots + 1
        && offsets.first() == Some(&0)
        && offsets.windows(2).all(|w| w[0] <= w[1])
        && offsets.last().is_some_and(|&l| l as usize == len)
}

fn convert_v0_1(out: v0_1::Output, n: usize) -> Result<CheckOutput, PluginError> {
    if out.verdicts.len() != n {
        return Err(PluginError::BadOutput(format!(
            "{} verdicts for {n} series",
            out.verdicts.len()
        )));
    }
    if !offsets_ok(&out.state.offsets, n, out.state.data.len()) {
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
                v0_1::Status::Ok => Status::Ok,
                v0_1::Status::Firing => Status::Firing,
                v0_1::Status::NoData => Status::NoData,
            },
            score: v.score,
            message: v.message,
            band: v.band.map(|b| Band {
                lower: b.lower,
                upper: b.upper,
            }),
            severity: None,
            labels: Vec::new(),
        })
        .collect();
    Ok(CheckOutput {
        verdicts,
        state: SeriesState {
            offsets: out.state.offsets,
            data: out.state.data,
        },
        rule_verdict: None,
        rule_state: Vec::new(),
    })
}

fn convert_v0_2(out: v0_2::Output, n: usize) -> Result<CheckOutput, PluginError> {
    if out.verdicts.len() != n {
        return Err(PluginError::BadOutput(format!(
            "{} verdicts for {n} series",
            out.verdicts.len()
        )));
    }
    let mut state = SeriesState {
        offsets: out.state.offsets,
        data: out.state.data,
    };
    if !offsets_ok(&state.offsets, n + 1, state.data.len()) {
        return Err(PluginError::BadOutput(format!(
            "state offsets do not describe {n} series and the rule over {} bytes",
            state.data.len()
        )));
    }
    let series_end = state.offsets[n] as usize;
    let rule_state = state.data.split_off(series_end);
    state.offsets.pop();
    let verdicts = out
        .verdicts
        .into_iter()
        .map(convert_verdict)
        .collect::<Result<_, _>>()?;
    let rule_verdict = out.rule_verdict.map(convert_verdict).transpose()?;
    Ok(CheckOutput {
        verdicts,
        state,
        rule_verdict,
        rule_state,
    })
}

fn convert_verdict(v: v0_2::Verdict) -> Result<Verdict, PluginError> {
    for (name, _) in &v.labels {
        if !is_label_name(name) {
            return Err(PluginError::BadOutput(format!(
                "verdict label name {name:?} is not a valid label name"
            )));
        }
        if name == crate::alert::ALERTNAME {
            return Err(PluginError::BadOutput(format!(
                "a verdict cannot set `{name}`: it is the rule's name"
            )));
        }
    }
    Ok(Verdict {
        status: match v.status {
            v0_2::Status::Ok => Status::Ok,
            v0_2::Status::Firing => Status::Firing,
            v0_2::Status::NoData => Status::NoData,
        },
        score: v.score,
        message: v.message,
        band: v.band.map(|b| Band {
            lower: b.lower,
            upper: b.upper,
        }),
        severity: v.severity,
        labels: v.labels,
    })
}

/// Prometheus' label name syntax: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Calls `info` on a fresh instance of a 0.1.0 check, under the load limits.
pub(crate) fn read_info_v0_1(
    sandbox: &Sandbox,
    pre: &v0_1::CheckPre<HostState>,
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
        contract: Contract::V0_1,
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

/// Calls `info` on a fresh instance of a 0.2.0 check, under the load limits.
pub(crate) fn read_info_v0_2(
    sandbox: &Sandbox,
    pre: &v0_2::CheckPre<HostState>,
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
        contract: Contract::V0_2,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_cache_interns_and_reuses() {
        let mut cache = LabelCache::default();
        let sets = [
            vec![("job", "a"), ("le", "0.5")],
            vec![("job", "a"), ("le", "+Inf")],
        ];
        let mut asked = 0;
        cache.update(&[1, 2], |k| {
            asked += 1;
            sets[k].iter().copied()
        });
        let c = cache.columns();
        // "job", "a", "le", "0.5", "+Inf": each once.
        assert_eq!(c.text, "jobale0.5+Inf");
        assert_eq!(c.strings, [0, 3, 4, 6, 9, 13]);
        assert_eq!(c.offsets, [0, 2, 4]);
        assert_eq!(c.names, [0, 2, 0, 2]);
        assert_eq!(c.values, [1, 3, 1, 4]);
        // The same series again: nothing is rebuilt.
        cache.update(&[1, 2], |k| {
            asked += 1;
            sets[k].iter().copied()
        });
        assert_eq!(asked, 2);
        cache.update(&[2], |_| {
            asked += 1;
            sets[1].iter().copied()
        });
        assert_eq!(asked, 3);
        assert_eq!(cache.columns().text, "jobale+Inf");
        assert_eq!(cache.columns().offsets, [0, 2]);
    }

    #[test]
    fn verdict_labels_must_be_label_names() {
        let v = |labels: Vec<(&str, &str)>| v0_2::Verdict {
            status: v0_2::Status::Firing,
            score: 1.0,
            message: None,
            band: None,
            severity: Some("critical".into()),
            labels: labels
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let ok = convert_verdict(v(vec![("le", ""), ("team_2", "ml")])).unwrap();
        assert_eq!(ok.severity.as_deref(), Some("critical"));
        assert_eq!(ok.labels.len(), 2);
        for bad in ["", "2x", "a-b", "alertname"] {
            let err = convert_verdict(v(vec![(bad, "x")])).unwrap_err();
            assert!(matches!(err, PluginError::BadOutput(_)), "{bad}: {err}");
        }
    }
}
