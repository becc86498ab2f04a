//! A policy's `predictive` block, in samples of the evaluation interval.

use ballast_core::{Policy, PredictiveMode};
use chrono::TimeDelta;

use crate::ForecastError;

/// What the forecaster needs to know, in samples: one sample per evaluation interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The time between samples (the policy's evaluation interval).
    pub step: TimeDelta,
    /// Samples the forecast covers: `ceil(lead time / step)`, at least 1.
    pub horizon: usize,
    /// Seasonal periods in samples (each at least 2), shortest first.
    pub periods: Vec<usize>,
    /// Samples kept and trained on.
    pub history: usize,
    /// Samples between trainings.
    pub retrain_every: usize,
    /// Recent forecasts scored for the accuracy figures.
    pub accuracy_window: usize,
    /// Confidence level of the interval.
    pub confidence: f64,
    /// The metric is per replica: the forecaster is fed value × ready replicas.
    pub per_replica: bool,
    /// `forecast_only`: still forecast and score, so the figures are there when the policy
    /// is switched to `scale`.
    pub mode: PredictiveMode,
}

impl Settings {
    /// The settings of `policy`'s predictive block when the policy is evaluated every
    /// `interval`.
    pub fn from_policy(policy: &Policy, interval: TimeDelta) -> Result<Settings, ForecastError> {
        let p = policy
            .predictive
            .as_ref()
            .ok_or_else(|| ForecastError::NotPredictive(policy.name.clone()))?;
        if interval <= TimeDelta::zero() {
            return Err(ForecastError::BadInterval(interval));
        }
        let steps = |d: TimeDelta| -> usize {
            let s = d.num_milliseconds() as f64 / interval.num_milliseconds() as f64;
            // Whole numbers of steps stay whole despite float noise.
            (s - 1e-9).ceil().max(0.0) as usize
        };
        let mut periods: Vec<usize> = p
            .seasonality
            .iter()
            .map(|d| steps(*d))
            .filter(|s| *s >= 2)
            .collect();
        periods.sort_unstable();
        periods.dedup();
        Ok(Settings {
            step: interval,
            horizon: steps(p.lead_time(interval)).max(1),
            periods,
            history: steps(p.history).max(1),
            retrain_every: steps(p.retrain_every).max(1),
            accuracy_window: steps(p.accuracy_window).max(1),
            confidence: p.confidence,
            per_replica: policy.metrics[p.metric].per_replica,
            mode: p.mode,
        })
    }

    /// The shortest seasonal period, by which forecast errors are grouped by phase.
    pub fn phase_period(&self) -> Option<usize> {
        self.periods.first().copied()
    }

    /// How far a trained model's forecast path reaches: two retraining intervals and the
    /// lead time, so a late training does not leave the strategy without a forecast.
    pub fn path_len(&self) -> usize {
        2 * self.retrain_every + self.horizon + 1
    }
}
