use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
fn bad(params: &NoParams, ctx: &Context, series: &Series<'_>, state: &u64) -> Verdict {
    let _ = (params, ctx, series, state);
    Verdict::no_data()
}

fn main() {}
