//! A Ballast policy as a backtest [`Controller`]: its metrics are bound to the simulated
//! metrics of `BACKTEST.md`, and the core's [`decide()`] runs at every tick on a virtual clock.

use ballast_core::{
    Action, Decision, MetricObservation, Observations, Policy, PolicyState, decide,
};
use chrono::DateTime;

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

/// Runs a policy in a backtest.
#[derive(Debug)]
pub struct PolicyController {
    policy: Policy,
    bindings: Vec<SimMetric>,
    state: PolicyState,
    price: f64,
    /// What the policy decided, by action.
    pub counts: DecisionCounts,
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
        Ok(PolicyController {
            policy,
            bindings,
            state: PolicyState::default(),
            price,
            counts: DecisionCounts::default(),
            changes: Vec::new(),
            keep_changes: 0,
        })
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
        let decision = decide(&self.policy, &mut self.state, timestamp(now_s), &obs);
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
