//! Attribute and derive macros of the Vigil plugin SDK.
//!
//! Use them through `vigil_plugin_sdk` (`use vigil_plugin_sdk::prelude::*;`);
//! the generated code names `::vigil_plugin_sdk`, so a plugin crate must
//! depend on the SDK under that name.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Error, Fields, FnArg, Ident, ItemFn, LitStr, Pat, Path,
    ReturnType, Type, TypeReference, parse_macro_input,
};

/// Turns a function into a Vigil check plugin.
///
/// ```ignore
/// #[check(name = "threshold", description = "...", validate = validate_fn, plugin = Plugin)]
/// fn threshold(params: &P, ctx: &Context, series: &Series<'_>, state: &mut S) -> Verdict
/// ```
///
/// The `state` argument is optional (stateless checks use `()`), and the
/// function may return `Result<Verdict, String>` to fail the whole
/// evaluation.
///
/// A batch check takes the whole batch instead of one series, then
/// optionally every series' state and the rule's state:
///
/// ```ignore
/// #[check(name = "drift")]
/// fn drift(params: &P, ctx: &Context, batch: &Batch, states: &mut [S], rule: &mut R) -> Verdicts
/// ```
///
/// returning `Verdicts`, `Vec<Verdict>` or a `Result<_, String>` of either. `description` defaults to the function's doc comment,
/// `plugin` (the generated type implementing `Check`) to `Plugin`, and
/// `validate` names an optional `fn(&P) -> Result<(), String>` run by
/// `configure`. On `wasm32` the macro also exports the component's `info`,
/// `configure` and `evaluate`.
#[proc_macro_attribute]
pub fn check(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Check)
}

/// Turns a function into a Vigil notifier plugin.
///
/// ```ignore
/// #[notifier(name = "webhook", description = "...", validate = validate_fn, plugin = Plugin)]
/// fn webhook(params: &P, notification: &Notification) -> Result<Vec<Delivery>, String>
/// ```
///
/// On `wasm32` the macro also exports the component's `info`, `configure`
/// and `render`.
#[proc_macro_attribute]
pub fn notifier(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Notifier)
}

/// Derives `vigil_plugin_sdk::ParamDocs` for a parameter struct.
///
/// Each named field becomes one entry: its serde name (honouring `rename`
/// and `rename_all`), its type as written, its `///` doc comment, and
/// `required = false` when the type is `Option<..>` or serde supplies a
/// default (`#[serde(default)]` on the field or the struct). Fields with
/// `#[serde(skip)]` are left out; `#[serde(flatten)]` fields contribute the
/// docs of their own type. Derive serde's `Deserialize` alongside.
#[proc_macro_derive(Params)]
pub fn derive_params(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    params::derive(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Check,
    /// A check over the whole batch (its third argument is `&Batch`).
    BatchCheck,
    Notifier,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Check | Kind::BatchCheck => "check",
            Kind::Notifier => "notifier",
        }
    }

    fn expected_signature(self) -> &'static str {
        match self {
            Kind::Check => {
                "expected `fn name(params: &P, ctx: &Context, series: &Series<'_>, state: &mut S) -> Verdict` \
                 (the `state` argument is optional)"
            }
            Kind::BatchCheck => {
                "expected `fn name(params: &P, ctx: &Context, batch: &Batch, states: &mut [S], rule: &mut R) -> Verdicts` \
                 (`states` and `rule` are optional)"
            }
            Kind::Notifier => {
                "expected `fn name(params: &P, notification: &Notification) -> Result<Vec<Delivery>, String>`"
            }
        }
    }
}

/// The macro's `name = ..., description = ..., plugin = ..., validate = ...`.
#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    description: Option<LitStr>,
    plugin: Option<Ident>,
    validate: Option<Path>,
}

fn expand(attr: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            args.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            args.description = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("plugin") {
            args.plugin = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("validate") {
            args.validate = Some(meta.value()?.parse()?);
        } else {
            return Err(meta.error(format!(
                "unknown `{}` argument; expected `name`, `description`, `plugin` or `validate`",
                kind.name()
            )));
        }
        Ok(())
    });
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    let result = match kind {
        Kind::Notifier => expand_notifier(&args, &func),
        Kind::Check | Kind::BatchCheck => {
            let batch = arg_types(&func).get(2).is_some_and(|t| match t {
                Type::Reference(r) => is_batch(&r.elem),
                _ => false,
            });
            expand_check(
                &args,
                &func,
                if batch { Kind::BatchCheck } else { Kind::Check },
            )
        }
    };
    match result {
        Ok(tokens) => tokens.into(),
        // Keep the function so that its own errors still show and uses of it
        // do not add "cannot find function" noise.
        Err(err) => {
            let err = err.into_compile_error();
            quote!(#func #err).into()
        }
    }
}

/// Signature checks shared by both kinds.
fn check_common(func: &ItemFn, kind: Kind) -> syn::Result<()> {
    let sig = &func.sig;
    let fail = |tokens: &dyn ToTokens, what: &str| -> syn::Result<()> {
        Err(Error::new_spanned(
            tokens,
            format!(
                "a `#[{}]` function cannot be {what}; {}",
                kind.name(),
                kind.expected_signature()
            ),
        ))
    };
    if let Some(t) = &sig.asyncness {
        return fail(t, "`async`");
    }
    if let Some(t) = &sig.constness {
        return fail(t, "`const`");
    }
    if let Some(t) = &sig.unsafety {
        return fail(t, "`unsafe`");
    }
    if let Some(t) = &sig.abi {
        return fail(t, "`extern`");
    }
    if let Some(t) = &sig.variadic {
        return fail(t, "variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return fail(&sig.generics, "generic");
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return fail(r, "a method (it takes `self`)");
    }
    if let ReturnType::Default = sig.output {
        return Err(Error::new_spanned(
            sig,
            format!(
                "a `#[{}]` function must return {}; {}",
                kind.name(),
                match kind {
                    Kind::Check => "`Verdict` (or `Result<Verdict, String>`)",
                    Kind::BatchCheck => "`Verdicts` (or `Vec<Verdict>`, or a `Result` of either)",
                    Kind::Notifier => "`Result<Vec<Delivery>, String>`",
                },
                kind.expected_signature()
            ),
        ));
    }
    Ok(())
}

/// The types of the arguments (receivers were rejected by `check_common`).
fn arg_types(func: &ItemFn) -> Vec<&Type> {
    func.sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn arg_name(func: &ItemFn, i: usize) -> String {
    match func.sig.inputs.iter().nth(i) {
        Some(FnArg::Typed(t)) => match &*t.pat {
            Pat::Ident(p) => format!("`{}`", p.ident),
            _ => format!("argument {}", i + 1),
        },
        _ => format!("argument {}", i + 1),
    }
}

/// `&T`: returns `T`; anything else (including `&mut T`) is a spanned error.
fn shared_ref<'a>(ty: &'a Type, what: String, expected: &str) -> syn::Result<&'a Type> {
    match ty {
        Type::Reference(TypeReference {
            mutability: None,
            elem,
            ..
        }) => Ok(elem),
        Type::Reference(r) => Err(Error::new_spanned(
            r,
            format!("{what} must be a shared reference `{expected}`, not `&mut`"),
        )),
        other => Err(Error::new_spanned(
            other,
            format!("{what} must be taken by reference: `{expected}`"),
        )),
    }
}

/// Whether `ty` is `Result<..>` (by its last path segment).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    }
}

/// The doc comment of `attrs`, lines joined with spaces, paragraphs with `\n`.
fn doc_text(attrs: &[Attribute]) -> String {
    let mut out = String::new();
    let mut blank = false;
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        let syn::Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = &nv.value
        else {
            continue;
        };
        for line in s.value().lines() {
            let line = line.trim();
            if line.is_empty() {
                blank = true;
                continue;
            }
            if !out.is_empty() {
                out.push(if blank { '\n' } else { ' ' });
            }
            blank = false;
            out.push_str(line);
        }
    }
    out
}

fn common_parts(args: &Args, func: &ItemFn, kind: Kind) -> syn::Result<(LitStr, LitStr, Ident)> {
    let Some(name) = args.name.clone() else {
        return Err(Error::new(
            Span::call_site(),
            format!(
                "`#[{}]` needs a plugin name: `#[{}(name = \"...\")]`",
                kind.name(),
                kind.name()
            ),
        ));
    };
    if name.value().is_empty() {
        return Err(Error::new_spanned(
            &name,
            "the plugin name must not be empty",
        ));
    }
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| LitStr::new(&doc_text(&func.attrs), Span::call_site()));
    let plugin = args
        .plugin
        .clone()
        .unwrap_or_else(|| Ident::new("Plugin", Span::call_site()));
    Ok((name, description, plugin))
}

/// Whether `ty` names the batch type (by its last path segment).
fn is_batch(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Batch"),
        Type::Group(g) => is_batch(&g.elem),
        Type::Paren(p) => is_batch(&p.elem),
        _ => false,
    }
}

/// `&mut T`: returns `T`; anything else is a spanned error.
fn mut_ref<'a>(ty: &'a Type, what: String, expected: &str) -> syn::Result<&'a Type> {
    match ty {
        Type::Reference(TypeReference {
            mutability: Some(_),
            elem,
            ..
        }) => Ok(elem),
        other => Err(Error::new_spanned(
            other,
            format!("{what} must be a mutable reference `{expected}`"),
        )),
    }
}

fn expand_check(args: &Args, func: &ItemFn, kind: Kind) -> syn::Result<TokenStream2> {
    check_common(func, kind)?;
    let (name, description, plugin) = common_parts(args, func, kind)?;
    let types = arg_types(func);
    let batch = kind == Kind::BatchCheck;
    let arity_ok = match batch {
        false => types.len() == 3 || types.len() == 4,
        true => (3..=5).contains(&types.len()),
    };
    if !arity_ok {
        return Err(Error::new_spanned(
            &func.sig.inputs,
            format!(
                "a `#[check]` function takes {}, found {}; {}",
                match batch {
                    false => "3 or 4 arguments",
                    true => "3 to 5 arguments",
                },
                types.len(),
                kind.expected_signature()
            ),
        )
        .with_fallback(&func.sig));
    }
    let params_ty = shared_ref(
        types[0],
        format!("the parameters {}", arg_name(func, 0)),
        "&Params",
    )?;
    shared_ref(
        types[1],
        format!("the context {}", arg_name(func, 1)),
        "&Context",
    )?;
    let fn_name = &func.sig.ident;
    let returns_result = matches!(&func.sig.output, ReturnType::Type(_, ty) if is_result(ty));
    let output_span = func.sig.output.span();
    let validate = validate_fn(args);
    let vis = &func.vis;

    let body = if batch {
        if let ReturnType::Type(_, ty) = &func.sig.output
            && matches!(&**ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Verdict"))
        {
            return Err(Error::new_spanned(
                ty,
                format!(
                    "a batch check returns one verdict per series: `Verdicts` (or `Vec<Verdict>`, or a `Result` of either); {}",
                    kind.expected_signature()
                ),
            ));
        }
        shared_ref(
            types[2],
            format!("the batch {}", arg_name(func, 2)),
            "&Batch",
        )?;
        let state_ty: TokenStream2 = match types.get(3) {
            None => quote!(()),
            Some(ty) => match mut_ref(
                ty,
                format!("the states {}", arg_name(func, 3)),
                "&mut [State]",
            )? {
                Type::Slice(slice) => slice.elem.to_token_stream(),
                other => {
                    return Err(Error::new_spanned(
                        other,
                        format!(
                            "the states {} must be a slice, one per series: `&mut [State]`",
                            arg_name(func, 3)
                        ),
                    ));
                }
            },
        };
        let rule_ty: TokenStream2 = match types.get(4) {
            None => quote!(()),
            Some(ty) => mut_ref(
                ty,
                format!("the rule state {}", arg_name(func, 4)),
                "&mut RuleState",
            )?
            .to_token_stream(),
        };
        let call = match types.len() {
            3 => quote!({
                let _ = (states, rule);
                #fn_name(params, ctx, batch)
            }),
            4 => quote!({
                let _ = rule;
                #fn_name(params, ctx, batch, states)
            }),
            _ => quote!(#fn_name(params, ctx, batch, states, rule)),
        };
        let convert = if returns_result {
            quote_spanned!(output_span=> #call.map(::core::convert::Into::into))
        } else {
            quote_spanned!(output_span=> ::core::result::Result::Ok(::core::convert::Into::into(#call)))
        };
        quote! {
            type Params = #params_ty;
            type State = #state_ty;
            type RuleState = #rule_ty;
            const BATCH: bool = true;

            fn info() -> ::vigil_plugin_sdk::PluginInfo {
                ::vigil_plugin_sdk::PluginInfo {
                    name: ::std::string::String::from(#name),
                    version: ::std::string::String::from(::core::env!("CARGO_PKG_VERSION")),
                    description: ::std::string::String::from(#description),
                    params: <#params_ty as ::vigil_plugin_sdk::ParamDocs>::param_docs(),
                }
            }

            #validate

            fn evaluate_batch(
                params: &Self::Params,
                ctx: &::vigil_plugin_sdk::Context,
                batch: &::vigil_plugin_sdk::Batch,
                states: &mut [Self::State],
                rule: &mut Self::RuleState,
            ) -> ::core::result::Result<::vigil_plugin_sdk::Verdicts, ::std::string::String> {
                #convert
            }
        }
    } else {
        shared_ref(
            types[2],
            format!("the series {}", arg_name(func, 2)),
            "&Series<'_>",
        )?;
        let state_ty: TokenStream2 = match types.get(3) {
            None => quote!(()),
            Some(Type::Reference(TypeReference {
                mutability: Some(_),
                elem,
                ..
            })) => elem.to_token_stream(),
            Some(other) => {
                return Err(Error::new_spanned(
                    other,
                    format!(
                        "the state {} must be a mutable reference `&mut State`",
                        arg_name(func, 3)
                    ),
                ));
            }
        };
        let stateful = types.len() == 4;
        let call = if stateful {
            quote!(#fn_name(params, ctx, series, state))
        } else {
            quote!({
                let _ = state;
                #fn_name(params, ctx, series)
            })
        };
        let (evaluate_series, try_evaluate_series) = if returns_result {
            (
                quote_spanned! {output_span=>
                    match #call {
                        ::core::result::Result::Ok(verdict) => verdict,
                        ::core::result::Result::Err(message) => {
                            ::vigil_plugin_sdk::Verdict::no_data().with_message(message)
                        }
                    }
                },
                quote_spanned! {output_span=>
                    #[inline]
                    fn try_evaluate_series(
                        params: &Self::Params,
                        ctx: &::vigil_plugin_sdk::Context,
                        series: &::vigil_plugin_sdk::Series<'_>,
                        state: &mut Self::State,
                    ) -> ::core::result::Result<::vigil_plugin_sdk::Verdict, ::std::string::String> {
                        #call
                    }
                },
            )
        } else {
            (quote_spanned!(output_span=> #call), quote!())
        };
        quote! {
            type Params = #params_ty;
            type State = #state_ty;
            type RuleState = ();

            fn info() -> ::vigil_plugin_sdk::PluginInfo {
                ::vigil_plugin_sdk::PluginInfo {
                    name: ::std::string::String::from(#name),
                    version: ::std::string::String::from(::core::env!("CARGO_PKG_VERSION")),
                    description: ::std::string::String::from(#description),
                    params: <#params_ty as ::vigil_plugin_sdk::ParamDocs>::param_docs(),
                }
            }

            #validate

            #[inline]
            fn evaluate_series(
                params: &Self::Params,
                ctx: &::vigil_plugin_sdk::Context,
                series: &::vigil_plugin_sdk::Series<'_>,
                state: &mut Self::State,
            ) -> ::vigil_plugin_sdk::Verdict {
                #evaluate_series
            }

            #try_evaluate_series
        }
    };

    Ok(quote! {
        #func

        /// The check plugin generated by `#[check]`.
        #vis struct #plugin;

        impl ::vigil_plugin_sdk::Check for #plugin {
            #body
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use ::vigil_plugin_sdk::__private as __vigil;

            static PARAMS: __vigil::ParamSlot<#params_ty> = __vigil::ParamSlot::new();

            struct __VigilCheckGuest;

            impl __vigil::check::Guest for __VigilCheckGuest {
                fn info() -> ::vigil_plugin_sdk::PluginInfo {
                    <#plugin as ::vigil_plugin_sdk::Check>::info()
                }

                fn configure(params: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    __vigil::check_configure::<#plugin>(&PARAMS, &params)
                }

                fn evaluate(
                    now: i64,
                    batch: ::vigil_plugin_sdk::Batch,
                    state: ::vigil_plugin_sdk::State,
                ) -> ::core::result::Result<::vigil_plugin_sdk::Output, ::std::string::String> {
                    __vigil::check_evaluate::<#plugin>(&PARAMS, now, &batch, &state)
                }
            }

            ::vigil_plugin_sdk::__private::check::export_check!(
                __VigilCheckGuest with_types_in ::vigil_plugin_sdk::__private::check
            );
        };
    })
}

fn expand_notifier(args: &Args, func: &ItemFn) -> syn::Result<TokenStream2> {
    let kind = Kind::Notifier;
    check_common(func, kind)?;
    let (name, description, plugin) = common_parts(args, func, kind)?;
    let types = arg_types(func);
    if types.len() != 2 {
        return Err(Error::new_spanned(
            &func.sig.inputs,
            format!(
                "a `#[notifier]` function takes 2 arguments, found {}; {}",
                types.len(),
                kind.expected_signature()
            ),
        )
        .with_fallback(&func.sig));
    }
    let params_ty = shared_ref(
        types[0],
        format!("the parameters {}", arg_name(func, 0)),
        "&Params",
    )?;
    shared_ref(
        types[1],
        format!("the notification {}", arg_name(func, 1)),
        "&Notification",
    )?;
    let fn_name = &func.sig.ident;
    let validate = validate_fn(args);
    let vis = &func.vis;
    let output_span = func.sig.output.span();
    let call = quote_spanned!(output_span=> #fn_name(params, notification));

    Ok(quote! {
        #func

        /// The notifier plugin generated by `#[notifier]`.
        #vis struct #plugin;

        impl ::vigil_plugin_sdk::Notifier for #plugin {
            type Params = #params_ty;

            fn info() -> ::vigil_plugin_sdk::notifier::PluginInfo {
                ::vigil_plugin_sdk::notifier::PluginInfo {
                    name: ::std::string::String::from(#name),
                    version: ::std::string::String::from(::core::env!("CARGO_PKG_VERSION")),
                    description: ::std::string::String::from(#description),
                    params: ::vigil_plugin_sdk::notifier::param_docs::<#params_ty>(),
                }
            }

            #validate

            fn render(
                params: &Self::Params,
                notification: &::vigil_plugin_sdk::notifier::Notification,
            ) -> ::core::result::Result<
                ::std::vec::Vec<::vigil_plugin_sdk::notifier::Delivery>,
                ::std::string::String,
            > {
                #call
            }
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use ::vigil_plugin_sdk::__private as __vigil;

            static PARAMS: __vigil::ParamSlot<#params_ty> = __vigil::ParamSlot::new();

            struct __VigilNotifierGuest;

            impl __vigil::notifier::Guest for __VigilNotifierGuest {
                fn info() -> ::vigil_plugin_sdk::notifier::PluginInfo {
                    <#plugin as ::vigil_plugin_sdk::Notifier>::info()
                }

                fn configure(params: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    __vigil::notifier_configure::<#plugin>(&PARAMS, &params)
                }

                fn render(
                    notification: ::vigil_plugin_sdk::notifier::Notification,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::vigil_plugin_sdk::notifier::Delivery>,
                    ::std::string::String,
                > {
                    __vigil::notifier_render::<#plugin>(&PARAMS, &notification)
                }
            }

            ::vigil_plugin_sdk::__private::notifier::export_notifier!(
                __VigilNotifierGuest with_types_in ::vigil_plugin_sdk::__private::notifier
            );
        };
    })
}

fn validate_fn(args: &Args) -> TokenStream2 {
    match &args.validate {
        None => quote!(),
        Some(path) => quote! {
            fn validate(params: &Self::Params) -> ::core::result::Result<(), ::std::string::String> {
                #path(params)
            }
        },
    }
}

/// Spans an error on an empty argument list at the whole signature instead.
trait WithFallback {
    fn with_fallback(self, sig: &syn::Signature) -> Self;
}

impl WithFallback for Error {
    fn with_fallback(self, sig: &syn::Signature) -> Self {
        if sig.inputs.is_empty() {
            Error::new_spanned(sig, self.to_string())
        } else {
            self
        }
    }
}

mod params {
    //! `#[derive(Params)]`.

    use super::*;

    /// What serde attributes say about a field or a container.
    #[derive(Default)]
    struct Serde {
        default: bool,
        skip: bool,
        flatten: bool,
        rename: Option<String>,
        rename_all: Option<String>,
    }

    /// Reads `#[serde(...)]` attributes, ignoring what it does not need and
    /// anything it cannot parse (serde's own derive reports those).
    fn serde_attrs(attrs: &[Attribute]) -> Serde {
        let mut out = Serde::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                let key = meta
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                match key.as_str() {
                    "default" => out.default = true,
                    "skip" | "skip_deserializing" => out.skip = true,
                    "flatten" => out.flatten = true,
                    "rename" | "rename_all" => {
                        let value = rename_value(&meta)?;
                        if key == "rename" {
                            out.rename = value.or(out.rename.take());
                        } else {
                            out.rename_all = value.or(out.rename_all.take());
                        }
                        return Ok(());
                    }
                    _ => {}
                }
                skip_meta_value(&meta)
            });
        }
        out
    }

    /// `rename = "x"` or `rename(deserialize = "x", ...)`: the deserialize name.
    fn rename_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
        if meta.input.peek(syn::Token![=]) {
            let s: LitStr = meta.value()?.parse()?;
            return Ok(Some(s.value()));
        }
        let mut found = None;
        meta.parse_nested_meta(|inner| {
            let s: LitStr = inner.value()?.parse()?;
            if inner.path.is_ident("deserialize") {
                found = Some(s.value());
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Consumes `= value` or `(...)` after a serde key we do not interpret.
    fn skip_meta_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.input.peek(syn::Token![=]) {
            meta.value()?.parse::<syn::Expr>()?;
        } else if meta.input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in meta.input);
            content.parse::<TokenStream2>()?;
        }
        Ok(())
    }

    pub(super) fn derive(input: &DeriveInput) -> syn::Result<TokenStream2> {
        let Data::Struct(data) = &input.data else {
            return Err(Error::new_spanned(
                &input.ident,
                "`#[derive(Params)]` needs a struct with named fields",
            ));
        };
        let Fields::Named(fields) = &data.fields else {
            return Err(Error::new_spanned(
                &data.fields,
                "`#[derive(Params)]` needs a struct with named fields",
            ));
        };
        let container = serde_attrs(&input.attrs);
        let mut entries = Vec::new();
        for field in &fields.named {
            let attrs = serde_attrs(&field.attrs);
            if attrs.skip {
                continue;
            }
            let ty = &field.ty;
            if attrs.flatten {
                entries.push(quote! {
                    docs.extend(<#ty as ::vigil_plugin_sdk::ParamDocs>::param_docs());
                });
                continue;
            }
            let Some(ident) = &field.ident else { continue };
            let raw = ident.to_string();
            let raw = raw.strip_prefix("r#").unwrap_or(&raw);
            let name = attrs.rename.clone().unwrap_or_else(|| {
                container
                    .rename_all
                    .as_deref()
                    .map_or_else(|| raw.to_string(), |rule| rename_field(raw, rule))
            });
            let type_name = tidy_type(&ty.to_token_stream().to_string());
            let required = !(attrs.default || container.default || is_option(ty));
            let description = doc_text(&field.attrs);
            entries.push(quote! {
                docs.push(::vigil_plugin_sdk::ParamDoc {
                    name: ::std::string::String::from(#name),
                    type_name: ::std::string::String::from(#type_name),
                    required: #required,
                    description: ::std::string::String::from(#description),
                });
            });
        }
        let ident = &input.ident;
        let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
        let n = entries.len();
        Ok(quote! {
            impl #impl_generics ::vigil_plugin_sdk::ParamDocs for #ident #ty_generics #where_clause {
                fn param_docs() -> ::std::vec::Vec<::vigil_plugin_sdk::ParamDoc> {
                    let mut docs = ::std::vec::Vec::with_capacity(#n);
                    #(#entries)*
                    docs
                }
            }
        })
    }

    fn is_option(ty: &Type) -> bool {
        match ty {
            Type::Path(p) if p.qself.is_none() => {
                p.path.segments.last().is_some_and(|s| s.ident == "Option")
            }
            Type::Group(g) => is_option(&g.elem),
            Type::Paren(p) => is_option(&p.elem),
            _ => false,
        }
    }

    /// `quote!(#ty).to_string()` puts spaces between all tokens; keep only
    /// those between two word characters, and one after each `,` and `;`.
    pub(super) fn tidy_type(raw: &str) -> String {
        let chars: Vec<char> = raw.chars().collect();
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\'';
        let mut out = String::with_capacity(raw.len());
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let prev = out.chars().last();
                let next = chars.get(i + 1).copied();
                if prev.is_some_and(word) && next.is_some_and(word) {
                    out.push(' ');
                }
                continue;
            }
            out.push(c);
            if c == ',' || c == ';' {
                out.push(' ');
            }
        }
        out.replace(", >", ">")
            .replace(", )", ")")
            .trim()
            .to_string()
    }

    /// serde's `rename_all` rules, applied to a snake_case field name.
    pub(super) fn rename_field(field: &str, rule: &str) -> String {
        let words: Vec<&str> = field.split('_').filter(|w| !w.is_empty()).collect();
        let cap = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        match rule {
            "lowercase" => field.to_lowercase(),
            "UPPERCASE" => field.to_uppercase(),
            "PascalCase" => words.iter().map(|w| cap(w)).collect(),
            "camelCase" => words
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_string() } else { cap(w) })
                .collect(),
            "snake_case" => field.to_string(),
            "SCREAMING_SNAKE_CASE" => field.to_uppercase(),
            "kebab-case" => field.replace('_', "-"),
            "SCREAMING-KEBAB-CASE" => field.replace('_', "-").to_uppercase(),
            _ => field.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::params::{rename_field, tidy_type};
    use quote::{ToTokens, quote};

    fn tidy(ty: proc_macro2::TokenStream) -> String {
        let ty: syn::Type = syn::parse2(ty).unwrap();
        tidy_type(&ty.to_token_stream().to_string())
    }

    #[test]
    fn tidies_types() {
        assert_eq!(tidy(quote!(Option<f64>)), "Option<f64>");
        assert_eq!(
            tidy(quote!(BTreeMap<String, String>)),
            "BTreeMap<String, String>"
        );
        assert_eq!(
            tidy(quote!(std::collections::BTreeMap<String,Vec<u8>>)),
            "std::collections::BTreeMap<String, Vec<u8>>"
        );
        assert_eq!(tidy(quote!(&'static str)), "&'static str");
        assert_eq!(tidy(quote!([f64; 2])), "[f64; 2]");
        assert_eq!(tidy(quote!((u32, u32))), "(u32, u32)");
    }

    #[test]
    fn renames_like_serde() {
        assert_eq!(rename_field("max_alerts", "camelCase"), "maxAlerts");
        assert_eq!(rename_field("max_alerts", "PascalCase"), "MaxAlerts");
        assert_eq!(rename_field("max_alerts", "kebab-case"), "max-alerts");
        assert_eq!(
            rename_field("max_alerts", "SCREAMING_SNAKE_CASE"),
            "MAX_ALERTS"
        );
        assert_eq!(rename_field("max_alerts", "snake_case"), "max_alerts");
    }
}
