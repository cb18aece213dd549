//! One test binary for the whole system (the wasmtime layout): each module
//! drives the real `vigil` binary or library with real Wasm guests.

mod e2e;
mod config_errors;
mod sandbox;
mod plugins;
