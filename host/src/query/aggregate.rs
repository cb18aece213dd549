//! Aggregation operators (`sum by (job) (...)` and friends), step by step,
//! as Prometheus 2.42's `aggregation()` computes them.

use super::QueryError;
use super::eval::{Evaluator, Range, err};
use super::plan::{AggOp, Aggregate};
use super::value::{FastMap, Lbl, Sample, Value, View};
use crate::store::labels::Labels;

/// The largest float that converts to an int64 without overflow.
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// Grouping keys of one aggregation node, kept across its steps.
#[derive(Default)]
struct Keys {
    of_lbl: FastMap<Lbl, u32>,
    /// A label set of each key.
    reps: Vec<Lbl>,
    by_hash: FastMap<u64, Vec<u32>>,
    /// Per key: 1 + the index of its group in the current step, or 0.
    slot: Vec<usize>,
    touched: Vec<usize>,
}

struct Group {
    /// First sample of the group: its labels define the group.
    rep: Lbl,
    /// For count_values: the first sample's labels with the value label.
    rep_labels: Option<Labels>,
    value: f64,
    mean: f64,
    count: u64,
    heap: Vec<Sample>,
}

impl Evaluator<'_, '_> {
    pub fn aggregate(&mut self, agg: &Aggregate, r: Range) -> Result<Value, QueryError> {
        let n = r.len();
        let params: Option<Vec<f64>> = match &agg.param {
            Some(p) if agg.op != AggOp::CountValues => Some(self.eval_scalar(p, r)?),
            _ => None,
        };
        let steps = self.eval_vector(&agg.expr, r)?;
        let mut keys = Keys::default();
        let mut out = Vec::with_capacity(n);
        for (i, v) in steps.iter().enumerate() {
            let param = params
                .as_ref()
                .and_then(|p| p.get(i))
                .copied()
                .unwrap_or(f64::NAN);
            out.push(self.aggregate_step(agg, param, v, &mut keys)?);
        }
        Ok(Value::Vector(out))
    }

    /// The grouping key of a label set, computed once per handle.
    fn group_key(&self, agg: &Aggregate, keys: &mut Keys, lbl: Lbl) -> u32 {
        if let Some(&k) = keys.of_lbl.get(&lbl) {
            return k;
        }
        let view = self.arena.view(lbl);
        let h = agg.spec.hash(view);
        let bucket = keys.by_hash.entry(h).or_default();
        let found = bucket
            .iter()
            .copied()
            .find(|&k| agg.spec.same(self.arena.view(keys.reps[k as usize]), view));
        let k = match found {
            Some(k) => k,
            None => {
                let k = u32::try_from(keys.reps.len()).unwrap_or(u32::MAX);
                keys.reps.push(lbl);
                bucket.push(k);
                k
            }
        };
        keys.of_lbl.insert(lbl, k);
        k
    }

    fn aggregate_step(
        &mut self,
        agg: &Aggregate,
        param: f64,
        vec: &[Sample],
        keys: &mut Keys,
    ) -> Result<Vec<Sample>, QueryError> {
        let op = agg.op;
        let mut k: usize = 0;
        if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            if !(MIN_INT64..=MAX_INT64).contains(&param) {
                return Err(err(format!(
                    "Scalar value {} overflows int64",
                    go_float(param)
                )));
            }
            let ki = param as i64;
            if ki < 1 {
                return Ok(Vec::new());
            }
            k = usize::try_from(ki).unwrap_or(usize::MAX);
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut by_hash: FastMap<u64, Vec<usize>> = FastMap::default();
        for s in vec {
            let count_values_labels = agg.value_label.as_ref().map(|label| {
                let mut l = self.arena.view(s.lbl).to_labels();
                l.set(label, &format_value(s.v));
                l
            });
            let found = match &count_values_labels {
                // The value is part of the key: group by content each step.
                Some(l) => {
                    let view = View {
                        labels: l,
                        drop_name: false,
                    };
                    let bucket = by_hash.entry(agg.spec.hash(view)).or_default();
                    let found = bucket.iter().copied().find(|&g| {
                        groups[g].rep_labels.as_ref().is_some_and(|gl| {
                            agg.spec.same(
                                View {
                                    labels: gl,
                                    drop_name: false,
                                },
                                view,
                            )
                        })
                    });
                    if found.is_none() {
                        bucket.push(groups.len());
                    }
                    found
                }
                None => {
                    let k = self.group_key(agg, keys, s.lbl) as usize;
                    if keys.slot.len() <= k {
                        keys.slot.resize(k + 1, 0);
                    }
                    let found = keys.slot[k].checked_sub(1);
                    if found.is_none() {
                        keys.slot[k] = groups.len() + 1;
                        keys.touched.push(k);
                    }
                    found
                }
            };
            let Some(g) = found else {
                groups.push(Group {
                    rep: s.lbl,
                    rep_labels: count_values_labels,
                    value: match op {
                        AggOp::Stddev | AggOp::Stdvar => 0.0,
                        AggOp::Group => 1.0,
                        _ => s.v,
                    },
                    mean: s.v,
                    count: 1,
                    heap: if matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Quantile) {
                        vec![*s]
                    } else {
                        Vec::new()
                    },
                });
                continue;
            };
            let g = &mut groups[g];
            match op {
                AggOp::Sum => g.value += s.v,
                AggOp::Avg => {
                    g.count += 1;
                    if g.mean.is_infinite() {
                        if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                            continue;
                        }
                        if !s.v.is_infinite() && !s.v.is_nan() {
                            continue;
                        }
                    }
                    let c = g.count as f64;
                    g.mean += s.v / c - g.mean / c;
                }
                AggOp::Group => {}
                AggOp::Max => {
                    if g.value < s.v || g.value.is_nan() {
                        g.value = s.v;
                    }
                }
                AggOp::Min => {
                    if g.value > s.v || g.value.is_nan() {
                        g.value = s.v;
                    }
                }
                AggOp::Count | AggOp::CountValues => g.count += 1,
                AggOp::Stddev | AggOp::Stdvar => {
                    g.count += 1;
                    let delta = s.v - g.mean;
                    g.mean += delta / g.count as f64;
                    g.value += delta * (s.v - g.mean);
                }
                AggOp::Topk => heap_offer(&mut g.heap, k, *s, top_less),
                AggOp::Bottomk => heap_offer(&mut g.heap, k, *s, bottom_less),
                AggOp::Quantile => g.heap.push(*s),
            }
        }
        for k in keys.touched.drain(..) {
            keys.slot[k] = 0;
        }
        let mut out = Vec::with_capacity(groups.len());
        for mut g in groups {
            let value = match op {
                AggOp::Avg => g.mean,
                AggOp::Count | AggOp::CountValues => g.count as f64,
                AggOp::Stdvar => g.value / g.count as f64,
                AggOp::Stddev => (g.value / g.count as f64).sqrt(),
                AggOp::Topk | AggOp::Bottomk => {
                    // Best first, NaN last (Prometheus reverses its heap).
                    let less = if op == AggOp::Topk {
                        top_less
                    } else {
                        bottom_less
                    };
                    go_sort(&mut g.heap, |a, b| less(b, a));
                    out.extend(g.heap.iter().copied());
                    continue;
                }
                AggOp::Quantile => {
                    let mut values: Vec<f64> = g.heap.iter().map(|s| s.v).collect();
                    super::functions::quantile(param, &mut values)
                }
                _ => g.value,
            };
            let view = match &g.rep_labels {
                Some(l) => View {
                    labels: l,
                    drop_name: false,
                },
                None => self.arena.view(g.rep),
            };
            let pairs: Vec<(String, String)> = agg
                .spec
                .pairs(view)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let lbl = self.arena.owned(Labels::new(pairs));
            out.push(Sample { lbl, v: value });
        }
        Ok(out)
    }
}

/// Order of topk's heap: the smallest value (NaN smallest of all) on top.
fn top_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// Order of bottomk's heap: the largest value (NaN largest of all) on top.
fn bottom_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v > b.v
}

/// Offers a sample to a group's k-heap, as Prometheus does: replace the top
/// when the heap is full and the sample beats it.
fn heap_offer(heap: &mut Vec<Sample>, k: usize, s: Sample, less: fn(&Sample, &Sample) -> bool) {
    let beats_top = heap
        .first()
        .is_some_and(|top| less(top, &s) || top.v.is_nan());
    if heap.len() < k || beats_top {
        if heap.len() == k {
            if k == 1 {
                heap[0] = s;
                return;
            }
            heap_pop(heap, less);
        }
        heap.push(s);
        let j = heap.len() - 1;
        heap_up(heap, j, less);
    }
}

/// Go's `container/heap` primitives, so ties resolve exactly as there.
fn heap_up(h: &mut [Sample], mut j: usize, less: fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, n: usize, less: fn(&Sample, &Sample) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

fn heap_pop(h: &mut Vec<Sample>, less: fn(&Sample, &Sample) -> bool) {
    let Some(n) = h.len().checked_sub(1) else {
        return;
    };
    h.swap(0, n);
    heap_down(h, 0, n, less);
    h.pop();
}

/// Go's `sort.Sort` for the small slices it sorts with insertion sort
/// (up to 12 elements), so ties land where Prometheus puts them; larger
/// inputs use a stable sort on the same order.
fn go_sort(v: &mut [Sample], less: impl Fn(&Sample, &Sample) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    // A total order consistent with `less` on non-NaN values: NaN last.
    v.sort_by(|a, b| {
        use std::cmp::Ordering;
        match (a.v.is_nan(), b.v.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if less(a, b) => Ordering::Less,
            _ if less(b, a) => Ordering::Greater,
            _ => Ordering::Equal,
        }
    });
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it.
pub(crate) fn format_value(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

/// A float as Go's `%v` writes it in error messages.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: f64) -> Sample {
        Sample { lbl: 0, v }
    }

    #[test]
    fn topk_keeps_the_largest() {
        let mut heap = Vec::new();
        for v in [1.0, 5.0, f64::NAN, 3.0, 4.0] {
            heap_offer(&mut heap, 2, s(v), top_less);
        }
        go_sort(&mut heap, |a, b| top_less(b, a));
        let got: Vec<f64> = heap.iter().map(|s| s.v).collect();
        assert_eq!(got, vec![5.0, 4.0]);
    }

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(6.0), "6");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
    }
}
