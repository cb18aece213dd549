//! The NAB scorer on small cases computed by hand.
//!
//! NAB's scaled sigmoid `2 / (1 + e^(5y)) - 1` is `-tanh(5y / 2)`; the
//! expected values below use the tanh form, so they do not repeat the
//! scorer's own arithmetic.

use vigil_tests::nab::{
    self, FileScores, PROFILES, Profile, best_threshold, best_thresholds, score_at,
};

const STANDARD: Profile = PROFILES[0];
const LOW_FP: Profile = PROFILES[1];
const LOW_FN: Profile = PROFILES[2];

/// `sigma(y)` written independently of the scorer.
fn sigma(y: f64) -> f64 {
    if y > 3.0 { -1.0 } else { -(2.5 * y).tanh() }
}

/// The value of a detection at row `i` of window `[a, b]`, for `A_TP = 1`.
fn tp(a: usize, b: usize, i: usize) -> f64 {
    let w = (b - a + 1) as f64;
    sigma(-((b - i + 1) as f64) / w) / sigma(-1.0)
}

/// 100 rows (15 probationary), one window at rows 40..=49 (10 rows wide).
const WINDOW: [Option<(usize, usize)>; 1] = [Some((40, 49))];

/// Scores of 100 rows: `hits` get their score, every other row 0.
fn scores(hits: &[(usize, f64)]) -> Vec<f64> {
    let mut s = vec![0.0; 100];
    for &(i, v) in hits {
        s[i] = v;
    }
    s
}

fn one(scores: &[f64]) -> [FileScores<'_>; 1] {
    [FileScores {
        scores,
        windows: &WINDOW,
    }]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn probation_is_fifteen_percent_capped_at_750() {
    assert_eq!(nab::probationary_rows(100), 15);
    assert_eq!(nab::probationary_rows(1243), 186);
    assert_eq!(nab::probationary_rows(5000), 750);
    assert_eq!(nab::probationary_rows(18050), 750);
    assert_eq!(nab::probationary_rows(6), 0);
}

#[test]
fn a_hit_at_the_first_row_of_a_window_scores_exactly_a_tp() {
    let s = scores(&[(40, 1.0)]);
    let r = score_at(&one(&s), &STANDARD, 0.5);
    assert_eq!(r.raw, 1.0);
    assert_eq!(r.normalized, 100.0);
    assert_eq!(
        (r.true_positives, r.false_positives, r.false_negatives),
        (1, 0, 0)
    );
    // Later in the window is worth less; at the last row almost nothing.
    let s = scores(&[(45, 1.0)]);
    assert!(close(
        score_at(&one(&s), &STANDARD, 0.5).raw,
        tp(40, 49, 45)
    ));
    let s = scores(&[(49, 1.0)]);
    let last = score_at(&one(&s), &STANDARD, 0.5).raw;
    assert!(close(last, (0.25f64).tanh() / (2.5f64).tanh()), "{last}");
}

#[test]
fn a_miss_scores_minus_a_fn() {
    let s = scores(&[]);
    let r = score_at(&one(&s), &STANDARD, 0.5);
    assert_eq!((r.raw, r.normalized, r.false_negatives), (-1.0, 0.0, 1));
    assert_eq!(score_at(&one(&s), &LOW_FN, 0.5).raw, -2.0);
}

#[test]
fn only_the_earliest_detection_in_a_window_counts() {
    let s = scores(&[(42, 1.0), (45, 1.0), (48, 1.0)]);
    let r = score_at(&one(&s), &STANDARD, 0.5);
    assert!(close(r.raw, tp(40, 49, 42)));
    assert_eq!((r.true_positives, r.false_positives), (1, 0));
}

#[test]
fn false_positives_are_scored_against_the_last_window() {
    // Right after the window: 3 rows past its end, relative to w - 1 = 9.
    let s = scores(&[(40, 1.0), (52, 1.0)]);
    let r = score_at(&one(&s), &STANDARD, 0.5);
    assert!(close(r.raw, 1.0 + 0.11 * sigma(3.0 / 9.0)), "{}", r.raw);
    assert!(r.raw > 1.0 - 0.11, "a near miss costs less than a full FP");
    assert_eq!(r.false_positives, 1);
    // More than 3 widths after: a full -A_FP.
    let s = scores(&[(40, 1.0), (77, 1.0)]);
    assert!(close(score_at(&one(&s), &STANDARD, 0.5).raw, 1.0 - 0.11));
    // Before any window: -A_FP, doubled in the low-FP profile.
    let s = scores(&[(40, 1.0), (20, 1.0)]);
    assert!(close(score_at(&one(&s), &STANDARD, 0.5).raw, 1.0 - 0.11));
    assert!(close(score_at(&one(&s), &LOW_FP, 0.5).raw, 1.0 - 0.22));
}

#[test]
fn probationary_rows_are_not_scored() {
    // A detection at row 10 (< 15) would be a false positive before any window.
    let s = scores(&[(10, 1.0), (40, 1.0)]);
    let r = score_at(&one(&s), &STANDARD, 0.5);
    assert_eq!((r.raw, r.false_positives), (1.0, 0));
}

#[test]
fn threshold_search_picks_the_best_per_profile() {
    // Row 70 is far after the window, row 20 before it.
    let s = scores(&[(45, 0.9), (70, 0.95), (20, 0.3), (41, 0.2)]);
    let far = sigma(21.0 / 9.0);
    // Candidates: 1.1 -> -1; 0.95 -> -1 + A_FP far; 0.9 -> tp(45) + A_FP far;
    // 0.3 -> ... - A_FP; 0.2 -> tp(41) + A_FP far - A_FP; 0 -> every row fires.
    let standard = best_threshold(&one(&s), &STANDARD);
    assert_eq!(standard.threshold, 0.2);
    let want = tp(40, 49, 41) + 0.11 * far - 0.11;
    assert!(close(standard.raw, want), "{} vs {want}", standard.raw);
    assert_eq!((standard.true_positives, standard.false_positives), (1, 2));
    // With false positives at twice the cost, catching the window later is better.
    let low_fp = best_threshold(&one(&s), &LOW_FP);
    assert_eq!(low_fp.threshold, 0.9);
    assert!(close(low_fp.raw, tp(40, 49, 45) + 0.22 * far));
    // Doing nothing is a candidate too.
    let s = scores(&[(20, 0.9), (30, 0.8)]);
    let none = best_threshold(&one(&s), &STANDARD);
    assert_eq!((none.threshold, none.raw), (1.1, -1.0));
    // One sort serves every profile.
    let s = scores(&[(45, 0.9), (70, 0.95), (20, 0.3), (41, 0.2)]);
    let all = best_thresholds(&one(&s), &PROFILES);
    assert_eq!(all[0], standard);
    assert_eq!(all[1], low_fp);
}

#[test]
fn equal_scores_detect_together() {
    // A tie at the threshold: both rows are detections.
    let s = scores(&[(40, 0.7), (20, 0.7)]);
    let r = score_at(&one(&s), &STANDARD, 0.7);
    assert!(close(r.raw, 1.0 - 0.11));
    assert_eq!(best_threshold(&one(&s), &STANDARD).threshold, 0.7);
}

#[test]
fn normalisation_spans_null_to_perfect_over_the_corpus() {
    let hit = scores(&[(40, 1.0)]);
    let miss = scores(&[]);
    let quiet = vec![0.0; 100];
    let no_windows: [Option<(usize, usize)>; 0] = [];
    let files = [
        FileScores {
            scores: &hit,
            windows: &WINDOW,
        },
        FileScores {
            scores: &miss,
            windows: &WINDOW,
        },
        FileScores {
            scores: &quiet,
            windows: &no_windows,
        },
    ];
    // Standard: S = 1 - 1 = 0, S_perfect = 2, S_null = -2: 100 * 2 / 4.
    let r = score_at(&files, &STANDARD, 0.5);
    assert_eq!((r.raw, r.normalized), (0.0, 50.0));
    // Low FN: S = 1 - 2 = -1, S_null = -4: 100 * 3 / 6.
    let r = score_at(&files, &LOW_FN, 0.5);
    assert_eq!((r.raw, r.normalized), (-1.0, 50.0));
}

#[test]
fn windows_become_inclusive_row_ranges() {
    let ts: Vec<i64> = (0..10).map(|i| i * 300).collect();
    let rows = nab::window_rows(&ts, &[(600, 1500), (650, 700), (0, 0), (2800, 9000)]);
    assert_eq!(rows, [Some((2, 5)), None, Some((0, 0)), None]);
    // A window holding no row cannot be detected: it is a miss.
    let s = vec![1.0; 10];
    let windows = [None];
    let files = [FileScores {
        scores: &s,
        windows: &windows,
    }];
    assert_eq!(score_at(&files, &STANDARD, 0.5).false_negatives, 1);
}

#[test]
fn timestamps_parse_as_utc_microseconds() {
    let t = nab::parse_timestamp_us("2014-04-10 16:15:00").unwrap();
    assert_eq!(t, 1_397_146_500_000_000);
    assert_eq!(
        nab::parse_timestamp_us("2014-04-10 16:15:00.000000"),
        Some(t)
    );
    assert_eq!(
        nab::parse_timestamp_us("2014-04-10 16:15:00.25"),
        Some(t + 250_000)
    );
    assert_eq!(
        nab::parse_timestamp_us("1969-12-31 23:59:59"),
        Some(-1_000_000)
    );
    for bad in ["2014-13-01 00:00:00", "2014-04-10", "2014-04-10 16:15", "x"] {
        assert_eq!(nab::parse_timestamp_us(bad), None, "{bad}");
    }
    assert_eq!(nab::format_timestamp_us(t), "2014-04-10 16:15:00");
    assert_eq!(
        nab::format_timestamp_us(t + 250_000),
        "2014-04-10 16:15:00.250000"
    );
}

#[test]
fn results_csv_keeps_full_precision() {
    let dir = vigil_tests::TempDir::new("nab");
    let csv = "timestamp,value\n2014-04-10 16:15:00,1.5\n2014-04-10 16:20:00,2\n";
    let (timestamps_us, values) = nab::parse_csv(csv).unwrap();
    let file = nab::DataFile {
        name: "cat/f.csv".into(),
        windows_us: vec![(timestamps_us[1], timestamps_us[1])],
        timestamps_us,
        values,
    };
    let scores = [0.1 + 0.2, 1.0 / 3.0];
    let path = dir.path().join("cat/x_f.csv");
    nab::write_results_csv(&path, &file, &scores).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
    assert_eq!(lines[1], "2014-04-10 16:15:00,1.5,0.30000000000000004,0");
    let back: f64 = lines[2].split(',').nth(2).unwrap().parse().unwrap();
    assert_eq!(back, 1.0 / 3.0);
    assert!(lines[2].ends_with(",1"));
}
