//! The predictive strategy under `ballast serve`: one [`Forecaster`] per predictive policy.
//!
//! At every evaluation the engine hands the policy's observations to [`Forecasts::step`]:
//! the forecaster takes in the predictive metric's value, and the forecast of the lead time
//! goes to [`ballast_core::decide_with_forecast`]. Nothing slow happens in the tick:
//!
//! - **Training** runs on the blocking pool, at most [`Forecasts::trainings_at_once`] at a
//!   time (one core is left to the engine and the API), and the model is installed when it
//!   is done; until then the previous model serves. A training that is due while the
//!   policy's previous one is still running is skipped (the next one is due a
//!   `retrain_every` later).
//! - **History**: when a forecaster starts (the engine started, the policy was created, or
//!   its predictive block or interval changed), the metric's last `history` is read back in
//!   the background by range queries (Prometheus answers at most 11,000 points a query, so
//!   longer histories are read in parts; `source: pushed` metrics have what the in-memory
//!   store holds), and the forecaster starts from it: the end of it is replayed with
//!   forecasts scored against what followed ([`Forecaster::warm_up`]), so the accuracy
//!   figures, and with them the strategy, are back at once. The values observed meanwhile
//!   are kept and fed after it. For a per-replica metric the forecaster wants the total, so each
//!   past value is multiplied by the count the policy's decision history says the target
//!   ran then (the current count before the first recorded change).
//!
//! Each forecast's accuracy (MASE against the seasonal naive forecast, coverage of the
//! interval) is published per policy in `/metrics`, and [`Forecasts::status`] gives the
//! API's `GET /api/v1/scaling/policies/{id}/forecast`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ballast_core::{
    Accuracy, Decision, Forecast, MetricObservation, Observations, Policy, PredictiveMode,
    Strategy, Timestamp,
};
use ballast_forecast::{Forecaster, MIN_TRAINING_SAMPLES, OutlookPoint, Settings, TrainingJob};
use ballast_sources::prometheus::PrometheusSource;
use ballast_store::{HistoryFilter, HistoryKind, Store};
use chrono::TimeDelta;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::budget::PolicyLabel;
use crate::pushed::PushedMetrics;

/// The most points one range query asks Prometheus for (its limit is 11,000).
pub const POINTS_PER_QUERY: usize = 10_000;

/// Steps of the model's path shown by [`Forecasts::status`].
pub const OUTLOOK_STEPS: usize = 60;

/// Pages of decision history read to rebuild a per-replica metric's totals.
const HISTORY_PAGES: usize = 50;

/// Where a forecaster reads its metric's past from when it starts.
#[derive(Clone, Debug)]
pub struct HistorySource {
    /// Prometheus, for `source: prometheus` metrics.
    pub prometheus: Option<PrometheusSource>,
    /// The pushed samples, for `source: pushed` metrics.
    pub pushed: Arc<PushedMetrics>,
    /// The store, whose decision history gives a per-replica metric's past counts.
    pub store: Store,
}

/// What the forecaster of one policy is doing, for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastStatus {
    /// The policy's name.
    pub policy: String,
    /// `scale` or `forecast_only`.
    pub mode: PredictiveMode,
    /// Where the forecaster is.
    pub phase: Phase,
    /// Samples of history held.
    pub history_samples: usize,
    /// Samples needed before the first training.
    pub samples_needed: usize,
    /// Samples read back from the metric's history when the forecaster started.
    pub refilled_samples: usize,
    /// Why reading the history back failed, if it did (the forecaster then starts empty).
    pub refill_error: Option<String>,
    /// The seasonal periods the model in use fits, in samples, and the sample spacing.
    pub model_periods: Vec<TimeDelta>,
    /// When the model in use was trained.
    pub trained_at: Option<Timestamp>,
    /// Whether a training is running.
    pub training: bool,
    /// Trainings completed and failed.
    pub trainings: u64,
    /// Trainings that failed.
    pub failed_trainings: u64,
    /// The last training failure.
    pub last_error: Option<String>,
    /// The newest forecast.
    pub forecast: Option<Forecast>,
    /// The path the model expects from the newest sample, up to [`OUTLOOK_STEPS`] steps.
    pub outlook: Vec<OutlookPoint>,
    /// How recent forecasts fared.
    pub accuracy: Accuracy,
    /// The limits under which the strategy stands aside.
    pub max_mase: f64,
    /// See [`ForecastStatus::max_mase`].
    pub min_coverage: Option<f64>,
    /// What the strategy did at the last evaluation: acted, recorded only, or stood aside,
    /// with the decision's reason.
    pub verdict: Option<Verdict>,
}

/// Where a forecaster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the metric's history back.
    Refilling,
    /// Collecting history until there is enough to train on.
    Collecting,
    /// History is enough; the first model is being trained.
    Training,
    /// A model is trained and forecasts are made.
    Forecasting,
}

impl Phase {
    /// The word the API uses.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Refilling => "refilling",
            Phase::Collecting => "collecting",
            Phase::Training => "training",
            Phase::Forecasting => "forecasting",
        }
    }
}

/// What the predictive strategy did at a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The decision's time.
    pub at: Timestamp,
    /// Whether the strategy's proposal took part in the decision.
    pub acting: bool,
    /// The count the forecast asks for (or the current count when there is no forecast).
    pub desired: u32,
    /// The proposal's reason, e.g. "predictive stands aside: MASE 1.4 is above max_mase 1".
    pub reason: String,
}

/// One observation taken while the history is being read back.
type Buffered = (Timestamp, f64, u32);

struct Slot {
    name: String,
    generation: u64,
    settings: Settings,
    max_mase: f64,
    min_coverage: Option<f64>,
    forecaster: Forecaster,
    /// `Some` while the history is being read back: what was observed meanwhile.
    refilling: Option<Vec<Buffered>>,
    refilled: usize,
    refill_error: Option<String>,
    training: bool,
    trainings: u64,
    failed_trainings: u64,
    last_error: Option<String>,
    last: Option<Forecast>,
    verdict: Option<Verdict>,
}

struct Inner {
    slots: Mutex<HashMap<Uuid, Slot>>,
    permits: Arc<Semaphore>,
    trainings_at_once: usize,
    tasks: TaskTracker,
    metrics: Arc<ForecastMetrics>,
    generations: AtomicU64,
}

/// Every predictive policy's forecaster.
#[derive(Clone)]
pub struct Forecasts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Forecasts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecasts")
            .field("trainings_at_once", &self.inner.trainings_at_once)
            .finish_non_exhaustive()
    }
}

impl Forecasts {
    /// Forecasters publishing their figures to `metrics`, training at most
    /// `trainings_at_once` models at a time.
    pub fn new(metrics: Arc<ForecastMetrics>, trainings_at_once: usize) -> Forecasts {
        let trainings_at_once = trainings_at_once.max(1);
        Forecasts {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(trainings_at_once)),
                trainings_at_once,
                tasks: TaskTracker::new(),
                metrics,
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// One fewer than the machine's cores (at least one): trainings leave a core to the
    /// engine and the API.
    pub fn default_trainings_at_once() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    /// Trainings run at once at most.
    pub fn trainings_at_once(&self) -> usize {
        self.inner.trainings_at_once
    }

    /// Takes in one evaluation's observations of a predictive policy evaluated every
    /// `interval`, starts a training when one is due, and returns the forecast of the lead
    /// time (`None` for a policy without a predictive block, and while the forecaster has
    /// no model yet). `history` is asked for only when the forecaster starts.
    pub fn step(
        &self,
        id: Uuid,
        policy: &Policy,
        interval: TimeDelta,
        now: Timestamp,
        obs: &Observations,
        history: impl FnOnce() -> HistorySource,
    ) -> Option<Forecast> {
        let Some(predictive) = policy.predictive.as_ref() else {
            self.forget(id);
            return None;
        };
        let settings = match Settings::from_policy(policy, interval) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(policy = %policy.name, error = %e, "no forecaster");
                return None;
            }
        };
        let metric = &policy.metrics[predictive.metric];
        let value = match obs.metrics.get(predictive.metric) {
            Some(MetricObservation::Samples(samples)) => samples
                .last()
                .filter(|s| s.value.is_finite() && now - s.at <= metric.max_staleness)
                .map(|s| s.value),
            _ => None,
        };
        let ready = obs.ready.unwrap_or(obs.current);
        let mut slots = self.inner.slots.lock().expect("no panic under the lock");
        let fresh = slots.get(&id).is_none_or(|s| s.settings != settings);
        if fresh {
            let generation = self
                .inner
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            slots.insert(
                id,
                Slot {
                    name: policy.name.clone(),
                    generation,
                    settings: settings.clone(),
                    max_mase: predictive.max_mase,
                    min_coverage: predictive.min_coverage,
                    forecaster: Forecaster::new(settings.clone()),
                    refilling: Some(Vec::new()),
                    refilled: 0,
                    refill_error: None,
                    training: false,
                    trainings: 0,
                    failed_trainings: 0,
                    last_error: None,
                    last: None,
                    verdict: None,
                },
            );
            let request = Refill {
                id,
                generation,
                query: metric.query.clone(),
                pushed: metric.source == "pushed",
                per_replica: metric.per_replica,
                current: obs.current,
                settings,
                until: now,
            };
            let inner = self.inner.clone();
            let source = history();
            self.inner
                .tasks
                .spawn(async move { inner.refill(request, source).await });
        }
        let slot = slots.get_mut(&id).expect("inserted above");
        slot.name.clone_from(&policy.name);
        slot.max_mase = predictive.max_mase;
        slot.min_coverage = predictive.min_coverage;
        if let Some(buffer) = &mut slot.refilling {
            if let Some(v) = value {
                buffer.push((now, v, ready));
            }
            return None;
        }
        if let Some(v) = value {
            slot.forecaster.observe(now, v, ready);
        }
        self.inner.train_if_due(id, slot);
        let forecast = slot.forecaster.forecast();
        if forecast.is_some() {
            slot.last = forecast;
        }
        self.inner.metrics.publish(slot);
        forecast
    }

    /// The newest forecast of a policy, for a dry run (which must not feed the forecaster or
    /// have a forecast recorded for scoring).
    pub fn latest(&self, id: Uuid) -> Option<Forecast> {
        self.inner
            .slots
            .lock()
            .expect("no panic under the lock")
            .get(&id)
            .and_then(|s| s.last)
    }

    /// Notes what the predictive strategy did in `decision`.
    pub fn judged(&self, id: Uuid, decision: &Decision) {
        let Some(p) = decision
            .proposals
            .iter()
            .find(|p| matches!(p.strategy, Strategy::Predictive | Strategy::Forecast))
        else {
            return;
        };
        let mut slots = self.inner.slots.lock().expect("no panic under the lock");
        if let Some(slot) = slots.get_mut(&id) {
            slot.verdict = Some(Verdict {
                at: decision.at,
                acting: p.strategy == Strategy::Predictive,
                desired: p.desired,
                reason: p.reason.clone(),
            });
            self.inner.metrics.publish(slot);
        }
    }

    /// What the policy's forecaster is doing; `None` when it has none (not predictive, or
    /// not evaluated since the engine started).
    pub fn status(&self, id: Uuid, policy: &Policy) -> Option<ForecastStatus> {
        let predictive = policy.predictive.as_ref()?;
        let slots = self.inner.slots.lock().expect("no panic under the lock");
        let slot = slots.get(&id)?;
        let f = &slot.forecaster;
        let phase = if slot.refilling.is_some() {
            Phase::Refilling
        } else if f.model().is_some() {
            Phase::Forecasting
        } else if f.history_len() >= MIN_TRAINING_SAMPLES {
            Phase::Training
        } else {
            Phase::Collecting
        };
        let step = slot.settings.step;
        Some(ForecastStatus {
            policy: slot.name.clone(),
            mode: predictive.mode,
            phase,
            history_samples: f.history_len(),
            samples_needed: MIN_TRAINING_SAMPLES,
            refilled_samples: slot.refilled,
            refill_error: slot.refill_error.clone(),
            model_periods: f
                .model()
                .map(|m| m.periods.iter().map(|p| step * *p as i32).collect())
                .unwrap_or_default(),
            trained_at: f.model().map(|m| m.trained_at),
            training: slot.training,
            trainings: slot.trainings,
            failed_trainings: slot.failed_trainings,
            last_error: slot.last_error.clone(),
            forecast: slot.last,
            outlook: f.outlook(OUTLOOK_STEPS),
            accuracy: f.accuracy(),
            max_mase: slot.max_mase,
            min_coverage: slot.min_coverage,
            verdict: slot.verdict.clone(),
        })
    }

    /// Drops the forecasters of policies not in `live` (deleted), with their metrics.
    pub fn retain(&self, live: &HashSet<Uuid>) {
        let mut slots = self.inner.slots.lock().expect("no panic under the lock");
        slots.retain(|id, slot| {
            let keep = live.contains(id);
            if !keep {
                self.inner.metrics.forget(&slot.name);
            }
            keep
        });
    }

    /// Drops one policy's forecaster (it is no longer predictive).
    pub fn forget(&self, id: Uuid) {
        let mut slots = self.inner.slots.lock().expect("no panic under the lock");
        if let Some(slot) = slots.remove(&id) {
            self.inner.metrics.forget(&slot.name);
        }
    }

    /// Waits until no history read-back or training is running (tests, and shutdown).
    pub async fn settle(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.tasks.reopen();
    }
}

/// A history read-back, started with a forecaster.
struct Refill {
    id: Uuid,
    generation: u64,
    query: String,
    pushed: bool,
    per_replica: bool,
    current: u32,
    settings: Settings,
    /// The evaluation that started the forecaster: the history ends one step before it.
    until: Timestamp,
}

impl Inner {
    /// Starts the slot's training when one is due and none is running.
    fn train_if_due(self: &Arc<Self>, id: Uuid, slot: &mut Slot) {
        let Some(job) = slot.forecaster.training_job() else {
            return;
        };
        if slot.training {
            return;
        }
        slot.training = true;
        let inner = self.clone();
        let generation = slot.generation;
        self.tasks
            .spawn(async move { inner.train(id, generation, job).await });
    }

    async fn train(self: Arc<Self>, id: Uuid, generation: u64, job: TrainingJob) {
        let _permit = self.permits.clone().acquire_owned().await;
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || job.run()).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut slots = self.slots.lock().expect("no panic under the lock");
        let Some(slot) = slots.get_mut(&id).filter(|s| s.generation == generation) else {
            return;
        };
        slot.training = false;
        let error = match result {
            Ok(Ok(model)) => {
                slot.forecaster.install(model);
                slot.trainings += 1;
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the training task failed: {e}")),
        };
        self.metrics.trained(&slot.name, error.is_none(), seconds);
        if let Some(e) = error {
            tracing::warn!(policy = %slot.name, error = %e, "forecast training failed");
            slot.failed_trainings += 1;
            slot.last_error = Some(e);
        }
    }

    async fn refill(self: Arc<Self>, request: Refill, source: HistorySource) {
        let (past, error) = match read_history(&request, &source).await {
            Ok(past) => (past, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let refilled = past.len();
        // Training and replaying the end of the past is CPU work: on the blocking pool,
        // counted against the trainings run at once.
        let settings = request.settings.clone();
        let warm = {
            let _permit = self.permits.clone().acquire_owned().await;
            let started = Instant::now();
            let warm =
                tokio::task::spawn_blocking(move || Forecaster::warm_up(settings, past)).await;
            (warm, started.elapsed().as_secs_f64())
        };
        let mut slots = self.slots.lock().expect("no panic under the lock");
        let Some(slot) = slots
            .get_mut(&request.id)
            .filter(|s| s.generation == request.generation)
        else {
            return;
        };
        let mut forecaster = match warm {
            (Ok(w), seconds) => {
                for _ in 0..w.trainings {
                    self.metrics
                        .trained(&slot.name, true, seconds / w.trainings as f64);
                }
                for _ in 0..w.failures {
                    self.metrics.trained(&slot.name, false, 0.0);
                }
                slot.trainings += w.trainings;
                slot.failed_trainings += w.failures;
                slot.last_error = w.last_error;
                w.forecaster
            }
            (Err(e), _) => {
                slot.last_error = Some(format!("the warm-up task failed: {e}"));
                Forecaster::new(request.settings.clone())
            }
        };
        slot.refilled = refilled;
        if let Some(e) = error {
            tracing::warn!(policy = %slot.name, error = %e, "cannot read the forecast metric's history; starting from now");
            slot.refill_error = Some(e);
        }
        for (at, value, ready) in slot.refilling.take().unwrap_or_default() {
            forecaster.observe(at, value, ready);
        }
        slot.forecaster = forecaster;
        tracing::info!(
            policy = %slot.name,
            samples = slot.refilled,
            trainings = slot.trainings,
            scored = slot.forecaster.ledger().scored_total(),
            "forecaster started from the metric's history"
        );
        self.train_if_due(request.id, slot);
    }
}

/// The metric's history before `request.until`, one value per step, with the count each
/// value describes.
async fn read_history(request: &Refill, source: &HistorySource) -> Result<Vec<Buffered>, String> {
    let step = request.settings.step;
    let start = request.until - step * request.settings.history as i32;
    let mut samples = Vec::new();
    for (from, to) in parts(start, request.until, step) {
        let observation = if request.pushed {
            source.pushed.range(&request.query, from, to, step)
        } else if let Some(prometheus) = &source.prometheus {
            let step = step.to_std().map_err(|e| e.to_string())?;
            prometheus.range(&request.query, from, to, step).await
        } else {
            return Err("no Prometheus is configured".to_owned());
        };
        match observation {
            MetricObservation::Samples(s) => samples.extend(s),
            MetricObservation::Empty | MetricObservation::NotFetched => {}
            MetricObservation::Failed(e) => return Err(e),
        }
    }
    let counts = if request.per_replica && !samples.is_empty() {
        past_counts(&source.store, request.id, start, request.current).await?
    } else {
        Counts::constant(request.current)
    };
    Ok(samples
        .into_iter()
        .filter(|s| s.value.is_finite())
        .map(|s| (s.at, s.value, counts.at(s.at)))
        .collect())
}

/// The range queries that read `[start, until)` at `step`: consecutive parts of at most
/// [`POINTS_PER_QUERY`] points, each given by its first and last point.
fn parts(start: Timestamp, until: Timestamp, step: TimeDelta) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    if step <= TimeDelta::zero() {
        return out;
    }
    let last = until - step;
    let mut from = start;
    while from <= last {
        let to = (from + step * (POINTS_PER_QUERY as i32 - 1)).min(last);
        out.push((from, to));
        from = to + step;
    }
    out
}

/// The count a target ran over time, from the policy's decision history.
struct Counts {
    /// Before the first change.
    initial: u32,
    /// Changes, oldest first: from this time on, this count.
    changes: Vec<(Timestamp, u32)>,
}

impl Counts {
    fn constant(count: u32) -> Counts {
        Counts {
            initial: count,
            changes: Vec::new(),
        }
    }

    /// The count that produced a value measured at `t`: a decision at `t` acted on that
    /// value, so its new count applies only after `t`.
    fn at(&self, t: Timestamp) -> u32 {
        let i = self.changes.partition_point(|(at, _)| *at < t);
        if i == 0 {
            self.initial
        } else {
            self.changes[i - 1].1
        }
    }
}

/// The counts the policy's decisions since `since` asked for (dry runs and failed actions
/// left out); before the first, the count it changed from, or `current` without any.
async fn past_counts(
    store: &Store,
    id: Uuid,
    since: Timestamp,
    current: u32,
) -> Result<Counts, String> {
    let mut filter = HistoryFilter {
        policy_id: Some(id),
        since: Some(since),
        kind: Some(HistoryKind::Decision),
        limit: 500,
        ..HistoryFilter::default()
    };
    let mut entries = Vec::new();
    for _ in 0..HISTORY_PAGES {
        let page = store
            .history(&filter)
            .await
            .map_err(|e| format!("decision history: {e}"))?;
        entries.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    // The decision's own time and counts (the entry's time is when it was written).
    let mut changes: Vec<(Timestamp, u32, u32)> = entries
        .iter()
        .filter(|e| !e.dry_run && e.outcome != Some(ballast_store::Outcome::Failed))
        .filter_map(|e| e.decision.as_ref())
        .map(|d| (d.at, d.current, d.desired))
        .collect();
    changes.sort_by_key(|(at, _, _)| *at);
    Ok(Counts {
        initial: changes.first().map_or(current, |(_, from, _)| *from),
        changes: changes.iter().map(|(at, _, to)| (*at, *to)).collect(),
    })
}

/// Label set of a training's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrainingLabel {
    /// The policy's name.
    pub policy: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// The forecasters' figures in `/metrics`, per policy.
#[derive(Debug)]
pub struct ForecastMetrics {
    mase: Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    coverage: Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    scored: Family<PolicyLabel, Gauge>,
    peak: Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    upper: Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    standing_aside: Family<PolicyLabel, Gauge>,
    trainings: Family<TrainingLabel, Counter>,
    training_seconds: Histogram,
}

impl ForecastMetrics {
    /// Registers the forecast metrics in `registry`.
    pub fn register(registry: &mut Registry) -> ForecastMetrics {
        let metrics = ForecastMetrics {
            mase: Family::default(),
            coverage: Family::default(),
            scored: Family::default(),
            peak: Family::default(),
            upper: Family::default(),
            standing_aside: Family::default(),
            trainings: Family::default(),
            training_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        };
        for (name, help, family) in [
            (
                "forecast_mase",
                "Mean absolute scaled error of a policy's recent forecasts (below 1 beats the seasonal naive forecast)",
                &metrics.mase,
            ),
            (
                "forecast_coverage_ratio",
                "Share of a policy's recent outcomes inside the forecast interval",
                &metrics.coverage,
            ),
            (
                "forecast_peak",
                "Peak of a policy's newest forecast over its lead time",
                &metrics.peak,
            ),
            (
                "forecast_upper",
                "Upper bound of a policy's newest forecast interval",
                &metrics.upper,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "forecast_scored",
            "Forecasts scored in a policy's accuracy window",
            metrics.scored.clone(),
        );
        registry.register(
            "forecast_standing_aside",
            "1 while a policy's predictive strategy stands aside (no forecast, poor accuracy or forecast_only)",
            metrics.standing_aside.clone(),
        );
        registry.register(
            "forecast_trainings",
            "Forecast model trainings by result",
            metrics.trainings.clone(),
        );
        registry.register(
            "forecast_training_seconds",
            "Duration of forecast model trainings",
            metrics.training_seconds.clone(),
        );
        metrics
    }

    fn publish(&self, slot: &Slot) {
        let label = PolicyLabel::of(&slot.name);
        let accuracy = slot.forecaster.accuracy();
        set_or_remove(&self.mase, &label, accuracy.mase);
        set_or_remove(&self.coverage, &label, accuracy.coverage);
        self.scored
            .get_or_create(&label)
            .set(accuracy.scored as i64);
        set_or_remove(&self.peak, &label, slot.last.map(|f| f.peak));
        set_or_remove(&self.upper, &label, slot.last.map(|f| f.upper));
        if let Some(v) = &slot.verdict {
            self.standing_aside
                .get_or_create(&label)
                .set(i64::from(!v.acting));
        }
    }

    fn trained(&self, name: &str, ok: bool, seconds: f64) {
        self.training_seconds.observe(seconds);
        self.trainings
            .get_or_create(&TrainingLabel {
                policy: name.to_owned(),
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    fn forget(&self, name: &str) {
        let label = PolicyLabel::of(name);
        self.mase.remove(&label);
        self.coverage.remove(&label);
        self.scored.remove(&label);
        self.peak.remove(&label);
        self.upper.remove(&label);
        self.standing_aside.remove(&label);
        for result in ["ok", "failed"] {
            self.trainings.remove(&TrainingLabel {
                policy: name.to_owned(),
                result: result.to_owned(),
            });
        }
    }
}

fn set_or_remove(
    family: &Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    label: &PolicyLabel,
    value: Option<f64>,
) {
    match value.filter(|v| v.is_finite()) {
        Some(v) => {
            family.get_or_create(label).set(v);
        }
        None => {
            family.remove(label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::UNIX_EPOCH + TimeDelta::seconds(s)
    }

    #[test]
    fn a_long_history_is_read_in_parts_under_prometheus_point_limit() {
        let step = TimeDelta::minutes(1);
        // Two weeks of one-minute samples: 20,160 points, in three parts.
        let until = at(0) + TimeDelta::days(14);
        let p = parts(at(0), until, step);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (at(0), at(0) + step * 9_999));
        assert_eq!(p[1].0, p[0].1 + step);
        assert_eq!(p[2].1, until - step);
        let points: i64 = p
            .iter()
            .map(|(a, b)| (*b - *a).num_minutes() + 1)
            .inspect(|n| assert!(*n <= POINTS_PER_QUERY as i64))
            .sum();
        assert_eq!(points, 20_160);
        assert_eq!(parts(at(0), at(60), step), vec![(at(0), at(0))]);
        assert!(parts(at(60), at(60), step).is_empty());
    }

    #[test]
    fn counts_follow_the_recorded_changes() {
        let counts = Counts {
            initial: 2,
            changes: vec![(at(10), 4), (at(20), 3)],
        };
        assert_eq!(counts.at(at(0)), 2);
        assert_eq!(counts.at(at(10)), 2, "the value the change acted on");
        assert_eq!(counts.at(at(11)), 4);
        assert_eq!(counts.at(at(20)), 4);
        assert_eq!(counts.at(at(25)), 3);
        assert_eq!(Counts::constant(7).at(at(5)), 7);
    }

    /// A per-replica metric's past is turned back into totals with the counts the policy's
    /// decisions set: the engine scales a `log` target on pushed utilization, then the
    /// history read-back of a forecaster starting afterwards is compared with value × count.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_per_replica_history_is_read_back_as_totals_with_the_counts_decided_then() {
        use crate::{Engine, EngineConfig, PushedSample, SeriesKey, Targets, Telemetry};
        use ballast_core::{Format, load_policies};

        let minute = |m: i64| at(1_700_000_000) + TimeDelta::minutes(m);
        let yaml = "name: util
min_replicas: 1
max_replicas: 20
scale_up_cooldown: 0s
metrics:
  util: {source: pushed, query: util, per_replica: true}
target_tracking: {metric: util, target: 50, tolerance: 0}
predictive: {metric: util, target: 50, mode: forecast_only, history: 1h, seasonality: []}
";
        let parsed = load_policies(yaml, Format::Yaml).unwrap().remove(0);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let record = store.create_policy(&parsed.spec, "test").await.unwrap();
        let engine = Engine::new(
            store.clone(),
            None,
            Arc::new(Targets::default()),
            Arc::new(Telemetry::new()),
            EngineConfig {
                interval: std::time::Duration::from_secs(60),
                ..EngineConfig::default()
            },
        );
        // 100 % (twice the target) at minutes 0 and 5 doubles the count; 50 % holds it.
        let util = |m: i64| if m % 5 == 0 { 100.0 } else { 50.0 };
        for m in 0..10 {
            let sample = PushedSample {
                key: SeriesKey {
                    name: "util".to_owned(),
                    labels: Default::default(),
                },
                value: util(m),
                at: minute(m),
            };
            engine.pushed().push(vec![sample], minute(m)).unwrap();
            engine.tick(minute(m)).await;
            engine.settle().await;
        }

        let settings = Settings::from_policy(&parsed, TimeDelta::minutes(1)).unwrap();
        let request = Refill {
            id: record.id,
            generation: 0,
            query: "util".to_owned(),
            pushed: true,
            per_replica: true,
            current: 4,
            settings,
            until: minute(10),
        };
        let source = HistorySource {
            prometheus: None,
            pushed: engine.pushed().clone(),
            store,
        };
        let read = read_history(&request, &source).await.unwrap();
        let totals: Vec<(i64, f64, u32)> = read
            .iter()
            .map(|(t, v, n)| ((*t - minute(0)).num_minutes(), v * f64::from(*n), *n))
            .collect();
        let counts: Vec<u32> = totals.iter().map(|(_, _, n)| *n).collect();
        assert_eq!(counts, [1, 2, 2, 2, 2, 2, 4, 4, 4, 4], "{totals:?}");
        let values: Vec<f64> = totals.iter().map(|(_, v, _)| *v).collect();
        assert_eq!(
            values,
            [
                100.0, 100.0, 100.0, 100.0, 100.0, 200.0, 200.0, 200.0, 200.0, 200.0
            ]
        );
        assert_eq!(totals[0].0, 0);
    }
}
