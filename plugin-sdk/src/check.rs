//! Checks: judge every series of one rule in one call.
//!
//! The record types ([`Batch`], [`State`], [`Verdict`], ...) are the ones the
//! WIT bindings generate, so the columnar batch the host sends is read in
//! place and the verdicts are returned without a conversion copy.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use vigil_plugin_sdk_bindings_check::{
    Band, Batch, Context, Output, ParamDoc, PluginInfo, Series, State, Status, Verdict,
};

/// A check: the logic behind a `check` component.
///
/// Usually implemented by the [`check`](macro@crate::check) attribute macro on
/// a function; implement it by hand only for unusual cases.
pub trait Check {
    /// The rule's `params` table, deserialized from JSON.
    type Params: DeserializeOwned;
    /// Learned state kept per series; `()` for a stateless check.
    type State: Serialize + DeserializeOwned + Default;

    /// Name, version, description and parameter docs.
    fn info() -> PluginInfo;

    /// Checks parameters beyond what their types enforce; the error is
    /// reported by `configure`, before the first evaluation.
    fn validate(params: &Self::Params) -> Result<(), String> {
        let _ = params;
        Ok(())
    }

    /// Judges one series, updating its state.
    fn evaluate_series(
        params: &Self::Params,
        ctx: &Context,
        series: &Series<'_>,
        state: &mut Self::State,
    ) -> Verdict;

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
/// Checks that the batch's and the state's offsets are consistent (the host
/// may send an empty state, meaning "no state for any series"), decodes each
/// series' state (empty or undecodable bytes give `C::State::default()`),
/// calls [`Check::try_evaluate_series`], and encodes the new states into one
/// columnar [`State`]. Never panics on malformed input: it returns `Err`.
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
    let has_state = !state.offsets.is_empty();
    if has_state {
        check_offsets("state", &state.offsets, n, state.data.len())?;
    }

    let ctx = Context { now };
    let mut verdicts = Vec::with_capacity(n);
    let mut offsets = Vec::with_capacity(n + 1);
    // The new state is usually about as large as the old one.
    let mut data = Vec::with_capacity(state.data.len());
    offsets.push(0u32);
    let mut start = 0usize;
    let ends = batch.offsets.get(1..).unwrap_or_default();
    for (i, (&id, &end)) in batch.series.iter().zip(ends).enumerate() {
        let end = end as usize;
        let (Some(timestamps), Some(values)) = (
            batch.timestamps.get(start..end),
            batch.values.get(start..end),
        ) else {
            return Err(format!(
                "malformed batch: series {i} has offsets {start}..{end}"
            ));
        };
        start = end;
        let series = Series {
            id,
            timestamps,
            values,
        };
        let mut series_state: C::State = if has_state {
            state.get(i).map(decode_state).unwrap_or_default()
        } else {
            C::State::default()
        };
        verdicts.push(C::try_evaluate_series(
            params,
            &ctx,
            &series,
            &mut series_state,
        )?);
        encode_state(&series_state, &mut data)?;
        let Ok(len) = u32::try_from(data.len()) else {
            return Err("state exceeds 4 GiB".to_string());
        };
        offsets.push(len);
    }
    Ok(Output {
        verdicts,
        state: State { offsets, data },
    })
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
            if what == "state" { "bytes" } else { "points" }
        ));
    }
    Ok(())
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
        assert_eq!(out.state.offsets.len(), 4);
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
}
