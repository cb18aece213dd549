//! Inhibition with Alertmanager 0.25's semantics.
//!
//! Pure: an [`Inhibitor`] holds the rules and the firing alerts that can
//! inhibit, and answers for one alert's labels; it does no I/O and keeps no
//! clock, since only firing alerts are put in it.
//!
//! The semantics are `inhibit/inhibit.go` (`Inhibitor.Mutes` and
//! `InhibitRule.hasEqual`):
//! - an alert is muted by the first rule whose `target_matchers` all match
//!   it and for which some firing alert matches all `source_matchers` and
//!   has the same value for every `equal` label (a label missing on both
//!   sides counts as equal);
//! - when the alert matches the rule's source side too, only sources that
//!   do *not* also match the target side count, so an alert never inhibits
//!   itself and two alerts matching both sides do not inhibit each other.
//!
//! Sources are indexed per rule by their `equal` values, and split by
//! whether they match the target side, so a lookup is one hash probe per
//! rule whose target side matches, whatever the number of firing alerts.

use std::collections::{BTreeSet, HashMap};

use crate::config::{InhibitRuleConfig, Matcher};
use crate::store::labels::Labels;

/// One inhibition rule.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// All must match the inhibiting, firing alert.
    pub source_matchers: Vec<Matcher>,
    /// All must match an inhibited alert.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

impl From<InhibitRuleConfig> for InhibitRule {
    fn from(c: InhibitRuleConfig) -> Self {
        InhibitRule {
            source_matchers: c.source_matchers,
            target_matchers: c.target_matchers,
            equal: c.equal,
        }
    }
}

impl InhibitRule {
    fn source_matches(&self, labels: &Labels) -> bool {
        all_match(&self.source_matchers, labels)
    }

    fn target_matches(&self, labels: &Labels) -> bool {
        all_match(&self.target_matchers, labels)
    }

    /// The alert's `equal` values as one injective key (each value
    /// length-prefixed, a missing label as empty).
    fn key(&self, labels: &Labels) -> String {
        let mut key = String::new();
        for name in &self.equal {
            let v = labels.get(name).unwrap_or("");
            key.push_str(&v.len().to_string());
            key.push(':');
            key.push_str(v);
        }
        key
    }
}

fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name)))
}

/// Why an alert is inhibited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inhibition {
    /// The index of the rule, in configuration order.
    pub rule: usize,
    /// The fingerprint of a firing source alert (the smallest, when several
    /// inhibit it), as Alertmanager's `inhibitedBy`.
    pub source: u64,
}

/// Firing sources of one rule that share `equal` values.
#[derive(Debug, Clone, Default)]
struct Sources {
    /// Sources that do not match the rule's target side.
    source_only: BTreeSet<u64>,
    /// Sources that match the target side too.
    both_sides: BTreeSet<u64>,
}

/// The rules and the firing alerts that can inhibit.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    /// Per rule: sources by their key of `equal` values.
    index: Vec<HashMap<String, Sources>>,
}

impl Inhibitor {
    /// An inhibitor with no firing alerts yet.
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        let index = vec![HashMap::new(); rules.len()];
        Inhibitor { rules, index }
    }

    /// An inhibitor over the currently firing alerts.
    pub fn from_firing<'a>(
        rules: Vec<InhibitRule>,
        firing: impl IntoIterator<Item = &'a Labels>,
    ) -> Self {
        let mut inhibitor = Inhibitor::new(rules);
        for labels in firing {
            inhibitor.add_firing(labels);
        }
        inhibitor
    }

    /// Records a firing alert: it inhibits from now on. Adding it again is
    /// harmless.
    pub fn add_firing(&mut self, labels: &Labels) {
        // The fingerprint hashes every label, and the pipeline rebuilds the
        // inhibitor from all firing alerts at each flush: only alerts that
        // can inhibit pay for it (with no inhibit rules, none do).
        let mut fingerprint = None;
        for (rule, index) in self.rules.iter().zip(&mut self.index) {
            if !rule.source_matches(labels) {
                continue;
            }
            let fp = *fingerprint.get_or_insert_with(|| labels.fingerprint());
            let sources = index.entry(rule.key(labels)).or_default();
            if rule.target_matches(labels) {
                sources.both_sides.insert(fp);
            } else {
                sources.source_only.insert(fp);
            }
        }
    }

    /// Forgets an alert that resolved or went away: it no longer inhibits.
    pub fn remove(&mut self, labels: &Labels) {
        let mut fingerprint = None;
        for (rule, index) in self.rules.iter().zip(&mut self.index) {
            if !rule.source_matches(labels) {
                continue;
            }
            let fp = *fingerprint.get_or_insert_with(|| labels.fingerprint());
            let key = rule.key(labels);
            if let Some(sources) = index.get_mut(&key) {
                sources.source_only.remove(&fp);
                sources.both_sides.remove(&fp);
                if sources.source_only.is_empty() && sources.both_sides.is_empty() {
                    index.remove(&key);
                }
            }
        }
    }

    /// Whether an alert with these labels is inhibited, and by what.
    pub fn inhibited(&self, labels: &Labels) -> Option<Inhibition> {
        for (rule_index, (rule, index)) in self.rules.iter().zip(&self.index).enumerate() {
            if !rule.target_matches(labels) {
                continue;
            }
            let Some(sources) = index.get(&rule.key(labels)) else {
                continue;
            };
            let source = if rule.source_matches(labels) {
                // Both sides: only sources that are not targets themselves.
                sources.source_only.first().copied()
            } else {
                match (sources.source_only.first(), sources.both_sides.first()) {
                    (Some(a), Some(b)) => Some(*a.min(b)),
                    (a, b) => a.or(b).copied(),
                }
            };
            if let Some(source) = source {
                return Some(Inhibition {
                    rule: rule_index,
                    source,
                });
            }
        }
        None
    }

    pub fn rules(&self) -> &[InhibitRule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(source: &[&str], target: &[&str], equal: &[&str]) -> InhibitRule {
        let ms = |v: &[&str]| v.iter().map(|s| Matcher::parse(s).unwrap()).collect();
        InhibitRule {
            source_matchers: ms(source),
            target_matchers: ms(target),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn critical_mutes_warning() -> InhibitRule {
        rule(
            &["severity=\"critical\""],
            &["severity=\"warning\""],
            &["model", "region"],
        )
    }

    #[test]
    fn a_firing_source_mutes_targets_with_equal_labels() {
        let down = l(&[
            ("alertname", "Down"),
            ("severity", "critical"),
            ("model", "bert"),
            ("region", "eu"),
        ]);
        let mut ih = Inhibitor::from_firing(vec![critical_mutes_warning()], [&down]);
        let slow = |model: &str, region: &str| {
            l(&[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("model", model),
                ("region", region),
            ])
        };
        assert_eq!(
            ih.inhibited(&slow("bert", "eu")),
            Some(Inhibition {
                rule: 0,
                source: down.fingerprint()
            })
        );
        assert_eq!(ih.inhibited(&slow("gpt", "eu")), None, "other model");
        assert_eq!(ih.inhibited(&slow("bert", "us")), None, "other region");
        // The source itself is not a target.
        assert_eq!(ih.inhibited(&down), None);
        // A non-target with the same labels is not muted.
        let info = l(&[("severity", "info"), ("model", "bert"), ("region", "eu")]);
        assert_eq!(ih.inhibited(&info), None);
        // Once the source resolves, nothing is muted.
        ih.remove(&down);
        assert_eq!(ih.inhibited(&slow("bert", "eu")), None);
    }

    #[test]
    fn a_label_missing_on_both_sides_counts_as_equal() {
        let r = rule(
            &["severity=\"critical\""],
            &["severity=\"warning\""],
            &["model"],
        );
        let source = l(&[("severity", "critical")]);
        let ih = Inhibitor::from_firing(vec![r], [&source]);
        assert!(ih.inhibited(&l(&[("severity", "warning")])).is_some());
        assert!(
            ih.inhibited(&l(&[("severity", "warning"), ("model", "bert")]))
                .is_none(),
            "missing on one side only"
        );
    }

    #[test]
    fn without_equal_labels_any_source_mutes_every_target() {
        let r = rule(
            &["alertname=\"ClusterDown\""],
            &["alertname!=\"ClusterDown\""],
            &[],
        );
        let ih = Inhibitor::from_firing(vec![r], [&l(&[("alertname", "ClusterDown")])]);
        assert!(ih.inhibited(&l(&[("alertname", "Anything")])).is_some());
        assert!(ih.inhibited(&l(&[("alertname", "ClusterDown")])).is_none());
    }

    #[test]
    fn an_alert_on_both_sides_neither_inhibits_itself_nor_its_peers() {
        // Every alert of the model is both a source and a target.
        let r = rule(&["model=\"bert\""], &["model=\"bert\""], &["model"]);
        let a = l(&[("alertname", "A"), ("model", "bert")]);
        let b = l(&[("alertname", "B"), ("model", "bert")]);
        let ih = Inhibitor::from_firing(vec![r.clone()], [&a, &b]);
        assert_eq!(ih.inhibited(&a), None);
        assert_eq!(ih.inhibited(&b), None);

        // A source-only alert does mute an alert on both sides...
        let r = rule(
            &["severity=~\"critical|page\""],
            &["severity=\"page\""],
            &[],
        );
        let page = l(&[("alertname", "P"), ("severity", "page")]);
        let critical = l(&[("alertname", "C"), ("severity", "critical")]);
        let ih = Inhibitor::from_firing(vec![r.clone()], [&page]);
        assert_eq!(ih.inhibited(&page), None, "not by itself");
        let ih = Inhibitor::from_firing(vec![r.clone()], [&page, &critical]);
        assert_eq!(
            ih.inhibited(&page),
            Some(Inhibition {
                rule: 0,
                source: critical.fingerprint()
            })
        );
        // ...and an alert on both sides mutes a target-only alert.
        let r = rule(&["team=\"ml\""], &["severity=\"warning\""], &[]);
        let both = l(&[("team", "ml"), ("severity", "warning")]);
        let target = l(&[("team", "ops"), ("severity", "warning")]);
        let ih = Inhibitor::from_firing(vec![r], [&both]);
        assert_eq!(
            ih.inhibited(&target),
            Some(Inhibition {
                rule: 0,
                source: both.fingerprint()
            })
        );
        assert_eq!(ih.inhibited(&both), None);
    }

    #[test]
    fn the_first_matching_rule_is_reported() {
        let rules = vec![
            rule(&["alertname=\"Never\""], &["severity=\"warning\""], &[]),
            rule(&["severity=\"critical\""], &["severity=\"warning\""], &[]),
            rule(&["severity=~\".+\""], &["severity=\"warning\""], &[]),
        ];
        let crit = l(&[("severity", "critical")]);
        let ih = Inhibitor::from_firing(rules, [&crit]);
        assert_eq!(
            ih.inhibited(&l(&[("severity", "warning")])).map(|i| i.rule),
            Some(1)
        );
    }

    #[test]
    fn equal_values_are_compared_whole() {
        // Keys must not collide when values contain separators.
        let r = rule(&["s=\"1\""], &["s=\"2\""], &["a", "b"]);
        let src = l(&[("s", "1"), ("a", "x:1"), ("b", "y")]);
        let ih = Inhibitor::from_firing(vec![r], [&src]);
        assert!(
            ih.inhibited(&l(&[("s", "2"), ("a", "x"), ("b", "1:y")]))
                .is_none()
        );
        assert!(
            ih.inhibited(&l(&[("s", "2"), ("a", "x:1"), ("b", "y")]))
                .is_some()
        );
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

        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    /// Alertmanager's `Mutes` transcribed: a scan over every firing alert.
    fn reference(rules: &[InhibitRule], firing: &[Labels], target: &Labels) -> Option<usize> {
        rules.iter().position(|r| {
            if !r.target_matches(target) {
                return false;
            }
            let exclude_two_sided = r.source_matches(target);
            firing.iter().any(|a| {
                r.source_matches(a)
                    && r.equal.iter().all(|n| a.get(n) == target.get(n))
                    && !(exclude_two_sided && r.target_matches(a))
            })
        })
    }

    fn random_labels(rng: &mut Rng) -> Labels {
        let severities = ["", "critical", "warning", "info"];
        let models = ["", "bert", "gpt"];
        let regions = ["", "eu", "us"];
        let teams = ["", "ml", "ops"];
        Labels::from_pairs([
            ("severity", rng.pick(&severities)),
            ("model", rng.pick(&models)),
            ("region", rng.pick(&regions)),
            ("team", rng.pick(&teams)),
        ])
    }

    #[test]
    fn agrees_with_alertmanagers_scan_and_stays_so_under_updates() {
        let rules = vec![
            critical_mutes_warning(),
            rule(&["team=\"ml\""], &["team=~\"ml|ops\""], &["model"]),
            rule(
                &["severity=~\"critical|warning\""],
                &["severity!=\"critical\""],
                &["region"],
            ),
            rule(&["region=\"\""], &["model=\"bert\""], &[]),
        ];
        let mut rng = Rng(42);
        for _case in 0..50 {
            let mut firing: Vec<Labels> = (0..rng.next() % 12)
                .map(|_| random_labels(&mut rng))
                .collect();
            firing.sort();
            firing.dedup();
            let mut ih = Inhibitor::from_firing(rules.clone(), &firing);
            for _step in 0..20 {
                for _ in 0..20 {
                    let t = random_labels(&mut rng);
                    let got = ih.inhibited(&t);
                    assert_eq!(got.map(|i| i.rule), reference(&rules, &firing, &t), "{t}");
                    if let Some(i) = got {
                        // The named source is firing and really inhibits.
                        let src = firing.iter().find(|a| a.fingerprint() == i.source).unwrap();
                        let r = &rules[i.rule];
                        assert!(r.source_matches(src));
                        assert!(r.equal.iter().all(|n| src.get(n) == t.get(n)));
                    }
                }
                // Fire a new alert or resolve one, incrementally.
                if rng.next().is_multiple_of(2) || firing.is_empty() {
                    let a = random_labels(&mut rng);
                    ih.add_firing(&a);
                    if !firing.contains(&a) {
                        firing.push(a);
                    }
                } else {
                    let a = firing.swap_remove((rng.next() % firing.len() as u64) as usize);
                    ih.remove(&a);
                }
            }
        }
    }

    #[test]
    fn a_hundred_thousand_alerts() {
        // One critical per model mutes that model's warnings.
        let rules = vec![rule(
            &["severity=\"critical\""],
            &["severity=\"warning\""],
            &["model"],
        )];
        let alerts: Vec<Labels> = (0..100_000)
            .map(|i| {
                let model = format!("m{}", i / 10);
                let sev = if i % 10 == 0 { "critical" } else { "warning" };
                Labels::from_pairs([("model", model.as_str()), ("severity", sev)])
            })
            .collect();
        // Only every other model's critical alert fires.
        let firing = alerts
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 20 == 0)
            .map(|(_, a)| a);
        let ih = Inhibitor::from_firing(rules, firing);
        let muted = alerts.iter().filter(|a| ih.inhibited(a).is_some()).count();
        assert_eq!(muted, 5_000 * 9);
    }
}
