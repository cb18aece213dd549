use vigil_plugin_sdk::prelude::*;

#[notifier(name = "bad")]
fn bad<P>(params: &P, notification: &Notification) -> Result<Vec<Delivery>, String> {
    let _ = (params, notification);
    Ok(Vec::new())
}

fn main() {}
