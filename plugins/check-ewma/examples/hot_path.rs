//! Times one rule evaluation of 100k series x 120 points natively:
//! `cargo run --release --example hot_path -p check-ewma`.
use std::time::Instant;

use check_ewma::Plugin;
use vigil_plugin_sdk::{Batch, State, configure, evaluate};

fn main() {
    let (series, points) = (100_000usize, 120usize);
    let mut batch = Batch::with_capacity(series, series * points);
    let ts: Vec<i64> = (0..points as i64).map(|i| i * 15_000).collect();
    let mut vs = vec![0.0; points];
    for s in 0..series {
        for (i, v) in vs.iter_mut().enumerate() {
            *v = 50.0 + ((s * 31 + i * 7919) % 101) as f64 / 101.0;
        }
        batch.push_series(s as u64, &ts, &vs);
    }
    let params = configure::<Plugin>("{}").unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let cold =
        evaluate::<Plugin>(&params, 0, &batch, &State::default()).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "cold (replay 120 points/series): {:?}, state {} bytes",
        t.elapsed(),
        cold.state.data.len()
    );
    // Next tick: the window slid by one point.
    let mut next = Batch::with_capacity(series, series * points);
    let ts2: Vec<i64> = (1..=points as i64).map(|i| i * 15_000).collect();
    for s in 0..series {
        let b = batch.get(s).unwrap_or_else(|| panic!("series {s}"));
        let mut v = b.values[1..].to_vec();
        v.push(50.5);
        next.push_series(s as u64, &ts2, &v);
    }
    let t = Instant::now();
    let warm = evaluate::<Plugin>(&params, 0, &next, &cold.state).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "warm (1 new point/series): {:?}, {} verdicts",
        t.elapsed(),
        warm.verdicts.len()
    );
}
