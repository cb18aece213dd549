//! The Numenta Anomaly Benchmark: corpus reader and scorer.
//!
//! Written from DESIGN.md's "NAB scoring, precisely". The scorer is pure:
//! it takes each file's rows, windows (as row ranges) and per-row anomaly
//! scores, and returns, per profile, the corpus-wide best threshold with its
//! raw and normalised score. Timestamps are parsed here (`YYYY-MM-DD
//! HH:MM:SS` with optional fractional seconds, read as UTC) into
//! microseconds since the Unix epoch; no date library is needed.
//!
//! Edge cases the rules leave open, decided here:
//! - a window that holds no row of its file cannot be detected: it counts as
//!   a miss;
//! - a false positive after a window one row wide (`w' - 1 = 0`) is "well
//!   behind" that window and scores `-A_FP`;
//! - rows of a window that fall in the probationary period are not scored;
//!   the window is still counted (as a miss if no scored row detects it).

use std::fmt;
use std::path::{Path, PathBuf};

/// One NAB data file: its rows and its labelled windows.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// `<category>/<file>.csv`, as keyed in `windows.json`.
    pub name: String,
    /// Row timestamps, microseconds since the Unix epoch (UTC), in file order.
    pub timestamps_us: Vec<i64>,
    /// Row values, in file order.
    pub values: Vec<f64>,
    /// Labelled windows as `(start, end)` timestamps in microseconds, inclusive.
    pub windows_us: Vec<(i64, i64)>,
}

impl DataFile {
    /// The windows as inclusive row ranges (see [`window_rows`]).
    pub fn window_rows(&self) -> Vec<Option<(usize, usize)>> {
        window_rows(&self.timestamps_us, &self.windows_us)
    }

    /// Timestamps in milliseconds, the unit of the plugin contract.
    pub fn timestamps_ms(&self) -> Vec<i64> {
        self.timestamps_us
            .iter()
            .map(|t| t.div_euclid(1000))
            .collect()
    }

    /// 1 for rows inside a labelled window, else 0 (the `label` column of a results CSV).
    pub fn labels(&self) -> Vec<u8> {
        let mut labels = vec![0u8; self.values.len()];
        for (a, b) in self.window_rows().into_iter().flatten() {
            labels[a..=b].iter_mut().for_each(|l| *l = 1);
        }
        labels
    }
}

/// What went wrong reading a corpus.
#[derive(Debug)]
pub enum NabError {
    /// A file or directory could not be read.
    Io(PathBuf, std::io::Error),
    /// A file's content is not what NAB files contain.
    Parse(String),
}

impl fmt::Display for NabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NabError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            NabError::Parse(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for NabError {}

/// The corpus directory: `$VIGIL_NAB_DIR`, else `../shared/data/nab` relative
/// to the workspace root.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("VIGIL_NAB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nab");
            dir.canonicalize().unwrap_or(dir)
        }
    }
}

/// Reads `<dir>/windows.json` and every file it names under `<dir>/data/`,
/// sorted by name.
pub fn load_corpus(dir: &Path) -> Result<Vec<DataFile>, NabError> {
    let path = dir.join("windows.json");
    let text = std::fs::read_to_string(&path).map_err(|e| NabError::Io(path.clone(), e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| NabError::Parse(format!("{}: {e}", path.display())))?;
    let serde_json::Value::Object(map) = json else {
        return Err(NabError::Parse(format!(
            "{}: expected an object of file names",
            path.display()
        )));
    };
    let mut files = Vec::with_capacity(map.len());
    for (name, windows) in map {
        let bad = || {
            NabError::Parse(format!(
                "{}: `{name}`: expected [[start, end], ...]",
                path.display()
            ))
        };
        let mut windows_us = Vec::new();
        for w in windows.as_array().ok_or_else(bad)? {
            let pair = w.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
            let ts = |v: &serde_json::Value| {
                let s = v.as_str().ok_or_else(bad)?;
                parse_timestamp_us(s)
                    .ok_or_else(|| NabError::Parse(format!("`{name}`: bad timestamp {s:?}")))
            };
            windows_us.push((ts(&pair[0])?, ts(&pair[1])?));
        }
        let csv = dir.join("data").join(&name);
        let text = std::fs::read_to_string(&csv).map_err(|e| NabError::Io(csv.clone(), e))?;
        let (timestamps_us, values) =
            parse_csv(&text).map_err(|msg| NabError::Parse(format!("{}: {msg}", csv.display())))?;
        files.push(DataFile {
            name,
            timestamps_us,
            values,
            windows_us,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Parses a NAB data CSV: a `timestamp,value` header, then one row per line.
pub fn parse_csv(text: &str) -> Result<(Vec<i64>, Vec<f64>), String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim().starts_with("timestamp") => {}
        _ => return Err("expected a `timestamp,value` header".to_string()),
    }
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row = || format!("line {}: {line:?}", i + 1);
        let (t, v) = line.split_once(',').ok_or_else(row)?;
        ts.push(parse_timestamp_us(t).ok_or_else(row)?);
        vs.push(v.trim().parse::<f64>().map_err(|_| row())?);
    }
    Ok((ts, vs))
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with a `T`) as UTC into
/// microseconds since the Unix epoch.
pub fn parse_timestamp_us(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
        || frac.len() > 6
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Fractional seconds, padded to microseconds.
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The number of probationary rows of a file of `n` rows: `min(floor(0.15 n), 750)`.
pub fn probationary_rows(n: usize) -> usize {
    (n * 15 / 100).min(750)
}

/// Each window as the inclusive row range `(a, b)` of the rows whose
/// timestamps lie in `[start, end]`; `None` when it holds no row.
/// `timestamps` must be in time order.
pub fn window_rows(timestamps: &[i64], windows: &[(i64, i64)]) -> Vec<Option<(usize, usize)>> {
    windows
        .iter()
        .map(|&(start, end)| {
            let a = timestamps.partition_point(|&t| t < start);
            let b = timestamps.partition_point(|&t| t <= end);
            (a < b).then(|| (a, b - 1))
        })
        .collect()
}

/// NAB's scaled sigmoid: `2 / (1 + e^(5y)) - 1`, and `-1` for `y > 3`.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// The weights of a scoring profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// NAB's name for it.
    pub name: &'static str,
    /// Weight of a true positive (the earliest detection in a window).
    pub a_tp: f64,
    /// Weight of a false positive (a detection outside every window).
    pub a_fp: f64,
    /// Weight of a false negative (a window with no detection).
    pub a_fn: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        a_tp: 1.0,
        a_fp: 0.22,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 2.0,
    },
];

/// One file's scored rows: what the detector said and where the windows are.
#[derive(Debug, Clone, Copy)]
pub struct FileScores<'a> {
    /// Anomaly score of every row, in file order.
    pub scores: &'a [f64],
    /// The file's windows as row ranges (see [`window_rows`]), in time order.
    pub windows: &'a [Option<(usize, usize)>],
}

/// Where a scored (non-probationary) row stands relative to the windows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Row {
    /// Inside window `window` (corpus-wide index); the value is the
    /// unweighted `sigma(-(b - i + 1)/w) / sigma(-1)` of a detection here.
    InWindow { window: usize, tp: f64 },
    /// Outside every window; the value is the unweighted FP factor
    /// (`-1`, or `sigma((i - b')/(w' - 1))`), to be multiplied by `A_FP`.
    Outside { fp: f64 },
}

/// The rows of a corpus, classified once for every threshold and profile.
struct Classified {
    /// (anomaly score, where the row is) for every scored row.
    rows: Vec<(f64, Row)>,
    /// Number of windows in the corpus (including undetectable ones).
    windows: usize,
}

fn classify(files: &[FileScores<'_>]) -> Classified {
    let mut rows = Vec::new();
    let mut windows = 0usize;
    for f in files {
        let n = f.scores.len();
        let probation = probationary_rows(n);
        // Windows of this file sorted by start, with their corpus-wide index.
        let mut ranges: Vec<(usize, usize, usize)> = f
            .windows
            .iter()
            .enumerate()
            .filter_map(|(k, w)| w.map(|(a, b)| (a, b, windows + k)))
            .collect();
        ranges.sort_unstable();
        windows += f.windows.len();
        let mut next = 0usize; // first window not yet passed
        let mut last_ended: Option<(usize, usize)> = None; // (b', w') of the last window that ended
        for (i, &score) in f.scores.iter().enumerate() {
            while let Some(&(_, b, _)) = ranges.get(next)
                && b < i
            {
                let (a, _, _) = ranges[next];
                last_ended = Some((b, b - a + 1));
                next += 1;
            }
            let row = match ranges.get(next) {
                Some(&(a, b, window)) if a <= i => {
                    let w = (b - a + 1) as f64;
                    let y = -((b - i + 1) as f64) / w;
                    Row::InWindow {
                        window,
                        tp: scaled_sigmoid(y) / scaled_sigmoid(-1.0),
                    }
                }
                _ => Row::Outside {
                    fp: match last_ended {
                        None => -1.0,
                        Some((_, 1)) => -1.0,
                        Some((b, w)) => scaled_sigmoid((i - b) as f64 / (w - 1) as f64),
                    },
                },
            };
            if i >= probation {
                rows.push((score, row));
            }
        }
    }
    Classified { rows, windows }
}

/// A profile's result over a corpus at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileScore {
    /// The profile.
    pub profile: Profile,
    /// A row is a detection when its score is at least this.
    pub threshold: f64,
    /// The raw score `S`, summed over every file.
    pub raw: f64,
    /// `100 (S - S_null) / (S_perfect - S_null)`.
    pub normalized: f64,
    /// Windows detected.
    pub true_positives: usize,
    /// Detections outside every window.
    pub false_positives: usize,
    /// Windows not detected.
    pub false_negatives: usize,
}

impl fmt::Display for ProfileScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<19} {:>7.2}  (threshold {}, raw {:.4}, TP {}, FP {}, FN {})",
            self.profile.name,
            self.normalized,
            self.threshold,
            self.raw,
            self.true_positives,
            self.false_positives,
            self.false_negatives
        )
    }
}

fn normalize(profile: &Profile, raw: f64, windows: usize) -> f64 {
    let perfect = windows as f64 * profile.a_tp;
    let null = -profile.a_fn * windows as f64;
    if perfect == null {
        // No windows at all: only false positives can move the score.
        return if raw < 0.0 { 0.0 } else { 100.0 };
    }
    100.0 * (raw - null) / (perfect - null)
}

/// Running totals while lowering the threshold.
struct Sweep {
    /// Best unweighted TP value per window (`None`: not detected yet).
    best: Vec<Option<f64>>,
    /// Sum of `best` over detected windows.
    tp_sum: f64,
    detected: usize,
    /// Sum of unweighted FP factors, and how many.
    fp_sum: f64,
    fp_count: usize,
}

impl Sweep {
    fn new(windows: usize) -> Sweep {
        Sweep {
            best: vec![None; windows],
            tp_sum: 0.0,
            detected: 0,
            fp_sum: 0.0,
            fp_count: 0,
        }
    }

    fn add(&mut self, row: Row) {
        match row {
            Row::InWindow { window, tp } => match self.best[window] {
                None => {
                    self.best[window] = Some(tp);
                    self.tp_sum += tp;
                    self.detected += 1;
                }
                Some(old) if tp > old => {
                    self.best[window] = Some(tp);
                    self.tp_sum += tp - old;
                }
                Some(_) => {}
            },
            Row::Outside { fp } => {
                self.fp_sum += fp;
                self.fp_count += 1;
            }
        }
    }

    fn score(&self, p: &Profile, threshold: f64, windows: usize) -> ProfileScore {
        // Recomputed from the per-window bests, not from the running sum, so
        // the result does not depend on the order rows were added in.
        let tp: f64 = self.best.iter().flatten().sum();
        let missed = windows - self.detected;
        let raw = p.a_tp * tp + p.a_fp * self.fp_sum - p.a_fn * missed as f64;
        ProfileScore {
            profile: *p,
            threshold,
            raw,
            normalized: normalize(p, raw, windows),
            true_positives: self.detected,
            false_positives: self.fp_count,
            false_negatives: missed,
        }
    }
}

/// The score of `profile` over the corpus at a fixed `threshold`.
pub fn score_at(files: &[FileScores<'_>], profile: &Profile, threshold: f64) -> ProfileScore {
    let c = classify(files);
    let mut sweep = Sweep::new(c.windows);
    for &(score, row) in &c.rows {
        if score >= threshold {
            sweep.add(row);
        }
    }
    sweep.score(profile, threshold, c.windows)
}

/// The best corpus-wide threshold of `profile` and its score.
///
/// Tries 1.1 (no detection for scores in [0, 1]) and every distinct score
/// value; on a tie the highest threshold wins. NaN scores never detect.
pub fn best_threshold(files: &[FileScores<'_>], profile: &Profile) -> ProfileScore {
    let (rows, windows) = sorted_rows(files);
    sweep_thresholds(&rows, windows, profile)
}

/// [`best_threshold`] for several profiles, sharing one sort of the rows.
pub fn best_thresholds(files: &[FileScores<'_>], profiles: &[Profile]) -> Vec<ProfileScore> {
    let (rows, windows) = sorted_rows(files);
    profiles
        .iter()
        .map(|p| sweep_thresholds(&rows, windows, p))
        .collect()
}

/// The scored rows by decreasing anomaly score (NaN dropped), and the window count.
fn sorted_rows(files: &[FileScores<'_>]) -> (Vec<(f64, Row)>, usize) {
    let c = classify(files);
    let mut rows: Vec<(f64, Row)> = c.rows.into_iter().filter(|r| !r.0.is_nan()).collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    (rows, c.windows)
}

/// Lowers the threshold through 1.1 and every distinct score of `rows`
/// (sorted by decreasing score), keeping the best.
fn sweep_thresholds(rows: &[(f64, Row)], windows: usize, p: &Profile) -> ProfileScore {
    let mut sweep = Sweep::new(windows);
    let mut next = 0usize;
    let mut advance = |sweep: &mut Sweep, threshold: f64| -> usize {
        while let Some(&(score, row)) = rows.get(next)
            && score >= threshold
        {
            sweep.add(row);
            next += 1;
        }
        next
    };
    let mut at = advance(&mut sweep, 1.1);
    let mut best = sweep.score(p, 1.1, windows);
    while let Some(&(threshold, _)) = rows.get(at) {
        at = advance(&mut sweep, threshold);
        let s = sweep.score(p, threshold, windows);
        if s.raw > best.raw {
            best = s;
        }
    }
    best
}

/// Writes a NAB results CSV (`timestamp,value,anomaly_score,label`) with
/// scores at full precision (Rust's shortest round-trip formatting).
pub fn write_results_csv(path: &Path, file: &DataFile, scores: &[f64]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "timestamp,value,anomaly_score,label")?;
    let labels = file.labels();
    for (i, (&t, &v)) in file.timestamps_us.iter().zip(&file.values).enumerate() {
        let score = scores.get(i).copied().unwrap_or(0.0);
        writeln!(
            out,
            "{},{v},{score:?},{}",
            format_timestamp_us(t),
            labels[i]
        )?;
    }
    out.flush()
}

/// Formats microseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC),
/// with `.ffffff` only when there is a fraction.
pub fn format_timestamp_us(t: i64) -> String {
    let days = t.div_euclid(86_400_000_000);
    let rem = t.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let micros = rem % 1_000_000;
    let base = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
