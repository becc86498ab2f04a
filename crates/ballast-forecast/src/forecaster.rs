//! One policy's forecaster: its metric history, trained model and ledger.

use std::collections::VecDeque;

use ballast_core::{Accuracy, Forecast, Policy, Timestamp};
use chrono::TimeDelta;

use crate::ForecastError;
use crate::accuracy::{Ledger, MIN_SCORED, Pending};
use crate::model::{MIN_TRAINING_SAMPLES, Model, train};
use crate::settings::Settings;

/// The forecaster of one predictive policy.
///
/// The runtime (or the backtest) drives it once per evaluation:
///
/// 1. [`Forecaster::observe`] the metric's newest value (with the ready count for a
///    per-replica metric). Samples are numbered by time, one per `step`; a gap is filled
///    with the last value, a second sample within the same step replaces the first.
/// 2. When [`Forecaster::training_job`] returns a job, run it where it does not hold up
///    the tick (it is plain CPU work on an owned copy of the history) and give the result
///    to [`Forecaster::install`] when it is done. Until then the previous model serves.
/// 3. [`Forecaster::forecast`] the lead time from the newest sample, and pass the result
///    to [`ballast_core::decide_with_forecast`]. Every forecast is recorded and scored
///    once its lead time has been observed.
#[derive(Debug, Clone)]
pub struct Forecaster {
    settings: Settings,
    /// Time of sample 0.
    origin: Option<Timestamp>,
    /// The newest samples, at most `settings.history`; the last has index `newest`. Kept
    /// in single precision, as MSTL works in it anyway: a fortnight of one-minute samples
    /// is 80 KB a policy.
    samples: VecDeque<f32>,
    newest: u64,
    model: Option<Model>,
    /// Index of the newest sample at which the next training is due.
    next_training: u64,
    ledger: Ledger,
}

/// A training, detached from its forecaster: an owned copy of the history and the settings.
#[derive(Debug, Clone)]
pub struct TrainingJob {
    history: Vec<f64>,
    last_index: u64,
    at: Timestamp,
    settings: Settings,
}

impl TrainingJob {
    /// Trains the model (CPU-bound; tens of milliseconds for a week of one-minute samples).
    pub fn run(self) -> Result<Model, ForecastError> {
        train(&self.history, self.last_index, self.at, &self.settings)
    }

    /// Samples it trains on.
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// Whether it has no samples (never, for a job the forecaster handed out).
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }
}

impl Forecaster {
    /// A forecaster with no history.
    pub fn new(settings: Settings) -> Forecaster {
        let ledger = Ledger::new(
            settings.horizon,
            settings.confidence,
            settings.accuracy_window,
            settings.phase_period(),
        );
        Forecaster {
            settings,
            origin: None,
            samples: VecDeque::new(),
            newest: 0,
            model: None,
            next_training: 0,
            ledger,
        }
    }

    /// The forecaster of `policy`'s predictive block, evaluated every `interval`.
    pub fn for_policy(policy: &Policy, interval: TimeDelta) -> Result<Forecaster, ForecastError> {
        Settings::from_policy(policy, interval).map(Forecaster::new)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model in use, if one has been trained.
    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// The ledger of forecasts.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// How the recent forecasts fared.
    pub fn accuracy(&self) -> Accuracy {
        self.ledger.accuracy()
    }

    /// Samples held.
    pub fn history_len(&self) -> usize {
        self.samples.len()
    }

    /// Takes in the metric's value observed at `at`. For a per-replica metric, `ready` is
    /// the number of replicas the value describes and the forecaster keeps the total
    /// (`value × ready`); for a total it is ignored. Non-finite values are skipped (the
    /// gap is filled by the next good one).
    pub fn observe(&mut self, at: Timestamp, value: f64, ready: u32) {
        let value = if self.settings.per_replica {
            value * f64::from(ready)
        } else {
            value
        };
        let value = value as f32;
        if !value.is_finite() {
            return;
        }
        let origin = *self.origin.get_or_insert(at);
        let step = self.settings.step.num_milliseconds() as f64;
        let offset = (at - origin).num_milliseconds() as f64 / step;
        if offset < -0.5 {
            return;
        }
        let index = offset.round() as u64;
        if self.samples.is_empty() {
            self.samples.push_back(value);
            self.newest = index;
            self.next_training = index;
        } else if index <= self.newest {
            if index == self.newest {
                *self.samples.back_mut().expect("not empty") = value;
            }
            return;
        } else {
            let last = *self.samples.back().expect("not empty");
            let gap = (index - self.newest - 1).min(self.settings.history as u64);
            for _ in 0..gap {
                self.samples.push_back(last);
            }
            self.samples.push_back(value);
            self.newest = index;
        }
        while self.samples.len() > self.settings.history {
            self.samples.pop_front();
        }
        let (samples, newest) = (&self.samples, self.newest);
        self.ledger.score(newest, |i| sample_at(samples, newest, i));
    }

    /// A training job when one is due (every `retrain_every` samples, from the moment the
    /// history is long enough). Handing out a job schedules the next one, so a job still
    /// running is not started twice.
    pub fn training_job(&mut self) -> Option<TrainingJob> {
        let origin = self.origin?;
        if self.samples.len() < MIN_TRAINING_SAMPLES || self.newest < self.next_training {
            return None;
        }
        self.next_training = self.newest + self.settings.retrain_every as u64;
        Some(TrainingJob {
            history: self.samples.iter().map(|v| f64::from(*v)).collect(),
            last_index: self.newest,
            at: origin + self.settings.step * self.newest as i32,
            settings: self.settings.clone(),
        })
    }

    /// Puts a trained model in use (unless the one in use is newer).
    pub fn install(&mut self, model: Model) {
        if self
            .model
            .as_ref()
            .is_none_or(|m| m.last_trained <= model.last_trained)
        {
            self.model = Some(model);
        }
    }

    /// The forecast of the lead time after the newest sample, recorded for scoring; `None`
    /// without a model, or when the model's path does not reach that far.
    ///
    /// The point forecast of sample `newest + j` is the newest value plus the change the
    /// model expects from `newest` to `newest + j`; the forecast is the highest of them
    /// over the lead time, and its interval `± z·σ` from the ledger.
    pub fn forecast(&mut self) -> Option<Forecast> {
        let model = self.model.as_ref()?;
        let origin = self.origin?;
        let y = f64::from(*self.samples.back()?);
        let base = model.at(self.newest)?;
        let mut peak = f64::NEG_INFINITY;
        for j in 1..=self.settings.horizon as u64 {
            peak = peak.max(y + model.at(self.newest + j)? - base);
        }
        let half = self.ledger.half_width(self.newest + 1);
        let pending = Pending {
            index: self.newest,
            peak,
            lower: peak - half,
            upper: peak + half,
            scale: model.scale,
        };
        self.ledger.record(pending);
        Some(Forecast {
            made_at: origin + self.settings.step * self.newest as i32,
            lead: self.settings.step * self.settings.horizon as i32,
            peak,
            lower: pending.lower,
            upper: pending.upper,
            confidence: self.settings.confidence,
            trained_at: model.trained_at,
            accuracy: self.ledger.accuracy(),
        })
    }
}

/// One point of [`Forecaster::outlook`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlookPoint {
    /// The time of the sample.
    pub at: Timestamp,
    /// The value the model expects then.
    pub value: f64,
    /// The interval the forecaster would put around a forecast of that time.
    pub lower: f64,
    /// See [`OutlookPoint::lower`].
    pub upper: f64,
}

impl Forecaster {
    /// The path the model expects from the newest sample on, one point per step for up to
    /// `steps` steps (fewer where the trained path ends), with the interval the forecaster
    /// would use at each point's time of day. For dashboards and the API: not recorded, not
    /// scored, and not what the strategy acts on (that is [`Forecaster::forecast`]'s peak
    /// over the lead time). Empty without a model.
    pub fn outlook(&self, steps: usize) -> Vec<OutlookPoint> {
        let (Some(model), Some(origin), Some(y)) = (&self.model, self.origin, self.samples.back())
        else {
            return Vec::new();
        };
        let Some(base) = model.at(self.newest) else {
            return Vec::new();
        };
        let y = f64::from(*y);
        (1..=steps as u64)
            .map_while(|j| {
                let index = self.newest + j;
                let value = y + model.at(index)? - base;
                let half = self.ledger.half_width(index);
                Some(OutlookPoint {
                    at: origin + self.settings.step * index as i32,
                    value,
                    lower: value - half,
                    upper: value + half,
                })
            })
            .collect()
    }
}

/// A forecaster started from a metric's past, as [`Forecaster::warm_up`] leaves it.
#[derive(Debug, Clone)]
pub struct WarmUp {
    /// The forecaster, holding the past and a model trained on it.
    pub forecaster: Forecaster,
    /// Models trained during the replay.
    pub trainings: u64,
    /// Trainings that failed, and the last reason.
    pub failures: u64,
    /// Why the last failed training failed.
    pub last_error: Option<String>,
}

impl Forecaster {
    /// Samples at the end of a refilled history that [`Forecaster::warm_up`] replays with
    /// forecasts: enough for the accuracy figures to be known (and at least two retraining
    /// intervals), within the accuracy window.
    pub fn replay_len(settings: &Settings) -> usize {
        (2 * settings.retrain_every)
            .max(MIN_SCORED + settings.horizon)
            .min(settings.accuracy_window + settings.horizon)
    }

    /// A forecaster started from `past` (time, value, ready replicas; oldest first), as if
    /// it had been running all along: the samples are taken in, and over the last
    /// [`Forecaster::replay_len`] of them (leaving at least the samples a first training
    /// needs before) the forecaster trains on its schedule and forecasts at every sample,
    /// each forecast made only from what came before and scored against what came after.
    /// So after a restart the accuracy figures, and with them the strategy, are back at
    /// once instead of after a day of new forecasts. CPU-bound: run it off the async
    /// threads.
    pub fn warm_up(settings: Settings, past: Vec<(Timestamp, f64, u32)>) -> WarmUp {
        let replay = Forecaster::replay_len(&settings);
        let mut warm = WarmUp {
            forecaster: Forecaster::new(settings),
            trainings: 0,
            failures: 0,
            last_error: None,
        };
        let from = past
            .len()
            .saturating_sub(replay)
            .max(MIN_TRAINING_SAMPLES - 1);
        for (i, (at, value, ready)) in past.into_iter().enumerate() {
            let f = &mut warm.forecaster;
            f.observe(at, value, ready);
            if i < from {
                continue;
            }
            if let Some(job) = f.training_job() {
                match job.run() {
                    Ok(model) => {
                        f.install(model);
                        warm.trainings += 1;
                    }
                    Err(e) => {
                        warm.failures += 1;
                        warm.last_error = Some(e.to_string());
                    }
                }
            }
            f.forecast();
        }
        warm
    }
}

fn sample_at(samples: &VecDeque<f32>, newest: u64, index: u64) -> Option<f64> {
    let back = newest.checked_sub(index)?;
    let i = (samples.len() as u64).checked_sub(back + 1)?;
    samples.get(i as usize).map(|v| f64::from(*v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{Format, load_policies};
    use chrono::DateTime;

    fn policy(extra: &str) -> Policy {
        let yaml = format!(
            "name: p\nmax_replicas: 100\nmetrics:\n  load: {{query: load, per_replica: {}}}\npredictive:\n  metric: load\n  target: 10\n{extra}",
            extra.contains("# per replica")
        );
        load_policies(&yaml, Format::Yaml).unwrap().remove(0)
    }

    fn minute(i: i64) -> Timestamp {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(i)
    }

    /// A cycle of 96 samples around a level that differs from cycle to cycle.
    fn cycle(i: usize) -> f64 {
        let phase = (i % 96) as f64 / 96.0 * std::f64::consts::TAU;
        let level = [100.0, 120.0, 90.0, 110.0][(i / 96) % 4];
        level + 30.0 * phase.sin()
    }

    const SHORT: &str = "  seasonality: [96m]\n  history: 2d\n  retrain_every: 30m\n";

    #[test]
    fn settings_count_the_predictive_block_in_evaluation_intervals() {
        let f = Forecaster::for_policy(&policy(""), TimeDelta::minutes(1)).unwrap();
        let s = f.settings();
        assert_eq!(s.horizon, 3, "2m to start plus one interval");
        assert_eq!(s.periods, vec![1440, 10080]);
        assert_eq!(s.history, 20_160);
        assert_eq!(s.retrain_every, 60);
        assert_eq!(s.accuracy_window, 1440);
        let f = Forecaster::for_policy(&policy(""), TimeDelta::seconds(90)).unwrap();
        assert_eq!(f.settings().horizon, 3, "210 s is two intervals and a part");
        assert!(Forecaster::for_policy(&policy(""), TimeDelta::zero()).is_err());
    }

    #[test]
    fn samples_are_numbered_by_time_gaps_are_filled_and_a_repeat_replaces() {
        let mut f = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1)).unwrap();
        f.observe(minute(0), 1.0, 1);
        f.observe(minute(1) + TimeDelta::seconds(2), 2.0, 1);
        f.observe(minute(4), 5.0, 1);
        f.observe(minute(4) + TimeDelta::seconds(10), 6.0, 1);
        f.observe(minute(2), 9.0, 1);
        f.observe(minute(5), f64::NAN, 1);
        assert_eq!(f.newest, 4);
        assert_eq!(f.samples, [1.0, 2.0, 2.0, 2.0, 6.0]);
    }

    #[test]
    fn a_per_replica_metric_is_kept_as_its_total() {
        let mut f =
            Forecaster::for_policy(&policy("  # per replica\n"), TimeDelta::minutes(1)).unwrap();
        assert!(f.settings().per_replica);
        f.observe(minute(0), 60.0, 3);
        assert_eq!(f.samples, [180.0]);
    }

    #[test]
    fn training_is_due_once_the_history_is_long_enough_and_then_every_retrain_interval() {
        let mut f = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1)).unwrap();
        let mut due = Vec::new();
        for i in 0..200 {
            f.observe(minute(i), cycle(i as usize), 1);
            if let Some(job) = f.training_job() {
                due.push((i, job.len()));
                f.install(job.run().unwrap());
            }
        }
        assert_eq!(
            due,
            vec![(59, 60), (89, 90), (119, 120), (149, 150), (179, 180)]
        );
        assert_eq!(
            f.model().unwrap().periods,
            Vec::<usize>::new(),
            "96 fits once"
        );
        // Once the history holds the period twice, the model uses it.
        for i in 200..240 {
            f.observe(minute(i), cycle(i as usize), 1);
            if let Some(job) = f.training_job() {
                f.install(job.run().unwrap());
            }
        }
        assert_eq!(f.model().unwrap().periods, vec![96]);
    }

    #[test]
    fn an_older_model_does_not_replace_a_newer_one() {
        let mut f = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1)).unwrap();
        for i in 0..120 {
            f.observe(minute(i), cycle(i as usize), 1);
        }
        let old = f.training_job().unwrap();
        f.observe(minute(150), 100.0, 1);
        let new = f.training_job().unwrap();
        f.install(new.run().unwrap());
        f.install(old.run().unwrap());
        assert_eq!(f.model().unwrap().last_trained, 150);
    }

    #[test]
    fn the_forecast_follows_the_cycle_from_the_newest_value_and_is_scored_after_its_lead_time() {
        let mut f = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1)).unwrap();
        assert!(f.forecast().is_none(), "no model yet");
        let mut forecasts = Vec::new();
        for i in 0..400usize {
            f.observe(minute(i as i64), cycle(i), 1);
            if let Some(job) = f.training_job() {
                f.install(job.run().unwrap());
            }
            if let Some(fc) = f.forecast() {
                forecasts.push((i, fc));
            }
        }
        let (i, last) = forecasts.last().unwrap();
        assert_eq!(last.made_at, minute(*i as i64));
        assert_eq!(last.lead, TimeDelta::minutes(3));
        // The peak of the next three samples, from the newest value and the cycle's shape.
        let actual = (i + 1..=i + 3).map(cycle).fold(f64::MIN, f64::max);
        assert!(
            (last.peak - actual).abs() < 1.0,
            "{} vs {actual}",
            last.peak
        );
        assert!(last.lower <= last.peak && last.peak <= last.upper);
        // Every forecast but the last three has been scored.
        assert_eq!(f.ledger().scored_total(), forecasts.len() as u64 - 3);
        let a = f.accuracy();
        assert!(a.mase.is_some_and(|m| m < 1.0), "{a:?}");
        assert!(a.coverage.is_some_and(|c| c > 0.8), "{a:?}");
    }

    #[test]
    fn the_outlook_follows_the_cycle_as_far_as_the_model_reaches() {
        let mut f = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1)).unwrap();
        assert!(f.outlook(10).is_empty(), "no model yet");
        let n = 340usize;
        for i in 0..n {
            f.observe(minute(i as i64), cycle(i), 1);
            if let Some(job) = f.training_job() {
                f.install(job.run().unwrap());
            }
            f.forecast();
        }
        let scored = f.ledger().scored_total();
        let outlook = f.outlook(20);
        assert_eq!(outlook.len(), 20);
        assert_eq!(f.ledger().scored_total(), scored, "nothing recorded");
        for (j, p) in outlook.iter().enumerate() {
            let i = n + j;
            assert_eq!(p.at, minute(i as i64));
            // Within a cycle (its level is that of the newest value), the shape is learnt.
            assert!(
                (p.value - cycle(i)).abs() < 3.0,
                "{j}: {} vs {}",
                p.value,
                cycle(i)
            );
            assert!(p.lower <= p.value && p.value <= p.upper);
        }
        // As far as the trained path reaches past the newest sample.
        let m = f.model().unwrap();
        let reach = m.last_trained as usize + m.path.len() - n;
        assert!(reach > 20, "{reach}");
        assert_eq!(f.outlook(1000).len(), reach);
    }

    #[test]
    fn a_warm_up_replays_the_end_of_the_past_so_accuracy_is_known_at_once() {
        let settings = Forecaster::for_policy(&policy(SHORT), TimeDelta::minutes(1))
            .unwrap()
            .settings()
            .clone();
        assert_eq!(
            Forecaster::replay_len(&settings),
            63,
            "60 scored plus the lead"
        );
        let past: Vec<_> = (0..300i64)
            .map(|i| (minute(i), cycle(i as usize), 1))
            .collect();
        let warm = Forecaster::warm_up(settings.clone(), past.clone());
        assert_eq!(
            (warm.trainings, warm.failures),
            (3, 0),
            "{:?}",
            warm.last_error
        );
        let mut f = warm.forecaster;
        assert_eq!(f.history_len(), 300);
        assert_eq!(
            f.model().unwrap().last_trained,
            297,
            "every 30 samples from 237"
        );
        let a = f.accuracy();
        assert_eq!(a.scored, 60);
        assert!(a.mase.is_some_and(|m| m < 1.0), "{a:?}");
        // It carries on as one that ran all along: the next sample is taken in and forecast.
        f.observe(minute(300), cycle(300), 1);
        assert_eq!(f.forecast().unwrap().made_at, minute(300));

        // A short past: the replay starts once a first training is possible.
        let warm = Forecaster::warm_up(settings, past[..70].to_vec());
        assert_eq!(warm.trainings, 1);
        assert_eq!(
            warm.forecaster.ledger().scored_total(),
            8,
            "11 forecasts, 3 pending"
        );
    }
}
