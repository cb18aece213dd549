//! NAB through the real Wasm `anomaly` plugin, the way the host runs it.
//!
//! Each file of the corpus is streamed row by row in time order: at row i
//! the plugin (default parameters) gets one series whose window is the
//! last `WINDOW` rows up to and including i, and the state it returned for
//! row i - 1, so it can use rows 0..=i only. Row i's score is the verdict's
//! score; a row is also recorded as "firing" when the verdict is, which is
//! what a user with the default alert threshold gets.
//!
//! Prints the three NAB profiles with their corpus-wide best thresholds,
//! and the standard profile at the plugin's own alert threshold. With
//! `VIGIL_NAB_OUT` set, writes NAB results CSVs
//! (`<out>/anomaly/<category>/anomaly_<file>.csv`, columns
//! `timestamp,value,anomaly_score,label`, scores at full precision).
//!
//! Run: `env -u RUST_BACKTRACE cargo bench -p vigil-tests --bench nab`
//! (`VIGIL_NAB_DIR`, default `../shared/data/nab`: `data/` and `windows.json`).

use std::path::Path;
use std::time::Instant;

use vigil::sandbox::{Batch, CheckInstance, Limits, Sandbox, SeriesState, Status};
use vigil_tests::nab::{self, FileScores, PROFILES};

/// Rows in the window the host sends each call; the plugin's state carries the rest.
const WINDOW: usize = 300;

/// Per-row scores and firing flags of one file.
struct Run {
    scores: Vec<f64>,
    firing: Vec<f64>,
}

fn stream(instance: &mut CheckInstance, file: &nab::DataFile) -> Result<Run, String> {
    let ts = file.timestamps_ms();
    let mut batch = Batch::default();
    let mut state = SeriesState::empty(1);
    let mut run = Run {
        scores: Vec::with_capacity(ts.len()),
        firing: Vec::with_capacity(ts.len()),
    };
    for i in 0..ts.len() {
        let lo = (i + 1).saturating_sub(WINDOW);
        batch.series.clear();
        batch.series.push(0);
        batch.offsets.clear();
        batch.offsets.extend([0, (i + 1 - lo) as u32]);
        batch.timestamps.clear();
        batch.timestamps.extend_from_slice(&ts[lo..=i]);
        batch.values.clear();
        batch.values.extend_from_slice(&file.values[lo..=i]);
        let (b, _, out) = instance.evaluate(ts[i], batch, state);
        batch = b;
        let out = out.map_err(|e| format!("{} row {i}: {e}", file.name))?;
        let verdict = out
            .verdicts
            .first()
            .ok_or_else(|| format!("{} row {i}: no verdict", file.name))?;
        run.scores.push(verdict.score);
        run.firing.push(if verdict.status == Status::Firing {
            1.0
        } else {
            0.0
        });
        state = out.state;
    }
    Ok(run)
}

fn main() {
    let dir = nab::corpus_dir();
    if !dir.join("windows.json").exists() {
        println!(
            "nab: skipped: NAB corpus not found at {} (set VIGIL_NAB_DIR to a directory with data/ and windows.json)",
            dir.display()
        );
        return;
    }
    let files = match nab::load_corpus(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("nab: cannot read the corpus: {e}");
            std::process::exit(1);
        }
    };
    let wasm = vigil_tests::wasm("check-anomaly");
    let sandbox = Sandbox::new(None, Limits::default()).expect("sandbox");
    let plugin = sandbox.load_file(&wasm).expect("load check_anomaly.wasm");
    let params = serde_json::json!({});
    let out_dir = std::env::var_os("VIGIL_NAB_OUT").map(std::path::PathBuf::from);

    let started = Instant::now();
    let mut runs = Vec::with_capacity(files.len());
    for file in &files {
        // A fresh instance per file, as for a new rule: nothing carries over.
        let mut instance = CheckInstance::new(&sandbox, plugin.clone(), &params, Limits::default())
            .expect("instantiate the anomaly plugin");
        let run = match stream(&mut instance, file) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("nab: {e}");
                std::process::exit(1);
            }
        };
        if let Some(out) = &out_dir {
            let path = results_path(out, &file.name);
            if let Err(e) = nab::write_results_csv(&path, file, &run.scores) {
                eprintln!("nab: writing {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        runs.push(run);
    }
    let elapsed = started.elapsed();

    let rows: usize = files.iter().map(|f| f.values.len()).sum();
    let windows: Vec<_> = files.iter().map(|f| f.window_rows()).collect();
    let n_windows: usize = windows.iter().map(Vec::len).sum();
    let scored: Vec<FileScores<'_>> = runs
        .iter()
        .zip(&windows)
        .map(|(r, w)| FileScores {
            scores: &r.scores,
            windows: w,
        })
        .collect();
    println!(
        "NAB corpus {}: {} files, {rows} rows, {n_windows} windows; plugin {} (default params), window {WINDOW} rows, {:.2} s ({:.1} us/row)",
        dir.display(),
        files.len(),
        wasm.display(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / rows.max(1) as f64
    );
    println!("best corpus-wide threshold per profile:");
    for r in nab::best_thresholds(&scored, &PROFILES) {
        println!("  {r}");
    }
    let firing: Vec<FileScores<'_>> = runs
        .iter()
        .zip(&windows)
        .map(|(r, w)| FileScores {
            scores: &r.firing,
            windows: w,
        })
        .collect();
    println!("at the plugin's default alert threshold (rows whose verdict is firing):");
    for p in &PROFILES {
        let r = nab::score_at(&firing, p, 0.5);
        println!(
            "  {:<19} {:>7.2}  (raw {:.4}, TP {}, FP {}, FN {})",
            p.name, r.normalized, r.raw, r.true_positives, r.false_positives, r.false_negatives
        );
    }
    if let Some(out) = &out_dir {
        println!("results CSVs in {}", out.join("anomaly").display());
    }
}

/// NAB's results layout: `<out>/anomaly/<category>/anomaly_<file>.csv`.
fn results_path(out: &Path, name: &str) -> std::path::PathBuf {
    let (category, file) = name.rsplit_once('/').unwrap_or(("", name));
    out.join("anomaly")
        .join(category)
        .join(format!("anomaly_{file}"))
}
