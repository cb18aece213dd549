//! Silences with Alertmanager 0.25's semantics.
//!
//! Pure: every method takes `now` (Unix milliseconds) and does no I/O, so
//! silences are tested without clocks; the dispatcher asks
//! [`Silences::silenced_by`], the HTTP API and SQLite persistence speak
//! [`ApiSilence`], Alertmanager API v2's JSON shape, so `amtool`-style
//! clients work.
//!
//! The semantics are `silence/silence.go` and `api/v2/api.go`:
//! - a silence is pending before `startsAt`, active until `endsAt`, then
//!   expired; while active it mutes every alert all its matchers match (a
//!   missing label matches as the empty string);
//! - a silence needs a matcher that does not match the empty string, so it
//!   cannot silence every alert by accident, and must end after it starts
//!   and after `now`;
//! - an update that would rewrite history (other matchers, or another start
//!   for a silence that already started) expires the old silence and creates
//!   a new one with a new id; other updates change the silence in place;
//! - expired silences are kept for a retention (120 h by default) so they
//!   can be looked at and recreated, then garbage-collected.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{MatchOp, Matcher};
use crate::store::labels::Labels;

/// How long Alertmanager keeps an expired silence (`--data.retention`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(120 * 3600);

/// Where a silence is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// It has not started yet.
    Pending,
    /// It mutes the alerts it matches.
    Active,
    /// It ended (or was expired); kept for the retention only.
    Expired,
}

/// Why a silence operation was refused. The HTTP API maps `NotFound` to 404
/// and the others to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence {0} not found")]
    NotFound(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    /// Every problem found, joined by `; `.
    #[error("{0}")]
    Invalid(String),
}

/// What a client asks for: a silence without an id or update time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceSpec {
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// A random UUID (version 4 layout), as Alertmanager's.
    pub id: String,
    /// All must match an alert's labels for the silence to mute it.
    pub matchers: Vec<Matcher>,
    /// Active from this instant on (inclusive).
    pub starts_at: i64,
    /// Expired from this instant on: the end is exclusive, so expiring a
    /// silence at `now` stops it muting at `now`.
    pub ends_at: i64,
    /// When it was last created, changed or expired.
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// Alertmanager's `getState`, with an exclusive end (see [`Silence::ends_at`]).
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now >= self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether every matcher matches `labels`, whatever the state.
    pub fn matches(&self, labels: &Labels) -> bool {
        // Literal matchers first: they are cheap and usually decide.
        let literal = |m: &&Matcher| matches!(m.op, MatchOp::Equal | MatchOp::NotEqual);
        let ok = |m: &Matcher| m.matches(labels.get(&m.name));
        self.matchers.iter().filter(literal).all(ok)
            && self.matchers.iter().filter(|m| !literal(m)).all(ok)
    }

    /// The silence in Alertmanager API v2's JSON shape, with its state at `now`.
    pub fn to_api(&self, now: i64) -> ApiSilence {
        ApiSilence {
            id: Some(self.id.clone()),
            matchers: self.matchers.iter().map(ApiMatcher::from).collect(),
            starts_at: format_rfc3339(self.starts_at),
            ends_at: format_rfc3339(self.ends_at),
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
            updated_at: Some(format_rfc3339(self.updated_at)),
            status: Some(ApiStatus {
                state: self.state(now),
            }),
        }
    }

    /// Reads back a silence that [`Silence::to_api`] wrote (persistence):
    /// it must carry its `id` and `updatedAt`. The stored state is ignored;
    /// it follows from the times.
    pub fn from_api(api: &ApiSilence) -> Result<Silence, SilenceError> {
        let spec = api.spec()?;
        let id = api
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SilenceError::Invalid("a stored silence needs an id".into()))?;
        let updated_at = api
            .updated_at
            .as_deref()
            .ok_or_else(|| SilenceError::Invalid("a stored silence needs updatedAt".into()))
            .and_then(|t| {
                parse_rfc3339(t).map_err(|e| SilenceError::Invalid(format!("updatedAt: {e}")))
            })?;
        Ok(Silence {
            id,
            matchers: spec.matchers,
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            updated_at,
            created_by: spec.created_by,
            comment: spec.comment,
        })
    }
}

/// A silence as Alertmanager API v2 writes it (`gettableSilence`) and reads
/// it (`postableSilence`: no `status` or `updatedAt`, `id` only to update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSilence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub matchers: Vec<ApiMatcher>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    /// RFC 3339; only in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Only in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiStatus>,
}

/// A matcher in API v2's shape: `isEqual: false` negates, `isRegex` makes
/// the value a regex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    /// Absent in clients older than API v2's `isEqual`: then `true`.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// `status` of a `gettableSilence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStatus {
    pub state: SilenceState,
}

impl From<&Matcher> for ApiMatcher {
    fn from(m: &Matcher) -> Self {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(m.op, MatchOp::Equal | MatchOp::Regex),
        }
    }
}

impl ApiMatcher {
    /// The matcher it describes; fails on a bad label name or regex.
    pub fn to_matcher(&self) -> Result<Matcher, String> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(&self.name, op, &self.value)
    }
}

impl ApiSilence {
    /// What the client asks for, with matchers compiled and times parsed;
    /// every problem is reported at once.
    pub fn spec(&self) -> Result<SilenceSpec, SilenceError> {
        let mut errors = Vec::new();
        let mut matchers = Vec::with_capacity(self.matchers.len());
        for m in &self.matchers {
            match m.to_matcher() {
                Ok(m) => matchers.push(m),
                Err(e) => errors.push(e),
            }
        }
        let mut time = |field: &str, value: &str| match parse_rfc3339(value) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{field}: {e}"));
                0
            }
        };
        let starts_at = time("startsAt", &self.starts_at);
        let ends_at = time("endsAt", &self.ends_at);
        if !errors.is_empty() {
            return Err(SilenceError::Invalid(errors.join("; ")));
        }
        Ok(SilenceSpec {
            matchers,
            starts_at,
            ends_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        })
    }
}

/// Every silence, pending, active or expired within the retention.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
    /// Per-set random keys for ids; see [`Silences::new_id`].
    seed: RandomState,
    counter: u64,
}

/// Alertmanager's rules for a silence a client sends; `ends_at` must be
/// after `now` so that a silence is never created already expired.
pub fn validate(spec: &SilenceSpec, now: i64) -> Result<(), SilenceError> {
    let mut errors = Vec::new();
    if spec.matchers.is_empty() {
        errors.push("at least one matcher required".to_string());
    } else if spec.matchers.iter().all(|m| m.matches(None)) {
        errors.push("at least one matcher must not match the empty string".to_string());
    }
    if spec.ends_at <= spec.starts_at {
        errors.push("start time must be before end time".to_string());
    }
    if spec.ends_at <= now {
        errors.push("end time can't be in the past".to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SilenceError::Invalid(errors.join("; ")))
    }
}

impl Silences {
    /// A set holding silences loaded from persistence.
    pub fn from_saved(silences: impl IntoIterator<Item = Silence>) -> Self {
        let mut s = Silences::default();
        for sil in silences {
            s.restore(sil);
        }
        s
    }

    /// Puts back a persisted silence as it was (replacing one with its id).
    pub fn restore(&mut self, silence: Silence) {
        self.by_id.insert(silence.id.clone(), silence);
    }

    /// Creates a silence and returns its new id. A start in the past becomes
    /// `now`, as in Alertmanager.
    pub fn create(&mut self, spec: SilenceSpec, now: i64) -> Result<String, SilenceError> {
        validate(&spec, now)?;
        Ok(self.insert_new(spec, now))
    }

    /// Updates silence `id` and returns the id of the result.
    ///
    /// In place (same id) when the history of what was silenced stays true:
    /// same matchers, and a pending silence keeps starting in the future or
    /// an active one keeps its start. Otherwise the old silence is expired
    /// (unless it already is) and a new one is created: the returned id then
    /// differs from `id`, and both silences changed.
    pub fn update(
        &mut self,
        id: &str,
        spec: SilenceSpec,
        now: i64,
    ) -> Result<String, SilenceError> {
        let Some(prev) = self.by_id.get(id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        // Validate before expiring anything, so a refused update changes
        // nothing.
        validate(&spec, now)?;
        if can_update(prev, &spec, now) {
            let sil = Silence {
                id: id.to_string(),
                matchers: spec.matchers,
                starts_at: spec.starts_at,
                ends_at: spec.ends_at,
                updated_at: now,
                created_by: spec.created_by,
                comment: spec.comment,
            };
            self.by_id.insert(sil.id.clone(), sil);
            return Ok(id.to_string());
        }
        if prev.state(now) != SilenceState::Expired {
            self.expire(id, now)?;
        }
        Ok(self.insert_new(spec, now))
    }

    /// Ends silence `id` at `now`; a pending one gets `starts_at = ends_at =
    /// now`, so it never was active.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<(), SilenceError> {
        let Some(sil) = self.by_id.get_mut(id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        match sil.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => sil.ends_at = now,
            SilenceState::Pending => {
                sil.starts_at = now;
                sil.ends_at = now;
            }
        }
        sil.updated_at = now;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Silences whose matchers satisfy every `filter` matcher, in
    /// Alertmanager's order: active (ending soonest first), pending
    /// (starting soonest first), expired (most recently ended first).
    ///
    /// As in Alertmanager's `?filter=`, a filter matcher looks at the
    /// silence's matchers as if they were labels (name = value as written);
    /// a filter for an empty value does not exclude a silence that lacks
    /// (for `=`, `=~`) or has (for `!=`, `!~`) that name.
    pub fn list(&self, filter: &[Matcher], now: i64) -> Vec<&Silence> {
        let mut out: Vec<&Silence> = self
            .by_id
            .values()
            .filter(|s| matches_filter(s, filter))
            .collect();
        out.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            let rank = |s| match s {
                SilenceState::Active => 0,
                SilenceState::Pending => 1,
                SilenceState::Expired => 2,
            };
            rank(sa)
                .cmp(&rank(sb))
                .then_with(|| match sa {
                    SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                    SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                    SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
                })
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    /// Ids of the active silences that mute an alert with these labels.
    pub fn silenced_by(&self, labels: &Labels, now: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Removes silences that ended at least `retention` ago and returns
    /// their ids, so persistence can delete them too.
    pub fn gc(&mut self, now: i64, retention: Duration) -> Vec<String> {
        let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let mut removed = Vec::new();
        self.by_id.retain(|id, s| {
            let keep = s.ends_at.saturating_add(retention) > now;
            if !keep {
                removed.push(id.clone());
            }
            keep
        });
        removed
    }

    /// Every silence, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn insert_new(&mut self, spec: SilenceSpec, now: i64) -> String {
        let id = self.new_id(now);
        let sil = Silence {
            id: id.clone(),
            matchers: spec.matchers,
            starts_at: spec.starts_at.max(now),
            ends_at: spec.ends_at,
            updated_at: now,
            created_by: spec.created_by,
            comment: spec.comment,
        };
        self.by_id.insert(id.clone(), sil);
        id
    }

    /// A version-4 UUID from SipHash with process-random keys over a
    /// counter and the time: unpredictable enough for ids that are not
    /// secrets, and checked against the set so it is unique.
    fn new_id(&mut self, now: i64) -> String {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let half = |salt: u8| {
                let mut h = self.seed.build_hasher();
                h.write_u8(salt);
                h.write_u64(self.counter);
                h.write_i64(now);
                h.finish()
            };
            let mut v = (u128::from(half(0)) << 64) | u128::from(half(1));
            // Version 4, RFC 4122 variant.
            v = (v & !(0xf << 76)) | (0x4 << 76);
            v = (v & !(0x3 << 62)) | (0x2 << 62);
            let hex = format!("{v:032x}");
            let id = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Alertmanager's `canUpdate`: whether `spec` can replace `prev` without
/// changing what was silenced before `now`.
fn can_update(prev: &Silence, spec: &SilenceSpec, now: i64) -> bool {
    if prev.matchers != spec.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => spec.starts_at == prev.starts_at && spec.ends_at >= now,
        SilenceState::Pending => spec.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// Alertmanager's `matchFilterLabels` over a silence's matchers.
fn matches_filter(s: &Silence, filter: &[Matcher]) -> bool {
    filter.iter().all(|f| {
        let v = s
            .matchers
            .iter()
            .rev() // the last matcher of a name wins, as in a Go map
            .find(|m| m.name == f.name)
            .map(|m| m.value.as_str());
        let negative = matches!(f.op, MatchOp::NotEqual | MatchOp::NotRegex);
        if f.value.is_empty() && (negative == v.is_some()) {
            return true;
        }
        f.matches(v)
    })
}

/// RFC 3339 in UTC with milliseconds, as Alertmanager writes times
/// (`2006-01-02T15:04:05.000Z`). Times beyond year 9999 are clamped.
pub fn format_rfc3339(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    format!("{ts:.3}")
}

/// Parses an RFC 3339 time with an offset (`Z` or `+02:00`) into Unix
/// milliseconds; digits past the millisecond are dropped.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("invalid RFC 3339 time {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000;
    const H: i64 = 3_600 * S;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;

    fn m(s: &str) -> Matcher {
        Matcher::parse(s).unwrap()
    }

    fn spec(matchers: &[&str], starts: i64, ends: i64) -> SilenceSpec {
        SilenceSpec {
            matchers: matchers.iter().map(|s| m(s)).collect(),
            starts_at: starts,
            ends_at: ends,
            created_by: "ana".into(),
            comment: "model rollout".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn invalid(r: Result<String, SilenceError>) -> String {
        match r {
            Err(SilenceError::Invalid(msg)) => msg,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn state_follows_the_times_with_an_exclusive_end() {
        let mut s = Silences::default();
        let id = s
            .create(spec(&["model=\"bert\""], T0 + H, T0 + 2 * H), T0)
            .unwrap();
        let sil = s.get(&id).unwrap();
        assert_eq!(sil.state(T0 + H - 1), SilenceState::Pending);
        assert_eq!(sil.state(T0 + H), SilenceState::Active);
        assert_eq!(sil.state(T0 + 2 * H - 1), SilenceState::Active);
        assert_eq!(sil.state(T0 + 2 * H), SilenceState::Expired);
    }

    #[test]
    fn create_rejects_what_alertmanager_rejects() {
        let mut s = Silences::default();
        assert_eq!(
            invalid(s.create(spec(&[], T0, T0 + H), T0)),
            "at least one matcher required"
        );
        for empty in [
            &["team=\"\""][..],
            &["team=~\".*\"", "env!=\"prod\""],
            &["a!~\"x+\""],
        ] {
            assert_eq!(
                invalid(s.create(spec(empty, T0, T0 + H), T0)),
                "at least one matcher must not match the empty string",
                "{empty:?}"
            );
        }
        assert_eq!(
            invalid(s.create(spec(&["a=\"x\""], T0 + H, T0 + H), T0)),
            "start time must be before end time"
        );
        assert_eq!(
            invalid(s.create(spec(&["a=\"x\""], T0 - 2 * H, T0 - H), T0)),
            "end time can't be in the past"
        );
        assert_eq!(
            invalid(s.create(spec(&["a=\"x\""], T0 - H, T0), T0)),
            "end time can't be in the past",
            "ending exactly now would be born expired"
        );
        // Every problem at once.
        assert_eq!(
            invalid(s.create(spec(&[], T0, T0 - H), T0)),
            "at least one matcher required; start time must be before end time; \
             end time can't be in the past"
        );
        assert!(s.is_empty());
        // One matcher that needs a value is enough.
        assert!(
            s.create(spec(&["team=~\".*\"", "model=\"bert\""], T0, T0 + H), T0)
                .is_ok()
        );
    }

    #[test]
    fn a_start_in_the_past_becomes_now() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0 - H, T0 + H), T0).unwrap();
        let sil = s.get(&id).unwrap();
        assert_eq!(sil.starts_at, T0);
        assert_eq!(sil.updated_at, T0);
        assert_eq!(sil.created_by, "ana");
    }

    #[test]
    fn ids_are_unique_version_4_uuids() {
        let mut s = Silences::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..2_000 {
            // Same `now` for all: uniqueness must not rely on the clock.
            let id = s.create(spec(&["a=\"x\""], T0, T0 + H + i), T0).unwrap();
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(seen.insert(id));
        }
        // A second set does not repeat the first one's ids.
        let mut other = Silences::default();
        let id = other.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        assert!(!seen.contains(&id));
    }

    #[test]
    fn only_active_silences_whose_matchers_all_match_silence() {
        let mut s = Silences::default();
        let bert = s
            .create(
                spec(&["model=\"bert\"", "env=~\"prod|eu\""], T0, T0 + H),
                T0,
            )
            .unwrap();
        let any_model = s
            .create(spec(&["model=~\".+\"", "team!=\"core\""], T0, T0 + H), T0)
            .unwrap();
        let later = s
            .create(spec(&["model=\"bert\""], T0 + H, T0 + 2 * H), T0)
            .unwrap();
        let a = labels(&[("model", "bert"), ("env", "prod")]);
        let mut got = s.silenced_by(&a, T0);
        got.sort();
        let mut want = vec![bert.clone(), any_model.clone()];
        want.sort();
        assert_eq!(got, want);
        // A missing label is the empty string: `team!="core"` holds.
        assert_eq!(
            s.silenced_by(&labels(&[("model", "gpt")]), T0),
            vec![any_model.clone()]
        );
        // Anchored regex: `env=~"prod|eu"` does not match `prod-us`.
        assert_eq!(
            s.silenced_by(&labels(&[("model", "bert"), ("env", "prod-us")]), T0),
            vec![any_model.clone()]
        );
        assert!(s.silenced_by(&labels(&[("job", "x")]), T0).is_empty());
        // Later on, only the pending one has started.
        assert_eq!(s.silenced_by(&a, T0 + H), vec![later.clone()]);
        assert!(s.silenced_by(&a, T0 + 2 * H).is_empty());
    }

    #[test]
    fn updating_a_pending_silence_in_place() {
        let mut s = Silences::default();
        let id = s
            .create(spec(&["a=\"x\""], T0 + H, T0 + 2 * H), T0)
            .unwrap();
        let mut new = spec(&["a=\"x\""], T0 + 3 * H, T0 + 4 * H);
        new.comment = "moved".into();
        assert_eq!(s.update(&id, new, T0 + 10 * S).unwrap(), id);
        let sil = s.get(&id).unwrap();
        assert_eq!((sil.starts_at, sil.ends_at), (T0 + 3 * H, T0 + 4 * H));
        assert_eq!(sil.comment, "moved");
        assert_eq!(sil.updated_at, T0 + 10 * S);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn extending_an_active_silence_keeps_its_id() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        assert_eq!(
            s.update(&id, spec(&["a=\"x\""], T0, T0 + 5 * H), T0 + 30 * 60 * S)
                .unwrap(),
            id
        );
        assert_eq!(s.get(&id).unwrap().ends_at, T0 + 5 * H);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn changing_an_active_silences_matchers_replaces_it() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let now = T0 + 10 * 60 * S;
        let new = s
            .update(&id, spec(&["a=\"y\""], T0, T0 + 2 * H), now)
            .unwrap();
        assert_ne!(new, id);
        let old = s.get(&id).unwrap();
        assert_eq!(old.ends_at, now, "the old one is expired");
        assert_eq!(old.state(now), SilenceState::Expired);
        assert_eq!(old.matchers, vec![m("a=\"x\"")], "its history is intact");
        let fresh = s.get(&new).unwrap();
        assert_eq!(
            fresh.starts_at, now,
            "the new one starts now, not in the past"
        );
        assert_eq!(fresh.ends_at, T0 + 2 * H);
        assert_eq!(
            s.silenced_by(&labels(&[("a", "y")]), now),
            vec![new.clone()]
        );
        assert!(s.silenced_by(&labels(&[("a", "x")]), now).is_empty());
    }

    #[test]
    fn moving_an_active_silences_start_replaces_it() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let new = s
            .update(&id, spec(&["a=\"x\""], T0 + 60 * S, T0 + H), T0 + 120 * S)
            .unwrap();
        assert_ne!(new, id);
        assert_eq!(s.get(&id).unwrap().ends_at, T0 + 120 * S);
    }

    #[test]
    fn pulling_a_pending_start_into_the_past_replaces_it() {
        let mut s = Silences::default();
        let id = s
            .create(spec(&["a=\"x\""], T0 + H, T0 + 2 * H), T0)
            .unwrap();
        let new = s
            .update(&id, spec(&["a=\"x\""], T0 - H, T0 + 2 * H), T0)
            .unwrap();
        assert_ne!(new, id);
        let old = s.get(&id).unwrap();
        assert_eq!((old.starts_at, old.ends_at), (T0, T0), "never active");
        assert_eq!(s.get(&new).unwrap().starts_at, T0);
    }

    #[test]
    fn updating_an_expired_silence_creates_a_new_one() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let now = T0 + 2 * H;
        let new = s
            .update(&id, spec(&["a=\"x\""], now, now + H), now)
            .unwrap();
        assert_ne!(new, id);
        assert_eq!(s.get(&id).unwrap().ends_at, T0 + H, "left as it ended");
        assert_eq!(s.get(&id).unwrap().updated_at, T0);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let mut s = Silences::default();
        let id = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let before = s.get(&id).unwrap().clone();
        // Different matchers (would expire) but invalid: all match empty.
        assert!(matches!(
            s.update(&id, spec(&["a=\"\""], T0, T0 + H), T0 + S),
            Err(SilenceError::Invalid(_))
        ));
        // End in the past.
        assert!(matches!(
            s.update(&id, spec(&["a=\"x\""], T0, T0 + S), T0 + 2 * S),
            Err(SilenceError::Invalid(_))
        ));
        assert_eq!(s.get(&id), Some(&before));
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.update("nope", spec(&["a=\"x\""], T0, T0 + H), T0),
            Err(SilenceError::NotFound("nope".into()))
        );
    }

    #[test]
    fn expire_ends_now_and_only_once() {
        let mut s = Silences::default();
        let active = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let pending = s
            .create(spec(&["a=\"x\""], T0 + H, T0 + 2 * H), T0)
            .unwrap();
        let now = T0 + 60 * S;
        s.expire(&active, now).unwrap();
        s.expire(&pending, now).unwrap();
        let a = s.get(&active).unwrap();
        assert_eq!((a.starts_at, a.ends_at, a.updated_at), (T0, now, now));
        let p = s.get(&pending).unwrap();
        assert_eq!((p.starts_at, p.ends_at), (now, now));
        assert!(s.silenced_by(&labels(&[("a", "x")]), now).is_empty());
        assert!(
            s.silenced_by(&labels(&[("a", "x")]), T0 + H).is_empty(),
            "the pending one never starts"
        );
        assert_eq!(
            s.expire(&active, now),
            Err(SilenceError::AlreadyExpired(active.clone()))
        );
        assert_eq!(
            s.expire("nope", now),
            Err(SilenceError::NotFound("nope".into()))
        );
    }

    #[test]
    fn list_filters_like_alertmanager_and_sorts_by_state() {
        let mut s = Silences::default();
        let a1 = s
            .create(
                spec(&["model=\"bert\"", "env=\"prod\""], T0, T0 + 3 * H),
                T0,
            )
            .unwrap();
        let a2 = s.create(spec(&["model=\"gpt\""], T0, T0 + H), T0).unwrap();
        let p1 = s
            .create(spec(&["model=\"bert\""], T0 + 2 * H, T0 + 4 * H), T0)
            .unwrap();
        let p2 = s
            .create(spec(&["team=\"ml\""], T0 + H / 2, T0 + 4 * H), T0)
            .unwrap();
        let e1 = s.create(spec(&["model=\"old\""], T0, T0 + H), T0).unwrap();
        let e2 = s
            .create(spec(&["model=\"older\""], T0, T0 + H), T0)
            .unwrap();
        s.expire(&e2, T0 + 1).unwrap();
        s.expire(&e1, T0 + 2).unwrap();
        let now = T0 + 3;
        let ids = |f: &[&str]| -> Vec<String> {
            let f: Vec<Matcher> = f.iter().map(|x| m(x)).collect();
            s.list(&f, now).into_iter().map(|s| s.id.clone()).collect()
        };
        assert_eq!(
            ids(&[]),
            vec![
                a2.clone(),
                a1.clone(),
                p2.clone(),
                p1.clone(),
                e1.clone(),
                e2.clone()
            ]
        );
        assert_eq!(ids(&["model=\"bert\""]), vec![a1.clone(), p1.clone()]);
        assert_eq!(ids(&["model=~\"b.*\""]), vec![a1.clone(), p1.clone()]);
        // A negative filter: silences without `model` have it as "".
        assert_eq!(
            ids(&["model!~\"bert|gpt\""]),
            vec![p2.clone(), e1.clone(), e2.clone()]
        );
        // `env=""` keeps silences without an `env` matcher, drops `env="prod"`.
        assert_eq!(ids(&["env=\"\""]).len(), 5);
        assert!(!ids(&["env=\"\""]).contains(&a1));
        // `env!=""` keeps only silences that have an `env` matcher.
        assert_eq!(ids(&["env!=\"\""]), vec![a1.clone()]);
        assert_eq!(ids(&["model=\"bert\"", "env=\"prod\""]), vec![a1.clone()]);
    }

    #[test]
    fn gc_drops_silences_expired_for_the_retention() {
        let mut s = Silences::default();
        let old = s.create(spec(&["a=\"x\""], T0, T0 + H), T0).unwrap();
        let recent = s.create(spec(&["a=\"y\""], T0, T0 + 100 * H), T0).unwrap();
        let active = s
            .create(spec(&["a=\"z\""], T0, T0 + 1_000 * H), T0)
            .unwrap();
        assert!(s.gc(T0 + 121 * H - 1, DEFAULT_RETENTION).is_empty());
        assert_eq!(s.gc(T0 + 121 * H, DEFAULT_RETENTION), vec![old.clone()]);
        assert!(s.get(&old).is_none());
        assert!(s.get(&recent).is_some() && s.get(&active).is_some());
        assert_eq!(
            s.gc(T0 + 500 * H, Duration::from_secs(3600)),
            vec![recent.clone()]
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn json_is_alertmanager_api_v2() {
        let mut s = Silences::default();
        let id = s
            .create(
                spec(
                    &[
                        "alertname=\"Down\"",
                        "model!=\"bert\"",
                        "env=~\"prod.*\"",
                        "team!~\"ml|ops\"",
                    ],
                    T0,
                    T0 + 90 * 60 * S + 250,
                ),
                T0,
            )
            .unwrap();
        let got = serde_json::to_value(s.get(&id).unwrap().to_api(T0 + S)).unwrap();
        let want = serde_json::json!({
            "id": id,
            "matchers": [
                {"name": "alertname", "value": "Down", "isRegex": false, "isEqual": true},
                {"name": "model", "value": "bert", "isRegex": false, "isEqual": false},
                {"name": "env", "value": "prod.*", "isRegex": true, "isEqual": true},
                {"name": "team", "value": "ml|ops", "isRegex": true, "isEqual": false},
            ],
            "startsAt": "2026-01-01T00:00:00.000Z",
            "endsAt": "2026-01-01T01:30:00.250Z",
            "createdBy": "ana",
            "comment": "model rollout",
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "status": {"state": "active"},
        });
        assert_eq!(got, want);
    }

    #[test]
    fn reads_what_amtool_posts() {
        // A postableSilence as amtool sends it: no status, no updatedAt,
        // an offset and nanoseconds, and an old client without isEqual.
        let body = r#"{
            "matchers": [
                {"name": "alertname", "value": "Down", "isRegex": false},
                {"name": "instance", "value": "web-.*", "isRegex": true, "isEqual": false}
            ],
            "startsAt": "2026-01-01T01:00:00.123456789+01:00",
            "endsAt": "2026-01-01T02:00:00Z",
            "createdBy": "amtool",
            "comment": "maintenance"
        }"#;
        let api: ApiSilence = serde_json::from_str(body).unwrap();
        assert_eq!(api.id, None);
        let spec = api.spec().unwrap();
        assert_eq!(
            spec.matchers,
            vec![m("alertname=\"Down\""), m("instance!~\"web-.*\"")]
        );
        assert_eq!(spec.starts_at, T0 + 123);
        assert_eq!(spec.ends_at, T0 + 2 * H);
        assert_eq!(spec.created_by, "amtool");
    }

    #[test]
    fn bad_json_values_are_reported_together() {
        let api = ApiSilence {
            id: None,
            matchers: vec![
                ApiMatcher {
                    name: "1bad".into(),
                    value: "x".into(),
                    is_regex: false,
                    is_equal: true,
                },
                ApiMatcher {
                    name: "a".into(),
                    value: "(".into(),
                    is_regex: true,
                    is_equal: true,
                },
            ],
            starts_at: "yesterday".into(),
            ends_at: "2026-01-01T00:00:00".into(),
            created_by: String::new(),
            comment: String::new(),
            updated_at: None,
            status: None,
        };
        let Err(SilenceError::Invalid(msg)) = api.spec() else {
            panic!("expected an error");
        };
        let parts: Vec<&str> = msg.split("; ").collect();
        assert_eq!(parts.len(), 4, "{msg}");
        assert!(parts[0].contains("1bad"), "{msg}");
        assert!(parts[1].contains("unclosed group"), "{msg}");
        assert!(parts[2].starts_with("startsAt: invalid RFC 3339 time \"yesterday\""));
        assert!(
            parts[3].starts_with("endsAt:"),
            "no offset is an error: {msg}"
        );
    }

    #[test]
    fn persisted_json_reads_back_the_same_silence() {
        let mut s = Silences::default();
        let a = s
            .create(spec(&["a=\"x\"", "b=~\"y|z\""], T0, T0 + H), T0)
            .unwrap();
        let b = s
            .create(spec(&["c!=\"\""], T0 + H, T0 + 2 * H), T0 + 7)
            .unwrap();
        s.expire(&a, T0 + 60 * S).unwrap();
        let saved: Vec<String> = s
            .iter()
            .map(|x| serde_json::to_string(&x.to_api(T0 + 99 * S)).unwrap())
            .collect();
        let loaded =
            Silences::from_saved(saved.iter().map(|j| {
                Silence::from_api(&serde_json::from_str::<ApiSilence>(j).unwrap()).unwrap()
            }));
        assert_eq!(loaded.len(), 2);
        for id in [&a, &b] {
            assert_eq!(loaded.get(id), s.get(id));
        }
        // Without an id or updatedAt it is not a stored silence.
        let mut api = s.get(&a).unwrap().to_api(T0);
        api.updated_at = None;
        assert!(Silence::from_api(&api).is_err());
        api.updated_at = Some(format_rfc3339(T0));
        api.id = None;
        assert!(Silence::from_api(&api).is_err());
    }

    #[test]
    fn rfc3339_formats_with_milliseconds_and_parses_offsets() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(T0 + 5), "2026-01-01T00:00:00.005Z");
        // Beyond jiff's range (about ±9999 years): clamped, never a panic.
        assert!(format_rfc3339(i64::MAX).starts_with("9999-12-"));
        assert!(format_rfc3339(i64::MIN).starts_with("-009999-"));
        assert_eq!(parse_rfc3339("2026-01-01T02:00:00+02:00"), Ok(T0));
        assert_eq!(parse_rfc3339("2025-12-31T23:00:00.5-01:00"), Ok(T0 + 500));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert!(parse_rfc3339("2026-01-01").is_err());
        assert!(parse_rfc3339("").is_err());
        for ms in [0, 1, T0, T0 + 999, -1_000, 100 * T0] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Ok(ms));
        }
    }

    /// SplitMix64: a small deterministic generator for property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n) as i64
        }
    }

    /// What Alertmanager's update rules protect: whatever was silenced at a
    /// time before `now` stays so, through any create, update or expire.
    #[test]
    fn no_operation_rewrites_what_was_silenced_in_the_past() {
        let pool = [
            "a=\"1\"",
            "a=\"2\"",
            "a=~\"1|2\"",
            "b!=\"1\"",
            "b=\"\"",
            "a!~\"2\"",
        ];
        let label_sets: Vec<Labels> = [
            &[("a", "1")][..],
            &[("a", "2")],
            &[("a", "1"), ("b", "1")],
            &[("a", "2"), ("b", "2")],
            &[("b", "1")],
        ]
        .iter()
        .map(|p| labels(p))
        .collect();
        let mut rng = Rng(7);
        for _case in 0..40 {
            let mut s = Silences::default();
            let mut now = T0;
            // (time, labels index, silencing ids) seen so far.
            let mut history: Vec<(i64, usize, Vec<String>)> = Vec::new();
            for _step in 0..60 {
                now += rng.below(20) * 60 * S + 1;
                let ids: Vec<String> = s.iter().map(|x| x.id.clone()).collect();
                let random_spec = |rng: &mut Rng| {
                    let n = 1 + rng.below(2) as usize;
                    let ms: Vec<&str> = (0..n)
                        .map(|_| pool[rng.below(pool.len() as u64) as usize])
                        .collect();
                    let starts = now + (rng.below(5) - 2) * 30 * 60 * S;
                    let ends = starts + (rng.below(6) - 1) * 30 * 60 * S;
                    spec(&ms, starts, ends)
                };
                match rng.below(4) {
                    0 | 1 => {
                        let _ = s.create(random_spec(&mut rng), now);
                    }
                    2 if !ids.is_empty() => {
                        let id = &ids[rng.below(ids.len() as u64) as usize];
                        let mut sp = random_spec(&mut rng);
                        if rng.below(2) == 0 {
                            // Often keep the matchers and start, as clients do.
                            let cur = s.get(id).unwrap();
                            sp.matchers = cur.matchers.clone();
                            sp.starts_at = cur.starts_at;
                        }
                        let _ = s.update(id, sp, now);
                    }
                    _ if !ids.is_empty() => {
                        let id = &ids[rng.below(ids.len() as u64) as usize];
                        let _ = s.expire(id, now);
                    }
                    _ => {}
                }
                for (t, li, want) in &history {
                    let mut got = s.silenced_by(&label_sets[*li], *t);
                    got.sort();
                    assert_eq!(&got, want, "at {t} for {:?}", label_sets[*li]);
                }
                for (li, l) in label_sets.iter().enumerate() {
                    let mut got = s.silenced_by(l, now);
                    got.sort();
                    history.push((now, li, got));
                }
                // Invariants of every stored silence.
                for x in s.iter() {
                    assert!(x.starts_at <= x.ends_at);
                    assert!(x.updated_at <= now);
                    assert!(x.matchers.iter().any(|m| !m.matches(None)));
                }
            }
        }
    }

    #[test]
    fn silenced_by_agrees_with_the_definition() {
        let mut rng = Rng(11);
        let names = ["model", "env", "team"];
        let values = ["", "bert", "gpt", "prod"];
        let ops = ["=", "!=", "=~", "!~"];
        let mut s = Silences::default();
        for _ in 0..200 {
            let n = 1 + rng.below(3) as usize;
            let ms: Vec<String> = (0..n)
                .map(|_| {
                    let v = values[rng.below(4) as usize];
                    let v = if rng.below(3) == 0 {
                        format!("{v}.*")
                    } else {
                        v.to_string()
                    };
                    format!(
                        "{}{}\"{v}\"",
                        names[rng.below(3) as usize],
                        ops[rng.below(4) as usize]
                    )
                })
                .collect();
            let refs: Vec<&str> = ms.iter().map(String::as_str).collect();
            let starts = T0 + rng.below(4) * H;
            let _ = s.create(spec(&refs, starts, starts + (1 + rng.below(3)) * H), T0);
        }
        assert!(s.len() > 50);
        for _ in 0..300 {
            let l = Labels::from_pairs(names.iter().map(|n| (*n, values[rng.below(4) as usize])));
            let now = T0 + rng.below(7 * 3600) * S;
            let mut got = s.silenced_by(&l, now);
            got.sort();
            let want: Vec<String> = s
                .iter()
                .filter(|x| {
                    x.starts_at <= now
                        && now < x.ends_at
                        && x.matchers
                            .iter()
                            .all(|m| m.matches(Some(l.get(&m.name).unwrap_or(""))))
                })
                .map(|x| x.id.clone())
                .collect();
            assert_eq!(got, want);
        }
    }
}
