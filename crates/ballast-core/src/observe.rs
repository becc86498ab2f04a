//! What the engine sees at one evaluation: the target's current count and, for each metric
//! of the policy, what its source returned.

use crate::policy::Timestamp;

/// One sample of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When the value was observed.
    pub at: Timestamp,
    /// The value; NaN and infinities are bad data.
    pub value: f64,
}

/// What a metric source returned for one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricObservation {
    /// Samples, oldest first; the last is the current value. Several samples (from a range
    /// query, or retained since the last evaluation) let rules check their durations.
    Samples(Vec<Sample>),
    /// The query succeeded but returned no series: "no data", not 0 (unless the metric
    /// says `on_empty: zero`).
    Empty,
    /// The query failed; the message says why (the source's own words).
    Failed(String),
    /// The metric was not fetched at all.
    NotFetched,
}

impl MetricObservation {
    /// A single sample.
    pub fn value(at: Timestamp, value: f64) -> MetricObservation {
        MetricObservation::Samples(vec![Sample { at, value }])
    }
}

/// Everything one decision needs besides the policy, its state and `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// The target's current count: what it has been asked to run (Kubernetes'
    /// `spec.replicas`, servers existing or being created), not only the ready ones, so
    /// that a change still converging is not decided again.
    pub current: u32,
    /// How many of those are ready, when the executor knows: per-replica metrics describe
    /// only ready replicas, so replicas still starting are counted as carrying no load yet
    /// (as Kubernetes' HPA counts unready pods on a scale-up). `None` means all of them.
    pub ready: Option<u32>,
    /// One entry per [`crate::Policy::metrics`], in the same order.
    pub metrics: Vec<MetricObservation>,
    /// Price of one replica-hour from the executor, overriding the policy's.
    pub price_per_replica_hour: Option<f64>,
}

impl Observations {
    /// Observations with no metric fetched yet.
    pub fn new(current: u32, metric_count: usize) -> Observations {
        Observations {
            current,
            ready: None,
            metrics: vec![MetricObservation::NotFetched; metric_count],
            price_per_replica_hour: None,
        }
    }
}

/// A forecast of the predictive strategy's metric over the lead time, made outside the core
/// (training and forecasting are not pure computations of one tick: see the
/// `ballast-forecast` crate) and handed to [`crate::decide_with_forecast`].
///
/// For a per-replica metric the figures are totals: the value times the replicas it
/// describes, so that dividing by the per-replica target gives a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The time of the newest sample the forecast saw.
    pub made_at: Timestamp,
    /// The span after `made_at` that the forecast covers.
    pub lead: chrono::TimeDelta,
    /// The highest point forecast within the lead time.
    pub peak: f64,
    /// The lower bound of the interval around `peak`, at `confidence`.
    pub lower: f64,
    /// The upper bound of the interval around `peak`, at `confidence`.
    pub upper: f64,
    /// Confidence level of the interval (between 0 and 1).
    pub confidence: f64,
    /// When the model behind the forecast was trained.
    pub trained_at: Timestamp,
    /// How the forecaster's recent forecasts fared against what happened.
    pub accuracy: Accuracy,
}

/// How recent forecasts fared against what actually happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Forecasts scored (their whole lead time has been observed).
    pub scored: usize,
    /// Mean absolute scaled error: the mean absolute error of the scored forecasts over the
    /// mean absolute error of the seasonal naive forecast on the training history. Below 1
    /// is better than the seasonal naive forecast. `None` until enough are scored.
    pub mase: Option<f64>,
    /// Share of scored outcomes that fell inside the interval (0 to 1). `None` until enough
    /// are scored.
    pub coverage: Option<f64>,
}
