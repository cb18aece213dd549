//! The `absent` check: fires when data stops coming.
//!
//! It judges two things a threshold on the data itself never can:
//! - **a series that vanished**: the query returned it at an earlier
//!   evaluation and no longer does (a target went away, a model stopped
//!   reporting). It fires once the series has had no point for
//!   `stale_after`, with the series' labels; the score is how long, in
//!   seconds. The host reports a vanished series until its last point is a
//!   whole rule `window` old and then forgets it (its alert resolves), so
//!   keep `stale_after` well under the rule's `window`, which is then how
//!   long such an alert can last.
//! - **a rule whose query matches nothing at all** (a dead rule: a typo in
//!   a selector, a metric renamed by an exporter upgrade). The rule's own
//!   verdict fires once the query has matched nothing for `dead_after`,
//!   with the rule's labels only; the score is how long, in seconds. Since
//!   when it matches nothing is kept in the rule's host-owned state, so a
//!   restart or a plugin reload does not reset the clock.
//!
//! Series the query returns are ok (score 0). "No point" is measured on
//! the rule's own evaluations: an instant selector keeps returning a series
//! for Prometheus' 5-minute lookback after its last sample unless the
//! scrape marked it stale (a target that went down, a series that left its
//! target), so for sample age use a query like
//! `time() - timestamp(metric)` with the `threshold` check.
//!
//! Both reports are independent: when every series of a query vanishes,
//! each fires after `stale_after` and the rule after `dead_after`. The
//! rule's verdict is left out while a vanished series without labels (the
//! result of an aggregation such as `sum(...)`) reports the same thing.
//! Windows live in memory: a host restart forgets vanished series (their
//! alerts resolve), while the rule's clock carries on.

use vigil_plugin_sdk::duration::{Duration, human_secs};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `absent` check.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Absent {
    /// A vanished series fires once it has had no point for this long
    /// (default "5m"). Keep it under the rule's `window`.
    #[serde(default = "five_minutes")]
    pub stale_after: Duration,
    /// The rule fires once its query has matched nothing for this long
    /// (default: `stale_after`).
    pub dead_after: Option<Duration>,
    /// Judge series that vanished (default true).
    #[serde(default = "yes")]
    pub vanished: bool,
    /// Judge the rule when its query matches nothing (default true).
    #[serde(default = "yes")]
    pub dead_rule: bool,
}

fn five_minutes() -> Duration {
    Duration::from_ms(5 * 60_000)
}

fn yes() -> bool {
    true
}

fn validate(p: &Absent) -> Result<(), String> {
    let mut errors = Vec::new();
    if !p.vanished && !p.dead_rule {
        errors.push("`vanished` and `dead_rule` are both false: nothing to judge".to_string());
    }
    if p.stale_after.ms <= 0 {
        errors.push("`stale_after` must be positive".to_string());
    }
    if p.dead_after.is_some_and(|d| d.ms <= 0) {
        errors.push("`dead_after` must be positive".to_string());
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// What the check remembers about the rule's query.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryState {
    /// Since when the query has matched nothing (None while it matches).
    pub empty_since: Option<i64>,
    /// Whether the query ever matched anything while this state was kept.
    pub ever_matched: bool,
}

/// Fires for a series that vanished and has had no point for `stale_after`,
/// and for the rule when its query has matched nothing for `dead_after`.
/// Score: seconds without data.
#[check(name = "absent", validate = validate)]
pub fn absent(
    p: &Absent,
    ctx: &Context,
    batch: &Batch,
    _: &mut [()],
    q: &mut QueryState,
) -> Verdicts {
    let now = ctx.now;
    let series = batch
        .iter()
        .map(|s| match (s.is_vanished(), s.last()) {
            (false, _) => Verdict::ok(0.0),
            (true, None) => Verdict::no_data(),
            (true, Some((last, _))) => {
                let age_ms = now.saturating_sub(last).max(0);
                let age = human_secs(age_ms as f64 / 1000.0);
                let verdict = match p.vanished && age_ms >= p.stale_after.ms {
                    true => Verdict::firing(age_ms as f64 / 1000.0),
                    false => Verdict::ok(age_ms as f64 / 1000.0),
                };
                verdict.with_message(format!(
                    "no data for {age} (last point at {})",
                    rfc3339_millis(last)
                ))
            }
        })
        .collect();

    if !batch.matched_nothing() {
        *q = QueryState {
            empty_since: None,
            ever_matched: true,
        };
        return Verdicts { series, rule: None };
    }
    let since = *q.empty_since.get_or_insert(now);
    // A vanished series with no labels has the rule's alert labels already.
    let covered = batch.iter().any(|s| s.labels().is_empty());
    if !p.dead_rule || covered {
        return Verdicts { series, rule: None };
    }
    let dead_after = p.dead_after.unwrap_or(p.stale_after);
    let age_ms = now.saturating_sub(since).max(0);
    let age = human_secs(age_ms as f64 / 1000.0);
    let message = match q.ever_matched {
        true => format!("the query has matched nothing for {age}"),
        false => format!("the query has not matched anything in {age} of evaluations"),
    };
    let rule = match age_ms >= dead_after.ms {
        true => Verdict::firing(age_ms as f64 / 1000.0),
        false => Verdict::ok(age_ms as f64 / 1000.0),
    };
    Verdicts {
        series,
        rule: Some(rule.with_message(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    const MIN: i64 = 60_000;

    fn run(params: &str, now: i64, batch: &Batch, state: &State) -> Output {
        let p = configure::<Plugin>(params).unwrap();
        evaluate::<Plugin>(&p, now, batch, state).unwrap()
    }

    #[test]
    fn a_vanished_series_fires_after_stale_after() {
        let mut b = Batch::default();
        b.push_labeled(1, &[("instance", "a")], &[0, MIN], &[1.0, 1.0]);
        b.push_vanished(2, &[("instance", "b")], &[0, MIN], &[1.0, 1.0]);
        let early = run("{}", 4 * MIN, &b, &State::default());
        assert_eq!(early.verdicts[0], Verdict::ok(0.0));
        assert_eq!(early.verdicts[1].status, Status::Ok);
        assert_eq!(early.verdicts[1].score, 180.0);
        let late = run("{}", 6 * MIN, &b, &State::default());
        let v = &late.verdicts[1];
        assert_eq!((v.status, v.score), (Status::Firing, 300.0));
        assert_eq!(
            v.message.as_deref(),
            Some("no data for 5m (last point at 1970-01-01T00:01:00.000Z)")
        );
        // Something still matches: no rule verdict.
        assert_eq!(late.rule_verdict, None);
        // Vanished series can be left alone.
        let off = run(r#"{"vanished": false}"#, 6 * MIN, &b, &State::default());
        assert_eq!(off.verdicts[1].status, Status::Ok);
        let custom = run(r#"{"stale_after": "10m"}"#, 6 * MIN, &b, &State::default());
        assert_eq!(custom.verdicts[1].status, Status::Ok);
    }

    #[test]
    fn a_dead_rule_fires_after_dead_after_and_the_clock_survives_in_state() {
        let params = r#"{"dead_after": "10m"}"#;
        let empty = Batch::default();
        let mut state = State::default();
        let mut seen = Vec::new();
        for t in [0, 5, 9, 10, 11] {
            let out = run(params, t * MIN, &empty, &state);
            let v = out.rule_verdict.unwrap();
            seen.push((v.status, v.score));
            // Through bytes, as across a restart.
            state = State {
                offsets: out.state.offsets.clone(),
                data: out.state.data.clone(),
            };
        }
        use Status::{Firing, Ok};
        assert_eq!(
            seen,
            [
                (Ok, 0.0),
                (Ok, 300.0),
                (Ok, 540.0),
                (Firing, 600.0),
                (Firing, 660.0)
            ]
        );
        let out = run(params, 11 * MIN, &empty, &state);
        assert_eq!(
            out.rule_verdict.unwrap().message.as_deref(),
            Some("the query has not matched anything in 11m of evaluations")
        );
        // It matches again: the clock stops; then it empties again.
        let mut b = Batch::default();
        b.push_series(1, &[12 * MIN], &[1.0]);
        // The host keeps the rule's slot last whatever the series are.
        let rule = |s: &State, n: usize| State::with_rule(0, s.get(n).unwrap());
        let back = run(
            params,
            12 * MIN,
            &b,
            &State::with_rule(1, state.get(0).unwrap()),
        );
        assert_eq!(back.rule_verdict, None);
        let again = run(params, 13 * MIN, &empty, &rule(&back.state, 1));
        let v = again.rule_verdict.unwrap();
        assert_eq!((v.status, v.score), (Ok, 0.0));
        let later = run(params, 23 * MIN, &empty, &again.state);
        let v = later.rule_verdict.unwrap();
        assert_eq!(v.status, Firing);
        assert_eq!(
            v.message.as_deref(),
            Some("the query has matched nothing for 10m")
        );
    }

    #[test]
    fn the_rule_verdict_defers_to_a_vanished_series_without_labels() {
        let mut b = Batch::default();
        b.push_vanished(1, &[], &[0], &[3.0]);
        let out = run("{}", 20 * MIN, &b, &State::default());
        assert_eq!(out.verdicts[0].status, Status::Firing);
        assert_eq!(out.rule_verdict, None);
        let mut b = Batch::default();
        b.push_vanished(1, &[("model", "m")], &[0], &[3.0]);
        let p = configure::<Plugin>(r#"{"dead_after": "1m"}"#).unwrap();
        let first = evaluate::<Plugin>(&p, 20 * MIN, &b, &State::default()).unwrap();
        let out = evaluate::<Plugin>(&p, 22 * MIN, &b, &first.state).unwrap();
        assert_eq!(out.rule_verdict.map(|v| v.status), Some(Status::Firing));
        let off = run(
            r#"{"dead_rule": false}"#,
            20 * MIN,
            &Batch::default(),
            &State::default(),
        );
        assert_eq!(off.rule_verdict, None);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"vanished": false, "dead_rule": false}"#),
            "invalid params: `vanished` and `dead_rule` are both false: nothing to judge"
        );
        assert_eq!(
            err(r#"{"stale_after": "0", "dead_after": "0"}"#),
            "invalid params: `stale_after` must be positive; `dead_after` must be positive"
        );
        assert!(err(r#"{"stale_after": "5"}"#).contains("missing unit"));
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "absent");
        assert!(
            info.params
                .iter()
                .all(|d| !d.required && !d.description.is_empty())
        );
    }
}
