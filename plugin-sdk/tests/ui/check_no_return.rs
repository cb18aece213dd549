use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
fn bad(params: &NoParams, ctx: &Context, series: &Series<'_>) {
    let _ = (params, ctx, series);
}

fn main() {}
