//! Generated bindings of the `check` world of `vigil:plugin@0.2.0`, with
//! helpers on the generated types and the read-only views a check works
//! with ([`Series`], [`Labels`]).
//!
//! Use these through `vigil_plugin_sdk` (`vigil_plugin_sdk::check`); this
//! crate exists on its own so that a check plugin links only the `check`
//! world's component type metadata.
#![deny(missing_docs)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/vigil-plugin-0.2.0.wit",
        world: "vigil:plugin/check@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_check",
        default_bindings_module: "vigil_plugin_sdk::__private::check",
        additional_derives: [PartialEq],
    });
}

pub use bindings::*;

/// One series' window: points `timestamps[i]`, `values[i]`, ascending in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Series<'a> {
    /// The host's stable identifier of the series.
    pub id: u64,
    /// Milliseconds since the Unix epoch, ascending.
    pub timestamps: &'a [i64],
    /// One value per timestamp.
    pub values: &'a [f64],
    /// The series' labels.
    pub labels: Labels<'a>,
    /// Whether the query did not return the series at this evaluation (it
    /// did earlier): its window has no point at `now`.
    pub vanished: bool,
}

impl<'a> Series<'a> {
    /// A series the query returned at this evaluation, without labels
    /// (handy in tests).
    pub fn new(id: u64, timestamps: &'a [i64], values: &'a [f64]) -> Self {
        Series {
            id,
            timestamps,
            values,
            labels: Labels::EMPTY,
            vanished: false,
        }
    }

    /// The last point, if any.
    #[inline]
    pub fn last(&self) -> Option<(i64, f64)> {
        Some((*self.timestamps.last()?, *self.values.last()?))
    }

    /// The number of points.
    #[inline]
    pub fn len(&self) -> usize {
        self.values.len().min(self.timestamps.len())
    }

    /// Whether the window holds no point.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points as `(timestamp, value)` pairs, oldest first.
    #[inline]
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, f64)> + ExactSizeIterator + 'a {
        self.timestamps
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    /// The series' labels (`__name__` included when the query kept it).
    #[inline]
    pub fn labels(&self) -> Labels<'a> {
        self.labels
    }

    /// Whether the series vanished: returned by the query at an earlier
    /// evaluation, not at this one.
    #[inline]
    pub fn is_vanished(&self) -> bool {
        self.vanished
    }
}

/// One series' labels, sorted by name: a view into the batch's
/// [`LabelColumns`], so reading them copies nothing.
#[derive(Clone, Copy)]
pub struct Labels<'a> {
    columns: &'a LabelColumns,
    start: usize,
    end: usize,
}

/// The table behind [`Labels::EMPTY`].
static NO_LABELS: LabelColumns = LabelColumns {
    text: String::new(),
    strings: Vec::new(),
    offsets: Vec::new(),
    names: Vec::new(),
    values: Vec::new(),
};

impl<'a> Labels<'a> {
    /// No labels.
    pub const EMPTY: Labels<'static> = Labels {
        columns: &NO_LABELS,
        start: 0,
        end: 0,
    };

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The labels as `(name, value)`, sorted by name.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&'a str, &'a str)> + ExactSizeIterator {
        let c = self.columns;
        let names = c.names.get(self.start..self.end).unwrap_or_default();
        let values = c.values.get(self.start..self.end).unwrap_or_default();
        names
            .iter()
            .zip(values)
            .map(move |(&n, &v)| (c.string(n), c.string(v)))
    }

    /// The labels as `(name, value)` indices into the batch's string
    /// table, sorted by name. Equal indices are equal strings, so grouping
    /// series by indices compares integers instead of text. Hosts intern
    /// the strings, so equal strings nearly always share an index, but the
    /// contract does not promise it: where it matters, merge groups whose
    /// text is equal.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = (u32, u32)> + ExactSizeIterator + 'a {
        let c = self.columns;
        let names = c.names.get(self.start..self.end).unwrap_or_default();
        let values = c.values.get(self.start..self.end).unwrap_or_default();
        names.iter().copied().zip(values.iter().copied())
    }

    /// The text of an index from [`Labels::ids`].
    pub fn text(&self, id: u32) -> &'a str {
        self.columns.string(id)
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Default for LabelColumns {
    /// No strings and no series.
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

impl LabelColumns {
    /// String `k` of the table ("" when out of range).
    #[inline]
    pub fn string(&self, k: u32) -> &str {
        let k = k as usize;
        match (self.strings.get(k), self.strings.get(k + 1)) {
            (Some(&a), Some(&b)) => self.text.get(a as usize..b as usize).unwrap_or(""),
            _ => "",
        }
    }

    /// Whether the columns describe no label at all: hosts may send them
    /// empty, and then every series has no labels.
    pub fn is_unlabelled(&self) -> bool {
        self.offsets.len() <= 1 && self.names.is_empty()
    }

    /// The labels of series `i` (none when the columns do not cover it).
    pub fn series(&self, i: usize) -> Labels<'_> {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) if a <= b && (b as usize) <= self.names.len() => Labels {
                columns: self,
                start: a as usize,
                end: b as usize,
            },
            _ => Labels {
                columns: self,
                start: 0,
                end: 0,
            },
        }
    }

    /// Appends one series' labels, sorted by name (the last of a repeated
    /// name wins). Each string is written anew: the table need not be
    /// deduplicated, that is only how the host saves copying.
    ///
    /// # Panics
    ///
    /// If the table would exceed `u32::MAX` bytes or entries (a test helper).
    pub fn push_series(&mut self, labels: &[(&str, &str)]) {
        let mut sorted: Vec<(&str, &str)> = Vec::with_capacity(labels.len());
        for &(n, v) in labels {
            match sorted.iter_mut().find(|(m, _)| *m == n) {
                Some(slot) => slot.1 = v,
                None => sorted.push((n, v)),
            }
        }
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        if self.strings.is_empty() {
            self.strings.push(0);
        }
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for (n, v) in sorted {
            let name = self.push_string(n);
            let value = self.push_string(v);
            self.names.push(name);
            self.values.push(value);
        }
        self.offsets.push(to_u32(self.names.len()));
    }

    fn push_string(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.strings.push(to_u32(self.text.len()));
        to_u32(self.strings.len() - 2)
    }
}

/// `n` as a `u32`, for test helpers that document a panic past 4 Gi.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("batch column exceeds u32::MAX ({n})"))
}

/// What a check knows about the evaluation besides the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The evaluation time, milliseconds since the Unix epoch.
    pub now: i64,
}

impl Verdict {
    /// A verdict with the given status and score, and nothing else.
    #[inline]
    pub fn new(status: Status, score: f64) -> Self {
        Verdict {
            status,
            score,
            message: None,
            band: None,
            severity: None,
            labels: Vec::new(),
        }
    }

    /// The series is normal; `score` in the check's own unit.
    #[inline]
    pub fn ok(score: f64) -> Self {
        Self::new(Status::Ok, score)
    }

    /// The series is abnormal; `score` in the check's own unit.
    #[inline]
    pub fn firing(score: f64) -> Self {
        Self::new(Status::Firing, score)
    }

    /// The window holds too little data to judge (score 0).
    #[inline]
    pub fn no_data() -> Self {
        Self::new(Status::NoData, 0.0)
    }

    /// Adds a human-readable message.
    #[inline]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Adds the band the check considered normal at the last point.
    #[inline]
    pub fn with_band(mut self, lower: f64, upper: f64) -> Self {
        self.band = Some(Band { lower, upper });
        self
    }

    /// Sets the alert's `severity` label (it overrides the rule's).
    #[inline]
    pub fn with_severity(mut self, severity: impl Into<String>) -> Self {
        self.severity = Some(severity.into());
        self
    }

    /// Adds a label to the alert; an empty value removes the label.
    #[inline]
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// Whether the status is [`Status::Firing`].
    #[inline]
    pub fn is_firing(&self) -> bool {
        self.status == Status::Firing
    }
}

impl Status {
    /// `"ok"`, `"firing"` or `"no-data"`, as in the WIT.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Firing => "firing",
            Status::NoData => "no-data",
        }
    }
}

impl Default for Batch {
    /// A batch with no series (`offsets == [0]`, `matched == 0`).
    fn default() -> Self {
        Batch {
            series: Vec::new(),
            offsets: vec![0],
            timestamps: Vec::new(),
            values: Vec::new(),
            labels: LabelColumns::default(),
            matched: 0,
        }
    }
}

impl Batch {
    /// An empty batch with room for `series` series and `points` points.
    pub fn with_capacity(series: usize, points: usize) -> Self {
        let mut offsets = Vec::with_capacity(series + 1);
        offsets.push(0);
        Batch {
            series: Vec::with_capacity(series),
            offsets,
            timestamps: Vec::with_capacity(points),
            values: Vec::with_capacity(points),
            labels: LabelColumns::default(),
            matched: 0,
        }
    }

    /// Appends a series the query returned, without labels. Extra
    /// timestamps or values beyond the shorter of the two slices are
    /// ignored.
    ///
    /// # Panics
    ///
    /// After [`Batch::push_vanished`] (returned series come first), or if
    /// the batch would exceed `u32::MAX` points (a test helper; the host
    /// builds its batches itself).
    pub fn push_series(&mut self, id: u64, timestamps: &[i64], values: &[f64]) {
        self.push_labeled(id, &[], timestamps, values);
    }

    /// Appends a series the query returned, with its labels.
    ///
    /// # Panics
    ///
    /// Like [`Batch::push_series`].
    pub fn push_labeled(
        &mut self,
        id: u64,
        labels: &[(&str, &str)],
        timestamps: &[i64],
        values: &[f64],
    ) {
        assert!(
            self.matched as usize == self.series.len(),
            "push the series the query returned before the vanished ones"
        );
        self.push(id, labels, timestamps, values);
        self.matched += 1;
    }

    /// Appends a series that vanished: the query returned it at an earlier
    /// evaluation, not at this one.
    ///
    /// # Panics
    ///
    /// If the batch would exceed `u32::MAX` points.
    pub fn push_vanished(
        &mut self,
        id: u64,
        labels: &[(&str, &str)],
        timestamps: &[i64],
        values: &[f64],
    ) {
        self.push(id, labels, timestamps, values);
    }

    fn push(&mut self, id: u64, labels: &[(&str, &str)], timestamps: &[i64], values: &[f64]) {
        let n = timestamps.len().min(values.len());
        // Series pushed before any labelled one get their (empty) label
        // ranges first, so the label columns stay aligned with `series`.
        while self.labels.offsets.len() < self.series.len() + 1 {
            let end = self.labels.offsets.last().copied().unwrap_or(0);
            self.labels.offsets.push(end);
        }
        self.series.push(id);
        self.timestamps.extend_from_slice(&timestamps[..n]);
        self.values.extend_from_slice(&values[..n]);
        self.offsets.push(to_u32(self.values.len()));
        self.labels.push_series(labels);
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the batch holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// How many series the query returned at this evaluation (the first
    /// ones); the rest vanished.
    pub fn matched(&self) -> usize {
        (self.matched as usize).min(self.series.len())
    }

    /// Whether the query matched nothing at this evaluation.
    pub fn matched_nothing(&self) -> bool {
        self.matched == 0
    }

    /// Series `i`, if it exists and its offsets are in range.
    pub fn get(&self, i: usize) -> Option<Series<'_>> {
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i + 1)? as usize;
        Some(Series {
            id: *self.series.get(i)?,
            timestamps: self.timestamps.get(start..end)?,
            values: self.values.get(start..end)?,
            labels: self.labels.series(i),
            vanished: i >= self.matched as usize,
        })
    }

    /// Every series, in batch order (the returned ones, then the vanished).
    pub fn iter(&self) -> impl Iterator<Item = Series<'_>> {
        (0..self.series.len()).filter_map(|i| self.get(i))
    }
}

impl Default for State {
    /// No state for any series (empty `offsets`).
    fn default() -> Self {
        State {
            offsets: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl State {
    /// No state for `n` series, and `rule` as the rule's state: what a host
    /// sends when the series changed but the rule's state carries on.
    pub fn with_rule(n: usize, rule: &[u8]) -> Self {
        let mut offsets = vec![0; n + 1];
        offsets.push(to_u32(rule.len()));
        State {
            offsets,
            data: rule.to_vec(),
        }
    }

    /// The encoded state of slot `i` (series `i`, or the rule's slot after
    /// the last series), if the state covers it.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i + 1)? as usize;
        self.data.get(start..end)
    }
}
