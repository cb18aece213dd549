//! Binary operators: arithmetic, comparisons (with `bool`), `atan2` and the
//! set operators, with Prometheus 2.42's vector matching (`on`, `ignoring`,
//! `group_left`, `group_right`) and its errors.

use super::QueryError;
use super::eval::{Evaluator, Range, err};
use super::plan::{BinOp, Binary, Card};
use super::value::{Arena, FastMap, Lbl, Sample, Value};
use crate::store::labels::Labels;

/// Applies an operator to two floats: the value and whether to keep the
/// sample (comparisons filter, and keep the left value).
fn elem(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (f64::NAN, false),
    }
}

fn scalar_op(op: BinOp, l: f64, r: f64) -> f64 {
    let (v, keep) = elem(op, l, r);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

impl Evaluator<'_, '_> {
    pub fn binary(&mut self, b: &Binary, r: Range) -> Result<Value, QueryError> {
        let lhs = self.eval(&b.lhs, r)?;
        let rhs = self.eval(&b.rhs, r)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(rv)) => Ok(Value::Scalar(
                l.iter()
                    .zip(&rv)
                    .map(|(&x, &y)| scalar_op(b.op, x, y))
                    .collect(),
            )),
            (Value::Vector(v), Value::Scalar(s)) => self.vector_scalar(b, v, &s, false),
            (Value::Scalar(s), Value::Vector(v)) => self.vector_scalar(b, v, &s, true),
            (Value::Vector(l), Value::Vector(rv)) => {
                let mut cache: FastMap<(Lbl, Lbl), Lbl> = FastMap::default();
                let mut out = Vec::with_capacity(l.len());
                for (lv, rvv) in l.iter().zip(&rv) {
                    out.push(match b.op {
                        BinOp::And => self.set_and(b, lv, rvv),
                        BinOp::Or => self.set_or(b, lv, rvv),
                        BinOp::Unless => self.set_unless(b, lv, rvv),
                        _ => self.vector_vector(b, lv, rvv, &mut cache)?,
                    });
                }
                Ok(Value::Vector(out))
            }
            _ => Err(err("binary operators take scalars and instant vectors")),
        }
    }

    fn vector_scalar(
        &mut self,
        b: &Binary,
        mut steps: Vec<Vec<Sample>>,
        scalars: &[f64],
        swap: bool,
    ) -> Result<Value, QueryError> {
        let drop = b.op.drops_name() || b.return_bool;
        for (v, &s) in steps.iter_mut().zip(scalars) {
            let uniform = !drop || self.names_uniform(v.iter().map(|x| x.lbl));
            v.retain_mut(|x| {
                let (l, r) = if swap { (s, x.v) } else { (x.v, s) };
                let (mut value, mut keep) = elem(b.op, l, r);
                if b.op.is_comparison() && swap {
                    value = r;
                }
                if b.return_bool {
                    value = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                if keep {
                    x.v = value;
                    if drop {
                        x.lbl = Arena::drop_name(x.lbl);
                    }
                }
                keep
            });
            if !uniform {
                self.check_step_unique(v)?;
            }
        }
        Ok(Value::Vector(steps))
    }

    /// Signatures of one side's samples, grouped by hash.
    fn signatures(&self, b: &Binary, v: &[Sample]) -> (Vec<u64>, FastMap<u64, Vec<usize>>) {
        let mut sigs = Vec::with_capacity(v.len());
        let mut map: FastMap<u64, Vec<usize>> = FastMap::default();
        for (i, s) in v.iter().enumerate() {
            let h = b.spec.hash(self.arena.view(s.lbl));
            sigs.push(h);
            map.entry(h).or_default().push(i);
        }
        (sigs, map)
    }

    /// Whether `s` has a sample of `other` with the same signature.
    fn has_match(
        &self,
        b: &Binary,
        s: Lbl,
        h: u64,
        other: &[Sample],
        map: &FastMap<u64, Vec<usize>>,
    ) -> bool {
        let view = self.arena.view(s);
        map.get(&h).is_some_and(|idx| {
            idx.iter()
                .any(|&j| b.spec.same(view, self.arena.view(other[j].lbl)))
        })
    }

    fn set_and(&self, b: &Binary, l: &[Sample], r: &[Sample]) -> Vec<Sample> {
        if l.is_empty() || r.is_empty() {
            return Vec::new();
        }
        let (_, rmap) = self.signatures(b, r);
        l.iter()
            .filter(|s| {
                let h = b.spec.hash(self.arena.view(s.lbl));
                self.has_match(b, s.lbl, h, r, &rmap)
            })
            .copied()
            .collect()
    }

    fn set_or(&self, b: &Binary, l: &[Sample], r: &[Sample]) -> Vec<Sample> {
        if l.is_empty() {
            return r.to_vec();
        }
        if r.is_empty() {
            return l.to_vec();
        }
        let (_, lmap) = self.signatures(b, l);
        let mut out = l.to_vec();
        for s in r {
            let h = b.spec.hash(self.arena.view(s.lbl));
            if !self.has_match(b, s.lbl, h, l, &lmap) {
                out.push(*s);
            }
        }
        out
    }

    fn set_unless(&self, b: &Binary, l: &[Sample], r: &[Sample]) -> Vec<Sample> {
        if l.is_empty() || r.is_empty() {
            return l.to_vec();
        }
        let (_, rmap) = self.signatures(b, r);
        l.iter()
            .filter(|s| {
                let h = b.spec.hash(self.arena.view(s.lbl));
                !self.has_match(b, s.lbl, h, r, &rmap)
            })
            .copied()
            .collect()
    }

    /// Arithmetic and comparisons between two vectors (`VectorBinop`).
    fn vector_vector(
        &mut self,
        b: &Binary,
        lhs: &[Sample],
        rhs: &[Sample],
        cache: &mut FastMap<(Lbl, Lbl), Lbl>,
    ) -> Result<Vec<Sample>, QueryError> {
        if b.card == Card::ManyToMany {
            return Err(err(
                "many-to-many matching is only allowed for set operators",
            ));
        }
        if lhs.is_empty() || rhs.is_empty() {
            return Ok(Vec::new());
        }
        // One-to-many is many-to-one with the sides swapped.
        let (many, one) = if b.card == Card::OneToMany {
            (rhs, lhs)
        } else {
            (lhs, rhs)
        };
        let (_, one_map) = self.signatures(b, one);
        // The "one" side must have at most one sample per signature.
        for idx in one_map.values() {
            for (a, &i) in idx.iter().enumerate() {
                for &j in &idx[a + 1..] {
                    let (vi, vj) = (self.arena.view(one[i].lbl), self.arena.view(one[j].lbl));
                    if b.spec.same(vi, vj) {
                        let (first, second) = if i < j { (j, i) } else { (i, j) };
                        let group = Labels::new(
                            b.spec
                                .pairs(vi)
                                .map(|(n, v)| (n.to_string(), v.to_string()))
                                .collect(),
                        );
                        return Err(err(format!(
                            "found duplicate series for the match group {group} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                            if b.card == Card::OneToMany {
                                "left"
                            } else {
                                "right"
                            },
                            self.arena.view(one[first].lbl).to_labels(),
                            self.arena.view(one[second].lbl).to_labels(),
                        )));
                    }
                }
            }
        }
        // Which "one" samples matched, and the result labels per match.
        let mut matched: Vec<Option<Vec<Lbl>>> = vec![None; one.len()];
        let mut out = Vec::new();
        for ls in many {
            let lview = self.arena.view(ls.lbl);
            let h = b.spec.hash(lview);
            let Some(ri) = one_map.get(&h).and_then(|idx| {
                idx.iter()
                    .copied()
                    .find(|&j| b.spec.same(lview, self.arena.view(one[j].lbl)))
            }) else {
                continue;
            };
            let rs = one[ri];
            let (vl, vr) = if b.card == Card::OneToMany {
                (rs.v, ls.v)
            } else {
                (ls.v, rs.v)
            };
            let (mut value, keep) = elem(b.op, vl, vr);
            if b.return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let mut metric = self.result_metric(b, ls.lbl, rs.lbl, cache);
            if b.return_bool {
                metric = Arena::drop_name(metric);
            }
            match (b.card, &mut matched[ri]) {
                (Card::OneToOne, Some(_)) => {
                    return Err(err(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                (Card::OneToOne, slot) => *slot = Some(Vec::new()),
                (_, slot) => {
                    let seen = slot.get_or_insert_with(Vec::new);
                    let mview = self.arena.view(metric);
                    if seen.iter().any(|&o| self.arena.view(o).content_eq(&mview)) {
                        return Err(err(
                            "multiple matches for labels: grouping labels must ensure unique matches",
                        ));
                    }
                    seen.push(metric);
                }
            }
            out.push(Sample {
                lbl: metric,
                v: value,
            });
        }
        Ok(out)
    }

    /// The labels of a vector-vector result (`resultMetric`): the "many"
    /// side's labels, without the name for arithmetic, restricted by
    /// `on`/`ignoring` for one-to-one matching, plus `group_x` labels from
    /// the "one" side.
    fn result_metric(
        &mut self,
        b: &Binary,
        l: Lbl,
        r: Lbl,
        cache: &mut FastMap<(Lbl, Lbl), Lbl>,
    ) -> Lbl {
        let drop = b.op.drops_name();
        let one_to_one = b.card == Card::OneToOne;
        // Common case: the labels are the left side's, maybe without name.
        if b.include.is_empty() && (!one_to_one || !b.on) {
            let view = self.arena.view(l);
            if !one_to_one || b.matching.iter().all(|m| view.get(m).is_none()) {
                return if drop { Arena::drop_name(l) } else { l };
            }
        }
        if let Some(&m) = cache.get(&(l, r)) {
            return m;
        }
        let mut labels = {
            let lv = if drop {
                self.arena.view(Arena::drop_name(l))
            } else {
                self.arena.view(l)
            };
            if one_to_one {
                let on = b.on;
                let pairs = lv
                    .iter()
                    .filter(|(n, _)| {
                        let listed = b.matching.binary_search_by(|m| m.as_str().cmp(n)).is_ok();
                        listed == on
                    })
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                Labels::new(pairs)
            } else {
                lv.to_labels()
            }
        };
        if !b.include.is_empty() {
            let rv = self.arena.view(r);
            for name in &b.include {
                match rv.get(name) {
                    Some(v) if !v.is_empty() => labels.set(name, v),
                    _ => labels.remove(name),
                }
            }
        }
        let m = self.arena.owned(labels);
        cache.insert((l, r), m);
        m
    }
}
