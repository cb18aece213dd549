//! The plugin directory: what is loaded, what is broken and why.
//!
//! The directory is rescanned every second. A file is reloaded only when
//! its size or modification time changed and its hash differs, so touching
//! a file costs a stat, not a compile. A broken file is listed with its
//! reason and never stops the others from loading.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::sandbox::{Plugin, Sandbox};
use crate::telemetry::events;

/// One `.wasm` file and what came of loading it.
#[derive(Clone)]
pub struct PluginFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub result: Result<Arc<Plugin>, String>,
}

/// Everything the plugin directory holds, by file and by plugin name.
#[derive(Clone, Default)]
pub struct Catalog {
    pub files: BTreeMap<PathBuf, PluginFile>,
    /// Loaded plugins by the name they report; the first file wins a clash.
    pub by_name: HashMap<String, Arc<Plugin>>,
    /// Bumped on every change, so holders can tell a new catalog cheaply.
    pub generation: u64,
}

impl Catalog {
    /// Scans `dir`, reusing entries of `previous` whose files did not change.
    /// Returns the new catalog and whether anything changed.
    pub fn scan(dir: &Path, sandbox: &Sandbox, previous: &Catalog) -> (Catalog, bool) {
        let mut files = BTreeMap::new();
        let mut changed = false;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>(),
            Err(err) => {
                if previous.files.is_empty() && previous.generation > 0 {
                    return (previous.clone(), false);
                }
                tracing::warn!(dir = %dir.display(), error = %err, "cannot read the plugin directory");
                Vec::new()
            }
        };
        for path in entries {
            if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let (size, modified) = (meta.len(), meta.modified().ok());
            if let Some(prev) = previous.files.get(&path)
                && prev.size == size
                && prev.modified == modified
            {
                files.insert(path, prev.clone());
                continue;
            }
            let result = sandbox.load_file(&path).map_err(|e| e.to_string());
            // A rewrite with identical bytes is not a change.
            let same = matches!((&result, previous.files.get(&path).map(|p| &p.result)),
                (Ok(new), Some(Ok(old))) if new.sha256 == old.sha256);
            if !same {
                changed = true;
                match &result {
                    Ok(p) => events::PluginLoaded {
                        name: &p.info.name,
                        version: &p.info.version,
                        kind: &p.info.kind.to_string(),
                        path: &path.display().to_string(),
                    }
                    .emit(),
                    Err(e) => events::PluginRejected {
                        path: &path.display().to_string(),
                        error: e,
                    }
                    .emit(),
                }
            }
            let result = match (same, previous.files.get(&path)) {
                (true, Some(prev)) => prev.result.clone(),
                _ => result,
            };
            files.insert(
                path.clone(),
                PluginFile {
                    path,
                    size,
                    modified,
                    result,
                },
            );
        }
        if previous.files.keys().any(|p| !files.contains_key(p)) {
            changed = true;
            for p in previous.files.keys().filter(|p| !files.contains_key(*p)) {
                tracing::info!(path = %p.display(), "plugin file removed");
            }
        }
        let mut by_name: HashMap<String, Arc<Plugin>> = HashMap::new();
        for file in files.values_mut() {
            if let Ok(p) = &file.result {
                if let Some(first) = by_name.get(&p.info.name) {
                    file.result = Err(format!(
                        "plugin name {:?} is already provided by {}",
                        p.info.name,
                        first.source.display()
                    ));
                } else {
                    by_name.insert(p.info.name.clone(), p.clone());
                }
            }
        }
        let generation = if changed || previous.generation == 0 {
            previous.generation + 1
        } else {
            previous.generation
        };
        (
            Catalog {
                files,
                by_name,
                generation,
            },
            changed,
        )
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.by_name.get(name)
    }
}
