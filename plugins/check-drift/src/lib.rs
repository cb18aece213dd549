//! The `drift` check: distribution drift of a histogram, such as a model's
//! input lengths (`vllm:request_prompt_tokens_bucket`) or output scores.
//!
//! A Prometheus histogram is one series per bucket (`le`), so the check
//! groups the rule's series by their labels without `le`: one group, one
//! histogram. For each it keeps two distributions over the buckets, learned
//! from what each evaluation adds to the buckets:
//! - **current**: what was observed lately, exponentially weighted with the
//!   time constant `current` (default 1h: an observation an hour old counts
//!   e^-1 as much as a new one);
//! - **reference**: what is normal, exponentially weighted with the longer
//!   time constant `reference` (default 1d), so it follows slow change and a
//!   sudden shift stands out; or, with `adapt = false`, learned over the
//!   first `reference` of data and then frozen (a fixed baseline, e.g. the
//!   week after a model release).
//!
//! Both live in the host-owned state (postcard), with the last bucket
//! counts seen, so every point is folded in exactly once: a restart or a
//! plugin reload changes no verdict, and the rule's `window` only needs to
//! cover a few evaluations.
//!
//! At each evaluation it compares the two by three measures, over the
//! buckets' proportions:
//! - **PSI** (population stability index) `Σ (p - q) ln(p / q)`, the score.
//!   Conventionally below 0.1 is stable, 0.1-0.25 a moderate shift, above
//!   0.25 a significant one.
//! - **JS**: the Jensen-Shannon divergence with base-2 logarithms, in
//!   [0, 1], symmetric and finite even with empty buckets.
//! - **KS**: the largest gap between the two cumulative distributions at
//!   the bucket bounds. The distributions within a bucket are unknown, so
//!   this is a lower bound on the Kolmogorov-Smirnov distance of the
//!   underlying distributions.
//!
//! **Zero-bin policy**: PSI divides by the proportions, so an empty bucket
//! on either side would make it infinite. Each proportion used by PSI is
//! raised to at least `epsilon` (default 1e-4) and the proportions are
//! renormalised: a bucket that was empty in the reference and holds 5% now
//! adds about 0.31, a bucket empty on both sides adds nothing. JS and KS
//! use the raw proportions.
//!
//! `levels` (least severe first) says when it fires: the most severe level
//! any of whose thresholds is exceeded names the verdict's severity, so the
//! alert's `severity` label follows it. Default: warning above PSI 0.1 or
//! JS 0.1, critical above PSI 0.25. The verdict is given on the histogram's
//! highest bucket (`le="+Inf"`) and removes the `le` label from the alert,
//! so a histogram raises one alert; its other buckets get an ok verdict.
//! A histogram is no-data until each distribution holds `min_count`
//! observations and the reference has learned for `current` (with
//! `adapt = false`: for all of `reference`).

use std::collections::BTreeMap;

use vigil_plugin_sdk::check::points_after;
use vigil_plugin_sdk::duration::Duration;
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `drift` check.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// What the series hold: "counter" (default: the histogram's raw
    /// `_bucket` counters; what each evaluation adds is what was observed)
    /// or "rate" (per-second rates of the buckets, e.g.
    /// `rate(x_bucket[5m])`; each point counts for the time since the
    /// previous one).
    #[serde(default)]
    pub input: Input,
    /// Time constant of the current distribution (default "1h").
    #[serde(default = "one_hour")]
    pub current: Duration,
    /// Time constant of the reference distribution, or with `adapt = false`
    /// how long it learns before it is frozen (default "1d"); longer than
    /// `current`.
    #[serde(default = "one_day")]
    pub reference: Duration,
    /// Keep learning the reference (default true); false freezes it once it
    /// has learned for `reference`.
    #[serde(default = "yes")]
    pub adapt: bool,
    /// When to fire, least severe first: each level has a `severity` and at
    /// least one of `psi`, `js`, `ks`, and fires when any is exceeded.
    /// Default: `[{ severity = "warning", psi = 0.1, js = 0.1 },
    /// { severity = "critical", psi = 0.25 }]`.
    #[serde(default = "default_levels")]
    pub levels: Vec<Level>,
    /// Smallest proportion of a bucket PSI uses (default 1e-4), so an empty
    /// bucket does not make it infinite.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Observations each distribution needs before the check judges
    /// (default 100).
    #[serde(default = "default_min_count")]
    pub min_count: f64,
}

/// What the series hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    /// Cumulative bucket counters.
    #[default]
    Counter,
    /// Per-second rates of the bucket counters.
    Rate,
}

/// One severity and its thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// The alert's `severity` at this level.
    pub severity: String,
    /// Fire when PSI exceeds this.
    pub psi: Option<f64>,
    /// Fire when the Jensen-Shannon divergence (base 2) exceeds this.
    pub js: Option<f64>,
    /// Fire when the largest gap of the bucket CDFs exceeds this.
    pub ks: Option<f64>,
}

fn one_hour() -> Duration {
    Duration::from_ms(3_600_000)
}
fn one_day() -> Duration {
    Duration::from_ms(86_400_000)
}
fn yes() -> bool {
    true
}
fn default_epsilon() -> f64 {
    1e-4
}
fn default_min_count() -> f64 {
    100.0
}
fn default_levels() -> Vec<Level> {
    vec![
        Level {
            severity: "warning".into(),
            psi: Some(0.1),
            js: Some(0.1),
            ks: None,
        },
        Level {
            severity: "critical".into(),
            psi: Some(0.25),
            js: None,
            ks: None,
        },
    ]
}

fn validate(p: &Drift) -> Result<(), String> {
    let mut errors = Vec::new();
    if p.current.ms <= 0 {
        errors.push("`current` must be positive".to_string());
    }
    if p.reference.ms <= p.current.ms {
        errors.push(format!(
            "`reference` ({}) must be longer than `current` ({})",
            p.reference, p.current
        ));
    }
    if !(p.epsilon > 0.0 && p.epsilon < 0.01) {
        errors.push(format!("`epsilon` must be in (0, 0.01), got {}", p.epsilon));
    }
    if !(p.min_count >= 0.0 && p.min_count.is_finite()) {
        errors.push(format!("`min_count` must be >= 0, got {}", p.min_count));
    }
    if p.levels.is_empty() {
        errors.push("`levels` is empty: the check would never fire".to_string());
    }
    for (i, l) in p.levels.iter().enumerate() {
        if l.severity.is_empty() {
            errors.push(format!("`levels[{i}]` has an empty severity"));
        }
        if p.levels[..i].iter().any(|m| m.severity == l.severity) {
            errors.push(format!(
                "severity {:?} appears twice in `levels`",
                l.severity
            ));
        }
        if l.psi.is_none() && l.js.is_none() && l.ks.is_none() {
            errors.push(format!(
                "`levels[{i}]` ({:?}) sets none of `psi`, `js`, `ks`",
                l.severity
            ));
        }
        for (name, v) in [("psi", l.psi), ("js", l.js), ("ks", l.ks)] {
            if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                errors.push(format!("`levels[{i}].{name}` must be >= 0"));
            }
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// What the check learned about one histogram, kept in the state of its
/// highest bucket's series.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    /// The bucket bounds, ascending: the layout the rest is about.
    pub les: Vec<f64>,
    /// Whether a point was processed (`last_ts`, `last` are meaningful).
    pub seen: bool,
    /// The last processed timestamp.
    pub last_ts: i64,
    /// The bucket series' values at `last_ts` (cumulative over `le`).
    pub last: Vec<f64>,
    /// Exponentially weighted observations per bucket, lately.
    pub current: Vec<f64>,
    /// Observations per bucket in the reference.
    pub reference: Vec<f64>,
    /// How long the reference has learned, in milliseconds.
    pub learned_ms: i64,
}

/// A series' state: the histogram it carries, if it is a histogram's top
/// bucket. Nothing at all is written for the other buckets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Carried(pub Option<Hist>);

impl Serialize for Carried {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            // No bytes: the SDK decodes an empty slot as the default.
            None => s.serialize_unit(),
            Some(h) => h.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Carried {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Hist::deserialize(d).map(|h| Carried(Some(h)))
    }
}

impl Hist {
    fn new(les: Vec<f64>) -> Self {
        let n = les.len();
        Hist {
            les,
            last: vec![0.0; n],
            current: vec![0.0; n],
            reference: vec![0.0; n],
            ..Hist::default()
        }
    }

    /// Folds in the point at `t` (`values[j]` for bucket `j`, NaN when that
    /// bucket has no point at `t`). `gained` is scratch space.
    fn fold(&mut self, p: &Drift, t: i64, values: &[f64], gained: &mut Vec<f64>) {
        if !self.seen {
            self.seen = true;
            self.last_ts = t;
            self.last.copy_from_slice(values);
            return;
        }
        let dt = t.saturating_sub(self.last_ts);
        if dt <= 0 {
            return;
        }
        // What the cumulative buckets gained, then per bucket.
        gained.clear();
        gained.resize(values.len(), 0.0);
        for (j, &v) in values.iter().enumerate() {
            let prev = self.last[j];
            gained[j] = match p.input {
                _ if !v.is_finite() => 0.0,
                Input::Counter if !prev.is_finite() => 0.0,
                // A counter that went down was reset: it counts from zero.
                Input::Counter if v < prev => v,
                Input::Counter => v - prev,
                Input::Rate => v * dt as f64 / 1000.0,
            };
            if v.is_finite() {
                self.last[j] = v;
            }
        }
        let decay = |tau: Duration| (-(dt as f64) / tau.ms as f64).exp();
        let (dc, dr) = (decay(p.current), decay(p.reference));
        let learning = p.adapt || self.learned_ms < p.reference.ms;
        for j in 0..gained.len() {
            let below = if j == 0 { 0.0 } else { gained[j - 1] };
            // Scrapes are not atomic: a bucket may briefly lag the one below.
            let inc = (gained[j] - below).max(0.0);
            self.current[j] = self.current[j] * dc + inc;
            if learning {
                let kept = if p.adapt { dr } else { 1.0 };
                self.reference[j] = self.reference[j] * kept + inc;
            }
        }
        if learning {
            self.learned_ms = self.learned_ms.saturating_add(dt);
        }
        self.last_ts = t;
    }
}

/// The three measures between the current (`p`) and reference (`q`)
/// bucket counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    /// Population stability index, with the zero-bin policy.
    pub psi: f64,
    /// Jensen-Shannon divergence, base 2.
    pub js: f64,
    /// Largest gap between the bucket CDFs.
    pub ks: f64,
}

/// Compares two histograms' bucket counts (same layout, both non-empty).
pub fn measures(current: &[f64], reference: &[f64], epsilon: f64) -> Measures {
    let norm = |xs: &[f64]| {
        let total: f64 = xs.iter().sum();
        xs.iter().map(|x| x / total).collect::<Vec<f64>>()
    };
    let (p, q) = (norm(current), norm(reference));
    let floored = |xs: &[f64]| norm(&xs.iter().map(|x| x.max(epsilon)).collect::<Vec<_>>());
    let (pe, qe) = (floored(&p), floored(&q));
    let psi = pe
        .iter()
        .zip(&qe)
        .map(|(a, b)| (a - b) * (a / b).ln())
        .sum();
    let kl_to_mid = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (2.0 * x / (x + y)).log2())
            .sum()
    };
    let js = (0.5 * kl_to_mid(&p, &q) + 0.5 * kl_to_mid(&q, &p)).clamp(0.0, 1.0);
    let (mut cp, mut cq, mut ks) = (0.0, 0.0, 0.0f64);
    for (a, b) in p.iter().zip(&q) {
        cp += a;
        cq += b;
        ks = ks.max((cp - cq).abs());
    }
    Measures { psi, js, ks }
}

/// `le` as a number (`+Inf` included).
fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        _ => le.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// The value of `series` at time `t` (NaN when it has no point then).
fn value_at(series: &Series<'_>, t: i64) -> f64 {
    match series.timestamps.binary_search(&t) {
        Ok(i) => series.values.get(i).copied().unwrap_or(f64::NAN),
        Err(_) => f64::NAN,
    }
}

/// Judges one histogram: `buckets` are (le, batch index), ascending by le.
fn judge(p: &Drift, batch: &Batch, buckets: &[(f64, usize)], hist: &mut Hist) -> Verdict {
    let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
    let mut note = None;
    if hist.les != les {
        if !hist.les.is_empty() {
            note = Some("the bucket layout changed: learning again");
        }
        *hist = Hist::new(les);
    }
    let series: Vec<Series<'_>> = buckets.iter().filter_map(|&(_, i)| batch.get(i)).collect();
    // The highest bucket's timestamps drive the folding: in a histogram
    // every bucket is written together, at the same evaluations.
    let Some(top) = series.last() else {
        return Verdict::no_data();
    };
    let new = points_after(top, hist.seen.then_some(hist.last_ts));
    let mut values = vec![0.0; series.len()];
    let mut gained = Vec::with_capacity(series.len());
    for &t in new.timestamps {
        for (v, s) in values.iter_mut().zip(&series) {
            *v = value_at(s, t);
        }
        hist.fold(p, t, &values, &mut gained);
    }

    let (nc, nr): (f64, f64) = (hist.current.iter().sum(), hist.reference.iter().sum());
    let needed = if p.adapt {
        p.current.ms
    } else {
        p.reference.ms
    };
    if nc < p.min_count.max(f64::MIN_POSITIVE)
        || nr < p.min_count.max(f64::MIN_POSITIVE)
        || hist.learned_ms < needed
    {
        let learned = Duration::from_ms(hist.learned_ms);
        return Verdict::no_data().with_message(note.map_or_else(
            || {
                format!(
                    "learning: {nc:.0} current and {nr:.0} reference observations (needs {}), reference over {learned} (needs {})",
                    p.min_count,
                    Duration::from_ms(needed)
                )
            },
            str::to_string,
        ));
    }
    let m = measures(&hist.current, &hist.reference, p.epsilon);
    let level = p.levels.iter().rposition(|l| {
        l.psi.is_some_and(|t| m.psi > t)
            || l.js.is_some_and(|t| m.js > t)
            || l.ks.is_some_and(|t| m.ks > t)
    });
    match level {
        // No text: formatting it for every healthy histogram at every step
        // was a good part of the check's time, and the host does not show
        // the messages of ok verdicts.
        None => Verdict::ok(m.psi),
        Some(k) => {
            let text = format!(
                "PSI {:.3}, JS {:.3}, KS {:.3}: current ({nc:.0} observations, {}) vs reference ({nr:.0}, {})",
                m.psi,
                m.js,
                m.ks,
                p.current,
                match p.adapt {
                    true => p.reference.to_string(),
                    false => "frozen".to_string(),
                }
            );
            let l = &p.levels[k];
            let crossed: Vec<String> = [
                ("PSI", l.psi, m.psi),
                ("JS", l.js, m.js),
                ("KS", l.ks, m.ks),
            ]
            .into_iter()
            .filter_map(|(n, t, v)| t.filter(|&t| v > t).map(|t| format!("{n} > {t}")))
            .collect();
            Verdict::firing(m.psi)
                .with_message(format!("{text}; {}: {}", l.severity, crossed.join(", ")))
                .with_severity(l.severity.clone())
        }
    }
}

/// Histograms by their labels without `le`: their buckets as (le, index).
type Histograms<'a> = BTreeMap<Vec<(&'a str, &'a str)>, Vec<(f64, usize)>>;

/// The same, keyed by the labels' string indices: grouping compares
/// integers, not the long shared `__name__` text of every bucket.
type ById = BTreeMap<Vec<(u32, u32)>, Vec<(f64, usize)>>;

/// Fires when a histogram's recent distribution drifts from its reference:
/// PSI, Jensen-Shannon divergence or the bucket-CDF gap above a level's
/// threshold (default: warning above PSI 0.1 or JS 0.1, critical above PSI
/// 0.25). Score: PSI. One verdict per histogram, on its `le="+Inf"` series,
/// whose alert carries no `le`.
#[check(name = "drift", validate = validate)]
pub fn drift(p: &Drift, _ctx: &Context, batch: &Batch, states: &mut [Carried]) -> Verdicts {
    let mut verdicts: Vec<Option<Verdict>> = vec![None; batch.len()];
    // Histograms: the returned series grouped by their labels without `le`,
    // first by string indices, then merged by text (indices of equal
    // strings may differ).
    let mut by_id = ById::new();
    for (i, s) in batch.iter().enumerate() {
        if s.is_vanished() {
            // Its state (if it carried a histogram's) stays as it was.
            verdicts[i] = Some(Verdict::ok(0.0));
            continue;
        }
        let labels = s.labels();
        let Some(le) = labels.get("le") else {
            verdicts[i] = Some(
                Verdict::no_data()
                    .with_message("not a histogram bucket: the series has no `le` label"),
            );
            continue;
        };
        let Some(le) = parse_le(le) else {
            verdicts[i] =
                Some(Verdict::no_data().with_message(format!("`le` is not a number: {le:?}")));
            continue;
        };
        let key: Vec<(u32, u32)> = labels
            .ids()
            .filter(|&(n, _)| labels.text(n) != "le")
            .collect();
        by_id.entry(key).or_default().push((le, i));
    }
    let mut groups = Histograms::new();
    for (key, buckets) in by_id {
        let Some(s) = buckets.first().and_then(|&(_, i)| batch.get(i)) else {
            continue;
        };
        let labels = s.labels();
        let text: Vec<(&str, &str)> = key
            .iter()
            .map(|&(n, v)| (labels.text(n), labels.text(v)))
            .collect();
        groups.entry(text).or_default().extend(buckets);
    }
    for buckets in groups.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, top)) = buckets.last() else {
            continue;
        };
        let verdict = if buckets.len() < 2 {
            Verdict::no_data().with_message("a histogram needs at least two buckets")
        } else {
            let mut hist = states[top].0.take().unwrap_or_default();
            let v = judge(p, batch, buckets, &mut hist);
            states[top] = Carried(Some(hist));
            v
        };
        let score = verdict.score;
        for &(_, i) in &buckets[..buckets.len() - 1] {
            // Only the top bucket carries the histogram's state and verdict.
            states[i] = Carried(None);
            // No message: the host would lift one per bucket for nothing.
            verdicts[i] = Some(Verdict::ok(score));
        }
        verdicts[top] = Some(verdict.with_label("le", ""));
    }
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or_else(Verdict::no_data))
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    const MIN: i64 = 60_000;
    const LES: [&str; 4] = ["1", "2", "4", "+Inf"];

    /// Cumulative counters of a histogram after each step, where step `k`
    /// adds `per_step` observations spread over the buckets by `shares(k)`.
    fn counters(steps: usize, per_step: f64, shares: impl Fn(usize) -> [f64; 4]) -> Vec<[f64; 4]> {
        let mut totals = [0.0; 4];
        let mut out = Vec::new();
        for k in 0..steps {
            let s = shares(k);
            let mut cumulative = [0.0; 4];
            let mut acc = 0.0;
            for j in 0..4 {
                totals[j] += s[j] * per_step;
                acc += totals[j];
                cumulative[j] = acc;
            }
            out.push(cumulative);
        }
        out
    }

    /// A batch with the histogram's 4 bucket series over steps `lo..hi`.
    fn batch(points: &[[f64; 4]], lo: usize, hi: usize, extra: &[(&str, &str)]) -> Batch {
        let mut b = Batch::default();
        let ts: Vec<i64> = (lo..hi).map(|k| k as i64 * MIN).collect();
        for (j, le) in LES.iter().enumerate() {
            let vs: Vec<f64> = points[lo..hi].iter().map(|p| p[j]).collect();
            let mut labels = vec![("__name__", "tokens_bucket"), ("le", *le)];
            labels.extend_from_slice(extra);
            b.push_labeled(j as u64, &labels, &ts, &vs);
        }
        b
    }

    const STABLE: [f64; 4] = [0.5, 0.3, 0.15, 0.05];
    const SHIFTED: [f64; 4] = [0.1, 0.2, 0.3, 0.4];

    fn params(json: &str) -> Drift {
        configure::<Plugin>(json).unwrap()
    }

    /// Streams one step at a time, the window holding the last 3 points.
    fn stream(p: &Drift, points: &[[f64; 4]]) -> Vec<Verdict> {
        let mut state = State::default();
        let mut out = Vec::new();
        for k in 0..points.len() {
            let b = batch(points, k.saturating_sub(2), k + 1, &[]);
            let o = evaluate::<Plugin>(p, k as i64 * MIN, &b, &state).unwrap();
            out.push(o.verdicts[3].clone());
            assert!(o.verdicts[..3].iter().all(|v| v.status == Status::Ok));
            state = o.state;
        }
        out
    }

    #[test]
    fn measures_match_hand_computed_values() {
        // Identical distributions: no drift at all.
        let m = measures(&[5.0, 3.0, 2.0], &[50.0, 30.0, 20.0], 1e-4);
        assert!(
            m.psi.abs() < 1e-12 && m.js.abs() < 1e-12 && m.ks.abs() < 1e-12,
            "{m:?}"
        );
        // p = (0.5, 0.5), q = (0.9, 0.1).
        let m = measures(&[1.0, 1.0], &[9.0, 1.0], 1e-4);
        let psi = (0.5 - 0.9) * (0.5f64 / 0.9).ln() + (0.5 - 0.1) * (0.5f64 / 0.1).ln();
        assert!((m.psi - psi).abs() < 1e-9, "{m:?} vs {psi}");
        let js = 0.5 * (0.5 * (0.5f64 / 0.7).log2() + 0.5 * (0.5f64 / 0.3).log2())
            + 0.5 * (0.9 * (0.9f64 / 0.7).log2() + 0.1 * (0.1f64 / 0.3).log2());
        assert!((m.js - js).abs() < 1e-12, "{m:?} vs {js}");
        assert!((m.ks - 0.4).abs() < 1e-12);
        // Disjoint: JS is exactly 1, KS 1; PSI is finite thanks to epsilon.
        let m = measures(&[1.0, 0.0], &[0.0, 1.0], 1e-4);
        assert!((m.js - 1.0).abs() < 1e-12 && (m.ks - 1.0).abs() < 1e-12);
        assert!(m.psi.is_finite() && m.psi > 10.0, "{m:?}");
        // Zero-bin policy: an empty reference bucket holding 5% now.
        let m = measures(&[95.0, 5.0], &[100.0, 0.0], 1e-4);
        // q floored to (1, 1e-4) and renormalised; p is left as it is.
        let q1: f64 = 1e-4 / (1.0 + 1e-4);
        let psi = (0.95 - (1.0 - q1)) * (0.95 / (1.0 - q1)).ln() + (0.05 - q1) * (0.05 / q1).ln();
        assert!(
            (m.psi - psi).abs() < 1e-9 && (m.psi - 0.3127).abs() < 1e-4,
            "{m:?} vs {psi}"
        );
    }

    #[test]
    fn a_stable_histogram_is_ok_and_a_shift_fires_with_its_severity() {
        let p = params(r#"{"current": "30m", "reference": "1d", "min_count": 50}"#);
        // 3 hours stable, then the distribution shifts for an hour.
        let pts = counters(240, 10.0, |k| if k < 180 { STABLE } else { SHIFTED });
        let vs = stream(&p, &pts);
        assert_eq!(vs[0].status, Status::NoData, "{:?}", vs[0]);
        assert!(
            vs[0]
                .message
                .as_deref()
                .unwrap_or("")
                .starts_with("learning")
        );
        for v in &vs[40..180] {
            assert_eq!(v.status, Status::Ok, "{v:?}");
            assert!(v.score < 0.01, "{v:?}");
        }
        let last = vs.last().unwrap();
        assert_eq!(last.status, Status::Firing, "{last:?}");
        assert_eq!(last.severity.as_deref(), Some("critical"));
        assert!(last.score > 0.25);
        assert_eq!(last.labels, [("le".to_string(), String::new())]);
        // Somewhere on the way it was a warning first.
        assert!(
            vs[180..]
                .iter()
                .any(|v| v.severity.as_deref() == Some("warning"))
        );
        let msg = last.message.as_deref().unwrap();
        assert!(msg.contains("critical: PSI > 0.25"), "{msg}");
    }

    #[test]
    fn a_frozen_reference_keeps_flagging_a_lasting_shift() {
        let pts = counters(600, 10.0, |k| if k < 120 { STABLE } else { SHIFTED });
        let adapt = stream(&params(r#"{"current": "30m", "reference": "2h"}"#), &pts);
        let frozen = stream(
            &params(r#"{"current": "30m", "reference": "2h", "adapt": false}"#),
            &pts,
        );
        // Frozen: no verdict before the reference has learned for 2h.
        assert_eq!(frozen[100].status, Status::NoData);
        assert_eq!(frozen[599].status, Status::Firing);
        // Adapting with a 2h time constant: eight hours later it is normal.
        assert_eq!(adapt[599].status, Status::Ok, "{:?}", adapt[599]);
    }

    #[test]
    fn verdicts_are_the_same_in_one_call_or_many_and_through_bytes() {
        let p = params(r#"{"current": "30m", "reference": "1d", "min_count": 50}"#);
        let pts = counters(300, 7.0, |k| if k < 200 { STABLE } else { SHIFTED });
        let streamed = stream(&p, &pts);
        // The same points in chunks of 17 with a 20-point window.
        let mut state = State::default();
        let mut end = 0;
        while end < pts.len() {
            end = (end + 17).min(pts.len());
            let b = batch(&pts, end.saturating_sub(20), end, &[]);
            let o = evaluate::<Plugin>(&p, (end - 1) as i64 * MIN, &b, &state).unwrap();
            assert_eq!(o.verdicts[3], streamed[end - 1], "end {end}");
            state = State {
                offsets: o.state.offsets.clone(),
                data: o.state.data.clone(),
            };
        }
    }

    #[test]
    fn counter_resets_and_rates() {
        let p = params(r#"{"current": "30m", "reference": "1d", "min_count": 50}"#);
        let mut pts = counters(120, 10.0, |_| STABLE);
        // A restart of the exporter at step 60: counters start again.
        let base = pts[59];
        for pt in &mut pts[60..] {
            for j in 0..4 {
                pt[j] -= base[j];
            }
        }
        let vs = stream(&p, &pts);
        assert!(
            vs[61..]
                .iter()
                .all(|v| v.status == Status::Ok && v.score < 0.01),
            "{:?}",
            vs[61]
        );
        // Rates: the per-minute increase over 60 s.
        let rates: Vec<[f64; 4]> = counters(120, 10.0, |k| if k < 90 { STABLE } else { SHIFTED })
            .windows(2)
            .map(|w| std::array::from_fn(|j| (w[1][j] - w[0][j]) / 60.0))
            .collect();
        let vs = stream(
            &params(r#"{"input": "rate", "current": "10m", "reference": "1d", "min_count": 50}"#),
            &rates,
        );
        assert_eq!(vs[80].status, Status::Ok, "{:?}", vs[80]);
        assert_eq!(vs.last().unwrap().status, Status::Firing);
    }

    #[test]
    fn histograms_are_grouped_by_their_labels_without_le() {
        let p = params(r#"{"current": "30m", "reference": "1d", "min_count": 5}"#);
        let pts = counters(40, 10.0, |_| STABLE);
        let mut b = batch(&pts, 0, 40, &[("model", "a")]);
        let other = batch(&pts, 0, 40, &[("model", "b")]);
        for i in 0..other.len() {
            let s = other.get(i).unwrap();
            let labels: Vec<(&str, &str)> = s.labels().iter().collect();
            b.push_labeled(10 + i as u64, &labels, s.timestamps, s.values);
        }
        b.push_labeled(99, &[("__name__", "up")], &[0], &[1.0]);
        b.push_labeled(98, &[("le", "0.5"), ("model", "lonely")], &[0], &[1.0]);
        b.push_vanished(97, &[("le", "8"), ("model", "a")], &[0], &[1.0]);
        let out = evaluate::<Plugin>(&p, 39 * MIN, &b, &State::default()).unwrap();
        let v = &out.verdicts;
        // Two histograms, each judged on its +Inf bucket, with its own state.
        assert_eq!((v[3].status, v[7].status), (Status::Ok, Status::Ok));
        assert_eq!(v[3].message, None, "an ok verdict carries no text");
        assert_eq!(v[3].labels, [("le".to_string(), String::new())]);
        assert!(!out.state.get(3).unwrap().is_empty() && !out.state.get(7).unwrap().is_empty());
        assert!(out.state.get(0).unwrap().is_empty());
        assert_eq!(v[8].status, Status::NoData);
        assert!(v[8].message.as_deref().unwrap().contains("no `le` label"));
        assert!(
            v[9].message
                .as_deref()
                .unwrap()
                .contains("at least two buckets")
        );
        assert_eq!(v[10].status, Status::Ok);
        assert_eq!(out.rule_verdict, None);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"current": "2h", "reference": "1h"}"#),
            "invalid params: `reference` (1h) must be longer than `current` (2h)"
        );
        assert_eq!(
            err(r#"{"levels": [{"severity": "warning"}, {"severity": "warning", "psi": 1}]}"#),
            "invalid params: `levels[0]` (\"warning\") sets none of `psi`, `js`, `ks`; \
             severity \"warning\" appears twice in `levels`"
        );
        assert_eq!(
            err(r#"{"levels": []}"#),
            "invalid params: `levels` is empty: the check would never fire"
        );
        assert_eq!(
            err(r#"{"epsilon": 0}"#),
            "invalid params: `epsilon` must be in (0, 0.01), got 0"
        );
        assert!(err(r#"{"input": "gauge"}"#).contains("unknown variant `gauge`"));
        let p = params("{}");
        assert_eq!(p.levels, default_levels());
        assert_eq!((p.current.ms, p.reference.ms), (3_600_000, 86_400_000));
    }
}
