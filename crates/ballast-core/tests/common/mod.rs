//! Helpers shared by the simulation tests: policies from YAML, instants from text, and
//! metric observations described by a small value type.

use ballast_core::{Format, Metric, MetricObservation, Policy, Sample, Timestamp, load_policies};
use chrono::{DateTime, TimeDelta, Utc};

/// The one policy in a YAML document; panics with every problem when it is invalid.
pub fn policy(yaml: &str) -> Policy {
    let mut policies = match load_policies(yaml, Format::Yaml) {
        Ok(p) => p,
        Err(e) => panic!("the test policy is invalid:\n{e}"),
    };
    assert_eq!(policies.len(), 1, "one policy per test document");
    policies.remove(0)
}

/// An instant written as RFC 3339.
pub fn at(rfc3339: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("`{rfc3339}`: {e}"))
        .with_timezone(&Utc)
}

/// What a metric source returned at one tick, in the terms of the tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum M {
    /// A fresh sample taken at the tick (NaN and infinities included).
    V(f64),
    /// A sample older than the metric's staleness limit.
    Stale(f64),
    /// The query returned no series.
    Empty,
    /// The query failed.
    Failed,
    /// The metric was not fetched.
    NotFetched,
}

/// How old a [`M::Stale`] sample is beyond the metric's staleness limit.
pub const STALE_BY: TimeDelta = TimeDelta::seconds(60);

impl M {
    /// The observation a source would hand to the engine at `now`.
    pub fn observe(self, now: Timestamp, metric: &Metric) -> MetricObservation {
        match self {
            M::V(value) => MetricObservation::value(now, value),
            M::Stale(value) => MetricObservation::Samples(vec![Sample {
                at: now - metric.max_staleness - STALE_BY,
                value,
            }]),
            M::Empty => MetricObservation::Empty,
            M::Failed => MetricObservation::Failed("connection refused".to_owned()),
            M::NotFetched => MetricObservation::NotFetched,
        }
    }

    /// Whether the engine must treat this as bad data (the rule of `decide`'s step 1).
    pub fn is_bad(self, metric: &Metric) -> bool {
        match self {
            M::V(v) => !v.is_finite(),
            M::Stale(_) | M::Failed | M::NotFetched => true,
            M::Empty => !metric.empty_is_zero,
        }
    }

    /// Parses a series written as whitespace-separated items, each optionally repeated
    /// with `*n`: a number, `nan`, `inf`, `stale:<number>`, `empty`, `failed`, or `none`
    /// (not fetched). `"30*2 70*5 nan"` is 30, 30, 70, 70, 70, 70, 70, NaN.
    pub fn series(text: &str) -> Vec<M> {
        let mut out = Vec::new();
        for token in text.split_whitespace() {
            let (item, times) = match token.split_once('*') {
                Some((item, n)) => (item, n.parse::<usize>().expect("a repeat count")),
                None => (token, 1),
            };
            let m = match item {
                "nan" => M::V(f64::NAN),
                "inf" => M::V(f64::INFINITY),
                "empty" => M::Empty,
                "failed" => M::Failed,
                "none" => M::NotFetched,
                _ => match item.strip_prefix("stale:") {
                    Some(v) => M::Stale(v.parse().expect("a number after stale:")),
                    None => M::V(item.parse().unwrap_or_else(|_| panic!("`{item}`?"))),
                },
            };
            out.extend(std::iter::repeat_n(m, times));
        }
        out
    }
}
