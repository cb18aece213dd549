//! `vigil demo`: Vigil watching a simulated model service, out of the box.

pub mod service;
pub mod sink;

use std::net::SocketAddr;
use std::path::Path;

/// The demo's config, with placeholders for addresses and directories.
pub const CONFIG_TEMPLATE: &str = include_str!("vigil-demo.toml");

/// Fills the template.
pub fn config_text(
    data_dir: &Path,
    plugin_dir: &Path,
    listen: SocketAddr,
    target: SocketAddr,
    sink: SocketAddr,
) -> String {
    let toml_path = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    CONFIG_TEMPLATE
        .replace("@DATA_DIR@", &toml_path(data_dir))
        .replace("@PLUGIN_DIR@", &toml_path(plugin_dir))
        .replace("@LISTEN@", &listen.to_string())
        .replace("@TARGET_URL@", &format!("http://{target}/metrics"))
        .replace("@SINK_URL@", &format!("http://{sink}/hook"))
        .replace("@SINK_HOST@", &sink.to_string())
}
