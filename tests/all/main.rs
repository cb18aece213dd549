//! One test binary for the whole system (the wasmtime layout): each module
//! drives the real `vigil` binary or library with real Wasm guests.

mod alertmanager;
mod checks;
mod config_errors;
mod demo;
mod e2e;
mod email;
mod nab;
mod notifiers;
mod notify;
mod plugins;
mod promqltest;
mod ruletest;
mod sandbox;
mod sources;
mod state;
