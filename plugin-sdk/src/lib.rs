//! Write Vigil check and notifier plugins in Rust.
//!
//! A plugin is a `wasm32-wasip2` component that implements one of the two
//! worlds of `wit/vigil-plugin-0.2.0.wit` (`vigil:plugin@0.2.0`; the host
//! also keeps loading plugins built against `wit/vigil-plugin.wit`, 0.1.0). This crate hides the component glue
//! behind two attribute macros, [`check`](macro@check) and
//! [`notifier`](macro@notifier), over a plain function that takes typed,
//! serde-deserialized parameters. Everything but
//! the export glue also compiles natively, so a plugin's logic is unit-tested
//! with `cargo test` and no Wasm.
//!
//! # A complete check
//!
//! ```
//! use vigil_plugin_sdk::prelude::*;
//!
//! /// Parameters of the `above` check.
//! #[derive(Deserialize, Params)]
//! #[serde(deny_unknown_fields)]
//! pub struct Above {
//!     /// Fire when the last value is strictly greater than this.
//!     pub limit: f64,
//! }
//!
//! /// Fires when the last value of a series exceeds `limit`.
//! #[check(name = "above")]
//! pub fn above(p: &Above, _ctx: &Context, series: &Series<'_>) -> Verdict {
//!     match series.last() {
//!         None => Verdict::no_data(),
//!         Some((_, v)) if v > p.limit => Verdict::firing(v).with_message(format!("{v} > {}", p.limit)),
//!         Some((_, v)) => Verdict::ok(v),
//!     }
//! }
//!
//! // Natively, the generated `Plugin` type is driven through the SDK:
//! let params = vigil_plugin_sdk::configure::<Plugin>(r#"{"limit": 1.0}"#).unwrap();
//! let mut batch = Batch::default();
//! batch.push_series(7, &[1_000, 2_000], &[0.5, 1.5]);
//! let out = vigil_plugin_sdk::evaluate::<Plugin>(&params, 2_000, &batch, &State::default()).unwrap();
//! assert_eq!(out.verdicts[0].status, Status::Firing);
//! ```
//!
//! The plugin crate is a `cdylib` (plus `rlib` for native tests) depending on
//! this crate and on `serde` (for the derives), built with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! A check function takes `(params: &P, ctx: &Context, series: &Series<'_>)`
//! and optionally a fourth `state: &mut S` for learned per-series state
//! (`S: Serialize + Deserialize + Default`); it returns a [`Verdict`] or
//! `Result<Verdict, String>` (an `Err` fails the whole evaluation). The host
//! calls the plugin once per rule evaluation for all series in one columnar
//! batch; [`evaluate`] walks the series the query returned and round-trips
//! the state. `series.labels()` gives a series' labels; a verdict may carry
//! the alert's severity ([`Verdict::with_severity`]) and extra labels
//! ([`Verdict::with_label`]).
//!
//! A check that needs the whole batch (grouping series by their labels,
//! judging series that vanished, or the rule as a whole when its query
//! matches nothing) takes `batch: &Batch` instead of a series, then
//! optionally `states: &mut [S]` (one per series) and `rule: &mut R` (the
//! rule's own state), and returns [`Verdicts`] (or `Vec<Verdict>`, or a
//! `Result` of either):
//!
//! ```
//! use vigil_plugin_sdk::prelude::*;
//!
//! /// Fires for the rule when its query matches nothing.
//! #[check(name = "nothing")]
//! pub fn nothing(_: &NoParams, _: &Context, batch: &Batch) -> Verdicts {
//!     let series = batch.iter().map(|_| Verdict::ok(0.0)).collect();
//!     let rule = batch.matched_nothing().then(|| Verdict::firing(1.0));
//!     Verdicts { series, rule }
//! }
//!
//! let params = vigil_plugin_sdk::configure::<Plugin>("").unwrap();
//! let out = vigil_plugin_sdk::evaluate::<Plugin>(&params, 0, &Batch::default(), &State::default()).unwrap();
//! assert!(out.rule_verdict.unwrap().is_firing());
//! ```
//!
//! # Testing a plugin
//!
//! With the `testing` feature, enabled from `[dev-dependencies]` only
//! (`vigil-plugin-sdk = { ..., features = ["testing"] }`), `testing` offers
//! the fixtures and golden-file helpers the bundled notifiers' tests use: a
//! fixed notification group, `assert_golden!` (compare with, or with
//! `VIGIL_BLESS=1` write, `tests/golden/<name>`) and HTTP deliveries as
//! text.
//!
//! # State encoding
//!
//! Each series' state is encoded with [`postcard`] (serde, varint integers,
//! little-endian floats, no schema, no padding): it is compact, fast, pure
//! Rust and builds for `wasm32-wasip2`. An empty or undecodable state slice
//! (first call, state lost, or state written by an older plugin version whose
//! state type changed) decodes as `S::default()`, never as an error; a state
//! slice must decode exactly, trailing bytes count as undecodable.
//!
//! # Why the bindings live in two more crates
//!
//! `wit_bindgen::generate!` embeds the world's component type as a custom
//! section in the object file that holds the bindings, and `wasm-ld` keeps
//! the custom sections of every object it links. With both worlds generated
//! in this crate, a check component also carried the notifier world's types
//! (and vice versa). Each world's bindings are therefore generated in a crate
//! of its own (`vigil-plugin-sdk-bindings-check`, `-notifier`), so a plugin
//! links only its own world's metadata; the types are re-exported here.
#![deny(missing_docs)]

extern crate self as vigil_plugin_sdk;

pub mod check;
pub mod duration;
pub mod json;
pub mod notifier;
mod number;
mod params;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;

/// Go text/template as Prometheus and Alertmanager use it, for
/// user-supplied notification text: parse templates in `validate`, render
/// them with [`notifier::template_data`].
pub use vigil_template as template;

pub use check::{Band, Batch, LabelColumns, Output, ParamDoc, PluginInfo, State, Status, Verdict};
pub use check::{Check, Context, Labels, Series, Verdicts, configure, evaluate};
pub use notifier::Notifier;
pub use number::short_number;
pub use params::{NoParams, ParamDocs, parse_params};
/// The SDK's `serde`, for `#[serde(crate = "vigil_plugin_sdk::serde")]`.
pub use serde;
/// The SDK's `serde_json`.
pub use serde_json;
pub use time::rfc3339_millis;
pub use vigil_plugin_sdk_macros::{Params, check, notifier};

/// Everything a plugin usually needs: `use vigil_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::check::{
        Band, Batch, Context, Labels, Output, Series, State, Status, Verdict, Verdicts,
    };
    pub use crate::notifier::{
        Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, Pair,
    };
    pub use crate::{NoParams, ParamDocs, Params, check, notifier, rfc3339_millis};
    pub use serde::{Deserialize, Serialize};
}

/// Generated bindings and glue used by the macros. Not a public API.
#[doc(hidden)]
pub mod __private {
    use std::sync::{Mutex, MutexGuard};

    /// Bindings of the `check` world (types, `Guest`, `export_check!`).
    pub use vigil_plugin_sdk_bindings_check as check;
    /// Bindings of the `notifier` world (types, `Guest`, `export_notifier!`).
    pub use vigil_plugin_sdk_bindings_notifier as notifier;

    /// The configured parameters of the one plugin a component exports.
    ///
    /// `configure` may be called again (reload); a failed `configure` keeps
    /// the previous parameters.
    pub struct ParamSlot<P>(Mutex<Option<P>>);

    impl<P> ParamSlot<P> {
        /// An empty slot, usable in a `static`.
        pub const fn new() -> Self {
            Self(Mutex::new(None))
        }

        fn lock(&self) -> MutexGuard<'_, Option<P>> {
            // A panic while holding the lock traps the instance, which is then
            // never entered again; recovering from poison is still harmless.
            self.0.lock().unwrap_or_else(|poison| poison.into_inner())
        }

        /// Stores `params`, replacing any earlier ones.
        pub fn set(&self, params: P) {
            *self.lock() = Some(params);
        }

        /// Runs `f` with the stored parameters, or fails with "not configured".
        pub fn with<R>(&self, f: impl FnOnce(&P) -> Result<R, String>) -> Result<R, String> {
            match self.lock().as_ref() {
                Some(params) => f(params),
                None => Err(NOT_CONFIGURED.to_string()),
            }
        }
    }

    impl<P> Default for ParamSlot<P> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The error of a call before any successful `configure`.
    pub const NOT_CONFIGURED: &str = "not configured: `configure` has not succeeded yet";

    /// `configure` of a check component.
    pub fn check_configure<C: crate::Check>(
        slot: &ParamSlot<C::Params>,
        json: &str,
    ) -> Result<(), String> {
        let params = crate::configure::<C>(json)?;
        slot.set(params);
        Ok(())
    }

    /// `evaluate` of a check component.
    pub fn check_evaluate<C: crate::Check>(
        slot: &ParamSlot<C::Params>,
        now: i64,
        batch: &crate::Batch,
        state: &crate::State,
    ) -> Result<crate::Output, String> {
        slot.with(|params| crate::evaluate::<C>(params, now, batch, state))
    }

    /// `configure` of a notifier component.
    pub fn notifier_configure<N: crate::Notifier>(
        slot: &ParamSlot<N::Params>,
        json: &str,
    ) -> Result<(), String> {
        let params = crate::notifier::configure::<N>(json)?;
        slot.set(params);
        Ok(())
    }

    /// `render` of a notifier component.
    pub fn notifier_render<N: crate::Notifier>(
        slot: &ParamSlot<N::Params>,
        notification: &crate::notifier::Notification,
    ) -> Result<Vec<crate::notifier::Delivery>, String> {
        slot.with(|params| N::render(params, notification))
    }
}
