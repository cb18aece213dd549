use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
async fn bad(params: &NoParams, ctx: &Context, series: &Series<'_>) -> Verdict {
    let _ = (params, ctx, series);
    Verdict::no_data()
}

fn main() {}
