use vigil_plugin_sdk::prelude::*;

#[check(description = "no name")]
fn bad(params: &NoParams, ctx: &Context, series: &Series<'_>) -> Verdict {
    let _ = (params, ctx, series);
    Verdict::no_data()
}

fn main() {}
