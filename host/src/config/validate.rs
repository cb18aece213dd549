//! Raw sections to validated configuration: parse durations, apply defaults,
//! resolve paths, check names and references. Pure: the only output besides
//! the configuration is the errors recorded in `Diagnostics`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::Diagnostics;
use super::raw::{
    self, Gaps, RawConfig, RawFlapDamping, RawInhibitRule, RawNamedInterval, RawReceiver, RawRoute,
    RawRule, RawSandbox, RawScrape, RawSource, RawTarget,
};
use super::{
    Config, GroupBy, InhibitRuleConfig, Location, Matcher, ReceiverConfig, RouteConfig, RuleConfig,
    SandboxConfig, SourceAuth, SourceConfig, TargetConfig, format_duration, parse_duration,
};
use crate::notify::flap::FlapConfig;
use crate::notify::mute::{
    DayOfMonthRange, MonthRange, NamedTimeInterval, TimeInterval, TimeRange, WeekdayRange,
    YearRange, parse_location,
};

const DEFAULT_DATA_DIR: &str = "data";
const DEFAULT_PLUGIN_DIR: &str = "plugins";
const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
const DEFAULT_SANDBOX_TIMEOUT: Duration = Duration::from_millis(250);
const MAX_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MEMORY_LIMIT_MIB: u64 = 64;
const MAX_MEMORY_LIMIT_MIB: u64 = 4096;
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(10 * 60);
const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A setting that may be absent, written validly, or written invalidly (the
/// error already recorded). Cross-field checks skip invalid settings so that
/// one mistake is reported once.
enum Setting<T> {
    Default,
    Set(T, Range<usize>),
    Invalid,
}

impl<T: Copy> Setting<T> {
    fn or(&self, default: T) -> T {
        match self {
            Setting::Set(value, _) => *value,
            Setting::Default | Setting::Invalid => default,
        }
    }

    fn is_valid(&self) -> bool {
        !matches!(self, Setting::Invalid)
    }
}

pub(crate) fn validate(
    diag: &mut Diagnostics<'_>,
    file: &Path,
    raw: RawConfig,
    gaps: &Gaps,
) -> Config {
    let base = file.parent().unwrap_or(Path::new(""));
    let data_dir = directory(diag, base, raw.data_dir, "data_dir", DEFAULT_DATA_DIR);
    let plugin_dir = directory(diag, base, raw.plugin_dir, "plugin_dir", DEFAULT_PLUGIN_DIR);
    let listen = listen(diag, raw.listen);
    let external_url = external_url(diag, raw.external_url, listen);
    let scrape = scrape(diag, raw.scrape.unwrap_or_default());
    let evaluation_interval = match raw.evaluation.and_then(|e| e.interval) {
        Some(interval) => positive(diag, &interval, "interval").or(DEFAULT_EVALUATION_INTERVAL),
        None => DEFAULT_EVALUATION_INTERVAL,
    };
    let sandbox = sandbox(diag, raw.sandbox.unwrap_or_default());
    let targets = targets(diag, raw.targets, &scrape);
    let sources = sources(diag, base, raw.sources);
    let mut source_names: Vec<&str> = Vec::with_capacity(sources.len());
    for s in &sources {
        if !source_names.contains(&s.name.as_str()) {
            source_names.push(&s.name);
        }
    }
    // A source that failed to decode may be the one a rule names.
    let known_sources = (!gaps.sources).then_some(source_names.as_slice());
    let rules = rules(
        diag,
        raw.rules,
        evaluation_interval,
        &sandbox,
        known_sources,
    );
    let receiver_names: Vec<(String, Range<usize>)> = raw
        .receivers
        .iter()
        .map(|r| (r.get_ref().name.get_ref().clone(), r.span()))
        .collect();
    let mut raw_receivers = raw.receivers;
    let receiver_smtp = receiver_smtp_tables(&mut raw_receivers);
    let mut receivers = receivers(diag, raw_receivers);
    smtp_settings(diag, base, raw.smtp, gaps, receiver_smtp, &mut receivers);
    let mut raw_route_interval_spans = Vec::new();
    if let Some(r) = &raw.route {
        interval_refs(r.get_ref(), &mut raw_route_interval_spans);
    }
    let route = route_tree(diag, raw.route, &receiver_names, gaps);
    let inhibit_rules = inhibit_rules(diag, raw.inhibit_rules);
    let api = raw.api.unwrap_or_default();
    let api_token = match super::secret::resolve(
        diag,
        base,
        "token",
        api.token_file.as_ref(),
        api.token_env.as_ref(),
    ) {
        super::secret::SecretSetting::Set(secret, _) => Some(secret),
        _ => None,
    };
    let time_intervals = time_intervals(diag, raw.time_intervals);
    check_interval_names(diag, &route, &time_intervals, &raw_route_interval_spans);
    let flap_damping = raw.flap_damping.and_then(|f| flap_damping(diag, f));
    Config {
        file: file.to_path_buf(),
        data_dir,
        plugin_dir,
        listen,
        external_url,
        sandbox,
        targets,
        sources,
        rules,
        receivers,
        route,
        inhibit_rules,
        api_token,
        time_intervals,
        flap_damping,
    }
}

fn directory(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    value: Option<Spanned<PathBuf>>,
    field: &str,
    default: &str,
) -> PathBuf {
    let path = match value {
        Some(path) if path.get_ref().as_os_str().is_empty() => {
            diag.error(&path.span(), format!("`{field}` must not be empty"));
            PathBuf::from(default)
        }
        Some(path) => path.into_inner(),
        None => PathBuf::from(default),
    };
    base.join(path)
}

fn listen(diag: &mut Diagnostics<'_>, value: Option<Spanned<String>>) -> SocketAddr {
    let default = || SocketAddr::from(([127, 0, 0, 1], 9464));
    let Some(value) = value else {
        return default();
    };
    value.get_ref().parse().unwrap_or_else(|_| {
        diag.error(
            &value.span(),
            format!(
                "`listen`: invalid address \"{}\": expected IP:PORT, like \"{DEFAULT_LISTEN}\"",
                value.get_ref()
            ),
        );
        default()
    })
}

fn external_url(
    diag: &mut Diagnostics<'_>,
    value: Option<Spanned<String>>,
    listen: SocketAddr,
) -> String {
    let Some(value) = value else {
        return format!("http://{listen}");
    };
    if let Err(why) = check_http_url(value.get_ref()) {
        diag.error(&value.span(), format!("`external_url`: {why}"));
    }
    value.get_ref().trim_end_matches('/').to_string()
}

/// `[scrape]` defaults: interval and timeout.
struct ScrapeDefaults {
    interval: Duration,
    timeout: Duration,
}

fn scrape(diag: &mut Diagnostics<'_>, raw: RawScrape) -> ScrapeDefaults {
    let interval = optional_positive(diag, raw.interval.as_ref(), "interval");
    let timeout = optional_positive(diag, raw.timeout.as_ref(), "timeout");
    let interval_value = interval.or(DEFAULT_SCRAPE_INTERVAL);
    let timeout = match timeout {
        Setting::Set(timeout, span) => {
            if interval.is_valid() && timeout > interval_value {
                diag.error(
                    &span,
                    longer_than("timeout", timeout, "interval", interval_value),
                );
            }
            timeout
        }
        Setting::Default | Setting::Invalid => DEFAULT_SCRAPE_TIMEOUT.min(interval_value),
    };
    ScrapeDefaults {
        interval: interval_value,
        timeout,
    }
}

fn sandbox(diag: &mut Diagnostics<'_>, raw: RawSandbox) -> SandboxConfig {
    let timeout = plugin_timeout(diag, raw.timeout.as_ref()).or(DEFAULT_SANDBOX_TIMEOUT);
    SandboxConfig {
        timeout,
        memory_limit_bytes: memory_limit(
            diag,
            raw.memory_limit_mib,
            DEFAULT_MEMORY_LIMIT_MIB << 20,
        ),
    }
}

/// A `memory_limit_mib` setting in bytes; `default_bytes` when absent or invalid.
fn memory_limit(diag: &mut Diagnostics<'_>, raw: Option<Spanned<u64>>, default_bytes: u64) -> u64 {
    match raw {
        Some(mib) if !(1..=MAX_MEMORY_LIMIT_MIB).contains(mib.get_ref()) => {
            diag.error(
                &mib.span(),
                format!(
                    "`memory_limit_mib` must be from 1 to {MAX_MEMORY_LIMIT_MIB}, not {}",
                    mib.get_ref()
                ),
            );
            default_bytes
        }
        Some(mib) => mib.into_inner() << 20,
        None => default_bytes,
    }
}

fn targets(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawTarget>>,
    scrape: &ScrapeDefaults,
) -> Vec<TargetConfig> {
    let mut seen: HashMap<(String, String), Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for item in raw {
        let item_at = diag.at(&item.span());
        let raw = item.into_inner();
        let job = non_empty(diag, raw.job, "job");
        let url = raw.url.get_ref().clone();
        if let Err(why) = check_http_url(&url) {
            diag.error(&raw.url.span(), format!("`url`: {why}"));
        }
        if let Some(first) = seen.get(&(job.clone(), url.clone())) {
            diag.error(
                &raw.url.span(),
                format!(
                    "duplicate target: job `{job}` with url `{url}` is already defined at line {}",
                    first.line
                ),
            );
        } else {
            seen.insert((job.clone(), url.clone()), item_at);
        }

        let interval = optional_positive(diag, raw.interval.as_ref(), "interval");
        let interval_value = interval.or(scrape.interval);
        let timeout = match optional_positive(diag, raw.timeout.as_ref(), "timeout") {
            Setting::Set(timeout, span) => {
                if interval.is_valid() && timeout > interval_value {
                    let message = match interval {
                        Setting::Set(..) => {
                            longer_than("timeout", timeout, "interval", interval_value)
                        }
                        _ => longer_than("timeout", timeout, "[scrape].interval", interval_value),
                    };
                    diag.error(&span, message);
                }
                timeout
            }
            Setting::Default | Setting::Invalid => scrape.timeout.min(interval_value),
        };
        let labels = labels(diag, raw.labels, &[("job", "the target's `job`")]);
        out.push(TargetConfig {
            job,
            url,
            interval: interval_value,
            timeout,
            labels,
        });
    }
    out
}

fn sources(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    raw: Vec<Spanned<RawSource>>,
) -> Vec<SourceConfig> {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for item in raw {
        let location = diag.at(&item.span());
        let raw = item.into_inner();
        let name_span = raw.name.span();
        let name = non_empty(diag, raw.name, "name");
        if let Some(first) = seen.get(&name) {
            diag.error(
                &name_span,
                format!(
                    "duplicate source name `{name}`: first defined at line {}",
                    first.line
                ),
            );
        } else {
            seen.insert(name.clone(), location);
        }
        let url = source_url(diag, &raw.url);
        if let Some(token) = &raw.bearer_token {
            diag.error(
                &token.span(),
                inline_secret("bearer_token", "bearer_token_file", "bearer_token_env"),
            );
        }
        let bearer = secret::resolve(
            diag,
            base,
            "bearer_token",
            raw.bearer_token_file.as_ref(),
            raw.bearer_token_env.as_ref(),
        );
        let basic = raw.basic_auth.map(|b| {
            let span = b.span();
            (span.clone(), basic_auth(diag, base, b.into_inner(), &span))
        });
        let auth = match (bearer, basic) {
            (SecretSetting::Unset, Some((_, basic))) => basic,
            (_, Some((span, _))) => {
                diag.error(
                    &span,
                    "`basic_auth` and a bearer token are both set: use one of them",
                );
                None
            }
            (SecretSetting::Set(token, _), None) => Some(SourceAuth::Bearer(token)),
            (SecretSetting::Unset | SecretSetting::Invalid, None) => None,
        };
        let timeout =
            optional_positive(diag, raw.timeout.as_ref(), "timeout").or(DEFAULT_SOURCE_TIMEOUT);
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in raw.headers {
            let name = key.get_ref();
            if let Err(why) = check_header_name(name) {
                diag.error(&key.span(), format!("`headers`: {why}"));
            } else if headers.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                diag.error(
                    &key.span(),
                    format!("`headers`: `{name}` is given twice (header names ignore case)"),
                );
            }
            if let Some(c) = value
                .get_ref()
                .chars()
                .find(|c| c.is_control() && *c != '\t')
            {
                diag.error(
                    &value.span(),
                    format!(
                        "`headers.{name}`: the value must not contain control characters, found {c:?}"
                    ),
                );
            }
            headers.insert(key.into_inner(), value.into_inner());
        }
        out.push(SourceConfig {
            name,
            location,
            kind: raw.kind.into_inner(),
            url,
            auth,
            timeout,
            headers,
        });
    }
    out
}

/// `basic_auth` of a source: a user name and a password from a file or the
/// environment. `span` is the table's.
fn basic_auth(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    raw: raw::RawBasicAuth,
    span: &Range<usize>,
) -> Option<SourceAuth> {
    let username_span = raw.username.span();
    let username = non_empty(diag, raw.username, "username");
    if username.contains(':') {
        diag.error(
            &username_span,
            "`username` must not contain `:` (basic authentication separates the password with it)",
        );
    }
    if let Some(password) = &raw.password {
        diag.error(
            &password.span(),
            inline_secret("password", "password_file", "password_env"),
        );
    }
    match secret::resolve(
        diag,
        base,
        "password",
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
    ) {
        SecretSetting::Set(password, _) => Some(SourceAuth::Basic { username, password }),
        SecretSetting::Invalid => None,
        SecretSetting::Unset => {
            if raw.password.is_none() {
                diag.error(span, "`basic_auth` needs `password_file` or `password_env`");
            }
            None
        }
    }
}

/// The error for a secret written inline.
fn inline_secret(field: &str, file: &str, env: &str) -> String {
    format!(
        "`{field}` cannot be written in the configuration file: put it in a file named by `{file}` or in an environment variable named by `{env}`"
    )
}

/// A source's base URL, without a trailing `/`.
fn source_url(diag: &mut Diagnostics<'_>, url: &Spanned<String>) -> String {
    let text = url.get_ref();
    let base = text.trim_end_matches('/');
    let authority = base
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or_default());
    let problem = match check_http_url(text) {
        Err(why) => Some(why),
        Ok(()) if text.contains(['?', '#']) => Some(format!(
            "\"{text}\" has a query or fragment: give the base URL the API paths are appended to"
        )),
        Ok(()) if authority.contains('@') => Some(format!(
            "\"{text}\" holds credentials: use `basic_auth` with `password_file` or `password_env`"
        )),
        Ok(()) => ["/api/v1/query_range", "/api/v1/query", "/api/v1"]
            .iter()
            .find_map(|api| base.strip_suffix(api))
            .map(|root| {
                format!(
                    "\"{text}\" includes the API path: give the base URL, like \"{root}\" (Vigil appends /api/v1/query)"
                )
            }),
    };
    if let Some(why) = problem {
        diag.error(&url.span(), format!("`url`: {why}"));
    }
    base.to_string()
}

/// An HTTP header name a source may set: an RFC 9110 token that Vigil does
/// not set itself.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "authorization" {
        return Err(
            "set `Authorization` with `bearer_token_file`, `bearer_token_env` or `basic_auth`, which keep the secret out of this file"
                .into(),
        );
    }
    if [
        "host",
        "content-type",
        "content-length",
        "connection",
        "transfer-encoding",
    ]
    .contains(&lower.as_str())
    {
        return Err(format!("`{name}` is set by Vigil"));
    }
    Ok(())
}

/// `[[rules]]` written in another file (a `vigil test` file), validated as
/// `vigil.toml`'s are, with `[sandbox]` defaults.
pub(crate) fn rules_with_defaults(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawRule>>,
    evaluation_interval: Duration,
) -> Vec<RuleConfig> {
    let sandbox = sandbox(diag, RawSandbox::default());
    // A test evaluates every rule over its input series, `source` or not.
    rules(diag, raw, evaluation_interval, &sandbox, None)
}

/// `sources`: the names a rule's `source` may take, or `None` to take any.
fn rules(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawRule>>,
    evaluation_interval: Duration,
    sandbox: &SandboxConfig,
    sources: Option<&[&str]>,
) -> Vec<RuleConfig> {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for item in raw {
        let location = diag.at(&item.span());
        let raw = item.into_inner();
        let name = raw.name.get_ref().clone();
        if !is_label_name(&name) {
            diag.error(
                &raw.name.span(),
                format!("invalid rule name `{name}`: must match [a-zA-Z_][a-zA-Z0-9_]*"),
            );
        } else if let Some(first) = seen.get(&name) {
            diag.error(
                &raw.name.span(),
                format!(
                    "duplicate rule name `{name}`: first defined at line {}",
                    first.line
                ),
            );
        } else {
            seen.insert(name.clone(), location);
        }
        if raw.query.get_ref().trim().is_empty() {
            diag.error(&raw.query.span(), "`query` must not be empty");
        }
        let query_at = diag.at(&raw.query.span());
        let source = raw.source.map(|source| {
            if let Some(names) = sources
                && !names.contains(&source.get_ref().as_str())
            {
                diag.error(&source.span(), unknown_source(source.get_ref(), names));
            }
            source.into_inner()
        });
        let check_at = raw.check.as_ref().map_or(location, |c| diag.at(&c.span()));
        let check = raw.check.map(|c| non_empty(diag, c, "check"));

        let every = optional_positive(diag, raw.every.as_ref(), "every");
        let every_value = every.or(evaluation_interval);
        let window = match optional_positive(diag, raw.window.as_ref(), "window") {
            Setting::Set(window, span) => {
                if every.is_valid() && window < every_value {
                    let every_name = match every {
                        Setting::Set(..) => "`every`",
                        _ => "`[evaluation].interval`",
                    };
                    diag.error(
                        &span,
                        format!(
                            "`window` ({}) must not be shorter than {every_name} ({})",
                            format_duration(window),
                            format_duration(every_value)
                        ),
                    );
                }
                window
            }
            // A Prometheus-style rule judges only the latest point.
            Setting::Default | Setting::Invalid if check.is_none() => every_value,
            Setting::Default | Setting::Invalid => DEFAULT_WINDOW.max(every_value),
        };
        let for_ = optional_duration(diag, raw.for_.as_ref(), "for").or(Duration::ZERO);
        let keep_firing_for =
            optional_duration(diag, raw.keep_firing_for.as_ref(), "keep_firing_for")
                .or(Duration::ZERO);
        let timeout = plugin_timeout(diag, raw.timeout.as_ref()).or(sandbox.timeout);
        let memory_limit_bytes =
            memory_limit(diag, raw.memory_limit_mib, sandbox.memory_limit_bytes);
        let (params, params_at) = params(diag, raw.params, location);
        let labels = labels(diag, raw.labels, &[("alertname", "the rule's `name`")]);
        let mut annotations = BTreeMap::new();
        let mut annotations_at = BTreeMap::new();
        for (key, value) in raw.annotations {
            if !is_label_name(key.get_ref()) {
                diag.error(
                    &key.span(),
                    format!(
                        "invalid annotation name `{}`: must match [a-zA-Z_][a-zA-Z0-9_]*",
                        key.get_ref()
                    ),
                );
            }
            annotations_at.insert(key.get_ref().clone(), diag.at(&value.span()));
            annotations.insert(key.into_inner(), value.into_inner());
        }
        out.push(RuleConfig {
            name,
            location,
            query: raw.query.into_inner(),
            query_at,
            source,
            every: every_value,
            window,
            check,
            check_at,
            params,
            params_at,
            params_written: raw.params_written,
            for_,
            keep_firing_for,
            timeout,
            memory_limit_bytes,
            labels,
            annotations,
            annotations_at,
        });
    }
    out
}

fn receivers(diag: &mut Diagnostics<'_>, raw: Vec<Spanned<RawReceiver>>) -> Vec<ReceiverConfig> {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for item in raw {
        let location = diag.at(&item.span());
        let raw = item.into_inner();
        let name_span = raw.name.span();
        let name = non_empty(diag, raw.name, "name");
        if let Some(first) = seen.get(&name) {
            diag.error(
                &name_span,
                format!(
                    "duplicate receiver name `{name}`: first defined at line {}",
                    first.line
                ),
            );
        } else {
            seen.insert(name.clone(), location);
        }
        let notifier_at = diag.at(&raw.notifier.span());
        let notifier = non_empty(diag, raw.notifier, "notifier");
        let (params, params_at) = params(diag, raw.params, location);
        let mut allow_hosts = Vec::with_capacity(raw.allow_hosts.len());
        for host in raw.allow_hosts {
            match check_host(host.get_ref()) {
                Ok(()) => allow_hosts.push(host.get_ref().to_ascii_lowercase()),
                Err(why) => diag.error(&host.span(), format!("`allow_hosts`: {why}")),
            }
        }
        let timeout =
            optional_positive(diag, raw.timeout.as_ref(), "timeout").or(DEFAULT_DELIVERY_TIMEOUT);
        let retry_for =
            optional_duration(diag, raw.retry_for.as_ref(), "retry_for").or(DEFAULT_RETRY_FOR);
        let max_body_bytes = match raw.max_body_bytes {
            Some(v) if *v.get_ref() == 0 => {
                diag.error(&v.span(), "`max_body_bytes` must be more than 0");
                DEFAULT_MAX_BODY_BYTES
            }
            Some(v) => *v.get_ref(),
            None => DEFAULT_MAX_BODY_BYTES,
        };
        out.push(ReceiverConfig {
            name,
            notifier,
            notifier_at,
            params,
            params_at,
            params_written: raw.params_written,
            allow_hosts,
            send_resolved: raw.send_resolved.unwrap_or(true),
            timeout,
            retry_for,
            max_body_bytes,
            smtp: None,
        });
    }
    out
}

/// Receivers a route may name, with where each is defined.
type ReceiverNames = [(String, Range<usize>)];

fn route_tree(
    diag: &mut Diagnostics<'_>,
    raw: Option<Spanned<RawRoute>>,
    receivers: &ReceiverNames,
    gaps: &Gaps,
) -> RouteConfig {
    let Some(raw) = raw else {
        if let (false, [_, (_, second), ..]) = (gaps.receivers || gaps.route, receivers) {
            diag.error(
                second,
                format!(
                    "{} receivers but no [route] to choose between them: add a [route] with the default `receiver`",
                    receivers.len()
                ),
            );
        }
        return RouteConfig::root(
            receivers
                .first()
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
        );
    };
    let span = raw.span();
    let root = raw.into_inner();
    if root.receiver.is_none() {
        diag.error(&span, "missing field `receiver` in [route]");
    }
    route(diag, root, &RouteConfig::root(""), receivers, gaps)
}

/// One route; unset settings are inherited from `parent`.
fn route(
    diag: &mut Diagnostics<'_>,
    raw: RawRoute,
    parent: &RouteConfig,
    receivers: &ReceiverNames,
    gaps: &Gaps,
) -> RouteConfig {
    let receiver = match raw.receiver {
        Some(receiver) => {
            let name = receiver.get_ref();
            if !gaps.receivers && !receivers.iter().any(|(r, _)| r == name) {
                diag.error(&receiver.span(), unknown_receiver(name, receivers));
            }
            receiver.into_inner()
        }
        None => parent.receiver.clone(),
    };
    let matchers = matchers(diag, &raw.matchers);
    let group_by = match raw.group_by {
        None => parent.group_by.clone(),
        Some(names) => group_by(diag, names),
    };
    let timing = |diag: &mut Diagnostics<'_>, v: Option<&Spanned<String>>, field, inherited| {
        optional_positive(diag, v, field).or(inherited)
    };
    let group_wait = match optional_duration(diag, raw.group_wait.as_ref(), "group_wait") {
        Setting::Set(d, _) => d,
        Setting::Default | Setting::Invalid => parent.group_wait,
    };
    let group_interval = timing(
        diag,
        raw.group_interval.as_ref(),
        "group_interval",
        parent.group_interval,
    );
    let repeat_interval = timing(
        diag,
        raw.repeat_interval.as_ref(),
        "repeat_interval",
        parent.repeat_interval,
    );
    let names = |v: Vec<Spanned<String>>| v.into_iter().map(Spanned::into_inner).collect();
    let mut node = RouteConfig {
        receiver,
        matchers,
        continue_: raw.continue_,
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        mute_time_intervals: names(raw.mute_time_intervals),
        active_time_intervals: names(raw.active_time_intervals),
        routes: Vec::new(),
    };
    node.routes = raw
        .routes
        .into_iter()
        .map(|child| route(diag, child.into_inner(), &node, receivers, gaps))
        .collect();
    node
}

fn matchers(diag: &mut Diagnostics<'_>, raw: &[Spanned<String>]) -> Vec<Matcher> {
    raw.iter()
        .filter_map(|m| {
            Matcher::parse(m.get_ref())
                .map_err(|why| diag.error(&m.span(), why))
                .ok()
        })
        .collect()
}

/// `["..."]` alone means every label; otherwise valid, distinct names.
fn group_by(diag: &mut Diagnostics<'_>, names: Vec<Spanned<String>>) -> GroupBy {
    if names.iter().any(|n| n.get_ref() == "...") {
        if names.len() > 1 {
            diag.error(
                &names[0].span(),
                "`group_by` with \"...\" (every label) cannot list other labels",
            );
        }
        return GroupBy::All;
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !is_label_name(n.get_ref()) {
            diag.error(
                &n.span(),
                format!("`group_by`: {:?} is not a valid label name", n.get_ref()),
            );
        } else if out.contains(n.get_ref()) {
            diag.error(
                &n.span(),
                format!("`group_by` lists {:?} twice", n.get_ref()),
            );
        } else {
            out.push(n.into_inner());
        }
    }
    GroupBy::Labels(out)
}

/// Every time interval name a route tree refers to, with where.
fn interval_refs(r: &RawRoute, out: &mut Vec<(String, Range<usize>)>) {
    for n in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        out.push((n.get_ref().clone(), n.span()));
    }
    for child in &r.routes {
        interval_refs(child.get_ref(), out);
    }
}

fn check_interval_names(
    diag: &mut Diagnostics<'_>,
    _route: &RouteConfig,
    intervals: &[NamedTimeInterval],
    refs: &[(String, Range<usize>)],
) {
    let names: Vec<&str> = intervals.iter().map(|i| i.name.as_str()).collect();
    for (name, span) in refs {
        if !names.contains(&name.as_str()) {
            let hint = match raw::closest(name, &names) {
                Some(close) => format!(", did you mean `{close}`?"),
                None if names.is_empty() => ": no [[time_intervals]] are defined".to_string(),
                None => String::new(),
            };
            diag.error(span, format!("unknown time interval `{name}`{hint}"));
        }
    }
}

fn time_intervals(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawNamedInterval>>,
) -> Vec<NamedTimeInterval> {
    let mut out: Vec<NamedTimeInterval> = Vec::new();
    for item in raw {
        let item = item.into_inner();
        let name = item.name.get_ref().clone();
        if name.trim().is_empty() {
            diag.error(&item.name.span(), "`name` must not be empty");
        } else if out.iter().any(|i| i.name == name) {
            diag.error(
                &item.name.span(),
                format!("time interval `{name}` is defined twice"),
            );
        }
        let mut intervals = Vec::new();
        for ti in item.time_intervals {
            let ti = ti.into_inner();
            let mut interval = TimeInterval::default();
            for t in &ti.times {
                match TimeRange::parse(&t.get_ref().start_time, &t.get_ref().end_time) {
                    Ok(r) => interval.times.push(r),
                    Err(why) => diag.error(&t.span(), format!("`times`: {why}")),
                }
            }
            fn each<T>(
                diag: &mut Diagnostics<'_>,
                values: &[Spanned<String>],
                field: &str,
                parse: impl Fn(&str) -> Result<T, String>,
                out: &mut Vec<T>,
            ) {
                for v in values {
                    match parse(v.get_ref()) {
                        Ok(x) => out.push(x),
                        Err(why) => diag.error(&v.span(), format!("`{field}`: {why}")),
                    }
                }
            }
            each(
                diag,
                &ti.weekdays,
                "weekdays",
                WeekdayRange::parse,
                &mut interval.weekdays,
            );
            each(
                diag,
                &ti.days_of_month,
                "days_of_month",
                DayOfMonthRange::parse,
                &mut interval.days_of_month,
            );
            each(
                diag,
                &ti.months,
                "months",
                MonthRange::parse,
                &mut interval.months,
            );
            each(
                diag,
                &ti.years,
                "years",
                YearRange::parse,
                &mut interval.years,
            );
            if let Some(loc) = &ti.location {
                match parse_location(loc.get_ref()) {
                    Ok(tz) => interval.location = tz,
                    Err(why) => diag.error(&loc.span(), format!("`location`: {why}")),
                }
            }
            intervals.push(interval);
        }
        out.push(NamedTimeInterval { name, intervals });
    }
    out
}

fn flap_damping(diag: &mut Diagnostics<'_>, raw: Spanned<RawFlapDamping>) -> Option<FlapConfig> {
    let span = raw.span();
    let raw = raw.into_inner();
    let ten_minutes = Duration::from_secs(600);
    let window = optional_positive(diag, raw.window.as_ref(), "window");
    let stable_for = optional_positive(diag, raw.stable_for.as_ref(), "stable_for");
    if !window.is_valid() || !stable_for.is_valid() {
        return None;
    }
    let cfg = FlapConfig {
        window: window.or(ten_minutes),
        threshold: raw.changes,
        stable_for: stable_for.or(ten_minutes),
    };
    match cfg.validate() {
        Ok(()) => Some(cfg),
        Err(e) => {
            diag.error(&span, format!("[flap_damping]: {e}"));
            None
        }
    }
}

fn inhibit_rules(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawInhibitRule>>,
) -> Vec<InhibitRuleConfig> {
    raw.into_iter()
        .map(|item| {
            let span = item.span();
            let r = item.into_inner();
            if r.source_matchers.is_empty() || r.target_matchers.is_empty() {
                diag.error(
                    &span,
                    "an inhibit rule needs both `source_matchers` and `target_matchers`",
                );
            }
            let equal = r
                .equal
                .into_iter()
                .filter_map(|n| {
                    if is_label_name(n.get_ref()) {
                        Some(n.into_inner())
                    } else {
                        diag.error(
                            &n.span(),
                            format!("`equal`: {:?} is not a valid label name", n.get_ref()),
                        );
                        None
                    }
                })
                .collect();
            InhibitRuleConfig {
                source_matchers: matchers(diag, &r.source_matchers),
                target_matchers: matchers(diag, &r.target_matchers),
                equal,
            }
        })
        .collect()
}

fn unknown_source(name: &str, names: &[&str]) -> String {
    if let Some(close) = raw::closest(name, names) {
        return format!("unknown source `{name}`, did you mean `{close}`?");
    }
    if names.is_empty() {
        return format!("unknown source `{name}`: no [[sources]] are defined");
    }
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!(
        "unknown source `{name}`: the sources are {}",
        names.join(", ")
    )
}

fn unknown_receiver(name: &str, receivers: &ReceiverNames) -> String {
    let names: Vec<&str> = receivers.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(close) = raw::closest(name, &names) {
        return format!("unknown receiver `{name}`, did you mean `{close}`?");
    }
    if names.is_empty() {
        return format!("unknown receiver `{name}`: no [[receivers]] are defined");
    }
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!(
        "unknown receiver `{name}`: the receivers are {}",
        names.join(", ")
    )
}

/// Label names from the file: valid, not reserved (`__` prefix), not set
/// elsewhere (`taken`: name and what sets it).
fn labels(
    diag: &mut Diagnostics<'_>,
    raw: BTreeMap<Spanned<String>, String>,
    taken: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let span = name.span();
        let name = name.into_inner();
        if !is_label_name(&name) {
            diag.error(
                &span,
                format!("invalid label name `{name}`: must match [a-zA-Z_][a-zA-Z0-9_]*"),
            );
        } else if name.starts_with("__") {
            diag.error(
                &span,
                format!("label name `{name}` is reserved: names starting with `__` are internal"),
            );
        } else if let Some((_, by)) = taken.iter().find(|(taken, _)| *taken == name) {
            diag.error(&span, format!("label `{name}` is set by {by}"));
        }
        out.insert(name, value);
    }
    out
}

/// Plugin parameters as a JSON object, and where they are written (the
/// item's location when they are not).
fn params(
    diag: &mut Diagnostics<'_>,
    raw: Option<Spanned<toml::Table>>,
    item: Location,
) -> (serde_json::Value, Location) {
    let Some(raw) = raw else {
        return (serde_json::Value::Object(serde_json::Map::new()), item);
    };
    let at = diag.at(&raw.span());
    let value = match to_json(toml::Value::Table(raw.get_ref().clone()), "params") {
        Ok(value) => value,
        Err(why) => {
            diag.error(&raw.span(), why);
            serde_json::Value::Object(serde_json::Map::new())
        }
    };
    (value, at)
}

fn to_json(value: toml::Value, path: &str) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| {
                format!("`{path}`: {f} cannot be passed to a plugin (JSON has no NaN or infinity)")
            })?,
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Json::Object(
            table
                .into_iter()
                .map(|(k, v)| {
                    let child = format!("{path}.{k}");
                    to_json(v, &child).map(|v| (k, v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn non_empty(diag: &mut Diagnostics<'_>, value: Spanned<String>, field: &str) -> String {
    if value.get_ref().trim().is_empty() {
        diag.error(&value.span(), format!("`{field}` must not be empty"));
    }
    value.into_inner()
}

fn optional_duration(
    diag: &mut Diagnostics<'_>,
    value: Option<&Spanned<String>>,
    field: &str,
) -> Setting<Duration> {
    let Some(value) = value else {
        return Setting::Default;
    };
    match parse_duration(value.get_ref()) {
        Ok(d) => Setting::Set(d, value.span()),
        Err(why) => {
            diag.error(&value.span(), format!("`{field}`: {why}"));
            Setting::Invalid
        }
    }
}

fn optional_positive(
    diag: &mut Diagnostics<'_>,
    value: Option<&Spanned<String>>,
    field: &str,
) -> Setting<Duration> {
    match optional_duration(diag, value, field) {
        Setting::Set(d, span) if d.is_zero() => {
            diag.error(&span, format!("`{field}` must be more than 0s"));
            Setting::Invalid
        }
        other => other,
    }
}

fn positive(diag: &mut Diagnostics<'_>, value: &Spanned<String>, field: &str) -> Setting<Duration> {
    optional_positive(diag, Some(value), field)
}

/// A plugin call's timeout: more than zero, at most a minute.
fn plugin_timeout(
    diag: &mut Diagnostics<'_>,
    value: Option<&Spanned<String>>,
) -> Setting<Duration> {
    match optional_positive(diag, value, "timeout") {
        Setting::Set(d, span) if d > MAX_PLUGIN_TIMEOUT => {
            diag.error(
                &span,
                format!(
                    "`timeout` ({}) must be at most {}",
                    format_duration(d),
                    format_duration(MAX_PLUGIN_TIMEOUT)
                ),
            );
            Setting::Invalid
        }
        other => other,
    }
}

fn longer_than(field: &str, value: Duration, limit_name: &str, limit: Duration) -> String {
    format!(
        "`{field}` ({}) must not be longer than `{limit_name}` ({})",
        format_duration(value),
        format_duration(limit)
    )
}

/// An `http://` or `https://` URL with a host and, if any, a valid port.
fn check_http_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let Some(scheme_len) = ["http://", "https://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map(|scheme| scheme.len())
    else {
        return Err(format!(
            "invalid URL \"{url}\": must start with http:// or https://"
        ));
    };
    if url.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid URL \"{url}\": must not contain whitespace"
        ));
    }
    let rest = url.get(scheme_len..).unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    check_host(host_port).map_err(|why| format!("invalid URL \"{url}\": {why}"))
}

/// `host` or `host:port`; an IPv6 address in brackets.
fn check_host(host_port: &str) -> Result<(), String> {
    if host_port.contains("://") || host_port.contains('/') {
        return Err(format!(
            "\"{host_port}\" is not a host: expected \"host\" or \"host:port\", not a URL"
        ));
    }
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(format!(
                "\"{host_port}\": missing `]` after the IPv6 address"
            ));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("\"{host_port}\": invalid IPv6 address `{v6}`"));
        }
        match after {
            "" => ("", None),
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return Err(format!("\"{host_port}\": expected `:port` after `]`")),
            },
        }
    } else {
        if host_port.is_empty() {
            return Err("missing host".into());
        }
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if !host_port.starts_with('[') {
        if host.is_empty() {
            return Err(format!("\"{host_port}\": missing host"));
        }
        if let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Err(format!(
                "\"{host_port}\": invalid character `{bad}` in host"
            ));
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("\"{host_port}\": invalid port `{port}`"));
    }
    Ok(())
}

// SMTP: `[smtp]` and each receiver's own `smtp` table, merged field by field.

use super::raw::RawSmtp;
use super::secret::{self, SecretSetting};
use super::{CaFile, SmtpConfig, SmtpCredentials, SmtpTls};

/// The bundled notifier that renders e-mails. A receiver using it must have
/// SMTP settings, which is known at load; any other plugin may also return
/// e-mails, which is only known when it does.
pub(crate) const EMAIL_NOTIFIER: &str = "email";
const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A receiver's `smtp` table, taken out before the rest of the receiver is
/// validated, with the notifier that decides whether it must be complete.
struct ReceiverSmtp {
    notifier: Spanned<String>,
    own: Option<Spanned<RawSmtp>>,
}

/// Takes each receiver's `smtp` table, in receiver order.
fn receiver_smtp_tables(receivers: &mut [Spanned<RawReceiver>]) -> Vec<ReceiverSmtp> {
    receivers
        .iter_mut()
        .map(|r| {
            let r = r.get_mut();
            ReceiverSmtp {
                notifier: r.notifier.clone(),
                own: r.smtp.take(),
            }
        })
        .collect()
}

/// One SMTP table with each field checked on its own; unset fields inherit
/// from `[smtp]` when merged.
#[derive(Clone, Default)]
struct SmtpFields {
    /// The table, for errors about the merged settings.
    span: Range<usize>,
    /// `[smtp]` or `the receiver's smtp table`.
    what: &'static str,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    username: Option<Spanned<String>>,
    password: SecretSetting,
    from: Option<String>,
    hello_name: Option<String>,
    ca_file: Option<CaFile>,
    timeout: Option<Duration>,
    /// A field was written but invalid (already reported), so the merged
    /// settings are not reported incomplete as well.
    invalid: bool,
}

impl SmtpFields {
    /// `self`'s fields where set, `base`'s otherwise.
    fn over(self, base: &SmtpFields) -> SmtpFields {
        let password = match self.password {
            SecretSetting::Unset => base.password.clone(),
            own => own,
        };
        SmtpFields {
            span: self.span,
            what: self.what,
            host: self.host.or_else(|| base.host.clone()),
            port: self.port.or(base.port),
            tls: self.tls.or(base.tls),
            username: self.username.or_else(|| base.username.clone()),
            password,
            from: self.from.or_else(|| base.from.clone()),
            hello_name: self.hello_name.or_else(|| base.hello_name.clone()),
            ca_file: self.ca_file.or_else(|| base.ca_file.clone()),
            timeout: self.timeout.or(base.timeout),
            invalid: self.invalid || base.invalid,
        }
    }
}

/// Resolves every receiver's SMTP settings: `[smtp]` with the receiver's
/// `smtp` table over it. A receiver that must send e-mail (its notifier is
/// `email`, or it has its own `smtp` table) gets an error when the result
/// lacks a server or a sender; any other receiver then just has none.
fn smtp_settings(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    global: Option<Spanned<RawSmtp>>,
    gaps: &Gaps,
    tables: Vec<ReceiverSmtp>,
    receivers: &mut [ReceiverConfig],
) {
    // An [smtp] that failed to decode (already reported) may hold what the
    // receivers lack: saying they lack it would mislead.
    let global = match global {
        Some(g) => Some(smtp_fields(diag, base, g, "[smtp]")),
        None if gaps.smtp => Some(SmtpFields {
            invalid: true,
            ..SmtpFields::default()
        }),
        None => None,
    };
    // Errors about `[smtp]` itself are reported once, not once per receiver.
    let mut reported = std::collections::HashSet::new();
    if let Some(global) = &global {
        smtp_credentials(diag, &mut reported, global);
    }
    for (receiver, table) in receivers.iter_mut().zip(tables) {
        let own = table
            .own
            .map(|t| smtp_fields(diag, base, t, "the receiver's `smtp` table"));
        let needed = table.notifier.get_ref() == EMAIL_NOTIFIER || own.is_some();
        let merged = match (own, &global) {
            (Some(own), Some(global)) => own.over(global),
            (Some(own), None) => own,
            (None, Some(global)) => global.clone(),
            (None, None) => {
                if needed {
                    diag.error(
                        &table.notifier.span(),
                        format!(
                            "receiver `{}` uses the `{EMAIL_NOTIFIER}` notifier, but there are no SMTP settings: add an [smtp] section with `host` and `from`",
                            receiver.name
                        ),
                    );
                }
                continue;
            }
        };
        receiver.smtp = smtp_config(diag, &mut reported, merged, needed, &receiver.name);
    }
}

/// Settings complete enough to send with, or `None`.
fn smtp_config(
    diag: &mut Diagnostics<'_>,
    reported: &mut std::collections::HashSet<(usize, String)>,
    fields: SmtpFields,
    needed: bool,
    receiver: &str,
) -> Option<SmtpConfig> {
    let credentials = smtp_credentials(diag, reported, &fields);
    let missing: Vec<&str> = [
        ("host", fields.host.is_none()),
        ("from", fields.from.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if !missing.is_empty() {
        if needed && !fields.invalid {
            let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
            let message = match fields.what {
                "[smtp]" => format!(
                    "[smtp] has no {}, which receiver `{receiver}` needs to send e-mail",
                    names.join(" or ")
                ),
                what => format!(
                    "receiver `{receiver}` sends e-mail but neither {what} nor [smtp] sets {}",
                    names.join(" or ")
                ),
            };
            let key = (fields.span.start, names.join(","));
            if reported.insert(key) {
                diag.error(&fields.span, message);
            }
        }
        return None;
    }
    let tls = fields.tls.unwrap_or(SmtpTls::StartTls);
    Some(SmtpConfig {
        host: fields.host.unwrap_or_default(),
        port: fields.port.unwrap_or(tls.default_port()),
        tls,
        credentials: credentials?,
        from: fields.from.unwrap_or_default(),
        hello_name: fields.hello_name,
        ca_file: fields.ca_file,
        timeout: fields.timeout.unwrap_or(DEFAULT_SMTP_TIMEOUT),
    })
}

/// The user name and password, which come as a pair. `None` when the pair
/// is broken (reported once) or the password could not be read.
fn smtp_credentials(
    diag: &mut Diagnostics<'_>,
    reported: &mut std::collections::HashSet<(usize, String)>,
    fields: &SmtpFields,
) -> Option<Option<SmtpCredentials>> {
    let mut report = |diag: &mut Diagnostics<'_>, span: Range<usize>, message: &str| {
        if reported.insert((span.start, message.to_string())) {
            diag.error(&span, message);
        }
    };
    match (&fields.username, &fields.password) {
        (None, SecretSetting::Unset) => Some(None),
        (Some(username), SecretSetting::Set(password, _)) => Some(Some(SmtpCredentials {
            username: username.get_ref().clone(),
            password: password.clone(),
        })),
        (_, SecretSetting::Invalid) => None,
        (Some(username), SecretSetting::Unset) => {
            report(
                diag,
                username.span(),
                "`username` is set but there is no password: add `password_file` or `password_env`",
            );
            None
        }
        (None, SecretSetting::Set(_, span)) => {
            report(
                diag,
                span.clone(),
                "a password is set but no `username` to go with it",
            );
            None
        }
    }
}

/// Checks each field of one SMTP table.
fn smtp_fields(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    raw: Spanned<RawSmtp>,
    what: &'static str,
) -> SmtpFields {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut invalid = false;
    let mut fail = |diag: &mut Diagnostics<'_>, span: Range<usize>, message: String| {
        diag.error(&span, message);
        invalid = true;
    };

    let host = match raw.host {
        Some(host) => match check_smtp_host(host.get_ref()) {
            Ok(()) => Some(host.into_inner()),
            Err(why) => {
                fail(diag, host.span(), format!("`host`: {why}"));
                None
            }
        },
        None => None,
    };
    let port = match raw.port {
        Some(port) if *port.get_ref() == 0 => {
            fail(diag, port.span(), "`port` must be from 1 to 65535".into());
            None
        }
        port => port.map(Spanned::into_inner),
    };
    let username = match raw.username {
        Some(username) if username.get_ref().is_empty() => {
            fail(diag, username.span(), "`username` must not be empty".into());
            None
        }
        username => username,
    };
    if let Some(inline) = &raw.password {
        fail(
            diag,
            inline.span(),
            "`password` cannot be written in the configuration file: put it in a file named by `password_file` or in an environment variable named by `password_env`".into(),
        );
    }
    let from = match raw.from {
        Some(from) if from.get_ref().parse::<lettre::message::Mailbox>().is_err() => {
            let message = format!(
                "`from`: \"{}\" is not a valid sender: expected an address like \"vigil@example.com\" or \"Vigil <vigil@example.com>\"",
                from.get_ref()
            );
            fail(diag, from.span(), message);
            None
        }
        from => from.map(Spanned::into_inner),
    };
    let hello_name = match raw.hello_name {
        Some(name)
            if name.get_ref().is_empty()
                || !name.get_ref().chars().all(|c| c.is_ascii_graphic()) =>
        {
            let message = format!(
                "`hello_name`: \"{}\" is not a host name: expected something like \"vigil.example.com\"",
                name.get_ref()
            );
            fail(diag, name.span(), message);
            None
        }
        name => name.map(Spanned::into_inner),
    };
    let ca_file = match raw.ca_file {
        Some(path) => {
            let resolved = base.join(path.get_ref());
            match read_ca_file(&resolved) {
                Ok(pem) => Some(CaFile {
                    path: resolved,
                    pem,
                }),
                Err(why) => {
                    fail(diag, path.span(), format!("`ca_file`: {why}"));
                    None
                }
            }
        }
        None => None,
    };
    let password = match secret::resolve(
        diag,
        base,
        "password",
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
    ) {
        // The inline one is reported; "no password" would be noise.
        SecretSetting::Unset if raw.password.is_some() => SecretSetting::Invalid,
        password => password,
    };
    let timeout = optional_positive(diag, raw.timeout.as_ref(), "timeout");
    let invalid = invalid
        || matches!(password, SecretSetting::Invalid)
        || matches!(timeout, Setting::Invalid);
    SmtpFields {
        span,
        what,
        host,
        port,
        tls: raw.tls.map(Spanned::into_inner),
        username,
        password,
        from,
        hello_name,
        ca_file,
        timeout: match timeout {
            Setting::Set(timeout, _) => Some(timeout),
            Setting::Default | Setting::Invalid => None,
        },
        invalid,
    }
}

/// A host name or IP address, without a scheme or a port.
fn check_smtp_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("must not be empty".into());
    }
    if host.contains("://") {
        return Err(format!(
            "\"{host}\" is a URL: write only the host name, like \"smtp.example.com\""
        ));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && port.parse::<u16>().is_ok()
    {
        return Err(format!(
            "\"{host}\" includes a port: write the host alone and the port in `port`"
        ));
    }
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        Some(bad) => Err(format!("\"{host}\": invalid character `{bad}` in host")),
        None => Ok(()),
    }
}

/// The file's bytes, if it holds at least one well-formed PEM certificate.
fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read \"{shown}\": {e}"))?;
    let has_certificate = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----");
    if !has_certificate {
        return Err(format!(
            "\"{shown}\" holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    lettre::transport::smtp::client::Certificate::from_pem(&pem)
        .map_err(|e| format!("\"{shown}\" is not valid PEM: {e}"))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::super::{MatchOp, parse};
    use super::*;

    fn ok(text: &str) -> Config {
        match parse(Path::new("/etc/vigil/vigil.toml"), text) {
            Ok(config) => config,
            Err(errors) => panic!("unexpected errors:\n{errors}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("t.toml"), text) {
            Ok(_) => panic!("expected errors"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let config = ok("");
        assert_eq!(config.data_dir, Path::new("/etc/vigil/data"));
        assert_eq!(config.plugin_dir, Path::new("/etc/vigil/plugins"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(config.external_url, "http://127.0.0.1:9464");
        assert_eq!(
            config.sandbox,
            SandboxConfig {
                timeout: Duration::from_millis(250),
                memory_limit_bytes: 64 << 20,
            }
        );
        assert!(config.targets.is_empty() && config.rules.is_empty());
        assert_eq!(config.route.receiver, "");
    }

    #[test]
    fn a_rule_may_raise_its_memory_limit() {
        let config = ok(
            "[sandbox]\nmemory_limit_mib = 32\n\n[[rules]]\nname = \"Big\"\nquery = \"x\"\ncheck = \"threshold\"\nmemory_limit_mib = 512\n\n[[rules]]\nname = \"Small\"\nquery = \"x\"\ncheck = \"threshold\"\n",
        );
        assert_eq!(config.rules[0].memory_limit_bytes, 512 << 20);
        assert_eq!(
            config.rules[1].memory_limit_bytes,
            32 << 20,
            "the sandbox's"
        );
        let errs = errors(
            "[[rules]]\nname = \"Big\"\nquery = \"x\"\ncheck = \"threshold\"\nmemory_limit_mib = 0\n",
        );
        assert_eq!(
            errs,
            vec!["t.toml:5:20: `memory_limit_mib` must be from 1 to 4096, not 0"]
        );
    }

    #[test]
    fn paths_resolve_against_the_config_directory() {
        let config = ok("data_dir = \"/var/lib/vigil\"\nplugin_dir = \"../wasm\"\n");
        assert_eq!(config.data_dir, Path::new("/var/lib/vigil"));
        assert_eq!(config.plugin_dir, Path::new("/etc/vigil/../wasm"));
        let bare = parse(Path::new("vigil.toml"), "").unwrap();
        assert_eq!(bare.data_dir, Path::new("data"));
    }

    #[test]
    fn targets_inherit_scrape_defaults() {
        let config = ok(r#"
            [scrape]
            interval = "30s"
            timeout = "20s"

            [[targets]]
            job = "a"
            url = "http://127.0.0.1:8002/metrics"

            [[targets]]
            job = "b"
            url = "https://example.com:8443/metrics"
            interval = "5s"
            labels = { env = "prod" }
        "#);
        let [a, b] = &config.targets[..] else {
            panic!()
        };
        assert_eq!(
            (a.interval, a.timeout),
            (Duration::from_secs(30), Duration::from_secs(20))
        );
        // The default timeout never exceeds the target's own interval.
        assert_eq!(
            (b.interval, b.timeout),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert_eq!(b.labels.get("env").map(String::as_str), Some("prod"));
    }

    #[test]
    fn a_short_scrape_interval_shortens_the_default_timeout() {
        let config =
            ok("[scrape]\ninterval = \"5s\"\n[[targets]]\njob = \"a\"\nurl = \"http://h/\"\n");
        assert_eq!(config.targets[0].timeout, Duration::from_secs(5));
    }

    #[test]
    fn rules_get_defaults_and_locations() {
        let config = ok(r#"
[evaluation]
interval = "10m"

[sandbox]
timeout = "100ms"

[[rules]]
name = "High"
query = 'up == 0'
check = "threshold"
params = { above = 0.5, nested = { list = [1, "a"] } }
annotations = { summary = "{{ $labels.job }} down" }
"#);
        let rule = &config.rules[0];
        assert_eq!(rule.location, Location::new(8, 1));
        assert_eq!(rule.query_at, Location::new(10, 9));
        assert_eq!(rule.check_at, Location::new(11, 9));
        assert_eq!(rule.params_at, Location::new(12, 10));
        assert_eq!(rule.annotations_at["summary"], Location::new(13, 27));
        assert_eq!(rule.every, Duration::from_secs(600));
        // The default window grows to `every` rather than failing.
        assert_eq!(rule.window, Duration::from_secs(600));
        assert_eq!(rule.for_, Duration::ZERO);
        assert_eq!(rule.timeout, Duration::from_millis(100));
        assert_eq!(
            rule.params,
            serde_json::json!({ "above": 0.5, "nested": { "list": [1, "a"] } })
        );
    }

    #[test]
    fn receivers_and_routes_resolve() {
        let config = ok(r#"
[[receivers]]
name = "oncall"
notifier = "webhook"
allow_hosts = ["Hooks.Example.com", "127.0.0.1:9000", "[::1]:80"]

[[receivers]]
name = "log"
notifier = "console"
send_resolved = false

[route]
receiver = "oncall"
routes = [
  { matchers = ['severity="critical"'], continue = true, routes = [{ receiver = "log" }] },
  { receiver = "log", matchers = ['team=~"ml|data"'] },
]
"#);
        let oncall = &config.receivers[0];
        assert_eq!(
            oncall.allow_hosts,
            ["hooks.example.com", "127.0.0.1:9000", "[::1]:80"]
        );
        assert!(oncall.send_resolved);
        assert_eq!(oncall.timeout, Duration::from_secs(10));
        assert_eq!(oncall.retry_for, Duration::from_secs(600));
        assert!(!config.receivers[1].send_resolved);
        let route = &config.route;
        assert_eq!(route.receiver, "oncall");
        let [critical, team] = &route.routes[..] else {
            panic!()
        };
        assert_eq!(critical.receiver, "oncall", "inherited");
        assert!(critical.continue_);
        assert_eq!(critical.matchers[0].op, MatchOp::Equal);
        assert_eq!(critical.routes[0].receiver, "log");
        assert_eq!(team.receiver, "log");
        assert!(team.matchers[0].matches(Some("data")));
    }

    #[test]
    fn a_single_receiver_is_the_default_route() {
        let config = ok("[[receivers]]\nname = \"only\"\nnotifier = \"console\"\n");
        assert_eq!(config.route.receiver, "only");
        let errs = errors(
            "[[receivers]]\nname = \"a\"\nnotifier = \"console\"\n[[receivers]]\nname = \"b\"\nnotifier = \"console\"\n",
        );
        assert_eq!(
            errs,
            [
                "t.toml:4:1: 2 receivers but no [route] to choose between them: add a [route] with the default `receiver`"
            ]
        );
    }

    #[test]
    fn an_invalid_receiver_does_not_cause_unknown_receiver_errors() {
        let errs = errors("[[receivers]]\nname = \"a\"\nnotifier = 5\n[route]\nreceiver = \"a\"\n");
        assert_eq!(
            errs,
            ["t.toml:3:12: `notifier`: invalid type: integer `5`, expected a string"]
        );
    }

    #[test]
    fn every_bad_value_in_one_item_is_reported() {
        let errs = errors(
            "[[targets]]\njob = 1\nurl = 2\ninterval = \"5\"\nlabels = { \"bad-name\" = \"x\" }\n",
        );
        assert_eq!(
            errs,
            [
                "t.toml:2:7: `job`: invalid type: integer `1`, expected a string",
                "t.toml:3:7: `url`: invalid type: integer `2`, expected a string",
            ]
        );
    }

    #[test]
    fn urls_and_hosts() {
        for good in [
            "http://a",
            "https://a.b:8443/x?y#z",
            "http://user@h:1/",
            "HTTP://[::1]:9090/m",
        ] {
            assert_eq!(check_http_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://a",
            "http://",
            "http:///x",
            "http://a:b/",
            "http://a b/",
            "a.b",
            "http://[zz]/",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
        for good in [
            "localhost",
            "127.0.0.1:9000",
            "hooks.example.com",
            "[::1]",
            "[::1]:443",
        ] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        for bad in ["", "http://x", "x/y", "x:", "x:99999", ":80", "[::1", "a b"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for good in ["a", "_", "env", "A_1"] {
            assert!(is_label_name(good));
        }
        for bad in ["", "1a", "a-b", "a.b", "é"] {
            assert!(!is_label_name(bad));
        }
    }
}
#[cfg(test)]
mod smtp_tests {
    use super::super::{SmtpCredentials, SmtpTls, parse};
    use super::*;

    /// Any parseable certificate: only its PEM form is checked at load.
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASugAwIBAgIUYGebmMUBLX+Ubo4+9524R7r+GIAwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNdmlnaWwtdGVzdC1jYTAeFw0yNjExMjIwNjQ4MTFaFw0zNjEx
MTkwNjQ4MTFaMBgxFjAUBgNVBAMMDXZpZ2lsLXRlc3QtY2EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAARZwVrT/jT5HxHdqAfMHeZ4fdtqs7j+zuD3hZDZ/DvbcFBH
yyXiYuI4srtzYtkaRAXhlR+XlhLIA0X+pXyw9YFeo1MwUTAdBgNVHQ4EFgQUgAi1
sIDn9bDQReEiH4Xwn1i1XVkwHwYDVR0jBBgwFoAUgAi1sIDn9bDQReEiH4Xwn1i1
XVkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBwixs3aLZTaRlE
lx5TMOYc5V4dnTT5+eRr4leI3YMelwIge5n+tqI0dTidcV6GCnF9+MXyctsjEKRh
SZxY06USzQM=
-----END CERTIFICATE-----
";

    /// A directory holding `vigil.toml` and the files it names.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("vigil-smtp-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("ca.pem"), CA_PEM).unwrap();
            std::fs::write(dir.join("smtp.pass"), "s3cret\n").unwrap();
            Dir(dir)
        }

        fn parse(&self, text: &str) -> Result<Config, Vec<String>> {
            parse(&self.0.join("vigil.toml"), text).map_err(|e| {
                e.iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.location.unwrap_or(Location::new(0, 0)),
                            e.message
                        )
                    })
                    .collect()
            })
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn receivers_take_smtp_and_override_it_field_by_field() {
        let dir = Dir::new("merge");
        let config = dir
            .parse(
                r#"
[smtp]
host = "smtp.example.com"
tls = "tls"
username = "vigil"
password_file = "smtp.pass"
from = "Vigil <vigil@example.com>"
hello_name = "vigil.example.com"
ca_file = "ca.pem"
timeout = "3s"

[[receivers]]
name = "oncall"
notifier = "email"

[[receivers]]
name = "ml"
notifier = "email"
smtp = { from = "ml-alerts@example.com", tls = "starttls" }

[[receivers]]
name = "hook"
notifier = "webhook"

[route]
receiver = "oncall"
"#,
            )
            .unwrap();
        let [oncall, ml, hook] = &config.receivers[..] else {
            panic!()
        };
        let smtp = oncall.smtp.as_ref().expect("oncall has SMTP");
        assert_eq!(smtp.host, "smtp.example.com");
        assert_eq!((smtp.tls, smtp.port), (SmtpTls::Tls, 465));
        let Some(SmtpCredentials { username, password }) = &smtp.credentials else {
            panic!()
        };
        assert_eq!((username.as_str(), password.expose()), ("vigil", "s3cret"));
        assert_eq!(smtp.from, "Vigil <vigil@example.com>");
        assert_eq!(smtp.hello_name.as_deref(), Some("vigil.example.com"));
        let ca = smtp.ca_file.as_ref().expect("ca_file");
        assert_eq!(
            (ca.path.clone(), ca.pem.as_slice()),
            (dir.0.join("ca.pem"), CA_PEM.as_bytes())
        );
        assert_eq!(smtp.timeout, Duration::from_secs(3));

        let overridden = ml.smtp.as_ref().expect("ml has SMTP");
        assert_eq!(overridden.from, "ml-alerts@example.com");
        // The port follows the receiver's own `tls`, not the global one.
        assert_eq!((overridden.tls, overridden.port), (SmtpTls::StartTls, 587));
        assert_eq!(overridden.credentials, smtp.credentials, "inherited");
        // Any notifier may return e-mails: complete settings reach all.
        assert_eq!(hook.smtp.as_ref(), Some(smtp));
    }

    #[test]
    fn defaults_follow_tls() {
        let dir = Dir::new("defaults");
        let config = dir
            .parse(
                "[smtp]\nhost = \"127.0.0.1\"\nfrom = \"a@example.com\"\n\n[[receivers]]\nname = \"a\"\nnotifier = \"email\"\n\n[[receivers]]\nname = \"b\"\nnotifier = \"email\"\nsmtp = { tls = \"none\" }\n\n[route]\nreceiver = \"a\"\n",
            )
            .unwrap();
        let a = config.receivers[0].smtp.clone().unwrap();
        assert_eq!((a.tls, a.port), (SmtpTls::StartTls, 587));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert!(a.credentials.is_none() && a.ca_file.is_none() && a.hello_name.is_none());
        let b = config.receivers[1].smtp.clone().unwrap();
        assert_eq!((b.tls, b.port), (SmtpTls::Plain, 25));
    }

    #[test]
    fn incomplete_settings_are_an_error_only_for_receivers_that_send_e_mail() {
        let dir = Dir::new("incomplete");
        // A webhook receiver with half an [smtp]: nothing to send with, no error.
        let config = dir
            .parse("[smtp]\nhost = \"smtp.example.com\"\n\n[[receivers]]\nname = \"hook\"\nnotifier = \"webhook\"\n")
            .unwrap();
        assert_eq!(config.receivers[0].smtp, None);
        let errors = dir
            .parse(
                "[smtp]\nhost = \"smtp.example.com\"\n\n[[receivers]]\nname = \"a\"\nnotifier = \"email\"\n\n[[receivers]]\nname = \"b\"\nnotifier = \"email\"\n\n[[receivers]]\nname = \"c\"\nnotifier = \"custom\"\nsmtp = { port = 2525 }\n\n[route]\nreceiver = \"a\"\n",
            )
            .unwrap_err();
        assert_eq!(
            errors,
            [
                "1:1: [smtp] has no `from`, which receiver `a` needs to send e-mail",
                "15:8: receiver `c` sends e-mail but neither the receiver's `smtp` table nor [smtp] sets `from`",
            ]
        );
        let errors = dir
            .parse("[[receivers]]\nname = \"a\"\nnotifier = \"email\"\n")
            .unwrap_err();
        assert_eq!(
            errors,
            [
                "3:12: receiver `a` uses the `email` notifier, but there are no SMTP settings: add an [smtp] section with `host` and `from`"
            ]
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let dir = Dir::new("bad");
        let errors = dir
            .parse(
                r#"[smtp]
host = "smtp.example.com:587"
port = 0
password = "hunter2"
username = "vigil"
from = "vigil at example.com"
hello_name = ""
ca_file = "smtp.pass"
timeout = "soon"

[[receivers]]
name = "a"
notifier = "email"
smtp = { password_env = "VIGIL_TEST_SURELY_UNSET_PASSWORD", host = "" }
"#,
            )
            .unwrap_err();
        let ca = dir.0.join("smtp.pass");
        assert_eq!(
            errors,
            [
                "2:8: `host`: \"smtp.example.com:587\" includes a port: write the host alone and the port in `port`".to_string(),
                "3:8: `port` must be from 1 to 65535".into(),
                "4:12: `password` cannot be written in the configuration file: put it in a file named by `password_file` or in an environment variable named by `password_env`".into(),
                "6:8: `from`: \"vigil at example.com\" is not a valid sender: expected an address like \"vigil@example.com\" or \"Vigil <vigil@example.com>\"".into(),
                "7:14: `hello_name`: \"\" is not a host name: expected something like \"vigil.example.com\"".into(),
                format!("8:11: `ca_file`: \"{}\" holds no PEM certificate (-----BEGIN CERTIFICATE-----)", ca.display()),
                // The wording of duration errors belongs to `duration`.
                errors[6].clone(),
                "14:25: `password_env`: environment variable VIGIL_TEST_SURELY_UNSET_PASSWORD is not set".into(),
                "14:68: `host`: must not be empty".into(),
            ]
        );
        assert!(errors[6].starts_with("9:11: `timeout`: invalid duration"));
    }

    #[test]
    fn unknown_fields_are_reported_with_suggestions() {
        let dir = Dir::new("unknown");
        let errors = dir
            .parse("[smtp]\nhots = \"x\"\ntls = \"ssl\"\n")
            .unwrap_err();
        assert_eq!(
            errors,
            [
                "2:1: unknown field `hots` in [smtp], did you mean `host`?",
                "3:7: `tls`: unknown variant `ssl`, expected one of `starttls`, `tls`, `none`",
            ]
        );
    }
}

#[cfg(test)]
mod source_tests {
    use super::super::{SecretSource, SourceKind, parse};
    use super::*;

    #[test]
    fn sources_get_defaults_and_credentials_and_rules_name_them() {
        let dir = std::env::temp_dir().join(format!("vigil-source-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t0ken\n").unwrap();
        std::fs::write(dir.join("prom.pass"), "pw\n").unwrap();
        let text = r#"
[[sources]]
name = "prom"
kind = "prometheus"
url = "http://127.0.0.1:9090/"
bearer_token_file = "token"

[[sources]]
name = "mimir"
kind = "prometheus"
url = "https://mimir.example.com/prometheus"
timeout = "3s"
basic_auth = { username = "vigil", password_file = "prom.pass" }
headers = { "X-Scope-OrgID" = "ml" }

[[rules]]
name = "Remote"
query = "up == 0"
source = "mimir"

[[rules]]
name = "Local"
query = "up == 0"
"#;
        let config = parse(&dir.join("vigil.toml"), text);
        let _ = std::fs::remove_dir_all(&dir);
        let config = config.unwrap();
        let [prom, mimir] = &config.sources[..] else {
            panic!("{:?}", config.sources)
        };
        assert_eq!(prom.kind, SourceKind::Prometheus);
        assert_eq!(prom.url, "http://127.0.0.1:9090", "no trailing slash");
        assert_eq!(prom.timeout, Duration::from_secs(10));
        assert_eq!(prom.location, Location::new(2, 1));
        let Some(SourceAuth::Bearer(token)) = &prom.auth else {
            panic!("{:?}", prom.auth)
        };
        assert_eq!(token.expose(), "t0ken");
        assert_eq!(token.source(), &SecretSource::File(dir.join("token")));
        assert!(prom.headers.is_empty());

        assert_eq!(mimir.timeout, Duration::from_secs(3));
        let Some(SourceAuth::Basic { username, password }) = &mimir.auth else {
            panic!("{:?}", mimir.auth)
        };
        assert_eq!((username.as_str(), password.expose()), ("vigil", "pw"));
        assert_eq!(mimir.headers["X-Scope-OrgID"], "ml");

        assert_eq!(config.rules[0].source.as_deref(), Some("mimir"));
        assert_eq!(config.rules[1].source, None);
    }

    #[test]
    fn rule_tests_take_any_source() {
        let text = "[[rules]]\nname = \"R\"\nquery = \"up\"\nsource = \"anywhere\"\n";
        let mut diag = Diagnostics::new(Path::new("t.toml"), text);
        let (raw, _) = raw::decode(&mut diag).unwrap();
        let rules = rules_with_defaults(&mut diag, raw.rules, Duration::from_secs(15));
        assert!(!diag.has_errors());
        assert_eq!(rules[0].source.as_deref(), Some("anywhere"));
    }
}
