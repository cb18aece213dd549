//! Generated bindings of the `check` world of `vigil:plugin@0.1.0`, with
//! helpers on the generated types.
//!
//! Use these through `vigil_plugin_sdk` (`vigil_plugin_sdk::check`); this
//! crate exists on its own so that a check plugin links only the `check`
//! world's component type metadata.
#![deny(missing_docs)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "vigil:plugin/check@0.1.0",
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
}

impl<'a> Series<'a> {
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
}

/// What a check knows about the evaluation besides the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The evaluation time, milliseconds since the Unix epoch.
    pub now: i64,
}

impl Verdict {
    /// A verdict with the given status and score, no message and no band.
    #[inline]
    pub fn new(status: Status, score: f64) -> Self {
        Verdict {
            status,
            score,
            message: None,
            band: None,
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
    /// A batch with no series (`offsets == [0]`).
    fn default() -> Self {
        Batch {
            series: Vec::new(),
            offsets: vec![0],
            timestamps: Vec::new(),
            values: Vec::new(),
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
        }
    }

    /// Appends one series. Extra timestamps or values beyond the shorter of
    /// the two slices are ignored.
    ///
    /// # Panics
    ///
    /// If the batch would exceed `u32::MAX` points (a test helper; the host
    /// builds its batches itself).
    pub fn push_series(&mut self, id: u64, timestamps: &[i64], values: &[f64]) {
        let n = timestamps.len().min(values.len());
        self.series.push(id);
        self.timestamps.extend_from_slice(&timestamps[..n]);
        self.values.extend_from_slice(&values[..n]);
        let end = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        assert!(
            end as usize == self.values.len(),
            "batch exceeds u32::MAX points"
        );
        self.offsets.push(end);
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the batch holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Series `i`, if it exists and its offsets are in range.
    pub fn get(&self, i: usize) -> Option<Series<'_>> {
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i + 1)? as usize;
        Some(Series {
            id: *self.series.get(i)?,
            timestamps: self.timestamps.get(start..end)?,
            values: self.values.get(start..end)?,
        })
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
    /// The encoded state of series `i`, if the state covers it.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i + 1)? as usize;
        self.data.get(start..end)
    }
}
