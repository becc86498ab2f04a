//! A Ballast policy as a backtest [`Controller`]: its metrics are bound to the simulated
//! metrics of `BACKTEST.md`, and the core's [`decide_with_forecast()`] runs at every tick on
//! a virtual clock.
//!
//! A predictive policy gets a [`Forecaster`] as the engine would give it one: it is fed
//! the metric as each tick is observed, trained on its own history on the policy's
//! schedule (in simulated time, so a training is in use from the tick it was started), and
//! asked for a forecast at every decision. It only ever sees the observations the decision
//! sees, so the backtest does not look ahead.

use ballast_core::{
    Action, Decision, Forecast, MetricObservation, Observations, Policy, PolicyState, Strategy,
    decide_with_forecast,
};
use ballast_forecast::{ForecastError, Forecaster};
use chrono::{DateTime, TimeDelta};

use crate::model::{Controller, TickObservation};

/// The metrics a policy can read in a backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMetric {
    /// `r_k`, load units per second.
    Demand,
    /// Ready replicas.
    Replicas,
    /// Ready plus starting replicas.
    Allocated,
    /// `r_k / max(ready_k, 1)`.
    LoadPerReplica,
    /// Saturating utilization in percent.
    Utilization,
    /// Unserved load carried over, in load units.
    Backlog,
}

impl SimMetric {
    /// Every simulated metric with its name.
    pub const ALL: [(&'static str, SimMetric); 6] = [
        ("demand", SimMetric::Demand),
        ("replicas", SimMetric::Replicas),
        ("allocated", SimMetric::Allocated),
        ("load_per_replica", SimMetric::LoadPerReplica),
        ("utilization", SimMetric::Utilization),
        ("backlog", SimMetric::Backlog),
    ];

    /// The metric of this name.
    pub fn by_name(name: &str) -> Option<SimMetric> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// Whether the value is per replica (it rises when replicas are removed).
    pub fn per_replica(self) -> bool {
        matches!(self, SimMetric::LoadPerReplica | SimMetric::Utilization)
    }

    fn read(self, o: &TickObservation) -> f64 {
        match self {
            SimMetric::Demand => o.demand,
            SimMetric::Replicas => f64::from(o.replicas),
            SimMetric::Allocated => f64::from(o.allocated),
            SimMetric::LoadPerReplica => o.load_per_replica,
            SimMetric::Utilization => o.utilization,
            SimMetric::Backlog => o.backlog,
        }
    }
}

/// A policy metric that names no simulated metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "policy `{policy}` reads `{metric}`, which a backtest does not simulate; a backtest offers {}",
    SimMetric::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
)]
pub struct BindError {
    /// The policy.
    pub policy: String,
    /// The metric name it reads.
    pub metric: String,
}

/// Counts of what the policy decided over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionCounts {
    /// Scale-ups.
    pub scale_up: usize,
    /// Scale-downs.
    pub scale_down: usize,
    /// Holds.
    pub hold: usize,
}

/// What the predictive strategy did over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastStats {
    /// Decisions with a predictive proposal that voted.
    pub acting: usize,
    /// Decisions where the strategy stood aside or only recorded its forecast.
    pub aside: usize,
    /// Decisions where the predictive proposal was the largest (it set the combined count).
    pub leading: usize,
    /// Models trained.
    pub trainings: usize,
    /// Trainings that failed, with the last reason.
    pub failed_trainings: usize,
    /// Why the last training failed.
    pub last_failure: Option<String>,
    /// Forecasts scored over the run.
    pub scored: u64,
    /// MASE over the last scoring window at the end of the run.
    pub mase: Option<f64>,
    /// Coverage over the last scoring window at the end of the run.
    pub coverage: Option<f64>,
}

/// The forecaster of a predictive policy, created once the tick length is known.
#[derive(Debug)]
enum Prediction {
    None,
    /// Waiting for a second observation to learn the tick.
    Waiting,
    Ready(Box<Forecaster>),
}

/// Runs a policy in a backtest.
#[derive(Debug)]
pub struct PolicyController {
    policy: Policy,
    bindings: Vec<SimMetric>,
    state: PolicyState,
    price: f64,
    prediction: Prediction,
    /// Observations already fed to the forecaster.
    fed: usize,
    /// What the policy decided, by action.
    pub counts: DecisionCounts,
    /// What the predictive strategy did (all zero for a policy without one).
    pub forecast_stats: ForecastStats,
    /// Decisions that changed the count, kept up to `keep_changes` for explaining a run.
    pub changes: Vec<Decision>,
    keep_changes: usize,
}

impl PolicyController {
    /// Binds every metric of `policy` to a simulated metric by name. A metric the policy
    /// defines keeps its own `per_replica`; a bare name takes the simulated metric's.
    pub fn new(policy: &Policy, price: f64) -> Result<PolicyController, BindError> {
        let mut policy = policy.clone();
        let mut bindings = Vec::with_capacity(policy.metrics.len());
        for metric in &mut policy.metrics {
            let sim = SimMetric::by_name(&metric.name).ok_or_else(|| BindError {
                policy: policy.name.clone(),
                metric: metric.name.clone(),
            })?;
            if !metric.defined {
                metric.per_replica = sim.per_replica();
            }
            bindings.push(sim);
        }
        let prediction = if policy.predictive.is_some() {
            Prediction::Waiting
        } else {
            Prediction::None
        };
        Ok(PolicyController {
            policy,
            bindings,
            state: PolicyState::default(),
            price,
            prediction,
            fed: 0,
            counts: DecisionCounts::default(),
            forecast_stats: ForecastStats::default(),
            changes: Vec::new(),
            keep_changes: 0,
        })
    }

    /// Sets the evaluation interval of a predictive policy's forecaster at once (otherwise
    /// it is learnt from the first two observations, and the forecaster starts then).
    pub fn with_tick(mut self, tick_s: f64) -> Result<Self, ForecastError> {
        if matches!(self.prediction, Prediction::Waiting) {
            self.start_forecaster(tick_s)?;
        }
        Ok(self)
    }

    fn start_forecaster(&mut self, tick_s: f64) -> Result<(), ForecastError> {
        let interval = TimeDelta::milliseconds((tick_s * 1000.0).round() as i64);
        let forecaster = Forecaster::for_policy(&self.policy, interval)?;
        self.prediction = Prediction::Ready(Box::new(forecaster));
        Ok(())
    }

    /// Feeds the forecaster every observation it has not seen, trains it when due, and
    /// asks it for the forecast of this decision.
    fn forecast(&mut self, now_s: f64, seen: &[TickObservation]) -> Option<Forecast> {
        if matches!(self.prediction, Prediction::Waiting) {
            let tick_s = match seen {
                [a, b, ..] => b.end_s - a.end_s,
                _ => return None,
            };
            if let Err(e) = self.start_forecaster(tick_s) {
                self.forecast_stats.failed_trainings += 1;
                self.forecast_stats.last_failure = Some(e.to_string());
                self.prediction = Prediction::None;
            }
        }
        let Prediction::Ready(forecaster) = &mut self.prediction else {
            return None;
        };
        let metric = self.policy.predictive.as_ref()?.metric;
        for o in &seen[self.fed.min(seen.len())..] {
            forecaster.observe(
                timestamp(o.end_s),
                self.bindings[metric].read(o),
                o.replicas,
            );
        }
        self.fed = seen.len();
        if let Some(job) = forecaster.training_job() {
            match job.run() {
                Ok(model) => {
                    forecaster.install(model);
                    self.forecast_stats.trainings += 1;
                }
                Err(e) => {
                    self.forecast_stats.failed_trainings += 1;
                    self.forecast_stats.last_failure = Some(e.to_string());
                }
            }
        }
        let forecast = forecaster.forecast();
        let accuracy = forecaster.accuracy();
        self.forecast_stats.scored = forecaster.ledger().scored_total();
        self.forecast_stats.mase = accuracy.mase;
        self.forecast_stats.coverage = accuracy.coverage;
        debug_assert!(forecast.is_none_or(|f| timestamp(now_s) >= f.made_at));
        forecast
    }

    /// Keep up to `n` decisions that changed the count, to show why.
    pub fn keep_changes(mut self, n: usize) -> Self {
        self.keep_changes = n;
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.policy.name
    }
}

fn timestamp(seconds: f64) -> ballast_core::Timestamp {
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64).unwrap_or_default()
}

impl Controller for PolicyController {
    fn decide(&mut self, _k: usize, now_s: f64, seen: &[TickObservation]) -> u32 {
        let last = seen
            .last()
            .expect("the policy first decides at tick 1, after one observation");
        let at = timestamp(last.end_s);
        let obs = Observations {
            current: last.allocated,
            ready: Some(last.replicas),
            metrics: self
                .bindings
                .iter()
                .map(|m| MetricObservation::value(at, m.read(last)))
                .collect(),
            price_per_replica_hour: Some(self.price),
        };
        let forecast = self.forecast(now_s, seen);
        let decision = decide_with_forecast(
            &self.policy,
            &mut self.state,
            timestamp(now_s),
            &obs,
            forecast.as_ref(),
        );
        if self.policy.predictive.is_some() {
            let stats = &mut self.forecast_stats;
            match decision
                .proposals
                .iter()
                .find(|p| matches!(p.strategy, Strategy::Predictive | Strategy::Forecast))
            {
                Some(p) if p.strategy == Strategy::Predictive => {
                    stats.acting += 1;
                    if p.desired == decision.combined {
                        stats.leading += 1;
                    }
                }
                _ => stats.aside += 1,
            }
        }
        match decision.action {
            Action::ScaleUp => self.counts.scale_up += 1,
            Action::ScaleDown => self.counts.scale_down += 1,
            Action::Hold => self.counts.hold += 1,
        }
        let desired = decision.desired;
        if decision.action != Action::Hold && self.changes.len() < self.keep_changes {
            self.changes.push(decision);
        }
        desired
    }
}
