//! Every forecast kept and scored against what happened: MASE against the seasonal naive
//! forecast, coverage of the interval, and the error spread the next intervals are built
//! from.

use std::collections::VecDeque;

use ballast_core::Accuracy;

/// Forecasts that must be scored before the accuracy figures are given (fewer when the
/// scoring window is shorter).
pub const MIN_SCORED: usize = 60;

/// How much a phase's error spread keeps from one cycle to the next (about a week of days).
const PHASE_MEMORY: f64 = 6.0 / 7.0;

/// Phases on either side pooled with a phase: a jump the forecast missed by a sample still
/// widens the interval where it happens.
const PHASE_NEIGHBOURS: usize = 1;

/// Weight of the recent overall error spread in each phase's estimate, in cycles' worth.
const PRIOR_WEIGHT: f64 = 1.0;

/// Step size of the online calibration of the interval (Gibbs & Candès' γ).
pub const CALIBRATION_STEP: f64 = 0.005;

/// The smallest miss rate the calibration aims at: the widest interval it asks for is
/// about ±6.1 σ.
const MIN_MISS_RATE: f64 = 1e-9;

/// A forecast waiting for its outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pending {
    /// Index of the newest sample when it was made; it covers the next `horizon` samples.
    pub index: u64,
    /// Forecast peak over the lead time.
    pub peak: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
    /// MASE's scale of the model that made it.
    pub scale: f64,
}

/// What one scored forecast left behind.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    /// Absolute error over the scale.
    scaled: f64,
    /// The outcome fell inside the interval.
    covered: bool,
}

/// Exponentially weighted sum of squared errors.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Spread {
    weight: f64,
    squares: f64,
}

impl Spread {
    fn add(&mut self, error: f64, keep: f64) {
        self.weight = self.weight * keep + 1.0;
        self.squares = self.squares * keep + error * error;
    }

    fn variance(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.squares / self.weight)
    }
}

/// The record of one forecaster's forecasts.
///
/// A forecast made when sample `i` was the newest covers samples `i + 1 ..= i + horizon`;
/// it is scored once `i + horizon` has been observed, against the highest of those
/// samples (the forecast is of the peak over the lead time). The scores kept are the last
/// `window` ones:
///
/// - **MASE**: the mean of `|actual − forecast| / scale`, where `scale` is the mean
///   absolute error of the seasonal naive forecast on the history the model was trained on
///   (Hyndman & Koehler, 2006). Below 1, the forecasts beat the seasonal naive forecast's
///   typical error.
/// - **Coverage**: the share of outcomes inside the forecast's interval.
///
/// Errors also feed the interval of later forecasts: per phase of the shortest seasonal
/// period (with its neighbours), an exponentially weighted mean of squared errors, blended
/// with the overall recent one. So the interval is wide where the forecaster has missed
/// before (a daily ramp, an hourly step) and narrow where it has not. Its half-width is
/// `z·σ`, with `z` calibrated online (adaptive conformal inference, Gibbs & Candès, 2021):
/// the miss rate aimed at starts at `1 − confidence` and moves by
/// [`CALIBRATION_STEP`] `× (1 − confidence − missed)` with every outcome, so that when
/// outcomes fall outside more often than the confidence allows (errors with heavier tails
/// than a normal one), the interval widens until they do not.
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    horizon: usize,
    /// `1 − confidence`.
    target_miss: f64,
    /// The miss rate the interval is currently built for.
    aimed_miss: f64,
    window: usize,
    phase_period: Option<usize>,
    pending: VecDeque<Pending>,
    recent: VecDeque<Scored>,
    scaled_sum: f64,
    covered: usize,
    phases: Vec<Spread>,
    overall: Spread,
    overall_keep: f64,
    scored_total: u64,
}

impl Ledger {
    /// An empty ledger for forecasts over `horizon` samples with intervals at
    /// `confidence`, keeping the last `window` scores, with errors grouped by phase of
    /// `phase_period` samples when given.
    pub fn new(
        horizon: usize,
        confidence: f64,
        window: usize,
        phase_period: Option<usize>,
    ) -> Ledger {
        let horizon = horizon.max(1);
        let window = window.max(1);
        let span = phase_period.unwrap_or(window).max(2) as f64;
        let target_miss = (1.0 - confidence).clamp(MIN_MISS_RATE, 1.0);
        Ledger {
            horizon,
            target_miss,
            aimed_miss: target_miss,
            window,
            phase_period,
            pending: VecDeque::new(),
            recent: VecDeque::with_capacity(window),
            scaled_sum: 0.0,
            covered: 0,
            phases: vec![Spread::default(); phase_period.unwrap_or(0)],
            overall: Spread::default(),
            overall_keep: 1.0 - 1.0 / span,
            scored_total: 0,
        }
    }

    /// Keeps a forecast until its outcome is known. A second forecast from the same newest
    /// sample replaces the first.
    pub fn record(&mut self, forecast: Pending) {
        if self
            .pending
            .back()
            .is_some_and(|p| p.index >= forecast.index)
        {
            self.pending.pop_back();
        }
        self.pending.push_back(forecast);
    }

    /// Scores every forecast whose lead time ends at or before sample `newest`; `sample`
    /// gives the observed value at an index (`None`: no longer known, and the forecast is
    /// dropped unscored).
    pub fn score(&mut self, newest: u64, sample: impl Fn(u64) -> Option<f64>) {
        let horizon = self.horizon as u64;
        while let Some(p) = self.pending.front().copied() {
            if p.index + horizon > newest {
                break;
            }
            self.pending.pop_front();
            let actual = (p.index + 1..=p.index + horizon)
                .map(&sample)
                .try_fold(f64::NEG_INFINITY, |m, v| v.map(|v| m.max(v)));
            if let Some(actual) = actual {
                self.add(p, actual);
            }
        }
    }

    fn add(&mut self, p: Pending, actual: f64) {
        let error = actual - p.peak;
        let scaled = if p.scale > 0.0 {
            error.abs() / p.scale
        } else if error == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        let covered = p.lower <= actual && actual <= p.upper;
        if self.recent.len() == self.window
            && let Some(old) = self.recent.pop_front()
        {
            self.scaled_sum -= old.scaled;
            self.covered -= usize::from(old.covered);
        }
        self.recent.push_back(Scored { scaled, covered });
        self.scaled_sum += scaled;
        self.covered += usize::from(covered);
        if !self.scaled_sum.is_finite() {
            // An infinite score left the window: add the rest up again.
            self.scaled_sum = self.recent.iter().map(|s| s.scaled).sum();
        }
        self.scored_total += 1;
        let missed = if covered { 0.0 } else { 1.0 };
        self.aimed_miss = (self.aimed_miss + CALIBRATION_STEP * (self.target_miss - missed))
            .clamp(MIN_MISS_RATE, 1.0);
        self.overall.add(error, self.overall_keep);
        if let Some(phase) = self.phase(p.index + 1) {
            self.phases[phase].add(error, PHASE_MEMORY);
        }
    }

    fn phase(&self, index: u64) -> Option<usize> {
        self.phase_period
            .filter(|m| *m > 0)
            .map(|m| (index % m as u64) as usize)
    }

    /// The standard deviation expected of the error of a forecast whose first sample is
    /// `index`: the errors at the same phase (and its neighbours) blended with the overall
    /// recent errors; 0 before anything is scored.
    pub fn sigma(&self, index: u64) -> f64 {
        let overall = self.overall.variance().unwrap_or(0.0);
        let Some(phase) = self.phase(index) else {
            return overall.sqrt();
        };
        let m = self.phases.len();
        let mut pooled = Spread::default();
        for d in 0..=2 * PHASE_NEIGHBOURS {
            let s = self.phases[(phase + m + d - PHASE_NEIGHBOURS) % m];
            pooled.weight += s.weight;
            pooled.squares += s.squares;
        }
        ((pooled.squares + PRIOR_WEIGHT * overall) / (pooled.weight + PRIOR_WEIGHT)).sqrt()
    }

    /// The half-width of the interval of a forecast whose first sample is `index`:
    /// `z·σ`, with `z` the normal quantile of the calibrated miss rate.
    pub fn half_width(&self, index: u64) -> f64 {
        self.z() * self.sigma(index)
    }

    /// The normal quantile the interval uses now: `Φ⁻¹(1 − aimed miss rate / 2)`.
    pub fn z(&self) -> f64 {
        distrs::Normal::ppf(1.0 - self.aimed_miss / 2.0, 0.0, 1.0)
    }

    /// The figures over the last scored forecasts (MASE and coverage once
    /// [`MIN_SCORED`] are scored, or the whole window when it is shorter).
    pub fn accuracy(&self) -> Accuracy {
        let n = self.recent.len();
        let known = n > 0 && n >= MIN_SCORED.min(self.window);
        Accuracy {
            scored: n,
            mase: known.then(|| self.scaled_sum / n as f64),
            coverage: known.then(|| self.covered as f64 / n as f64),
        }
    }

    /// Forecasts scored since the ledger was made.
    pub fn scored_total(&self) -> u64 {
        self.scored_total
    }

    /// Forecasts waiting for their outcome.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecast(index: u64, peak: f64, half_width: f64) -> Pending {
        Pending {
            index,
            peak,
            lower: peak - half_width,
            upper: peak + half_width,
            scale: 2.0,
        }
    }

    #[test]
    fn a_forecast_is_scored_against_the_peak_of_its_lead_time_once_it_has_passed() {
        let y = [0.0, 5.0, 9.0, 7.0, 1.0];
        let mut ledger = Ledger::new(3, 0.95, 10, None);
        ledger.record(forecast(0, 8.0, 0.5));
        ledger.score(2, |i| y.get(i as usize).copied());
        assert_eq!(ledger.pending(), 1, "samples 1..=3 are not all in yet");
        ledger.score(3, |i| y.get(i as usize).copied());
        assert_eq!(ledger.pending(), 0);
        assert_eq!(ledger.scored_total(), 1);
        // Peak of samples 1..=3 is 9; forecast 8 ± 0.5 missed it by 1; scale 2.
        assert_eq!(
            ledger.recent[0],
            Scored {
                scaled: 0.5,
                covered: false
            }
        );
    }

    #[test]
    fn mase_and_coverage_are_means_over_the_window_once_enough_are_scored() {
        let mut ledger = Ledger::new(1, 0.95, 4, None);
        // Errors 0, 2, 4, 6, 8 against scale 2, each forecast ± 3.
        let y: Vec<f64> = (0..6).map(|i| 10.0 + 2.0 * i as f64).collect();
        for i in 0..5u64 {
            ledger.record(forecast(
                i,
                10.0 + 2.0 * (i + 1) as f64 - 2.0 * i as f64,
                3.0,
            ));
            ledger.score(i + 1, |j| y.get(j as usize).copied());
        }
        // The window keeps the last 4: errors 2, 4, 6, 8 → scaled 1, 2, 3, 4.
        let a = ledger.accuracy();
        assert_eq!(a.scored, 4);
        assert_eq!(a.mase, Some(2.5));
        // Inside ± 3: only the error of 2.
        assert_eq!(a.coverage, Some(0.25));
    }

    #[test]
    fn accuracy_is_unknown_until_enough_forecasts_are_scored() {
        let mut ledger = Ledger::new(1, 0.95, 1440, None);
        for i in 0..(MIN_SCORED as u64 - 1) {
            ledger.record(forecast(i, 1.0, 1.0));
            ledger.score(i + 1, |_| Some(1.0));
        }
        assert_eq!(ledger.accuracy().mase, None);
        ledger.record(forecast(99, 1.0, 1.0));
        ledger.score(100, |_| Some(1.0));
        assert_eq!(ledger.accuracy().mase, Some(0.0));
        assert_eq!(ledger.accuracy().coverage, Some(1.0));
    }

    #[test]
    fn a_perfect_forecast_of_a_constant_series_scores_zero_and_a_miss_scores_infinity() {
        let mut ledger = Ledger::new(1, 0.95, 2, None);
        let mut p = forecast(0, 3.0, 0.0);
        p.scale = 0.0;
        ledger.record(p);
        ledger.score(1, |_| Some(3.0));
        assert_eq!(ledger.recent[0].scaled, 0.0);
        ledger.record(Pending { index: 1, ..p });
        ledger.score(2, |_| Some(4.0));
        assert_eq!(ledger.accuracy().mase, Some(f64::INFINITY));
        // Two finite scores push the infinite one out of the window again.
        for i in 2..4 {
            ledger.record(Pending { index: i, ..p });
            ledger.score(i + 1, |_| Some(3.0));
        }
        assert_eq!(ledger.accuracy().mase, Some(0.0));
    }

    #[test]
    fn the_interval_is_wide_at_the_phase_where_forecasts_missed_and_narrow_elsewhere() {
        // Period 10: every day the forecast made at phase 4 misses by 6, the others hit.
        let mut ledger = Ledger::new(1, 0.95, 1000, Some(10));
        for i in 0..100u64 {
            let miss = if (i + 1) % 10 == 5 { 6.0 } else { 0.0 };
            ledger.record(forecast(i, 0.0, 1.0));
            ledger.score(i + 1, |_| Some(miss));
        }
        let at_miss = ledger.sigma(105);
        let neighbour = ledger.sigma(104);
        let far = ledger.sigma(101);
        assert!(at_miss > 3.0, "{at_miss}");
        assert!(
            neighbour > 3.0,
            "the neighbouring phase is pooled: {neighbour}"
        );
        assert!(far < 1.0, "{far}");
        // Without phases, one spread for all.
        let mut flat = Ledger::new(1, 0.95, 1000, None);
        for i in 0..100u64 {
            let miss = if (i + 1) % 10 == 5 { 6.0 } else { 0.0 };
            flat.record(forecast(i, 0.0, 1.0));
            flat.score(i + 1, |_| Some(miss));
        }
        assert!((flat.sigma(105) - flat.sigma(101)).abs() < 1e-12);
    }

    #[test]
    fn the_interval_widens_while_outcomes_fall_outside_more_often_than_the_confidence_allows() {
        let mut ledger = Ledger::new(1, 0.9, 100, None);
        let start = ledger.z();
        assert!((start - 1.645).abs() < 1e-3, "{start}");
        // Every other outcome misses: far more than 10 %.
        for i in 0..200u64 {
            ledger.record(forecast(i, 0.0, 1.0));
            let actual = if i % 2 == 0 { 5.0 } else { 0.0 };
            ledger.score(i + 1, |_| Some(actual));
        }
        let wide = ledger.z();
        assert!(wide > 2.5, "{wide}");
        // Then every outcome falls inside: the interval narrows again, slowly.
        for i in 200..2200u64 {
            ledger.record(forecast(i, 0.0, 1.0));
            ledger.score(i + 1, |_| Some(0.0));
        }
        assert!(ledger.z() < wide);
        assert!(ledger.half_width(3000) >= 0.0);
    }

    #[test]
    fn a_newer_forecast_from_the_same_sample_replaces_the_older_one() {
        let mut ledger = Ledger::new(2, 0.95, 10, None);
        ledger.record(forecast(3, 1.0, 1.0));
        ledger.record(forecast(3, 5.0, 1.0));
        assert_eq!(ledger.pending(), 1);
        ledger.score(5, |_| Some(5.0));
        assert_eq!(ledger.recent[0].scaled, 0.0);
    }
}
