//! Vigil: a monitoring engine for ML model services.
//!
//! The modules follow the pipeline: `collect` -> `store` -> `engine` (with
//! `query` and `sandbox`) -> `alert` -> `notify`, configured by `config` and
//! observed through `api`. Only `sandbox` touches wasmtime; `telemetry` is
//! the one place events are logged and counted; `demo` is the simulated
//! model service behind `vigil demo`; `ruletest` runs rule unit tests
//! (`vigil test`).

pub mod alert;
pub mod api;
pub mod collect;
pub mod config;
pub mod demo;
pub mod engine;
pub mod notify;
pub mod query;
pub mod ruletest;
pub mod sandbox;
pub mod store;
pub mod telemetry;
