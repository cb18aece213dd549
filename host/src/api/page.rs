//! The status page: rules, alerts, targets and plugins at a glance.
//! Server-rendered and self-refreshing, so it needs no assets or scripts.

use std::fmt::Write as _;

use crate::engine::{ExpectedBand, Shared};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn ago(now_ms: i64, t_ms: i64) -> String {
    if t_ms <= 0 {
        return "never".into();
    }
    let s = (now_ms - t_ms).max(0) as f64 / 1000.0;
    format!("{s:.1}s ago")
}

/// A number as a person reads it: 4 significant digits, no exponent
/// for ordinary magnitudes.
fn short(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let digits = if a == 0.0 {
        0
    } else {
        (3 - a.log10().floor() as i32).clamp(0, 6) as usize
    };
    let t = format!("{v:.digits$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// The value against the range the check expected: an inline SVG with the
/// band shaded and the value marked (red outside the band), and the range
/// in words. Empty when the check gave no band.
fn band_gauge(value: f64, band: Option<ExpectedBand>) -> String {
    let Some(b) = band else {
        return String::new();
    };
    if !value.is_finite() || (b.lower.is_none() && b.upper.is_none()) {
        return String::new();
    }
    let known = [b.lower, b.upper, Some(value)];
    let finite = known.iter().flatten().copied();
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let d = hi.abs().max(1.0) * 0.1;
        lo -= d;
        hi += d;
    }
    let pad = (hi - lo) * 0.15;
    let (lo, hi) = (lo - pad, hi + pad);
    const W: f64 = 120.0;
    let x = |v: f64| ((v - lo) / (hi - lo) * W).clamp(0.0, W);
    let (bl, bu) = (b.lower.map_or(0.0, x), b.upper.map_or(W, x));
    let outside = b.lower.is_some_and(|l| value < l) || b.upper.is_some_and(|u| value > u);
    let words = match (b.lower, b.upper) {
        (Some(l), Some(u)) => format!("expected {} to {}", short(l), short(u)),
        (Some(l), None) => format!("expected at least {}", short(l)),
        (None, Some(u)) => format!("expected at most {}", short(u)),
        (None, None) => String::new(),
    };
    format!(
        "<br><svg class=band width=120 height=12 role=img aria-label='{words}'>\
         <rect x=0 y=5 width=120 height=2 fill='#ddd'/>\
         <rect x={bl:.1} y=1 width={bw:.1} height=10 fill='#a9dfbf'/>\
         <rect x={vx:.1} y=0 width=3 height=12 fill='{color}'/></svg><br><small>{words}</small>",
        bw = (bu - bl).max(1.0),
        vx = (x(value) - 1.5).clamp(0.0, W - 3.0),
        color = if outside { "#c0392b" } else { "#1e8449" },
    )
}

pub fn render(s: &Shared) -> String {
    let now = crate::collect::scrape::now_ms();
    let mut h = String::with_capacity(16 * 1024);
    h.push_str(concat!(
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=2>",
        "<title>Vigil</title><style>",
        "body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{margin:0 0 .2em}",
        "table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}",
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}",
        "th{background:#f4f4f4}.firing{color:#fff;background:#c0392b}.pending{background:#f5c542}",
        ".ok{color:#1e8449}.err{color:#c0392b}.badge{padding:1px 6px;border-radius:3px}",
        "code{font-size:12px}</style></head><body><h1>Vigil</h1>"
    ));
    let rules = s.rule_statuses();
    let (firing, pending) = crate::engine::alert_counts(&rules);
    let _ = write!(
        h,
        "<p>{} rules, <b>{firing} firing</b>, {pending} pending alerts</p>",
        rules.len()
    );

    let notifier = s.notifier();
    let acks = notifier.as_ref().map(|n| n.acks()).unwrap_or_default();
    h.push_str("<h2>Alerts</h2><table><tr><th>state</th><th>alert</th><th>labels</th><th>value</th><th>since</th><th>summary</th><th>notifications</th></tr>");
    for r in &rules {
        for a in r.alerts.iter() {
            // What holds this alert's notifications back, if anything.
            let pairs = crate::store::labels::Labels::from_pairs(
                a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let mut muted = Vec::new();
            if let Some(n) = &notifier {
                let silences = n.silenced_by(&pairs);
                if !silences.is_empty() {
                    muted.push(format!("silenced ({})", silences.join(", ")));
                }
            }
            if let Some(ack) = u64::from_str_radix(&a.fingerprint, 16)
                .ok()
                .and_then(|fp| acks.get(&fp))
            {
                muted.push(format!("acknowledged by {}", ack.by));
            }
            let labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let _ = write!(
                h,
                "<tr><td><span class='badge {st}'>{st}</span></td><td>{name}</td><td><code>{labels}</code></td><td>{value}{gauge}</td><td>{since}</td><td>{summary}</td><td>{muted}</td></tr>",
                muted = esc(&muted.join("; ")),
                st = esc(a.state),
                name = esc(&r.name),
                labels = esc(&labels.join(", ")),
                value = short(a.value),
                gauge = band_gauge(a.value, a.band),
                since = ago(now, a.active_at_ms),
                summary = esc(a
                    .annotations
                    .get("summary")
                    .map(String::as_str)
                    .unwrap_or("")),
            );
        }
    }
    h.push_str("</table><h2>Rules</h2><table><tr><th>rule</th><th>query</th><th>check</th><th>series</th><th>last evaluation</th><th>duration</th><th>health</th></tr>");
    for r in &rules {
        let health = match &r.last_error {
            Some(e) => format!("<span class=err>error: {}</span>", esc(e)),
            None if r.evaluations == 0 => "not evaluated yet".to_string(),
            None => "<span class=ok>ok</span>".to_string(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}ms</td><td>{health}</td></tr>",
            esc(&r.name),
            esc(&r.query),
            match &r.check {
                Some(c) => esc(c),
                None => "<em>none</em> (promql)".to_string(),
            },
            r.series,
            ago(now, r.last_evaluation_ms),
            r.last_duration_seconds * 1000.0,
        );
    }
    h.push_str("</table><h2>Targets</h2><table><tr><th>job</th><th>endpoint</th><th>health</th><th>last scrape</th><th>samples</th><th>error</th></tr>");
    for t in s.target_statuses() {
        let class = if t.health == "up" { "ok" } else { "err" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class={class}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.job),
            esc(&t.url),
            t.health,
            ago(now, t.last_scrape_ms),
            t.last_samples,
            esc(t.last_error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table><h2>Plugins</h2><table><tr><th>file</th><th>name</th><th>kind</th><th>version</th><th>description</th></tr>");
    for p in s.plugin_statuses() {
        match &p.error {
            None => {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.file),
                    esc(p.name.as_deref().unwrap_or("")),
                    esc(p.kind.as_deref().unwrap_or("")),
                    esc(p.version.as_deref().unwrap_or("")),
                    esc(p.description.as_deref().unwrap_or("")),
                );
            }
            Some(e) => {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td colspan=4 class=err>{}</td></tr>",
                    esc(&p.file),
                    esc(e)
                );
            }
        }
    }
    h.push_str("</table></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_short() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1234.5678), "1235");
        assert_eq!(short(0.021234), "0.02123");
        assert_eq!(short(150000.0), "150000");
        assert_eq!(short(2.5e-7), "2.500e-7");
    }

    #[test]
    fn the_gauge_marks_the_value_against_the_band() {
        assert_eq!(band_gauge(1.0, None), "");
        let band = |l: Option<f64>, u: Option<f64>| Some(ExpectedBand { lower: l, upper: u });
        let out = band_gauge(9.0, band(Some(2.0), Some(4.0)));
        assert!(out.contains("expected 2 to 4"), "{out}");
        assert!(out.contains("#c0392b"), "outside is red: {out}");
        let inside = band_gauge(3.0, band(Some(2.0), Some(4.0)));
        assert!(inside.contains("#1e8449"), "{inside}");
        let above_only = band_gauge(0.07, band(None, Some(0.05)));
        assert!(above_only.contains("expected at most 0.05"), "{above_only}");
        // The band's left edge sits at the start when unbounded below.
        assert!(above_only.contains("<rect x=0.0 y=1"), "{above_only}");
    }
}
