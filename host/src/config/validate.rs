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
    self, Gaps, RawConfig, RawReceiver, RawRoute, RawRule, RawSandbox, RawScrape, RawTarget,
};
use super::{
    Config, Location, Matcher, ReceiverConfig, RouteConfig, RuleConfig, SandboxConfig,
    TargetConfig, format_duration, parse_duration,
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
const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(10 * 60);

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
    let rules = rules(diag, raw.rules, evaluation_interval, &sandbox);
    let receiver_names: Vec<(String, Range<usize>)> = raw
        .receivers
        .iter()
        .map(|r| (r.get_ref().name.get_ref().clone(), r.span()))
        .collect();
    let receivers = receivers(diag, raw.receivers);
    let route = route_tree(diag, raw.route, &receiver_names, gaps);
    Config {
        file: file.to_path_buf(),
        data_dir,
        plugin_dir,
        listen,
        external_url,
        sandbox,
        targets,
        rules,
        receivers,
        route,
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

fn rules(
    diag: &mut Diagnostics<'_>,
    raw: Vec<Spanned<RawRule>>,
    evaluation_interval: Duration,
    sandbox: &SandboxConfig,
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
        let check_at = diag.at(&raw.check.span());
        let check = non_empty(diag, raw.check, "check");

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
            every: every_value,
            window,
            check,
            check_at,
            params,
            params_at,
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
        out.push(ReceiverConfig {
            name,
            notifier,
            notifier_at,
            params,
            params_at,
            allow_hosts,
            send_resolved: raw.send_resolved.unwrap_or(true),
            timeout,
            retry_for,
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
        return RouteConfig {
            receiver: receivers
                .first()
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
            matchers: Vec::new(),
            continue_: false,
            routes: Vec::new(),
        };
    };
    let span = raw.span();
    let root = raw.into_inner();
    if root.receiver.is_none() {
        diag.error(&span, "missing field `receiver` in [route]");
    }
    route(diag, root, "", receivers, gaps)
}

fn route(
    diag: &mut Diagnostics<'_>,
    raw: RawRoute,
    parent_receiver: &str,
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
        None => parent_receiver.to_string(),
    };
    let matchers = raw
        .matchers
        .iter()
        .filter_map(|m| {
            Matcher::parse(m.get_ref())
                .map_err(|why| diag.error(&m.span(), why))
                .ok()
        })
        .collect();
    let routes = raw
        .routes
        .into_iter()
        .map(|child| route(diag, child.into_inner(), &receiver, receivers, gaps))
        .collect();
    RouteConfig {
        receiver,
        matchers,
        continue_: raw.continue_,
        routes,
    }
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
