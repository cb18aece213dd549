//! Checks: judge every series of one rule in one call.
//!
//! The record types ([`Batch`], [`State`], [`Verdict`], ...) are the ones the
//! WIT bindings generate, so the columnar batch the host sends is read in
//! place and the verdicts are returned without a conversion copy.
//!
//! A check comes in one of two forms:
//! - **per series** (most checks): a function of one [`Series`] and its
//!   state. It judges the series the query returned at this evaluation;
//!   series that vanished since an earlier one get an ok verdict (so an
//!   alert on them resolves, as in Prometheus) and keep their state.
//! - **batch**: a function of the whole [`Batch`], every series' state and
//!   the rule's own state, returning [`Verdicts`]. It sees vanished series
//!   and whether the query matched anything, can group series (the `le`
//!   buckets of a histogram), and may judge the rule as a whole.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use vigil_plugin_sdk_bindings_check::{
    Band, Batch, Context, LabelColumns, Labels, Output, ParamDoc, PluginInfo, Series, State,
    Status, Verdict,
};

/// The verdict on a vanished series of a per-series check.
const VANISHED: &str = "series vanished";

/// What a batch-form check returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdicts {
    /// One verdict per series, in batch order.
    pub series: Vec<Verdict>,
    /// A verdict about the rule as a whole (alerting with the rule's labels
    /// only), e.g. for a query that has matched nothing for too long.
    pub rule: Option<Verdict>,
}

impl From<Vec<Verdict>> for Verdicts {
    fn from(series: Vec<Verdict>) -> Self {
        Verdicts { series, rule: None }
    }
}

/// A check: the logic behind a `check` component.
///
/// Usually implemented by the [`check`](macro@crate::check) attribute macro on
/// a function; implement it by hand only for unusual cases. A per-series
/// check implements [`Check::evaluate_series`]; a batch check sets
/// [`Check::BATCH`] and implements [`Check::evaluate_batch`].
pub trait Check {
    /// The rule's `params` table, deserialized from JSON.
    type Params: DeserializeOwned;
    /// Learned state kept per series; `()` for a stateless check.
    type State: Serialize + DeserializeOwned + Default;
    /// Learned state kept for the rule as a whole (batch checks); `()` for none.
    type RuleState: Serialize + DeserializeOwned + Default;

    /// Whether [`evaluate`] calls [`Check::evaluate_batch`] rather than
    /// [`Check::try_evaluate_series`] once per returned series.
    const BATCH: bool = false;

    /// Name, version, description and parameter docs.
    fn info() -> PluginInfo;

    /// Checks parameters beyond what their types enforce; the error is
    /// reported by `configure`, before the first evaluation.
    fn validate(params: &Self::Params) -> Result<(), String> {
        let _ = params;
        Ok(())
    }

    /// Judges one series the query returned, updating its state.
    ///
    /// The default (for batch checks, which never get here) is no-data.
    fn evaluate_series(
        params: &Self::Params,
        ctx: &Context,
        series: &Series<'_>,
        state: &mut Self::State,
    ) -> Verdict {
        let _ = (params, ctx, series, state);
        Verdict::no_data()
    }

    /// Like [`Check::evaluate_series`], but may fail the whole evaluation.
    ///
    /// [`evaluate`] calls this one; the default calls `evaluate_series`.
    #[inline]
    fn try_evaluate_series(
        params: &Self::Params,
        ctx: &Context,
        series: &Series<'_>,
        state: &mut Self::State,
    ) -> Result<Verdict, String> {
        Ok(Self::evaluate_series(params, ctx, series, state))
    }

    /// Judges the whole batch: `states[i]` belongs to series `i`, `rule` to
    /// the rule. [`evaluate`] calls it when [`Check::BATCH`] is set; the
    /// default does what a per-series check does.
    fn evaluate_batch(
        params: &Self::Params,
        ctx: &Context,
        batch: &Batch,
        states: &mut [Self::State],
        rule: &mut Self::RuleState,
    ) -> Result<Verdicts, String> {
        let _ = rule;
        let mut verdicts = Vec::with_capacity(batch.len());
        for (series, state) in batch.iter().zip(states.iter_mut()) {
            verdicts.push(match series.vanished {
                true => Verdict::ok(0.0).with_message(VANISHED),
                false => Self::try_evaluate_series(params, ctx, &series, state)?,
            });
        }
        Ok(verdicts.into())
    }
}

/// Parses and validates a check's parameters (the rule's `params` as JSON).
///
/// An empty string counts as `{}`. Errors name the offending field, e.g.
/// ``invalid params: `above`: invalid type: string "x", expected f64``.
pub fn configure<C: Check>(json: &str) -> Result<C::Params, String> {
    let params = crate::parse_params::<C::Params>(json)?;
    C::validate(&params).map_err(|e| format!("invalid params: {e}"))?;
    Ok(params)
}

/// Evaluates every series of `batch` in one pass.
///
/// Checks that the batch and the state are consistent, decodes each slot's
/// state (empty or undecodable bytes give the default), runs the check, and
/// encodes the new states into one columnar [`State`] with one slot per
/// series and the rule's slot last. The state passed in may be empty (no
/// state at all), cover the series only, or the series and the rule. Never
/// panics on malformed input: it returns `Err`.
///
/// A per-series check streams: each series' state is decoded, judged and
/// encoded in turn, and a vanished series' state bytes are copied through.
pub fn evaluate<C: Check>(
    params: &C::Params,
    now: i64,
    batch: &Batch,
    state: &State,
) -> Result<Output, String> {
    let n = batch.series.len();
    if batch.timestamps.len() != batch.values.len() {
        return Err(format!(
            "malformed batch: {} timestamps but {} values",
            batch.timestamps.len(),
            batch.values.len()
        ));
    }
    check_offsets("batch", &batch.offsets, n, batch.values.len())?;
    check_labels(&batch.labels, n)?;
    if batch.matched as usize > n {
        return Err(format!(
            "malformed batch: {} series matched but the batch has {n}",
            batch.matched
        ));
    }
    let has_state = !state.offsets.is_empty();
    if has_state {
        let slots = if state.offsets.len() == n + 2 {
            n + 1
        } else {
            n
        };
        check_offsets("state", &state.offsets, slots, state.data.len())?;
    }
    let slot = |i: usize| if has_state { state.get(i) } else { None };
    let ctx = Context { now };
    let mut offsets = Vec::with_capacity(n + 2);
    // The new state is usually about as large as the old one.
    let mut data = Vec::with_capacity(state.data.len());
    offsets.push(0u32);
    let push_end = |offsets: &mut Vec<u32>, data: &Vec<u8>| match u32::try_from(data.len()) {
        Ok(len) => {
            offsets.push(len);
            Ok(())
        }
        Err(_) => Err("state exceeds 4 GiB".to_string()),
    };

    let mut verdicts = Vec::with_capacity(n);
    let rule_verdict = if C::BATCH {
        let mut states: Vec<C::State> = (0..n)
            .map(|i| slot(i).map(decode_state).unwrap_or_default())
            .collect();
        let mut rule: C::RuleState = slot(n).map(decode_state).unwrap_or_default();
        let out = C::evaluate_batch(params, &ctx, batch, &mut states, &mut rule)?;
        if out.series.len() != n {
            return Err(format!(
                "the check returned {} verdicts for {n} series",
                out.series.len()
            ));
        }
        verdicts = out.series;
        for s in &states {
            encode_state(s, &mut data)?;
            push_end(&mut offsets, &data)?;
        }
        encode_state(&rule, &mut data)?;
        push_end(&mut offsets, &data)?;
        out.rule
    } else {
        for i in 0..n {
            let Some(series) = batch.get(i) else {
                return Err(format!("malformed batch: series {i} is out of range"));
            };
            if series.vanished {
                verdicts.push(Verdict::ok(0.0).with_message(VANISHED));
                data.extend_from_slice(slot(i).unwrap_or_default());
            } else {
                let mut series_state: C::State = slot(i).map(decode_state).unwrap_or_default();
                verdicts.push(C::try_evaluate_series(
                    params,
                    &ctx,
                    &series,
                    &mut series_state,
                )?);
                encode_state(&series_state, &mut data)?;
            }
            push_end(&mut offsets, &data)?;
        }
        // A per-series check keeps no rule state; keep what is there.
        data.extend_from_slice(slot(n).unwrap_or_default());
        push_end(&mut offsets, &data)?;
        None
    };
    Ok(Output {
        verdicts,
        state: State { offsets, data },
        rule_verdict,
    })
}

/// The label columns cover `n` series (or none at all), every index is in
/// the string table, and the table's offsets are on character boundaries.
fn check_labels(labels: &LabelColumns, n: usize) -> Result<(), String> {
    if labels.names.len() != labels.values.len() {
        return Err(format!(
            "malformed labels: {} names but {} values",
            labels.names.len(),
            labels.values.len()
        ));
    }
    if !labels.is_unlabelled() {
        check_offsets("labels", &labels.offsets, n, labels.names.len())?;
    }
    let strings = &labels.strings;
    if let Some(i) = strings.windows(2).position(|w| w[1] < w[0]) {
        return Err(format!("malformed labels: string offsets decrease at {i}"));
    }
    if let Some(&bad) = strings
        .iter()
        .find(|&&o| !labels.text.is_char_boundary(o as usize))
    {
        return Err(format!(
            "malformed labels: string offset {bad} is not a character boundary of {} bytes",
            labels.text.len()
        ));
    }
    let count = strings.len().saturating_sub(1);
    if let Some(&k) = labels
        .names
        .iter()
        .chain(&labels.values)
        .find(|&&k| k as usize >= count)
    {
        return Err(format!(
            "malformed labels: string {k} is out of a table of {count}"
        ));
    }
    Ok(())
}

/// `offsets` must have `n + 1` entries, start at 0, never decrease and end at `len`.
fn check_offsets(what: &str, offsets: &[u32], n: usize, len: usize) -> Result<(), String> {
    if offsets.len() != n + 1 {
        return Err(format!(
            "malformed {what}: {} offsets for {n} series (expected {})",
            offsets.len(),
            n + 1
        ));
    }
    if offsets[0] != 0 {
        return Err(format!(
            "malformed {what}: offsets[0] is {}, expected 0",
            offsets[0]
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(format!(
            "malformed {what}: offsets decrease at series {i} ({} then {})",
            offsets[i],
            offsets[i + 1]
        ));
    }
    let last = offsets[n] as usize;
    if last != len {
        return Err(format!(
            "malformed {what}: last offset is {last} but there are {len} {}",
            match what {
                "state" => "bytes",
                "labels" => "labels",
                _ => "points",
            }
        ));
    }
    Ok(())
}

/// The part of `series` after `last`, the timestamp of the last point a
/// stateful check folded into its state; the whole series when `last` is
/// `None` (first call, or the state was lost and is replayed).
///
/// The host sends the whole window at each evaluation, while a check that
/// keeps running statistics (an EWMA, a learned model) must fold each point
/// in exactly once. Timestamps ascend, so the new points are a suffix: it
/// is found scanning from the end, which touches only the new points
/// (usually one), not the whole window.
///
/// ```
/// use vigil_plugin_sdk::check::{Series, points_after};
/// let s = Series::new(1, &[10, 20, 30], &[1.0, 2.0, 3.0]);
/// assert_eq!(points_after(&s, Some(20)).iter().collect::<Vec<_>>(), [(30, 3.0)]);
/// assert_eq!(points_after(&s, None).len(), 3);
/// ```
#[inline]
pub fn points_after<'a>(series: &Series<'a>, last: Option<i64>) -> Series<'a> {
    let from = match last {
        Some(last) => series
            .timestamps
            .iter()
            .rposition(|&t| t <= last)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    Series {
        timestamps: series.timestamps.get(from..).unwrap_or_default(),
        values: series.values.get(from..).unwrap_or_default(),
        ..*series
    }
}

/// Decodes one series' state: `S::default()` when `bytes` is empty or is not
/// exactly one encoded `S`.
pub fn decode_state<S: DeserializeOwned + Default>(bytes: &[u8]) -> S {
    if bytes.is_empty() {
        return S::default();
    }
    match postcard::take_from_bytes::<S>(bytes) {
        Ok((state, [])) => state,
        _ => S::default(),
    }
}

/// Decodes the state of series `i` of a columnar [`State`] (`S::default()`
/// if the state does not cover it or is undecodable).
pub fn decode_state_at<S: DeserializeOwned + Default>(state: &State, i: usize) -> S {
    state.get(i).map(decode_state).unwrap_or_default()
}

/// Appends the encoding of `state` to `out`.
pub fn encode_state<S: Serialize>(state: &S, out: &mut Vec<u8>) -> Result<(), String> {
    postcard::serialize_with_flavor(state, AppendVec(out))
        .map_err(|e| format!("cannot encode state: {e}"))
}

/// A postcard flavor appending to a borrowed `Vec`, so all series share one buffer.
struct AppendVec<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Count {
        seen: u64,
        last: f64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        limit: f64,
    }

    struct Counting;

    impl Check for Counting {
        type Params = P;
        type State = Count;
        type RuleState = ();

        fn info() -> PluginInfo {
            PluginInfo {
                name: "counting".into(),
                version: "0".into(),
                description: String::new(),
                params: Vec::new(),
            }
        }

        fn evaluate_series(p: &P, _: &Context, s: &Series<'_>, st: &mut Count) -> Verdict {
            st.seen += s.len() as u64;
            match s.last() {
                None => Verdict::no_data(),
                Some((_, v)) => {
                    st.last = v;
                    if v > p.limit {
                        Verdict::firing(v)
                    } else {
                        Verdict::ok(v)
                    }
                }
            }
        }
    }

    fn batch() -> Batch {
        let mut b = Batch::default();
        b.push_series(1, &[1, 2, 3], &[1.0, 2.0, 3.0]);
        b.push_series(2, &[], &[]);
        b.push_series(3, &[5], &[0.5]);
        b
    }

    #[test]
    fn evaluates_and_round_trips_state() {
        let p = configure::<Counting>(r#"{"limit": 2}"#).unwrap();
        let out = evaluate::<Counting>(&p, 0, &batch(), &State::default()).unwrap();
        let statuses: Vec<_> = out.verdicts.iter().map(|v| v.status).collect();
        assert_eq!(statuses, [Status::Firing, Status::NoData, Status::Ok]);
        // One slot per series, then the rule's (empty: a per-series check).
        assert_eq!(out.state.offsets.len(), 5);
        assert_eq!(out.state.get(3), Some(&[][..]));
        assert_eq!(
            decode_state_at::<Count>(&out.state, 0),
            Count { seen: 3, last: 3.0 }
        );
        let again = evaluate::<Counting>(&p, 0, &batch(), &out.state).unwrap();
        assert_eq!(
            decode_state_at::<Count>(&again.state, 0),
            Count { seen: 6, last: 3.0 }
        );
        assert_eq!(
            decode_state_at::<Count>(&again.state, 2),
            Count { seen: 2, last: 0.5 }
        );
    }

    #[test]
    fn corrupt_state_decodes_as_default() {
        let p = P { limit: 2.0 };
        let state = State {
            offsets: vec![0, 3, 3, 20],
            data: vec![0xff; 20],
        };
        let out = evaluate::<Counting>(&p, 0, &batch(), &state).unwrap();
        assert_eq!(
            decode_state_at::<Count>(&out.state, 0),
            Count { seen: 3, last: 3.0 }
        );
        // Trailing bytes after a valid encoding count as corrupt too.
        let mut bytes = Vec::new();
        encode_state(&Count { seen: 9, last: 1.0 }, &mut bytes).unwrap();
        bytes.push(0);
        assert_eq!(decode_state::<Count>(&bytes), Count::default());
    }

    #[test]
    fn rejects_malformed_batches_without_panicking() {
        let p = P { limit: 2.0 };
        let ok = batch();
        let cases: Vec<(Batch, &str)> = vec![
            (
                Batch {
                    offsets: vec![0, 3, 3],
                    ..ok.clone()
                },
                "3 offsets for 3 series",
            ),
            (
                Batch {
                    offsets: vec![1, 3, 3, 4],
                    ..ok.clone()
                },
                "offsets[0] is 1",
            ),
            (
                Batch {
                    offsets: vec![0, 3, 2, 4],
                    ..ok.clone()
                },
                "offsets decrease at series 1",
            ),
            (
                Batch {
                    offsets: vec![0, 3, 3, 9],
                    ..ok.clone()
                },
                "last offset is 9 but there are 4 points",
            ),
            (
                Batch {
                    values: vec![1.0],
                    ..ok.clone()
                },
                "4 timestamps but 1 values",
            ),
            (
                Batch {
                    offsets: vec![],
                    ..ok.clone()
                },
                "0 offsets for 3 series",
            ),
        ];
        for (b, want) in cases {
            let err = evaluate::<Counting>(&p, 0, &b, &State::default()).unwrap_err();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        let bad_state = State {
            offsets: vec![0, 1],
            data: vec![0],
        };
        let err = evaluate::<Counting>(&p, 0, &ok, &bad_state).unwrap_err();
        assert!(
            err.contains("malformed state: 2 offsets for 3 series"),
            "{err}"
        );
    }

    #[test]
    fn configure_names_the_field() {
        let err = configure::<Counting>(r#"{"limit": "x"}"#).err().unwrap();
        assert!(
            err.contains("`limit`") && err.contains("invalid type"),
            "{err}"
        );
        let err = configure::<Counting>(r#"{"limit": 1, "limt": 2}"#)
            .err()
            .unwrap();
        assert!(err.contains("unknown field `limt`"), "{err}");
        let err = configure::<Counting>("{}").err().unwrap();
        assert!(err.contains("missing field `limit`"), "{err}");
        let err = configure::<Counting>(r#"{"limit": 1} x"#).err().unwrap();
        assert!(err.contains("trailing characters"), "{err}");
    }

    #[test]
    fn series_helpers() {
        let b = batch();
        let s = b.get(0).unwrap();
        assert_eq!(s.last(), Some((3, 3.0)));
        assert_eq!(s.len(), 3);
        assert!(b.get(1).unwrap().is_empty());
        assert_eq!(b.get(1).unwrap().last(), None);
        assert!(b.get(3).is_none());
        let v = Verdict::firing(2.0).with_message("m").with_band(0.0, 1.0);
        assert_eq!(v.message.as_deref(), Some("m"));
        assert_eq!(
            v.band,
            Some(Band {
                lower: 0.0,
                upper: 1.0
            })
        );
        assert!(v.is_firing());
    }

    /// A batch check: counts the series per `job`, judges vanished series,
    /// and remembers for the rule how many evaluations matched nothing.
    struct PerJob;

    impl Check for PerJob {
        type Params = ();
        type State = u32;
        type RuleState = u32;
        const BATCH: bool = true;

        fn info() -> PluginInfo {
            <Counting as Check>::info()
        }

        fn evaluate_batch(
            _: &(),
            ctx: &Context,
            batch: &Batch,
            states: &mut [u32],
            rule: &mut u32,
        ) -> Result<Verdicts, String> {
            let mut series = Vec::new();
            for (s, st) in batch.iter().zip(states.iter_mut()) {
                *st += 1;
                let job = s.labels().get("job").unwrap_or("none");
                let same = batch
                    .iter()
                    .filter(|o| o.labels().get("job") == Some(job))
                    .count();
                series.push(match s.is_vanished() {
                    true => Verdict::firing(ctx.now as f64).with_label("job", job),
                    false => Verdict::ok(same as f64).with_severity(job),
                });
            }
            if batch.matched_nothing() {
                *rule += 1;
            }
            let rule = (*rule > 0).then(|| Verdict::firing(f64::from(*rule)));
            Ok(Verdicts { series, rule })
        }
    }

    fn labelled() -> Batch {
        let mut b = Batch::default();
        b.push_labeled(1, &[("job", "a"), ("__name__", "up")], &[1], &[1.0]);
        b.push_labeled(2, &[("job", "b")], &[1], &[1.0]);
        b.push_vanished(3, &[("job", "a")], &[0], &[1.0]);
        b
    }

    #[test]
    fn labels_are_read_in_place_and_sorted() {
        let b = labelled();
        let s = b.get(0).unwrap();
        let pairs: Vec<_> = s.labels().iter().collect();
        assert_eq!(pairs, [("__name__", "up"), ("job", "a")]);
        assert_eq!(s.labels().get("job"), Some("a"));
        assert_eq!(s.labels().get("nope"), None);
        assert_eq!(
            format!("{:?}", s.labels()),
            r#"{"__name__": "up", "job": "a"}"#
        );
        assert!(!s.is_vanished());
        assert!(b.get(2).unwrap().is_vanished());
        assert_eq!((b.matched(), b.len()), (2, 3));
        // Series pushed without labels, and a host sending no labels at all.
        let mut plain = Batch::default();
        plain.push_series(9, &[1], &[1.0]);
        plain.push_labeled(8, &[("a", "b")], &[1], &[1.0]);
        assert!(plain.get(0).unwrap().labels().is_empty());
        assert_eq!(plain.get(1).unwrap().labels().len(), 1);
        let bare = Batch {
            labels: LabelColumns {
                text: String::new(),
                strings: Vec::new(),
                offsets: Vec::new(),
                names: Vec::new(),
                values: Vec::new(),
            },
            ..plain.clone()
        };
        let out = evaluate::<Counting>(&P { limit: 0.0 }, 0, &bare, &State::default()).unwrap();
        assert_eq!(out.verdicts.len(), 2);
    }

    #[test]
    #[should_panic(expected = "before the vanished ones")]
    fn returned_series_come_first() {
        let mut b = Batch::default();
        b.push_vanished(1, &[], &[], &[]);
        b.push_series(2, &[], &[]);
    }

    #[test]
    fn per_series_checks_resolve_vanished_series_and_keep_their_state() {
        let p = P { limit: 0.5 };
        let mut b = Batch::default();
        b.push_series(1, &[1, 2], &[1.0, 2.0]);
        b.push_vanished(2, &[], &[1], &[9.0]);
        let mut bytes = Vec::new();
        encode_state(&Count { seen: 4, last: 9.0 }, &mut bytes).unwrap();
        let state = State {
            offsets: vec![0, 0, bytes.len() as u32],
            data: bytes.clone(),
        };
        let out = evaluate::<Counting>(&p, 2, &b, &state).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Firing);
        assert_eq!(out.verdicts[1].status, Status::Ok);
        assert_eq!(out.verdicts[1].message.as_deref(), Some("series vanished"));
        // The vanished series' bytes come back untouched; the rule slot is empty.
        assert_eq!(out.state.get(1), Some(&bytes[..]));
        assert_eq!(out.state.get(2), Some(&[][..]));
        assert_eq!(out.rule_verdict, None);
    }

    #[test]
    fn batch_checks_see_everything_and_keep_rule_state() {
        let b = labelled();
        let out = evaluate::<PerJob>(&(), 7, &b, &State::default()).unwrap();
        let v = &out.verdicts;
        assert_eq!((v[0].score, v[0].severity.as_deref()), (2.0, Some("a")));
        assert_eq!((v[1].score, v[1].severity.as_deref()), (1.0, Some("b")));
        assert_eq!(v[2].status, Status::Firing);
        assert_eq!(v[2].labels, [("job".to_string(), "a".to_string())]);
        assert_eq!(out.rule_verdict, None);
        assert_eq!(out.state.offsets.len(), 5);
        assert_eq!(decode_state_at::<u32>(&out.state, 2), 1);

        // Nothing matched twice: the rule's state counts it, through bytes.
        let empty = Batch::default();
        let once = evaluate::<PerJob>(&(), 8, &empty, &out.state).unwrap_err();
        assert!(once.contains("malformed state"), "{once}");
        let first = evaluate::<PerJob>(&(), 8, &empty, &State::default()).unwrap();
        assert_eq!(first.state.offsets.len(), 2);
        let second = evaluate::<PerJob>(&(), 9, &empty, &first.state).unwrap();
        assert_eq!(second.rule_verdict.map(|v| v.score), Some(2.0));
    }

    #[test]
    fn rejects_malformed_labels() {
        let p = P { limit: 2.0 };
        let ok = labelled();
        let with = |f: &dyn Fn(&mut LabelColumns)| {
            let mut b = ok.clone();
            f(&mut b.labels);
            evaluate::<Counting>(&p, 0, &b, &State::default()).unwrap_err()
        };
        let cases: Vec<(String, &str)> = vec![
            (
                with(&|l| l.values.pop().map(drop).unwrap_or(())),
                "names but",
            ),
            (
                with(&|l| l.offsets.truncate(2)),
                "malformed labels: 2 offsets for 3 series",
            ),
            (with(&|l| l.names[0] = 99), "string 99 is out of a table"),
            (
                with(&|l| {
                    l.text = "é".repeat(l.text.len());
                    l.strings[1] = 1;
                }),
                "not a character boundary",
            ),
            (with(&|l| l.strings.swap(1, 2)), "string offsets decrease"),
        ];
        for (err, want) in cases {
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        let mut b = ok.clone();
        b.matched = 4;
        let err = evaluate::<Counting>(&p, 0, &b, &State::default()).unwrap_err();
        assert!(
            err.contains("4 series matched but the batch has 3"),
            "{err}"
        );
    }

    #[test]
    fn points_after_is_the_unprocessed_suffix() {
        let s = Series::new(7, &[10, 20, 30], &[1.0, 2.0, 3.0]);
        let after = |last| points_after(&s, last).iter().collect::<Vec<_>>();
        assert_eq!(after(None), [(10, 1.0), (20, 2.0), (30, 3.0)]);
        assert_eq!(after(Some(5)), [(10, 1.0), (20, 2.0), (30, 3.0)]);
        assert_eq!(after(Some(15)), [(20, 2.0), (30, 3.0)]);
        assert_eq!(after(Some(30)), []);
        assert_eq!(after(Some(99)), []);
        assert_eq!(points_after(&s, Some(20)).id, 7);
        // More timestamps than values: never more points than pairs.
        let short = Series::new(1, &[10, 20, 30], &[1.0]);
        assert!(points_after(&short, Some(10)).iter().next().is_none());
    }
}
