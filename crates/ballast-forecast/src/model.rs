//! Training: MSTL with the bucketed AutoETS trend, and the forecast path it leaves.

use augurs::mstl::{MSTLModel, TrendModel};
use augurs::{Fit, Predict};
use ballast_core::Timestamp;

use crate::ForecastError;
use crate::settings::Settings;
use crate::trend::BucketedEts;

/// The fewest samples a model is trained on.
pub const MIN_TRAINING_SAMPLES: usize = 60;

/// A trained model: the path it expects the metric to follow from the newest sample it was
/// trained on, and the scale its errors are measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Index (in the forecaster's numbering) of the newest training sample.
    pub last_trained: u64,
    /// The model's value at `last_trained`, `last_trained + 1`, ...: in-sample for the
    /// first, forecast after.
    pub path: Vec<f64>,
    /// MASE's scale: the mean absolute error, on the training history, of the seasonal
    /// naive forecast of what the forecaster forecasts (see [`naive_error`]).
    pub scale: f64,
    /// Seasonal periods in use (those the history holds twice), in samples.
    pub periods: Vec<usize>,
    /// Samples trained on.
    pub samples: usize,
    /// When it was trained (the time of its newest sample).
    pub trained_at: Timestamp,
}

impl Model {
    /// The model's value at sample `index`, if the path reaches it.
    pub fn at(&self, index: u64) -> Option<f64> {
        let offset = index.checked_sub(self.last_trained)?;
        self.path.get(usize::try_from(offset).ok()?).copied()
    }
}

/// Trains a model on `history` (oldest first, every value finite), whose newest sample has
/// index `last_index` and time `trained_at`.
///
/// MSTL (augurs) removes one seasonal component per period of `settings` that the history
/// holds at least twice; AutoETS on bucket means forecasts what is left. Without such a
/// period, AutoETS alone. The path reaches [`Settings::path_len`] samples.
pub fn train(
    history: &[f64],
    last_index: u64,
    trained_at: Timestamp,
    settings: &Settings,
) -> Result<Model, ForecastError> {
    let n = history.len();
    if n < MIN_TRAINING_SAMPLES {
        return Err(ForecastError::NotEnoughHistory {
            have: n,
            need: MIN_TRAINING_SAMPLES,
        });
    }
    let periods: Vec<usize> = settings
        .periods
        .iter()
        .copied()
        .filter(|p| 2 * p <= n)
        .collect();
    let trend = BucketedEts::for_len(n);
    let len = settings.path_len();
    let failed = |e: &dyn std::fmt::Display| ForecastError::TrainingFailed(e.to_string());
    let (last, ahead) = if periods.is_empty() {
        let fitted = trend.fit(history).map_err(|e| failed(&e))?;
        let inside = fitted.predict_in_sample(None).map_err(|e| failed(&e))?;
        let ahead = fitted.predict(len, None).map_err(|e| failed(&e))?;
        (inside.point.last().copied(), ahead.point)
    } else {
        let fitted = MSTLModel::new(periods.clone(), trend)
            .fit(history)
            .map_err(|e| failed(&e))?;
        let inside = fitted.predict_in_sample(None).map_err(|e| failed(&e))?;
        let ahead = fitted.predict(len, None).map_err(|e| failed(&e))?;
        (inside.point.last().copied(), ahead.point)
    };
    let last = last.ok_or_else(|| failed(&"no in-sample value"))?;
    let mut path = Vec::with_capacity(len + 1);
    path.push(last);
    path.extend(ahead);
    if let Some(bad) = path.iter().find(|v| !v.is_finite()) {
        return Err(failed(&format!("the model forecast {bad}")));
    }
    let scale = naive_error(history, periods.first().copied(), settings.horizon);
    Ok(Model {
        last_trained: last_index,
        path,
        scale,
        periods,
        samples: n,
        trained_at,
    })
}

/// The mean absolute error on `history` of the seasonal naive forecast of the peak over the
/// next `horizon` samples: made at sample `t`, it says the peak of `t + 1 ..= t + horizon`
/// equals the peak of the same samples one `period` earlier, or without a period, that
/// it equals `y[t]` (the naive forecast). This is MASE's scale (Hyndman & Koehler, 2006)
/// for the quantity the forecaster forecasts, so a MASE of 1 means "as good as the
/// seasonal naive forecast" and below 1 better.
pub fn naive_error(history: &[f64], period: Option<usize>, horizon: usize) -> f64 {
    let n = history.len();
    let lag = period.unwrap_or(0);
    let peak = |from: usize| {
        history[from..from + horizon]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let errors: Vec<f64> = (lag..n.saturating_sub(horizon))
        .map(|t| {
            let naive = if lag == 0 {
                history[t]
            } else {
                peak(t + 1 - lag)
            };
            (peak(t + 1) - naive).abs()
        })
        .collect();
    if errors.is_empty() {
        0.0
    } else {
        errors.iter().sum::<f64>() / errors.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::PredictiveMode;
    use chrono::{DateTime, TimeDelta};

    fn settings(periods: Vec<usize>) -> Settings {
        Settings {
            step: TimeDelta::minutes(1),
            horizon: 3,
            periods,
            history: 10_000,
            retrain_every: 60,
            accuracy_window: 1440,
            confidence: 0.95,
            per_replica: false,
            mode: PredictiveMode::Scale,
        }
    }

    /// A daily-like cycle of 96 samples around a slowly rising level.
    fn cycle(i: usize) -> f64 {
        let phase = (i % 96) as f64 / 96.0 * std::f64::consts::TAU;
        200.0 + 0.05 * i as f64 + 40.0 * phase.sin()
    }

    #[test]
    fn the_path_continues_a_seasonal_series_from_its_last_sample() {
        let y: Vec<f64> = (0..96 * 6).map(cycle).collect();
        let model = train(&y, 575, DateTime::UNIX_EPOCH, &settings(vec![96])).unwrap();
        assert_eq!(model.periods, vec![96]);
        assert_eq!(model.path.len(), settings(vec![96]).path_len() + 1);
        assert!(
            (model.path[0] - cycle(575)).abs() < 2.0,
            "{}",
            model.path[0]
        );
        for h in [1, 10, 48, 96] {
            let want = cycle(575 + h);
            let got = model.at(575 + h as u64).unwrap();
            assert!((got - want).abs() < 3.0, "h={h}: {got} vs {want}");
        }
        assert_eq!(model.at(574), None);
        // MASE's scale: the day-over-day change of the level, 96 × 0.05.
        assert!((model.scale - 4.8).abs() < 1e-6, "{}", model.scale);
    }

    #[test]
    fn the_naive_error_is_of_the_peak_over_the_horizon() {
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        // Naive: from t = 0, peak(3, 2) − 1 = 2; t = 1: peak(2, 5) − 3 = 2;
        // t = 2: peak(5, 4) − 2 = 3.
        assert!((naive_error(&y, None, 2) - 7.0 / 3.0).abs() < 1e-12);
        // Seasonal, period 2: t = 2: peak(5, 4) vs peak(3, 2) → 2.
        assert!((naive_error(&y, Some(2), 2) - 2.0).abs() < 1e-12);
        assert_eq!(naive_error(&y, Some(9), 2), 0.0);
    }

    #[test]
    fn a_period_the_history_does_not_hold_twice_is_left_out() {
        let y: Vec<f64> = (0..150).map(cycle).collect();
        let model = train(&y, 149, DateTime::UNIX_EPOCH, &settings(vec![96])).unwrap();
        assert!(model.periods.is_empty());
    }

    #[test]
    fn too_little_history_is_an_error_that_says_how_much_is_needed() {
        let err = train(&[1.0; 10], 9, DateTime::UNIX_EPOCH, &settings(vec![])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not enough history to train on: 10 samples, at least 60 needed"
        );
    }
}
