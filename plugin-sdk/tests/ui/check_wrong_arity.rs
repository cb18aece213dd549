use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
fn bad(params: &NoParams, series: &Series<'_>) -> Verdict {
    let _ = (params, series);
    Verdict::no_data()
}

fn main() {}
