//! Compiled-artifact cache.
//!
//! Compiling a plugin takes tens of milliseconds; loading its serialized
//! artifact takes tens of microseconds. wasmtime deserializes a corrupted
//! artifact without complaint, so only the host writes this directory and an
//! entry's name binds it to the wasmtime version, the engine configuration
//! and the hash of the `.wasm` bytes it came from.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache {
            dir: dir.join(format!("wasmtime-{}", wasmtime_version())),
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", &wasm_sha256, self.engine_key))
    }

    /// Loads the artifact for `wasm_sha256` if this host wrote one.
    pub(crate) fn get(&self, engine: &Engine, wasm_sha256: &str) -> Option<Component> {
        let path = self.path(wasm_sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file is named after the hash of the source and the
        // engine configuration, and only this host writes the directory.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "ignoring unusable compiled plugin artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an artifact; a failure only costs a recompilation next time.
    pub(crate) fn put(&self, wasm_sha256: &str, component: &Component) {
        let result = (|| -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            std::fs::create_dir_all(&self.dir)?;
            let path = self.path(wasm_sha256);
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(err) = result {
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not cache compiled plugin");
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn wasmtime_version() -> &'static str {
    // Pinned in host/Cargo.toml; part of the cache key so an upgrade never
    // loads an artifact another version wrote.
    "48.0.8"
}
