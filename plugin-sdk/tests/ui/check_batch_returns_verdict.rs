use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
fn bad(_: &NoParams, _: &Context, _batch: &Batch) -> Verdict {
    Verdict::ok(0.0)
}

fn main() {}
