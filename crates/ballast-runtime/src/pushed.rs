//! Pushed metrics: samples that applications without Prometheus send to
//! `POST /api/v1/metrics`, kept in memory for as long as the longest rule could need them,
//! and read by policies whose metric says `source: pushed` with a series selector.
//!
//! They are not persisted: after a restart the engine waits for new samples, and missing
//! data never scales anything down.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::RwLock;

use ballast_core::{MetricObservation, Sample, Selector, Timestamp};
use chrono::TimeDelta;

/// One series: a name and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Limits on what is kept.
#[derive(Debug, Clone, Copy)]
pub struct PushedLimits {
    /// Samples older than this are dropped.
    pub retention: TimeDelta,
    /// Samples kept per series (the oldest go first).
    pub per_series: usize,
    /// Series kept; a push that would add more is refused.
    pub series: usize,
    /// How far a sample's own timestamp may lie ahead of the server's clock.
    pub future: TimeDelta,
    /// A series' last sample counts at a later instant for this long (as Prometheus'
    /// lookback).
    pub lookback: TimeDelta,
}

impl Default for PushedLimits {
    fn default() -> Self {
        PushedLimits {
            retention: TimeDelta::hours(2),
            per_series: 20_000,
            series: 100_000,
            future: TimeDelta::minutes(1),
            lookback: TimeDelta::minutes(5),
        }
    }
}

/// Why a push was refused (nothing of it is kept then).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    /// A sample is malformed; `index` is its place in the request.
    #[error("samples[{index}].{field}: {reason}")]
    Invalid {
        /// Which sample.
        index: usize,
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The push would exceed the series limit.
    #[error("too many series: at most {0} are kept")]
    TooManySeries(usize),
}

/// One pushed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedSample {
    /// The series.
    pub key: SeriesKey,
    /// The value.
    pub value: f64,
    /// When it was measured.
    pub at: Timestamp,
}

/// The samples pushed so far.
#[derive(Debug, Default)]
pub struct PushedMetrics {
    limits: PushedLimits,
    series: RwLock<HashMap<SeriesKey, VecDeque<Sample>>>,
}

impl PushedMetrics {
    /// An empty store with these limits.
    pub fn new(limits: PushedLimits) -> PushedMetrics {
        PushedMetrics {
            limits,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// Checks every sample, then keeps them all (or none, when one is bad). Returns how
    /// many were kept.
    pub fn push(&self, samples: Vec<PushedSample>, now: Timestamp) -> Result<usize, PushError> {
        for (index, s) in samples.iter().enumerate() {
            if let Err(reason) = Selector::parse(&s.key.name).and_then(|sel| {
                if sel.labels.is_empty() && sel.name == s.key.name {
                    Ok(())
                } else {
                    Err("a metric name holds only letters, digits, `_` and `:`".to_owned())
                }
            }) {
                return Err(PushError::Invalid {
                    index,
                    field: "name",
                    reason,
                });
            }
            if let Some(bad) = s.key.labels.keys().find(|l| !is_label(l)) {
                return Err(PushError::Invalid {
                    index,
                    field: "labels",
                    reason: format!("`{bad}` is not a label name"),
                });
            }
            if !s.value.is_finite() {
                return Err(PushError::Invalid {
                    index,
                    field: "value",
                    reason: "must be a finite number".to_owned(),
                });
            }
            if s.at > now + self.limits.future {
                return Err(PushError::Invalid {
                    index,
                    field: "timestamp",
                    reason: "lies in the future".to_owned(),
                });
            }
            if s.at < now - self.limits.retention {
                return Err(PushError::Invalid {
                    index,
                    field: "timestamp",
                    reason: format!(
                        "is older than the retention of {} minutes",
                        self.limits.retention.num_minutes()
                    ),
                });
            }
        }
        let mut series = self
            .series
            .write()
            .expect("no panic while holding the lock");
        let new: std::collections::HashSet<&SeriesKey> = samples
            .iter()
            .map(|s| &s.key)
            .filter(|k| !series.contains_key(*k))
            .collect();
        if series.len() + new.len() > self.limits.series {
            return Err(PushError::TooManySeries(self.limits.series));
        }
        let kept = samples.len();
        for s in samples {
            let queue = series.entry(s.key).or_default();
            // Kept in time order: a late sample is put in its place.
            let at = queue.partition_point(|q| q.at <= s.at);
            if at > 0 && queue[at - 1].at == s.at {
                queue[at - 1].value = s.value;
            } else {
                queue.insert(
                    at,
                    Sample {
                        at: s.at,
                        value: s.value,
                    },
                );
            }
            while queue.len() > self.limits.per_series
                || queue
                    .front()
                    .is_some_and(|f| f.at < now - self.limits.retention)
            {
                queue.pop_front();
            }
        }
        Ok(kept)
    }

    /// How many series are kept.
    pub fn series_count(&self) -> usize {
        self.series
            .read()
            .expect("no panic while holding the lock")
            .len()
    }

    /// The selector's value at `at`: the sum over matching series of each one's last
    /// sample within the lookback, stamped with the oldest of them. No matching sample is
    /// "no data" ([`MetricObservation::Empty`]), not 0.
    pub fn instant(&self, selector: &str, at: Timestamp) -> MetricObservation {
        let selector = match Selector::parse(selector) {
            Ok(s) => s,
            Err(e) => return MetricObservation::Failed(format!("pushed metric: {e}")),
        };
        let series = self.series.read().expect("no panic while holding the lock");
        match self.sum_at(&series, &selector, at) {
            Some(sample) => MetricObservation::Samples(vec![sample]),
            None => MetricObservation::Empty,
        }
    }

    /// The selector's value at every `step` from `start` to `end`, as [`Self::instant`]
    /// would have read it then; instants without data are left out.
    pub fn range(
        &self,
        selector: &str,
        start: Timestamp,
        end: Timestamp,
        step: TimeDelta,
    ) -> MetricObservation {
        let selector = match Selector::parse(selector) {
            Ok(s) => s,
            Err(e) => return MetricObservation::Failed(format!("pushed metric: {e}")),
        };
        let step = step.max(TimeDelta::seconds(1));
        let series = self.series.read().expect("no panic while holding the lock");
        let mut samples = Vec::new();
        let mut t = start;
        while t <= end {
            samples.extend(self.sum_at(&series, &selector, t));
            t += step;
        }
        if samples.is_empty() {
            MetricObservation::Empty
        } else {
            MetricObservation::Samples(samples)
        }
    }

    fn sum_at(
        &self,
        series: &HashMap<SeriesKey, VecDeque<Sample>>,
        selector: &Selector,
        at: Timestamp,
    ) -> Option<Sample> {
        let mut sum: Option<Sample> = None;
        for (key, samples) in series {
            if !selector.matches(&key.name, &key.labels) {
                continue;
            }
            let before = samples.partition_point(|s| s.at <= at);
            let Some(last) = before.checked_sub(1).map(|i| samples[i]) else {
                continue;
            };
            if at - last.at > self.limits.lookback {
                continue;
            }
            sum = Some(match sum {
                None => last,
                Some(s) => Sample {
                    at: s.at.min(last.at),
                    value: s.value + last.value,
                },
            });
        }
        sum
    }
}

fn is_label(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, at: i64) -> PushedSample {
        PushedSample {
            key: SeriesKey {
                name: name.to_owned(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            value,
            at: t(at),
        }
    }

    fn value(o: MetricObservation) -> Option<f64> {
        match o {
            MetricObservation::Samples(s) => s.last().map(|s| s.value),
            _ => None,
        }
    }

    #[test]
    fn the_latest_sample_of_each_matching_series_is_summed() {
        let m = PushedMetrics::default();
        m.push(
            vec![
                sample("depth", &[("queue", "a")], 3.0, 0),
                sample("depth", &[("queue", "a")], 5.0, 10),
                sample("depth", &[("queue", "b")], 7.0, 5),
                sample("other", &[], 100.0, 5),
            ],
            t(10),
        )
        .unwrap();
        assert_eq!(value(m.instant("depth", t(20))), Some(12.0));
        assert_eq!(value(m.instant(r#"depth{queue="a"}"#, t(20))), Some(5.0));
        assert_eq!(
            value(m.instant(r#"depth{queue="a"}"#, t(5))),
            Some(3.0),
            "as of then"
        );
        assert_eq!(
            m.instant(r#"depth{queue="c"}"#, t(20)),
            MetricObservation::Empty
        );
        assert_eq!(
            m.instant("depth", t(10 + 301)),
            MetricObservation::Empty,
            "stale"
        );
        assert!(matches!(
            m.instant("depth{", t(20)),
            MetricObservation::Failed(_)
        ));
    }

    #[test]
    fn a_range_reads_what_each_instant_would_have() {
        let m = PushedMetrics::default();
        m.push(
            (0..10)
                .map(|i| sample("load", &[], i as f64, i * 10))
                .collect(),
            t(100),
        )
        .unwrap();
        match m.range("load", t(-20), t(100), TimeDelta::seconds(30)) {
            MetricObservation::Samples(s) => {
                let values: Vec<f64> = s.iter().map(|s| s.value).collect();
                assert_eq!(values, vec![1.0, 4.0, 7.0, 9.0], "t=10,40,70,100");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_sample_refuses_the_whole_push_and_names_it() {
        let m = PushedMetrics::default();
        let e = m
            .push(
                vec![sample("ok", &[], 1.0, 0), sample("ok", &[], f64::NAN, 0)],
                t(0),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "samples[1].value: must be a finite number");
        assert_eq!(m.series_count(), 0, "nothing kept");
        for (bad, field) in [
            (sample("9x", &[], 1.0, 0), "name"),
            (sample("x{a=\"1\"}", &[], 1.0, 0), "name"),
            (sample("x", &[("bad-label", "1")], 1.0, 0), "labels"),
            (sample("x", &[], 1.0, 3600), "timestamp"),
            (sample("x", &[], 1.0, -3 * 3600), "timestamp"),
        ] {
            match m.push(vec![bad], t(0)) {
                Err(PushError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn limits_bound_the_memory() {
        let m = PushedMetrics::new(PushedLimits {
            per_series: 3,
            series: 2,
            ..PushedLimits::default()
        });
        m.push(
            (0..5).map(|i| sample("a", &[], i as f64, i)).collect(),
            t(5),
        )
        .unwrap();
        assert_eq!(
            m.range("a", t(0), t(5), TimeDelta::seconds(1)),
            MetricObservation::Samples(
                (2..=5)
                    .map(|i| Sample {
                        at: t(i.min(4)),
                        value: i.min(4) as f64
                    })
                    .collect()
            ),
            "only the last three samples are kept (t=2 reads the one at 2)"
        );
        m.push(vec![sample("b", &[], 1.0, 5)], t(5)).unwrap();
        assert_eq!(
            m.push(vec![sample("c", &[], 1.0, 5)], t(5)),
            Err(PushError::TooManySeries(2))
        );
    }
}
