use vigil_plugin_sdk::prelude::*;

#[check(name = "bad")]
fn bad(_: &NoParams, _: &Context, batch: &Batch, states: &mut Vec<u8>) -> Vec<Verdict> {
    let _ = states;
    batch.iter().map(|_| Verdict::ok(0.0)).collect()
}

fn main() {}
