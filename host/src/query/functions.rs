//! PromQL functions over float samples, as Prometheus 2.42 computes them
//! (`promql/functions.go`): range-vector functions on one series' window,
//! and instant-vector functions step by step.

use std::f64::consts::PI;

use super::QueryError;
use super::eval::{Evaluator, Range, err};
use super::plan::{Call, Func, LabelReplace, Node};
use super::value::{Arena, FastMap, Lbl, Sample, Value};
use crate::store::labels::Labels;

/// What a range-vector function knows about the window besides its samples.
pub(crate) struct WinCtx {
    /// The evaluation step (`predict_linear` extrapolates from it).
    pub ts: i64,
    /// The window is `[start, end]`, offset and `@` applied.
    pub start: i64,
    pub end: i64,
    pub range_ms: i64,
    /// The scalar arguments besides the range vector, in order.
    pub p0: Option<f64>,
    pub p1: Option<f64>,
}

/// Applies a range-vector function to a non-empty window; `None` means the
/// series has no value at this step.
pub(crate) fn range_fn(
    f: Func,
    ts: &[i64],
    vs: &[f64],
    c: &WinCtx,
) -> Result<Option<f64>, QueryError> {
    let n = vs.len();
    let Some(&last) = vs.last() else {
        return Ok(None);
    };
    Ok(match f {
        Func::Rate => extrapolated_rate(ts, vs, c, true, true),
        Func::Increase => extrapolated_rate(ts, vs, c, true, false),
        Func::Delta => extrapolated_rate(ts, vs, c, false, false),
        Func::Irate => instant_value(ts, vs, true),
        Func::Idelta => instant_value(ts, vs, false),
        Func::Deriv => (n >= 2).then(|| linear_regression(ts, vs, ts[0]).0),
        Func::PredictLinear => (n >= 2).then(|| {
            let (slope, intercept) = linear_regression(ts, vs, c.ts);
            slope * c.p0.unwrap_or(f64::NAN) + intercept
        }),
        Func::HoltWinters => holt_winters(vs, c.p0.unwrap_or(f64::NAN), c.p1.unwrap_or(f64::NAN))?,
        Func::Resets => Some(vs.windows(2).filter(|w| w[1] < w[0]).count() as f64),
        Func::Changes => Some(
            vs.windows(2)
                .filter(|w| w[1] != w[0] && !(w[1].is_nan() && w[0].is_nan()))
                .count() as f64,
        ),
        Func::AvgOverTime => Some(avg_over_time(vs)),
        Func::MinOverTime => Some(
            vs.iter()
                .fold(vs[0], |m, &v| if v < m || m.is_nan() { v } else { m }),
        ),
        Func::MaxOverTime => Some(
            vs.iter()
                .fold(vs[0], |m, &v| if v > m || m.is_nan() { v } else { m }),
        ),
        Func::SumOverTime => {
            let (mut sum, mut comp) = (0.0, 0.0);
            for &v in vs {
                (sum, comp) = kahan_inc(v, sum, comp);
            }
            Some(if sum.is_infinite() { sum } else { sum + comp })
        }
        Func::CountOverTime => Some(n as f64),
        Func::QuantileOverTime => {
            let mut values = vs.to_vec();
            Some(quantile(c.p0.unwrap_or(f64::NAN), &mut values))
        }
        Func::StddevOverTime => Some(variance_over_time(vs).sqrt()),
        Func::StdvarOverTime => Some(variance_over_time(vs)),
        Func::LastOverTime => Some(last),
        Func::PresentOverTime | Func::AbsentOverTime => Some(1.0),
        _ => return Err(err(format!("{f:?} does not take a range vector"))),
    })
}

/// `rate`, `increase` and `delta`: the change over the window, corrected
/// for counter resets and extrapolated towards the window's bounds.
fn extrapolated_rate(ts: &[i64], vs: &[f64], c: &WinCtx, counter: bool, rate: bool) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let (first_t, last_t) = (ts[0], ts[n - 1]);
    let mut result = vs[n - 1] - vs[0];
    if counter {
        // Add the value before each reset, in order. Finding resets first
        // keeps the scan free of a dependency on `result` (resets are rare).
        let mut i = 1;
        while let Some(off) = vs[i..].iter().zip(&vs[i - 1..]).position(|(v, p)| v < p) {
            let j = i + off;
            result += vs[j - 1];
            i = j + 1;
            if i >= n {
                break;
            }
        }
    }
    let mut to_start = (first_t - c.start) as f64 / 1000.0;
    let to_end = (c.end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_gap = sampled / (n - 1) as f64;
    if counter && result > 0.0 && vs[0] >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past the
        // point where it would have been zero.
        let to_zero = sampled * (vs[0] / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_gap / 2.0
    };
    let mut factor = interval / sampled;
    if rate {
        factor /= c.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(ts: &[i64], vs: &[f64], rate: bool) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let (last, prev) = (vs[n - 1], vs[n - 2]);
    let mut result = if rate && last < prev {
        last
    } else {
        last - prev
    };
    let interval = ts[n - 1] - ts[n - 2];
    if interval == 0 {
        return None;
    }
    if rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and the intercept at `intercept_t`.
fn linear_regression(ts: &[i64], vs: &[f64], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = vs[0];
    let mut const_y = true;
    for (i, (&t, &v)) in ts.iter().zip(vs).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

/// Double exponential smoothing with smoothing factor `sf` and trend
/// factor `tf`, both in (0, 1).
fn holt_winters(vs: &[f64], sf: f64, tf: f64) -> Result<Option<f64>, QueryError> {
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(err(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(err(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if vs.len() < 2 {
        return Ok(None);
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let (mut s0, mut s1, mut b) = (0.0, vs[0], vs[1] - vs[0]);
    for (i, &v) in vs.iter().enumerate().skip(1) {
        let x = sf * v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

fn avg_over_time(vs: &[f64]) -> f64 {
    let (mut mean, mut count, mut comp) = (0.0f64, 0.0f64, 0.0f64);
    for &v in vs {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, comp) = kahan_inc(v / count - mean / count, mean, comp);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + comp
    }
}

fn variance_over_time(vs: &[f64]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &v in vs {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// One step of Kahan-Neumaier summation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The q-quantile of `values` by linear interpolation between closest
/// ranks; NaN sorts first, as in Prometheus.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// The q-quantile of a classic histogram's cumulative buckets
/// `(upper bound, count)`, interpolating linearly inside a bucket.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(&(upper, _)) if upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Merge buckets with the same bound, then make counts monotonic.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(upper, count) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == upper => last.1 += count,
            _ => merged.push((upper, count)),
        }
    }
    let mut max = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = merged.len() - 1;
    let b = merged[..last].partition_point(|x| x.1 < rank);
    if b == last {
        return merged[last - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Go's `math.Max`: NaN wins, +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, -0 beats +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

fn simple(f: Func, v: f64) -> f64 {
    match f {
        Func::Abs => v.abs(),
        Func::Ceil => v.ceil(),
        Func::Floor => v.floor(),
        Func::Exp => v.exp(),
        Func::Sqrt => v.sqrt(),
        Func::Ln => v.ln(),
        Func::Log2 => v.log2(),
        Func::Log10 => v.log10(),
        Func::Sin => v.sin(),
        Func::Cos => v.cos(),
        Func::Tan => v.tan(),
        Func::Asin => v.asin(),
        Func::Acos => v.acos(),
        Func::Atan => v.atan(),
        Func::Sinh => v.sinh(),
        Func::Cosh => v.cosh(),
        Func::Tanh => v.tanh(),
        Func::Asinh => v.asinh(),
        Func::Acosh => v.acosh(),
        Func::Atanh => v.atanh(),
        Func::Rad => v * PI / 180.0,
        Func::Deg => v * 180.0 / PI,
        Func::Sgn => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        _ => f64::NAN,
    }
}

/// Seconds from Go's absolute zero (year -292277022399) to the Unix epoch,
/// as Go's `time` package adds them (with int64 wrap-around).
const UNIX_TO_ABSOLUTE: i64 = 9_223_372_028_715_321_600;
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
const DAYS_BEFORE: [u64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The date functions over Unix seconds exactly as Go's `time` package
/// (Go 1.19/1.20, which built Prometheus 2.42) computes them, including
/// what it gives for NaN or out-of-range values.
fn date_fn(f: Func, secs: f64) -> f64 {
    // Go's int64(f) on amd64: truncation, and MinInt64 for NaN and overflow.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let secs = if secs.is_nan() || !(-TWO_63..TWO_63).contains(&secs) {
        i64::MIN
    } else {
        secs as i64
    };
    let abs = secs.wrapping_add(UNIX_TO_ABSOLUTE) as u64;
    // absDate: 400-, 100-, 4- and 1-year cycles from the absolute zero.
    let mut d = abs / 86_400;
    let mut n = d / 146_097;
    let mut y = 400 * n;
    d -= 146_097 * n;
    n = d / 36_524;
    n -= n >> 2;
    y += 100 * n;
    d -= 36_524 * n;
    n = d / 1461;
    y += 4 * n;
    d -= 1461 * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d;
    let (month, day) = {
        let mut day = yday;
        let leap_day = is_leap(year) && day == 31 + 29 - 1;
        if is_leap(year) && day > 31 + 29 - 1 {
            day -= 1;
        }
        if leap_day {
            (2, 29)
        } else {
            let mut month = (day / 31) as usize;
            let end = DAYS_BEFORE[month + 1];
            let begin = if day >= end {
                month += 1;
                end
            } else {
                DAYS_BEFORE[month]
            };
            (month as u64 + 1, day - begin + 1)
        }
    };
    let v: i64 = match f {
        Func::Year => year,
        Func::Month => month as i64,
        Func::DayOfMonth => day as i64,
        Func::DayOfYear => yday as i64 + 1,
        // Go's absWeekday: the absolute zero was a Monday.
        Func::DayOfWeek => ((abs.wrapping_add(86_400) % 604_800) / 86_400) as i64,
        Func::Hour => ((abs % 86_400) / 3600) as i64,
        Func::Minute => ((abs % 3600) / 60) as i64,
        Func::DaysInMonth => {
            let m = month as usize;
            let mut days = DAYS_BEFORE[m] - DAYS_BEFORE[m - 1];
            if m == 2 && is_leap(year) {
                days += 1;
            }
            days as i64
        }
        _ => 0,
    };
    v as f64
}

/// Parses a bucket bound the way Go's `strconv.ParseFloat` does for the
/// values exporters write (`0.5`, `1e3`, `+Inf`).
fn parse_bound(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

impl Evaluator<'_, '_> {
    pub fn call(&mut self, call: &Call, r: Range) -> Result<Value, QueryError> {
        let f = call.func;
        // `timestamp` of a selector reads the samples' own timestamps.
        if f == Func::Timestamp
            && let Some(Node::Selector(sel)) = call.args.first()
        {
            let mut steps = self.vector_selector(sel, r, true)?;
            for step in &mut steps {
                let uniform = self.names_uniform(step.iter().map(|s| s.lbl));
                step.iter_mut()
                    .for_each(|s| s.lbl = Arena::drop_name(s.lbl));
                if !uniform {
                    self.check_step_unique(step)?;
                }
            }
            return Ok(Value::Vector(steps));
        }
        if let Some(midx) = call
            .args
            .iter()
            .position(|a| matches!(a, Node::Matrix(_) | Node::Subquery(_)))
        {
            return self.range_call(f, &call.args, midx, r);
        }
        let n = r.len();
        match f {
            Func::Time => {
                return Ok(Value::Scalar(
                    (0..n).map(|i| r.ts(i) as f64 / 1000.0).collect(),
                ));
            }
            Func::Pi => return Ok(Value::Scalar(vec![PI; n])),
            Func::Scalar => {
                let steps = self.arg_vector(call, 0, r)?;
                return Ok(Value::Scalar(
                    steps
                        .iter()
                        .map(|v| if v.len() == 1 { v[0].v } else { f64::NAN })
                        .collect(),
                ));
            }
            Func::Vector => {
                let vals = self.arg_scalar(call, 0, r)?;
                let lbl = self.arena.empty();
                return Ok(Value::Vector(
                    vals.into_iter().map(|v| vec![Sample { lbl, v }]).collect(),
                ));
            }
            Func::Absent => {
                let steps = self.arg_vector(call, 0, r)?;
                let lbl = match call.args.first() {
                    Some(Node::Selector(sel)) => self.absent_labels(sel),
                    _ => self.arena.empty(),
                };
                return Ok(Value::Vector(
                    steps
                        .into_iter()
                        .map(|v| {
                            if v.is_empty() {
                                vec![Sample { lbl, v: 1.0 }]
                            } else {
                                Vec::new()
                            }
                        })
                        .collect(),
                ));
            }
            Func::HistogramQuantile => {
                // The vector is the second argument; the first is q.
                let q = self.arg_scalar(call, 0, r)?;
                let steps = self.arg_vector(call, 1, r)?;
                let mut out = Vec::with_capacity(steps.len());
                for (i, v) in steps.iter().enumerate() {
                    let res = self.histogram_quantile(q.get(i).copied().unwrap_or(f64::NAN), v);
                    self.check_step_unique(&res)?;
                    out.push(res);
                }
                return Ok(Value::Vector(out));
            }
            Func::DaysInMonth
            | Func::DayOfMonth
            | Func::DayOfWeek
            | Func::DayOfYear
            | Func::Hour
            | Func::Minute
            | Func::Month
            | Func::Year
                if call.args.is_empty() =>
            {
                let lbl = self.arena.empty();
                return Ok(Value::Vector(
                    (0..n)
                        .map(|i| {
                            // Go truncates the milliseconds towards zero.
                            let secs = (r.ts(i) / 1000) as f64;
                            vec![Sample {
                                lbl,
                                v: date_fn(f, secs),
                            }]
                        })
                        .collect(),
                ));
            }
            _ => {}
        }
        let mut steps = self.arg_vector(call, 0, r)?;
        match f {
            Func::Sort | Func::SortDesc => {
                for v in &mut steps {
                    sort_by_value(v, f == Func::SortDesc);
                }
                return Ok(Value::Vector(steps));
            }
            Func::LabelReplace => {
                let Some(rep) = &call.replace else {
                    return Err(err("label_replace() without its arguments"));
                };
                let mut cache: FastMap<Lbl, Lbl> = FastMap::default();
                for v in &mut steps {
                    for s in v.iter_mut() {
                        s.lbl = match cache.get(&s.lbl) {
                            Some(&l) => l,
                            None => {
                                let l = self.label_replace(s.lbl, rep);
                                cache.insert(s.lbl, l);
                                l
                            }
                        };
                    }
                    self.check_step_unique(v)?;
                }
                return Ok(Value::Vector(steps));
            }
            Func::LabelJoin => {
                let strs: Vec<&str> = call
                    .args
                    .iter()
                    .skip(1)
                    .map(|a| match a {
                        Node::Str(s) => s.as_str(),
                        _ => "",
                    })
                    .collect();
                let (dst, sep, srcs) = match strs.as_slice() {
                    [dst, sep, srcs @ ..] => (*dst, *sep, srcs),
                    _ => return Err(err("label_join() needs a destination and a separator")),
                };
                let mut cache: FastMap<Lbl, Lbl> = FastMap::default();
                for v in &mut steps {
                    for s in v.iter_mut() {
                        s.lbl = match cache.get(&s.lbl) {
                            Some(&l) => l,
                            None => {
                                let view = self.arena.view(s.lbl);
                                let joined = srcs
                                    .iter()
                                    .map(|src| view.get(src).unwrap_or(""))
                                    .collect::<Vec<_>>()
                                    .join(sep);
                                let mut labels = view.to_labels();
                                labels.set(dst, &joined);
                                let l = self.arena.owned(labels);
                                cache.insert(s.lbl, l);
                                l
                            }
                        };
                    }
                    self.check_step_unique(v)?;
                }
                return Ok(Value::Vector(steps));
            }
            _ => {}
        }
        // The remaining functions map each sample and drop the metric name.
        let (a1, a2) = match f {
            Func::Clamp => (
                Some(self.arg_scalar(call, 1, r)?),
                Some(self.arg_scalar(call, 2, r)?),
            ),
            Func::ClampMin | Func::ClampMax => (Some(self.arg_scalar(call, 1, r)?), None),
            Func::Round if call.args.len() > 1 => (Some(self.arg_scalar(call, 1, r)?), None),
            _ => (None, None),
        };
        let at = |a: &Option<Vec<f64>>, i: usize| a.as_ref().and_then(|v| v.get(i)).copied();
        for (i, v) in steps.iter_mut().enumerate() {
            let uniform = self.names_uniform(v.iter().map(|s| s.lbl));
            let ts = r.ts(i);
            match f {
                Func::Clamp => {
                    let (lo, hi) = (
                        at(&a1, i).unwrap_or(f64::NAN),
                        at(&a2, i).unwrap_or(f64::NAN),
                    );
                    if hi < lo {
                        v.clear();
                        continue;
                    }
                    v.iter_mut().for_each(|s| s.v = go_max(lo, go_min(hi, s.v)));
                }
                Func::ClampMin => {
                    let lo = at(&a1, i).unwrap_or(f64::NAN);
                    v.iter_mut().for_each(|s| s.v = go_max(lo, s.v));
                }
                Func::ClampMax => {
                    let hi = at(&a1, i).unwrap_or(f64::NAN);
                    v.iter_mut().for_each(|s| s.v = go_min(hi, s.v));
                }
                Func::Round => {
                    let inv = 1.0 / at(&a1, i).unwrap_or(1.0);
                    v.iter_mut()
                        .for_each(|s| s.v = (s.v * inv + 0.5).floor() / inv);
                }
                Func::Timestamp => {
                    v.iter_mut().for_each(|s| s.v = ts as f64 / 1000.0);
                }
                Func::DaysInMonth
                | Func::DayOfMonth
                | Func::DayOfWeek
                | Func::DayOfYear
                | Func::Hour
                | Func::Minute
                | Func::Month
                | Func::Year => {
                    v.iter_mut().for_each(|s| s.v = date_fn(f, s.v));
                }
                _ => {
                    v.iter_mut().for_each(|s| s.v = simple(f, s.v));
                }
            }
            v.iter_mut().for_each(|s| s.lbl = Arena::drop_name(s.lbl));
            if !uniform {
                self.check_step_unique(v)?;
            }
        }
        Ok(Value::Vector(steps))
    }

    fn arg_vector(
        &mut self,
        call: &Call,
        i: usize,
        r: Range,
    ) -> Result<Vec<Vec<Sample>>, QueryError> {
        match call.args.get(i) {
            Some(a) => self.eval_vector(a, r),
            None => Err(err(format!(
                "missing argument {} of {:?}",
                i + 1,
                call.func
            ))),
        }
    }

    fn arg_scalar(&mut self, call: &Call, i: usize, r: Range) -> Result<Vec<f64>, QueryError> {
        match call.args.get(i) {
            Some(a) => self.eval_scalar(a, r),
            None => Err(err(format!(
                "missing argument {} of {:?}",
                i + 1,
                call.func
            ))),
        }
    }

    fn label_replace(&mut self, lbl: Lbl, rep: &LabelReplace) -> Lbl {
        let view = self.arena.view(lbl);
        let src = view.get(&rep.src).unwrap_or("");
        let Some(caps) = rep.regex.captures(src) else {
            return lbl;
        };
        let mut value = String::new();
        caps.expand(&rep.replacement, &mut value);
        let mut labels = view.to_labels();
        labels.remove(&rep.dst);
        labels.set(&rep.dst, &value);
        self.arena.owned(labels)
    }

    /// `histogram_quantile` over classic buckets: samples are grouped by
    /// their labels without `le`; the result drops `le` and the name.
    fn histogram_quantile(&mut self, q: f64, v: &[Sample]) -> Vec<Sample> {
        struct Group {
            rep: Lbl,
            buckets: Vec<(f64, f64)>,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut by_hash: FastMap<u64, Vec<usize>> = FastMap::default();
        for s in v {
            let view = self.arena.view(s.lbl);
            let Some(upper) = view.get("le").and_then(parse_bound) else {
                continue;
            };
            let mut h = super::value::LabelHasher::default();
            for (n, val) in view.iter().filter(|(n, _)| *n != "le") {
                h.pair(n, val);
            }
            let key = h.finish();
            let bucket = by_hash.entry(key).or_default();
            let same = |a: &super::value::View<'_>, b: &super::value::View<'_>| {
                a.iter()
                    .filter(|(n, _)| *n != "le")
                    .eq(b.iter().filter(|(n, _)| *n != "le"))
            };
            let found = bucket
                .iter()
                .copied()
                .find(|&g| same(&self.arena.view(groups[g].rep), &view));
            let g = match found {
                Some(g) => g,
                None => {
                    groups.push(Group {
                        rep: s.lbl,
                        buckets: Vec::new(),
                    });
                    bucket.push(groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[g].buckets.push((upper, s.v));
        }
        let mut out = Vec::with_capacity(groups.len());
        for mut g in groups {
            if g.buckets.is_empty() {
                continue;
            }
            let pairs: Vec<(String, String)> = self
                .arena
                .view(Arena::drop_name(g.rep))
                .iter()
                .filter(|(n, _)| *n != "le")
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let lbl = self.arena.owned(Labels::new(pairs));
            out.push(Sample {
                lbl,
                v: bucket_quantile(q, &mut g.buckets),
            });
        }
        out
    }
}

/// `sort` (ascending) and `sort_desc`, NaN last either way; ties keep
/// their order.
fn sort_by_value(v: &mut [Sample], desc: bool) {
    v.sort_by(|a, b| {
        use std::cmp::Ordering;
        match (a.v.is_nan(), b.v.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                let o = a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal);
                if desc { o.reverse() } else { o }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_matches_go() {
        // 2006-01-02 22:04:05 UTC, a Monday.
        let t = 1_136_239_445.0;
        let got: Vec<f64> = [Func::Year, Func::Month, Func::DayOfMonth, Func::DayOfYear]
            .iter()
            .chain(&[Func::DayOfWeek, Func::Hour, Func::Minute])
            .map(|&f| date_fn(f, t))
            .collect();
        assert_eq!(got, vec![2006.0, 1.0, 2.0, 2.0, 1.0, 22.0, 4.0]);
        // 1970-01-01 was a Thursday.
        assert_eq!(date_fn(Func::DayOfWeek, 0.0), 4.0);
        assert_eq!(date_fn(Func::Year, -1.0), 1969.0);
        assert_eq!(date_fn(Func::DaysInMonth, 1_454_284_800.0), 29.0);
        assert_eq!(date_fn(Func::DayOfYear, 1_483_191_420.0), 366.0);
        assert_eq!(date_fn(Func::Month, 1_456_790_399.0), 2.0);
        assert_eq!(date_fn(Func::DayOfMonth, 1_456_790_399.0), 29.0);
        // What promtool 2.42 gives for NaN.
        assert_eq!(date_fn(Func::Year, f64::NAN), 292_277_026_596.0);
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![(1.0, 1.0), (2.0, 3.0), (f64::INFINITY, 4.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 1.5);
        let mut no_inf = vec![(1.0, 1.0)];
        assert!(bucket_quantile(0.5, &mut no_inf).is_nan());
    }

    #[test]
    fn quantile_sorts_nan_first() {
        assert_eq!(quantile(0.5, &mut [2.0, 0.0, 1.0]), 1.0);
        assert!(quantile(0.0, &mut [1.0, f64::NAN]).is_nan());
    }
}
