//! The evaluator: every expression is evaluated over a range of steps at
//! once, an instant query being a range of one step (as in Prometheus).
//!
//! Selectors and range-vector functions walk each series once across all
//! steps, so a range evaluation (window backfill) costs the series touched
//! times the steps, not a fresh selection per step. Operators, aggregations
//! and instant-vector functions then work step by step on vectors of
//! 16-byte samples whose labels are handles into the [`Arena`].

use super::plan::{At, Func, MatrixSel, Node, Selector, Subquery};
use super::value::{Arena, FastMap, Lbl, MemSeries, Sample, Value};
use super::{QueryError, functions};
use crate::store::SeriesId;
use crate::store::is_stale;
use crate::store::select::StoreReader;

/// Settings of one evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub lookback_ms: i64,
    /// Step of subqueries that name none (`x[1h:]`).
    pub subquery_step_ms: i64,
    /// Most samples one expression may produce across its steps.
    pub max_samples: usize,
    /// First and last step of the whole query, for `@ start()`/`@ end()`.
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The evaluation steps `start, start + step, ..., end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Range {
    pub fn instant(t: i64) -> Range {
        Range {
            start: t,
            end: t,
            step: 1,
        }
    }

    pub fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return 0;
        }
        usize::try_from((self.end - self.start) / self.step + 1).unwrap_or(0)
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

pub(crate) struct Evaluator<'r, 's> {
    pub store: &'r StoreReader<'s>,
    pub arena: Arena<'r>,
    pub p: Params,
}

/// A sliding window over one series' ring, kept across steps so each sample
/// is copied once per evaluation, with stale markers left out.
#[derive(Default)]
pub(crate) struct Window {
    ts: Vec<i64>,
    vs: Vec<f64>,
    head: usize,
    /// Samples up to this time have been read from the ring.
    scanned: Option<i64>,
}

impl Window {
    pub fn clear(&mut self) {
        self.ts.clear();
        self.vs.clear();
        self.head = 0;
        self.scanned = None;
    }

    /// Moves the window to `[start, end]`; both bounds never decrease.
    pub fn advance(&mut self, store: &StoreReader<'_>, id: SeriesId, start: i64, end: i64) {
        while self.head < self.ts.len() && self.ts[self.head] < start {
            self.head += 1;
        }
        if self.head > 1024 && self.head * 2 > self.ts.len() {
            self.ts.drain(..self.head);
            self.vs.drain(..self.head);
            self.head = 0;
        }
        let from = match self.scanned {
            Some(s) if s >= start => s.saturating_add(1),
            _ => start,
        };
        if from > end {
            return;
        }
        let r = store.range(id, from, end);
        for (ts, vs) in [r.first, r.second] {
            if any_stale(vs) {
                for (&t, &v) in ts.iter().zip(vs) {
                    if !is_stale(v) {
                        self.ts.push(t);
                        self.vs.push(v);
                    }
                }
            } else {
                self.ts.extend_from_slice(ts);
                self.vs.extend_from_slice(vs);
            }
        }
        self.scanned = Some(end);
    }

    pub fn slices(&self) -> (&[i64], &[f64]) {
        (&self.ts[self.head..], &self.vs[self.head..])
    }
}

/// Whether a run holds a stale marker; a branch-free scan, as they are rare.
fn any_stale(vs: &[f64]) -> bool {
    vs.iter().fold(false, |acc, &v| acc | is_stale(v))
}

pub(crate) fn err(message: impl Into<String>) -> QueryError {
    QueryError::new(message.into())
}

impl<'r, 's> Evaluator<'r, 's> {
    pub fn new(store: &'r StoreReader<'s>, p: Params) -> Self {
        Evaluator {
            store,
            arena: Arena::new(),
            p,
        }
    }

    pub fn eval(&mut self, node: &Node, r: Range) -> Result<Value, QueryError> {
        // A subquery like `x[1000y:1ms]` must fail, not allocate its steps.
        self.budget(r.len())?;
        match node {
            Node::Number(v) => Ok(Value::Scalar(vec![*v; r.len()])),
            Node::Str(_) => Ok(Value::String),
            Node::Selector(sel) => Ok(Value::Vector(self.vector_selector(sel, r, false)?)),
            Node::Matrix(_) | Node::Subquery(_) => Err(err(
                "a range vector can only be an argument of a function such as rate()",
            )),
            Node::Neg(inner) => self.negate(inner, r),
            Node::Call(call) => self.call(call, r),
            Node::Aggregate(agg) => self.aggregate(agg, r),
            Node::Binary(b) => self.binary(b, r),
        }
    }

    /// Evaluates a node that must produce an instant vector.
    pub fn eval_vector(&mut self, node: &Node, r: Range) -> Result<Vec<Vec<Sample>>, QueryError> {
        match self.eval(node, r)? {
            Value::Vector(v) => Ok(v),
            _ => Err(err("expected an instant vector")),
        }
    }

    /// Evaluates a node that must produce a scalar.
    pub fn eval_scalar(&mut self, node: &Node, r: Range) -> Result<Vec<f64>, QueryError> {
        match self.eval(node, r)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(err("expected a scalar")),
        }
    }

    /// The time a selector or subquery looks at for the step at `ts`,
    /// before its offset.
    pub fn ref_time(&self, at: At, ts: i64) -> i64 {
        match at {
            At::Step => ts,
            At::Time(t) => t,
            At::Start => self.p.start_ms,
            At::End => self.p.end_ms,
        }
    }

    pub fn budget(&self, samples: usize) -> Result<(), QueryError> {
        if samples > self.p.max_samples {
            return Err(err(format!(
                "query processing would load too many samples into memory ({samples} > {})",
                self.p.max_samples
            )));
        }
        Ok(())
    }

    /// The series a selector matches, with label handles.
    pub fn select(&mut self, sel: &Selector) -> Vec<(SeriesId, Lbl)> {
        let store = self.store;
        let mut ids: Vec<SeriesId> = Vec::new();
        let matches = |id: SeriesId, skip_name: bool| {
            store.labels(id).is_some_and(|l| {
                sel.matchers
                    .iter()
                    .all(|m| (skip_name && m.is_name_equal()) || m.matches(l))
            })
        };
        if let Some(name) = &sel.name {
            // The postings already pin the name: check the other matchers.
            ids.extend(
                store
                    .series_named(name)
                    .iter()
                    .copied()
                    .filter(|&id| matches(id, true)),
            );
        } else {
            let name_matchers: Vec<_> = sel
                .matchers
                .iter()
                .filter(|m| m.name == crate::store::labels::METRIC_NAME)
                .collect();
            if !name_matchers.is_empty() && !name_matchers.iter().all(|m| m.matches_value("")) {
                // Series without a name cannot match: walk the names instead.
                for (name, series) in store.names() {
                    if name_matchers.iter().all(|m| m.matches_value(name)) {
                        ids.extend(series.iter().copied().filter(|&id| matches(id, false)));
                    }
                }
                ids.sort_unstable();
            } else {
                let n = SeriesId::try_from(store.series_count()).unwrap_or(SeriesId::MAX);
                ids.extend((0..n).filter(|&id| matches(id, false)));
            }
        }
        // Prometheus selects from its head block unsorted, in the order the
        // series were created: the order of interning here. The order
        // decides ties in topk and sort, and the order of additions in sums.
        ids.into_iter()
            .filter_map(|id| Some((id, self.arena.borrowed(store.labels(id)?))))
            .collect()
    }

    /// An instant-vector selector at every step: the latest sample within
    /// the lookback delta, unless it is a stale marker. With `timestamps`,
    /// the value is the sample's timestamp in seconds (for `timestamp()`).
    pub fn vector_selector(
        &mut self,
        sel: &Selector,
        r: Range,
        timestamps: bool,
    ) -> Result<Vec<Vec<Sample>>, QueryError> {
        let series = self.select(sel);
        let n = r.len();
        let cap = if n.saturating_mul(series.len()) <= self.p.max_samples {
            series.len()
        } else {
            0
        };
        let mut out: Vec<Vec<Sample>> = (0..n).map(|_| Vec::with_capacity(cap)).collect();
        let mut total = 0usize;
        for &(id, lbl) in &series {
            for (i, step) in out.iter_mut().enumerate() {
                let t_ref = self.ref_time(sel.at, r.ts(i)) - sel.offset_ms;
                let Some((t, v)) = self.store.at_or_before(id, t_ref) else {
                    continue;
                };
                if t < t_ref - self.p.lookback_ms || is_stale(v) {
                    continue;
                }
                let v = if timestamps { t as f64 / 1000.0 } else { v };
                step.push(Sample { lbl, v });
                total += 1;
            }
            self.budget(total)?;
        }
        Ok(out)
    }

    fn negate(&mut self, inner: &Node, r: Range) -> Result<Value, QueryError> {
        match self.eval(inner, r)? {
            Value::Scalar(mut v) => {
                v.iter_mut().for_each(|x| *x = -*x);
                Ok(Value::Scalar(v))
            }
            Value::Vector(mut steps) => {
                let mut series: Vec<Lbl> = Vec::new();
                let mut seen: FastMap<Lbl, ()> = FastMap::default();
                for s in steps.iter_mut().flatten() {
                    if seen.insert(s.lbl, ()).is_none() {
                        series.push(s.lbl);
                    }
                    s.lbl = Arena::drop_name(s.lbl);
                    s.v = -s.v;
                }
                self.check_series_unique(&series)?;
                Ok(Value::Vector(steps))
            }
            Value::String => Err(err("unary minus needs a scalar or an instant vector")),
        }
    }

    /// Errors when dropping the metric name from these series (each listed
    /// once) makes two of them equal, as Prometheus checks over a matrix.
    pub fn check_series_unique(&self, series: &[Lbl]) -> Result<(), QueryError> {
        if series.len() < 2 || self.names_uniform(series.iter().copied()) {
            return Ok(());
        }
        let mut by_hash: FastMap<u64, Vec<Lbl>> = FastMap::default();
        for &lbl in series {
            let before = self.arena.view(lbl);
            let after = self.arena.view(Arena::drop_name(lbl));
            let bucket = by_hash.entry(after.hash()).or_default();
            for &other in bucket.iter() {
                let o_after = self.arena.view(Arena::drop_name(other));
                if o_after.content_eq(&after) && !self.arena.view(other).content_eq(&before) {
                    return Err(same_labelset());
                }
            }
            bucket.push(lbl);
        }
        Ok(())
    }

    /// Whether every handle shows the same metric name (or none): then
    /// dropping the name cannot make two distinct label sets equal.
    pub fn names_uniform(&self, mut lbls: impl Iterator<Item = Lbl>) -> bool {
        let Some(first) = lbls.next() else {
            return true;
        };
        let name = self.arena.get(first, crate::store::labels::METRIC_NAME);
        lbls.all(|l| self.arena.get(l, crate::store::labels::METRIC_NAME) == name)
    }

    /// Errors when two samples of one step have the same labels.
    pub fn check_step_unique(&self, vec: &[Sample]) -> Result<(), QueryError> {
        if vec.len() < 2 {
            return Ok(());
        }
        let mut by_hash: FastMap<u64, Vec<Lbl>> = FastMap::default();
        for s in vec {
            let view = self.arena.view(s.lbl);
            let bucket = by_hash.entry(view.hash()).or_default();
            if bucket.iter().any(|&o| self.arena.view(o).content_eq(&view)) {
                return Err(same_labelset());
            }
            bucket.push(s.lbl);
        }
        Ok(())
    }

    /// A function whose argument at `midx` is a range vector: the window of
    /// each series at each step goes through the function.
    pub fn range_call(
        &mut self,
        func: Func,
        args: &[Node],
        midx: usize,
        r: Range,
    ) -> Result<Value, QueryError> {
        let n = r.len();
        let mut params: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != midx {
                params.push(self.eval_scalar(a, r)?);
            }
        }
        let param = |k: usize, i: usize| params.get(k).and_then(|p| p.get(i)).copied();
        let keep_name = func == Func::LastOverTime;
        let mut out: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
        let mut produced: Vec<Lbl> = Vec::new();
        let mut total = 0usize;
        let mut emit = |out: &mut Vec<Vec<Sample>>, i: usize, lbl: Lbl, v: f64| {
            let lbl = if keep_name {
                lbl
            } else {
                Arena::drop_name(lbl)
            };
            out[i].push(Sample { lbl, v });
            total += 1;
        };
        match args.get(midx) {
            Some(Node::Matrix(ms)) => {
                let MatrixSel { sel, range_ms } = &**ms;
                let series = self.select(sel);
                let mut win = Window::default();
                for &(id, lbl) in &series {
                    win.clear();
                    let mut any = false;
                    for i in 0..n {
                        let ts = r.ts(i);
                        let end = self.ref_time(sel.at, ts) - sel.offset_ms;
                        let start = end - range_ms;
                        // One step over one contiguous run without stale
                        // markers (the common instant case): no copy.
                        let direct = if n == 1 {
                            let run = self.store.range(id, start, end);
                            (run.second.0.is_empty() && !any_stale(run.first.1))
                                .then_some(run.first)
                        } else {
                            None
                        };
                        let (wt, wv) = match direct {
                            Some(run) => run,
                            None => {
                                win.advance(self.store, id, start, end);
                                win.slices()
                            }
                        };
                        if wt.is_empty() {
                            continue;
                        }
                        let ctx = functions::WinCtx {
                            ts,
                            start,
                            end,
                            range_ms: *range_ms,
                            p0: param(0, i),
                            p1: param(1, i),
                        };
                        if let Some(v) = functions::range_fn(func, wt, wv, &ctx)? {
                            emit(&mut out, i, lbl, v);
                            any = true;
                        }
                    }
                    if any {
                        produced.push(lbl);
                    }
                }
            }
            Some(Node::Subquery(sq)) => {
                let series = self.subquery(sq, r)?;
                for s in &series {
                    let mut any = false;
                    for i in 0..n {
                        let ts = r.ts(i);
                        let end = self.ref_time(sq.at, ts) - sq.offset_ms;
                        let start = end - sq.range_ms;
                        let lo = s.ts.partition_point(|&t| t < start);
                        let hi = s.ts.partition_point(|&t| t <= end);
                        if lo >= hi {
                            continue;
                        }
                        let ctx = functions::WinCtx {
                            ts,
                            start,
                            end,
                            range_ms: sq.range_ms,
                            p0: param(0, i),
                            p1: param(1, i),
                        };
                        if let Some(v) =
                            functions::range_fn(func, &s.ts[lo..hi], &s.vs[lo..hi], &ctx)?
                        {
                            emit(&mut out, i, s.lbl, v);
                            any = true;
                        }
                    }
                    if any {
                        produced.push(s.lbl);
                    }
                }
            }
            _ => return Err(err("expected a range vector argument")),
        }
        self.budget(total)?;
        if func == Func::AbsentOverTime {
            let lbl = match args.get(midx) {
                Some(Node::Matrix(ms)) => self.absent_labels(&ms.sel),
                _ => self.arena.empty(),
            };
            let steps = out
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        vec![Sample { lbl, v: 1.0 }]
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            return Ok(Value::Vector(steps));
        }
        // Series of one named selector keep distinct labels without the
        // name; other sources may collide.
        let named = matches!(args.get(midx), Some(Node::Matrix(ms)) if ms.sel.name.is_some());
        if !keep_name && !named {
            self.check_series_unique(&produced)?;
        }
        Ok(Value::Vector(out))
    }

    /// Evaluates a subquery's expression at its own steps, covering every
    /// window the outer steps will look at, as in-memory series.
    pub fn subquery(&mut self, sq: &Subquery, r: Range) -> Result<Vec<MemSeries>, QueryError> {
        let step = sq.step_ms.unwrap_or(self.p.subquery_step_ms).max(1);
        let first = self.ref_time(sq.at, r.start) - sq.offset_ms;
        let last = self.ref_time(sq.at, r.end) - sq.offset_ms;
        let lo = first - sq.range_ms;
        let inner = Range {
            start: lo.div_euclid(step) * step + if lo.rem_euclid(step) == 0 { 0 } else { step },
            end: last,
            step,
        };
        let steps = self.eval_vector(&sq.expr, inner)?;
        let mut series: Vec<MemSeries> = Vec::new();
        let mut by_lbl: FastMap<Lbl, usize> = FastMap::default();
        let mut by_hash: FastMap<u64, Vec<usize>> = FastMap::default();
        let mut total = 0usize;
        for (i, vec) in steps.iter().enumerate() {
            let t = inner.ts(i);
            for s in vec {
                let idx = match by_lbl.get(&s.lbl) {
                    Some(&idx) => idx,
                    None => {
                        let view = self.arena.view(s.lbl);
                        let bucket = by_hash.entry(view.hash()).or_default();
                        let found = bucket
                            .iter()
                            .copied()
                            .find(|&j| self.arena.view(series[j].lbl).content_eq(&view));
                        let idx = match found {
                            Some(j) => j,
                            None => {
                                series.push(MemSeries {
                                    lbl: s.lbl,
                                    ts: Vec::new(),
                                    vs: Vec::new(),
                                });
                                bucket.push(series.len() - 1);
                                series.len() - 1
                            }
                        };
                        by_lbl.insert(s.lbl, idx);
                        idx
                    }
                };
                series[idx].ts.push(t);
                series[idx].vs.push(s.v);
                total += 1;
            }
        }
        self.budget(total)?;
        Ok(series)
    }

    /// The labels `absent()` reports for a selector: its equality matchers,
    /// except names matched more than once (Prometheus' historic rule).
    pub fn absent_labels(&mut self, sel: &Selector) -> Lbl {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut has: Vec<&str> = Vec::new();
        for m in &sel.matchers {
            if m.name == crate::store::labels::METRIC_NAME {
                continue;
            }
            if m.is_equal() && !has.contains(&m.name.as_str()) {
                pairs.retain(|(n, _)| *n != m.name);
                pairs.push((m.name.clone(), m.value().to_string()));
                has.push(&m.name);
            } else {
                pairs.retain(|(n, _)| *n != m.name);
            }
        }
        self.arena.owned(crate::store::labels::Labels::new(pairs))
    }

    /// Output labels of the evaluation, owned.
    pub fn labels(&self, lbl: Lbl) -> crate::store::labels::Labels {
        self.arena.view(lbl).to_labels()
    }
}

pub(crate) fn same_labelset() -> QueryError {
    err("vector cannot contain metrics with the same labelset")
}
