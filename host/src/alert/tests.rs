//! State machine tests. Times are in milliseconds; the scenarios follow
//! Prometheus' `rules/alerting_test.go` and promtool rule tests.

use std::time::Duration;

use super::*;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;

fn series(instance: &str) -> Labels {
    Labels::from_pairs([
        ("__name__", "errors"),
        ("instance", instance),
        ("job", "triton"),
    ])
}

fn rule(for_s: u64, keep_s: u64) -> AlertRule {
    let mut r = AlertRule::new("HighErrors");
    r.for_ = Duration::from_secs(for_s);
    r.keep_firing_for = Duration::from_secs(keep_s);
    r.labels.insert("severity".into(), tpl("critical"));
    r.annotations.insert(
        "summary".into(),
        tpl("{{ $labels.instance }} at {{ $value | humanizePercentage }}"),
    );
    r
}

fn tpl(s: &str) -> Template {
    match Template::parse(s) {
        Ok(t) => t,
        Err(e) => panic!("{s:?}: {e}"),
    }
}

fn input(labels: &Labels, value: f64, status: CheckStatus) -> AlertInput<'_> {
    AlertInput::new(labels, value, status, f64::NAN)
}

fn eval(
    r: &mut AlertingRule,
    now: i64,
    inputs: &[(&Labels, CheckStatus)],
) -> Vec<(AlertState, AlertState)> {
    let ins = inputs.iter().map(|(l, s)| input(l, 0.5, *s));
    match r.eval(now, ins) {
        Ok(ts) => ts.iter().map(|t| (t.from, t.to)).collect(),
        Err(e) => panic!("eval at {now}: {e}"),
    }
}

fn only(r: &AlertingRule) -> &Alert {
    assert_eq!(r.alerts().len(), 1, "expected exactly one alert");
    match r.alerts().next() {
        Some(a) => a,
        None => unreachable!(),
    }
}

use AlertState::{Firing as F, Inactive as I, Pending as P};
use CheckStatus::{Firing, NoData, Ok as Fine};

#[test]
fn for_zero_fires_on_the_first_evaluation() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    assert_eq!(eval(&mut r, 10 * SEC, &[(&a, Firing)]), vec![(I, F)]);
    let alert = only(&r);
    assert_eq!(alert.state, F);
    assert_eq!(
        (alert.active_at, alert.fired_at),
        (10 * SEC, Some(10 * SEC))
    );
    assert_eq!(
        alert.labels,
        Labels::from_pairs([
            ("alertname", "HighErrors"),
            ("instance", "a"),
            ("job", "triton"),
            ("severity", "critical")
        ])
    );
    assert_eq!(
        alert.annotations.get("summary").map(String::as_str),
        Some("a at 50%")
    );
    assert_eq!(alert.fingerprint, alert.labels.fingerprint());
}

#[test]
fn pending_fires_exactly_when_for_has_elapsed() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(60, 0));
    assert_eq!(eval(&mut r, 0, &[(&a, Firing)]), vec![(I, P)]);
    assert_eq!(eval(&mut r, 59_999, &[(&a, Firing)]), vec![]);
    assert_eq!(only(&r).state, P);
    assert_eq!(eval(&mut r, 60 * SEC, &[(&a, Firing)]), vec![(P, F)]);
    assert_eq!(only(&r).fired_at, Some(60 * SEC));
    assert_eq!(only(&r).active_at, 0);
    assert_eq!(eval(&mut r, 75 * SEC, &[(&a, Firing)]), vec![]);
}

#[test]
fn pending_is_dropped_by_ok_or_absence() {
    let a = series("a");
    let b = series("b");
    let mut r = AlertingRule::new(rule(60, 0));
    eval(&mut r, 0, &[(&a, Firing), (&b, Firing)]);
    let t = eval(&mut r, 15 * SEC, &[(&a, Fine)]);
    assert_eq!(t, vec![(P, I), (P, I)]);
    assert_eq!(r.alerts().len(), 0);
    // Coming back starts the `for` timer afresh.
    eval(&mut r, 30 * SEC, &[(&a, Firing)]);
    assert_eq!(only(&r).active_at, 30 * SEC);
    assert_eq!(eval(&mut r, 89 * SEC, &[(&a, Firing)]), vec![]);
    assert_eq!(eval(&mut r, 90 * SEC, &[(&a, Firing)]), vec![(P, F)]);
}

#[test]
fn firing_resolves_without_keep_firing_for() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    let ts = r.eval(15 * SEC, [input(&a, 0.0, Fine)]).unwrap_or_default();
    assert_eq!(ts.len(), 1);
    assert!(ts[0].is_resolved() && !ts[0].is_fired());
    assert_eq!(
        (ts[0].at, ts[0].fingerprint),
        (15 * SEC, only(&r).fingerprint)
    );
    let alert = only(&r);
    assert_eq!((alert.state, alert.resolved_at), (I, Some(15 * SEC)));
    // The value is the last firing one, as in Prometheus.
    assert_eq!(alert.value, 0.5);
}

#[test]
fn keep_firing_for_holds_then_resolves() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 60));
    eval(&mut r, 0, &[(&a, Firing)]);
    assert_eq!(eval(&mut r, 15 * SEC, &[(&a, Fine)]), vec![]);
    assert_eq!(only(&r).keep_firing_since, Some(15 * SEC));
    // Firing again cancels the hold.
    assert_eq!(eval(&mut r, 30 * SEC, &[(&a, Firing)]), vec![]);
    assert_eq!(only(&r).keep_firing_since, None);
    // Absence counts as "no longer holding", like Ok.
    assert_eq!(eval(&mut r, 45 * SEC, &[]), vec![]);
    assert_eq!(eval(&mut r, 104_999, &[(&a, Fine)]), vec![]);
    assert_eq!(only(&r).state, F);
    assert_eq!(eval(&mut r, 105 * SEC, &[(&a, Fine)]), vec![(F, I)]);
    let alert = only(&r);
    assert_eq!(
        (alert.resolved_at, alert.keep_firing_since),
        (Some(105 * SEC), None)
    );
    assert_eq!(alert.fired_at, Some(0));
}

#[test]
fn resolved_alerts_are_retained_fifteen_minutes() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    eval(&mut r, 15 * SEC, &[]);
    assert_eq!(eval(&mut r, 15 * SEC + 15 * MIN, &[]), vec![]);
    assert_eq!(only(&r).state, I);
    // Dropping is housekeeping, not a transition.
    assert_eq!(eval(&mut r, 15 * SEC + 15 * MIN + 1, &[]), vec![]);
    assert_eq!(r.alerts().len(), 0);
}

#[test]
fn a_resolved_alert_that_fires_again_starts_over() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(30, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    eval(&mut r, 30 * SEC, &[(&a, Firing)]);
    eval(&mut r, 45 * SEC, &[(&a, Fine)]);
    assert_eq!(only(&r).state, I);
    assert_eq!(eval(&mut r, 60 * SEC, &[(&a, Firing)]), vec![(I, P)]);
    let alert = only(&r);
    assert_eq!(
        (alert.active_at, alert.fired_at, alert.resolved_at),
        (60 * SEC, None, None)
    );
}

#[test]
fn no_data_holds_pending_and_firing_alerts() {
    let a = series("a");
    let b = series("b");
    let mut r = AlertingRule::new(rule(60, 30));
    eval(&mut r, 0, &[(&a, Firing)]);
    // Pending through a long NoData stretch: neither fires nor drops.
    for t in 1..=8 {
        assert_eq!(
            eval(&mut r, t * 15 * SEC, &[(&a, NoData), (&b, NoData)]),
            vec![]
        );
    }
    assert_eq!(r.alerts().len(), 1, "NoData creates no alert");
    assert_eq!((only(&r).state, only(&r).active_at), (P, 0));
    // The next firing verdict fires at once: `for` elapsed meanwhile.
    assert_eq!(eval(&mut r, 135 * SEC, &[(&a, Firing)]), vec![(P, F)]);
    // A firing alert is held too, including its keep_firing_for clock.
    assert_eq!(eval(&mut r, 150 * SEC, &[(&a, Fine)]), vec![]);
    assert_eq!(only(&r).keep_firing_since, Some(150 * SEC));
    assert_eq!(eval(&mut r, 200 * SEC, &[(&a, NoData)]), vec![]);
    assert_eq!(
        (only(&r).state, only(&r).keep_firing_since),
        (F, Some(150 * SEC))
    );
    // The hold ran out during NoData; the next Ok resolves.
    assert_eq!(eval(&mut r, 215 * SEC, &[(&a, Fine)]), vec![(F, I)]);
    // NoData does not keep a resolved alert beyond its retention.
    eval(&mut r, 215 * SEC + 15 * MIN + 1, &[(&a, NoData)]);
    assert_eq!(r.alerts().len(), 0);
}

#[test]
fn no_data_keeps_value_and_annotations() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    let _ = r.eval(0, [input(&a, 0.25, Firing)]);
    let _ = r.eval(15 * SEC, [input(&a, 0.99, NoData)]);
    assert_eq!(only(&r).value, 0.25);
    assert_eq!(
        only(&r).annotations.get("summary").map(String::as_str),
        Some("a at 25%")
    );
    let _ = r.eval(30 * SEC, [input(&a, 0.75, Firing)]);
    assert_eq!(only(&r).value, 0.75);
    assert_eq!(
        only(&r).annotations.get("summary").map(String::as_str),
        Some("a at 75%")
    );
}

#[test]
fn duplicate_label_sets_fail_the_evaluation_without_changes() {
    let a = series("a");
    let other_name =
        Labels::from_pairs([("__name__", "other"), ("instance", "a"), ("job", "triton")]);
    let b = series("b");
    let mut r = AlertingRule::new(rule(60, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    let before = r.state().clone();
    let res = r.eval(
        15 * SEC,
        [
            input(&b, 1.0, Firing),
            input(&a, 1.0, Firing),
            input(&other_name, 1.0, Firing),
        ],
    );
    match res {
        Err(AlertError::DuplicateLabelset { labels }) => {
            assert_eq!(labels.get("instance"), Some("a"));
            assert!(
                AlertError::DuplicateLabelset { labels }
                    .to_string()
                    .starts_with(
                        "vector contains metrics with the same labelset after applying alert labels"
                    )
            );
        }
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    assert_eq!(r.state(), &before);
    // NoData and Firing for one label set also conflict.
    assert!(
        r.eval(
            15 * SEC,
            [input(&a, 1.0, NoData), input(&other_name, 1.0, Firing)]
        )
        .is_err()
    );
    // An Ok series touches no alert, so it cannot conflict (Prometheus
    // would not even see it: it is not in the alert's output vector).
    assert_eq!(
        r.eval(
            15 * SEC,
            [input(&a, 1.0, Firing), input(&other_name, 0.0, Fine)]
        )
        .map(|t| t.len()),
        Ok(0)
    );
}

#[test]
fn rule_labels_are_templates_that_override_series_labels() {
    let mut rl = rule(0, 0);
    rl.labels
        .insert("job".into(), tpl("{{ $labels.job | toUpper }}"));
    rl.labels.insert("instance".into(), tpl(""));
    rl.labels.insert("alertname".into(), tpl("ignored"));
    rl.annotations.insert(
        "metric".into(),
        tpl("{{ $labels.__name__ }} {{ $externalLabels.dc }} {{ $externalURL }}"),
    );
    let mut r = AlertingRule::new(rl);
    r.set_external(Labels::from_pairs([("dc", "eu")]), "http://vigil:9090");
    let a = series("a");
    let _ = r.eval(0, [input(&a, 1.0, Firing)]);
    let alert = only(&r);
    assert_eq!(
        alert.labels,
        Labels::from_pairs([
            ("alertname", "HighErrors"),
            ("job", "TRITON"),
            ("severity", "critical")
        ])
    );
    assert_eq!(
        alert.annotations.get("metric").map(String::as_str),
        Some("errors eu http://vigil:9090")
    );
}

/// Runs a scripted sequence; `restart_at` round-trips the state through
/// JSON (as the host saves it to SQLite) before that step.
fn run_script(restart_at: Option<usize>) -> (Vec<Vec<Transition>>, RuleState) {
    let a = series("a");
    let b = series("b");
    let script: Vec<(i64, Vec<(&Labels, CheckStatus)>)> = vec![
        (0, vec![(&a, Firing), (&b, Firing)]),
        (15 * SEC, vec![(&a, Firing), (&b, Fine)]),
        (30 * SEC, vec![(&a, Firing), (&b, Firing)]),
        (45 * SEC, vec![(&a, NoData), (&b, Firing)]),
        (60 * SEC, vec![(&a, Firing), (&b, Firing)]),
        (75 * SEC, vec![(&a, Fine), (&b, Firing)]),
        (90 * SEC, vec![(&a, Fine), (&b, Firing)]),
        (140 * SEC, vec![(&a, Fine), (&b, Fine)]),
        (200 * SEC, vec![(&b, Fine)]),
    ];
    let mut r = AlertingRule::new(rule(60, 60));
    let mut out = Vec::new();
    for (i, (now, ins)) in script.iter().enumerate() {
        if restart_at == Some(i) {
            let saved = serde_json::to_string(r.state()).unwrap_or_default();
            let restored: RuleState = match serde_json::from_str(&saved) {
                Ok(s) => s,
                Err(e) => panic!("restore failed: {e}\n{saved}"),
            };
            r = AlertingRule::with_state(rule(60, 60), restored);
        }
        let ins = ins.iter().map(|(l, s)| input(l, 0.5, *s));
        out.push(r.eval(*now, ins).unwrap_or_default());
    }
    (out, r.into_state())
}

#[test]
fn a_restart_changes_nothing() {
    let (straight, final_state) = run_script(None);
    assert!(straight.iter().flatten().any(|t| t.is_fired()));
    assert!(straight.iter().flatten().any(|t| t.is_resolved()));
    for restart in 1..9 {
        let (resumed, state) = run_script(Some(restart));
        assert_eq!(resumed, straight, "restart before step {restart}");
        assert_eq!(state, final_state, "restart before step {restart}");
    }
}

#[test]
fn restore_keeps_the_pending_timer_and_firing_alerts() {
    let a = series("a");
    let b = series("b");
    let mut r = AlertingRule::new(rule(60, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    eval(&mut r, 30 * SEC, &[(&a, Firing), (&b, Firing)]);
    let saved = serde_json::to_vec(r.state()).unwrap_or_default();
    let restored: RuleState = serde_json::from_slice(&saved).unwrap_or_default();
    let mut r = AlertingRule::with_state(rule(60, 0), restored);
    assert_eq!(r.alerts().len(), 2);
    // `a` became pending at 0, so it fires at 60 s, not 60 s after restart.
    let t = eval(&mut r, 60 * SEC, &[(&a, Firing), (&b, Firing)]);
    assert_eq!(t, vec![(P, F)]);
    let fired: Vec<_> = r
        .alerts()
        .filter(|x| x.state == F)
        .map(|x| x.labels.get("instance"))
        .collect();
    assert_eq!(fired, vec![Some("a")]);
}

#[test]
fn non_finite_values_survive_persistence() {
    let a = series("a");
    let b = series("b");
    let c = series("c");
    let mut r = AlertingRule::new(rule(0, 0));
    let _ = r.eval(
        0,
        [
            input(&a, f64::NAN, Firing),
            input(&b, f64::INFINITY, Firing),
            input(&c, f64::NEG_INFINITY, Firing),
        ],
    );
    let json = serde_json::to_string(r.state()).unwrap_or_default();
    assert!(
        json.contains("\"NaN\"") && json.contains("\"+Inf\""),
        "{json}"
    );
    let back: RuleState = match serde_json::from_str(&json) {
        Ok(s) => s,
        Err(e) => panic!("{e}: {json}"),
    };
    let values: Vec<f64> = back.alerts().map(|x| x.value).collect();
    assert_eq!(values.len(), 3);
    assert_eq!(values.iter().filter(|v| v.is_nan()).count(), 1);
    assert!(values.contains(&f64::INFINITY) && values.contains(&f64::NEG_INFINITY));
}

#[test]
fn reload_keeps_alerts_and_applies_the_new_for() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(300, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    eval(&mut r, 60 * SEC, &[(&a, Firing)]);
    assert_eq!(only(&r).state, P);
    r.set_rule(rule(90, 0));
    assert_eq!(eval(&mut r, 75 * SEC, &[(&a, Firing)]), vec![]);
    assert_eq!(eval(&mut r, 90 * SEC, &[(&a, Firing)]), vec![(P, F)]);
    assert_eq!(only(&r).active_at, 0);
    assert_eq!(r.max_state(), F);
}

#[test]
fn needs_send_follows_prometheus() {
    let a = series("a");
    let resend = Duration::from_secs(60);
    let mut r = AlertingRule::new(rule(30, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    assert!(
        !only(&r).needs_send(0, resend),
        "pending alerts are not sent"
    );
    eval(&mut r, 30 * SEC, &[(&a, Firing)]);
    assert!(only(&r).needs_send(30 * SEC, resend));
    let fp = only(&r).fingerprint;
    assert!(r.mark_sent(fp, 30 * SEC));
    assert_eq!(only(&r).last_sent_state, Some(F));
    assert!(!only(&r).needs_send(45 * SEC, resend));
    assert!(
        !only(&r).needs_send(90 * SEC, resend),
        "resend is strictly after the delay"
    );
    assert!(only(&r).needs_send(90 * SEC + 1, resend));
    // Resolution: sent once, then not again.
    eval(&mut r, 100 * SEC, &[]);
    assert!(only(&r).needs_send(100 * SEC, resend));
    r.mark_sent(fp, 100 * SEC);
    assert!(!only(&r).needs_send(100 * SEC, resend));
    assert!(!only(&r).needs_send(500 * SEC, resend));
    assert!(!r.mark_sent(12345, 0));
}

#[test]
fn resolution_in_the_same_millisecond_as_a_firing_send_is_still_sent() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    eval(&mut r, 0, &[(&a, Firing)]);
    let fp = only(&r).fingerprint;
    r.mark_sent(fp, 15 * SEC);
    eval(&mut r, 15 * SEC, &[]);
    assert!(only(&r).needs_send(15 * SEC, Duration::from_secs(60)));
}

/// A small deterministic generator (SplitMix64), so the property test
/// needs no crate and every failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the test remembers about one series, independently of the rule.
#[derive(Clone, Copy, Default)]
struct Model {
    /// Time of the first Ok/absent evaluation since the last Firing one.
    stopped_since: Option<i64>,
}

#[test]
fn invariants_hold_on_random_histories() {
    const SERIES: usize = 4;
    let names: Vec<Labels> = (0..SERIES).map(|i| series(&format!("s{i}"))).collect();
    // How often each kind of transition occurred, to show the generator
    // reaches every path: (I,F), (I,P), (P,F), (P,I), (F,I) held, (F,I) not held.
    let mut seen = [0usize; 6];
    for seed in 0..300u64 {
        let mut rng = Rng(seed);
        let for_ms = (rng.below(4) * 15) as i64 * SEC;
        let keep_ms = (rng.below(3) * 20) as i64 * SEC;
        let mk = || {
            let mut r = rule(0, 0);
            r.for_ = Duration::from_millis(for_ms as u64);
            r.keep_firing_for = Duration::from_millis(keep_ms as u64);
            // Rendering is tested elsewhere; here it would only cost time.
            r.annotations.clear();
            r
        };
        let mut r = AlertingRule::new(mk());
        let mut twin = AlertingRule::new(mk());
        let fps: Vec<u64> = names
            .iter()
            .map(|l| {
                r.alert_labels(&TemplateContext::new(l, 0.0), &input(l, 0.0, Firing))
                    .fingerprint()
            })
            .collect();
        let mut model = [Model::default(); SERIES];
        let mut now = 0i64;
        for step in 0..120 {
            // Steps of 5-25 s, with an occasional long gap past retention.
            now += if rng.below(40) == 0 {
                16 * MIN
            } else {
                (5 + rng.below(21) as i64) * SEC
            };
            let statuses: Vec<Option<CheckStatus>> = (0..SERIES)
                .map(|_| match rng.below(10) {
                    0..=3 => Some(Firing),
                    4..=6 => Some(Fine),
                    7 => Some(NoData),
                    _ => None,
                })
                .collect();
            let inputs: Vec<AlertInput<'_>> = statuses
                .iter()
                .zip(&names)
                .filter_map(|(s, l)| s.map(|s| input(l, 1.0, s)))
                .collect();
            let before: HashMap<u64, Alert> =
                r.alerts().map(|a| (a.fingerprint, a.clone())).collect();
            let ts = match r.eval(now, inputs.iter().copied()) {
                Ok(ts) => ts,
                Err(e) => panic!("seed {seed} step {step}: {e}"),
            };
            // A restart at a random step must not change anything.
            if rng.below(7) == 0 {
                let json = serde_json::to_string(twin.state()).unwrap_or_default();
                let state: RuleState = serde_json::from_str(&json).unwrap_or_default();
                twin = AlertingRule::with_state(mk(), state);
            }
            assert_eq!(
                twin.eval(now, inputs.iter().copied()),
                Ok(ts.clone()),
                "seed {seed} step {step}"
            );

            let fp_of = |i: usize| fps[i];
            let status_of = |fp: u64| {
                (0..SERIES)
                    .find(|&i| fp_of(i) == fp)
                    .and_then(|i| statuses[i])
            };
            let index_of = |fp: u64| (0..SERIES).find(|&i| fp_of(i) == fp).unwrap_or(usize::MAX);

            for t in &ts {
                let ctx = || {
                    format!(
                        "seed {seed} step {step} at {now}: {:?} -> {:?}",
                        t.from, t.to
                    )
                };
                let status = status_of(t.fingerprint);
                let kind = match (t.from, t.to) {
                    (I, F) => 0,
                    (I, P) => 1,
                    (P, F) => 2,
                    (P, I) => 3,
                    (F, I) if keep_ms > 0 => 4,
                    _ => 5,
                };
                seen[kind] += 1;
                match (t.from, t.to) {
                    (I, F) => {
                        assert_eq!(for_ms, 0, "{}: skipped pending with for > 0", ctx());
                        assert_eq!(status, Some(Firing), "{}", ctx());
                    }
                    (I, P) | (P, F) => assert_eq!(status, Some(Firing), "{}", ctx()),
                    (P, I) => assert!(matches!(status, None | Some(Fine)), "{}", ctx()),
                    (F, I) => {
                        assert!(matches!(status, None | Some(Fine)), "{}", ctx());
                        let i = index_of(t.fingerprint);
                        let since = model[i].stopped_since.unwrap_or(now);
                        assert!(
                            now - since >= keep_ms,
                            "{}: resolved {}ms into a {keep_ms}ms hold",
                            ctx(),
                            now - since
                        );
                    }
                    other => panic!("{}: impossible transition {other:?}", ctx()),
                }
            }
            // Update the model after checking transitions against it.
            for (i, s) in statuses.iter().enumerate() {
                match s {
                    Some(Firing) => model[i].stopped_since = None,
                    Some(NoData) => {}
                    Some(Fine) | None => {
                        let active = before.get(&fp_of(i)).is_some_and(|a| a.state == F);
                        if active && model[i].stopped_since.is_none() {
                            model[i].stopped_since = Some(now);
                        }
                    }
                }
            }
            for a in r.alerts() {
                let ctx = || format!("seed {seed} step {step} at {now}: {a:?}");
                assert_eq!(a.fingerprint, a.labels.fingerprint(), "{}", ctx());
                assert_eq!(a.labels.get(ALERTNAME), Some("HighErrors"), "{}", ctx());
                assert!(a.labels.get("__name__").is_none(), "{}", ctx());
                match a.state {
                    P => {
                        assert!(a.fired_at.is_none() && a.resolved_at.is_none(), "{}", ctx());
                        if status_of(a.fingerprint) == Some(Firing) {
                            assert!(now - a.active_at < for_ms, "{}: should have fired", ctx());
                        }
                    }
                    F => {
                        let fired = a.fired_at.unwrap_or(i64::MIN);
                        assert!(fired >= a.active_at + for_ms, "{}: fired early", ctx());
                        assert!(a.resolved_at.is_none(), "{}", ctx());
                        if keep_ms == 0 {
                            assert!(a.keep_firing_since.is_none(), "{}", ctx());
                        }
                    }
                    I => {
                        let resolved = a.resolved_at.unwrap_or(i64::MIN);
                        assert!(
                            now - resolved <= RESOLVED_RETENTION_MS,
                            "{}: kept too long",
                            ctx()
                        );
                        assert!(resolved >= a.fired_at.unwrap_or(i64::MAX), "{}", ctx());
                    }
                }
            }
            assert!(r.alerts().len() <= SERIES);
        }
    }
    assert!(
        seen.iter().all(|&n| n > 20),
        "generator misses a path: {seen:?}"
    );
}

/// An input whose verdict names a severity and adds labels.
fn graded<'a>(
    labels: &'a Labels,
    severity: Option<&'a str>,
    added: &'a [(String, String)],
    status: CheckStatus,
) -> AlertInput<'a> {
    AlertInput {
        severity,
        labels_added: added,
        ..AlertInput::new(labels, 0.5, status, 0.5)
    }
}

fn states(r: &AlertingRule) -> Vec<(Option<String>, AlertState)> {
    r.alerts()
        .map(|a| (a.labels.get("severity").map(str::to_string), a.state))
        .collect()
}

#[test]
fn verdict_severity_and_labels_override_the_rules() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(0, 0));
    let added = [
        ("team".to_string(), "ml".to_string()),
        ("job".to_string(), String::new()),
    ];
    let ins = [graded(&a, Some("warning"), &added, Firing)];
    r.eval(10 * SEC, ins).unwrap();
    assert_eq!(
        only(&r).labels,
        Labels::from_pairs([
            ("alertname", "HighErrors"),
            ("instance", "a"),
            ("severity", "warning"),
            ("team", "ml"),
        ])
    );
    // No severity in the verdict: the rule's applies.
    let mut r = AlertingRule::new(rule(0, 0));
    r.eval(10 * SEC, [graded(&a, None, &[], Firing)]).unwrap();
    assert_eq!(only(&r).labels.get("severity"), Some("critical"));
    // An empty severity removes the label.
    let mut r = AlertingRule::new(rule(0, 0));
    r.eval(10 * SEC, [graded(&a, Some(""), &[], Firing)])
        .unwrap();
    assert_eq!(only(&r).labels.get("severity"), None);
}

#[test]
fn escalation_hands_over_without_a_gap() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(120, 0));
    let step = |r: &mut AlertingRule, t: i64, sev: Option<&str>, status| {
        r.eval(t, [graded(&a, sev, &[], status)]).unwrap();
        states(r)
    };
    let s = |x: &str| Some(x.to_string());
    step(&mut r, 0, Some("warning"), Firing);
    assert_eq!(
        step(&mut r, 2 * MIN, Some("warning"), Firing),
        [(s("warning"), F)]
    );
    // Escalation: critical is pending for `for`; warning keeps firing.
    let got = step(&mut r, 3 * MIN, Some("critical"), Firing);
    assert!(
        got.contains(&(s("critical"), P)) && got.contains(&(s("warning"), F)),
        "{got:?}"
    );
    let got = step(&mut r, 4 * MIN, Some("critical"), Firing);
    assert!(got.contains(&(s("warning"), F)), "{got:?}");
    // Critical fires: warning resolves at the same evaluation.
    let got = step(&mut r, 5 * MIN, Some("critical"), Firing);
    assert!(
        got.contains(&(s("critical"), F)) && got.contains(&(s("warning"), I)),
        "{got:?}"
    );
    // De-escalation: critical holds until warning has fired again.
    let got = step(&mut r, 6 * MIN, Some("warning"), Firing);
    assert!(
        got.contains(&(s("critical"), F)) && got.contains(&(s("warning"), P)),
        "{got:?}"
    );
    let got = step(&mut r, 8 * MIN, Some("warning"), Firing);
    assert!(
        got.contains(&(s("critical"), I)) && got.contains(&(s("warning"), F)),
        "{got:?}"
    );
    // All clear: everything resolves.
    let got = step(&mut r, 9 * MIN, None, Fine);
    assert!(got.iter().all(|(_, st)| *st == I), "{got:?}");
}

#[test]
fn a_brief_spike_to_critical_does_not_drop_the_warning() {
    let a = series("a");
    let mut r = AlertingRule::new(rule(120, 0));
    for (t, sev) in [
        (0, "warning"),
        (2, "warning"),
        (3, "critical"),
        (4, "warning"),
    ] {
        r.eval(t * MIN, [graded(&a, Some(sev), &[], Firing)])
            .unwrap();
    }
    assert_eq!(states(&r), [(Some("warning".to_string()), F)]);
    // A templated rule severity is plain Prometheus: no handover.
    let mut templated = rule(120, 0);
    templated.labels.insert(
        "severity".into(),
        tpl("{{ if gt $value 1.0 }}critical{{ else }}warning{{ end }}"),
    );
    let mut r = AlertingRule::new(templated);
    r.eval(0, [input(&a, 0.5, Firing)]).unwrap();
    r.eval(2 * MIN, [input(&a, 0.5, Firing)]).unwrap();
    r.eval(3 * MIN, [input(&a, 2.0, Firing)]).unwrap();
    assert_eq!(
        states(&r),
        [
            (Some("critical".to_string()), P),
            (Some("warning".to_string()), I)
        ]
    );
}

#[test]
fn the_rule_verdict_alerts_with_the_rule_labels_only() {
    let none = Labels::default();
    let mut r = AlertingRule::new(rule(0, 0));
    let v = AlertInput::new(&none, 600.0, Firing, 600.0);
    r.eval(10 * SEC, [v]).unwrap();
    let alert = only(&r);
    assert_eq!(
        alert.labels,
        Labels::from_pairs([("alertname", "HighErrors"), ("severity", "critical")])
    );
    assert_eq!(alert.value, 600.0);
}
