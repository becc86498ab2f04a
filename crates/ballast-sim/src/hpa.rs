//! The Kubernetes Horizontal Pod Autoscaler (autoscaling/v2 with the default `behavior`) as
//! a backtest [`Controller`], following the algorithm of the controller in
//! `pkg/controller/podautoscaler` (`horizontal.go`, `replica_calculator.go`).
//!
//! The controller is split in two, like the real one:
//!
//! - a metric half ([`Metric`]) that turns the last observation into an unclamped proposal
//!   (CPU utilization here, an External AverageValue metric in [`crate::keda`]);
//! - [`ScaleLoop`], the metric-independent half: the bounds checked before metrics,
//!   stabilization windows, rate-limit policies over recorded scale events, and the
//!   `[min, max]` clamp, configured by a [`Behavior`]. KEDA shares it unchanged.
//!
//! [`Autoscaler`] joins the two; [`Hpa`] and [`Keda`](crate::keda::Keda) are it with either
//! metric.
//!
//! Mapping onto the backtest model: one HPA sync per tick, at the start of tick `k`, seeing
//! the observation of tick `k − 1`. `spec.replicas` (the HPA's current count) is
//! `allocated_{k−1}`; ready pods are `ready_{k−1}`; starting pods are unready. A pod's CPU
//! request is `capacity` and its usage is its share of the demand, saturating at the request.

use std::collections::VecDeque;

use crate::model::{Controller, TickObservation};

/// The HPA's default tolerance: no change while the usage ratio is within `[0.9, 1.1]`.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// `maxReplicas` when none is wanted: the HPA counts replicas in an `int32`.
pub const UNBOUNDED_REPLICAS: u32 = i32::MAX as u32;

/// Absolute slack when truncating a utilization percent. The real controller divides integer
/// millicores; our floats can land a hair under a whole percent (`69.99999999999999` for
/// exactly 70 %), and truncating that would lose a whole percent the integer arithmetic keeps.
const PERCENT_SLACK: f64 = 1e-9;

/// How a scaling policy measures the change it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// An absolute number of pods.
    Pods,
    /// A percentage of the count at the start of the period.
    Percent,
}

/// One `HPAScalingPolicy`: at most `value` pods or percent of change per `period_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingPolicy {
    /// Pods or Percent.
    pub kind: PolicyKind,
    /// The amount of change allowed per period (positive).
    pub value: u32,
    /// The period in seconds (positive).
    pub period_s: f64,
}

/// How several policies of one direction combine (`selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The policy allowing the largest change wins (the default).
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One direction of the HPA `behavior`: its stabilization window and rate-limit policies.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    /// Stabilization window in seconds.
    pub stabilization_s: f64,
    /// How the policies combine.
    pub select: SelectPolicy,
    /// Rate-limit policies (at least one, as the API server requires).
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// The default scale-up rules: no stabilization; `max(+4 pods, +100 %)` per 15 s.
    pub fn default_scale_up() -> ScalingRules {
        ScalingRules {
            stabilization_s: 0.0,
            select: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_s: 15.0,
                },
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_s: 15.0,
                },
            ],
        }
    }

    /// The default scale-down rules: 300 s stabilization; up to 100 % per 15 s.
    pub fn default_scale_down() -> ScalingRules {
        ScalingRules {
            stabilization_s: 300.0,
            select: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period_s: 15.0,
            }],
        }
    }
}

/// A configuration field with an unusable value, named by its flat path
/// (`scale_up_policies[1].period_s` for `behavior.scale_up.policies[1].period_s`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// Path of the field.
    pub field: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, problem: &'static str) -> ConfigError {
        ConfigError {
            field: field.into(),
            problem,
        }
    }
}

/// The metric-independent settings of an HPA, which [`ScaleLoop`] applies: the usage-ratio
/// tolerance, the replica bounds and the autoscaling/v2 `behavior` of both directions.
/// [`HpaConfig`] and [`KedaConfig`](crate::keda::KedaConfig) share it;
/// [`Behavior::default`] is the autoscaling/v2 default.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// No change while the usage ratio is within `[1 − tolerance, 1 + tolerance]` (0.1).
    pub tolerance: f64,
    /// `minReplicas` (1).
    pub min_replicas: u32,
    /// `maxReplicas` ([`UNBOUNDED_REPLICAS`]).
    pub max_replicas: u32,
    /// Scale-up stabilization window (0 s) and rate limits (Pods 4 / 15 s and
    /// Percent 100 / 15 s, combined by Max).
    pub scale_up: ScalingRules,
    /// Scale-down stabilization window (300 s) and rate limits (Percent 100 / 15 s,
    /// combined by Max).
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    fn default() -> Behavior {
        Behavior {
            tolerance: DEFAULT_TOLERANCE,
            min_replicas: 1,
            max_replicas: UNBOUNDED_REPLICAS,
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
        }
    }
}

impl Behavior {
    /// Checks every field; returns all problems at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        self.validate_after(None)
    }

    /// Like [`Behavior::validate`], with the problem of the metric's own field (if any)
    /// listed first.
    pub(crate) fn validate_after(
        &self,
        metric_problem: Option<ConfigError>,
    ) -> Result<(), Vec<ConfigError>> {
        let mut problems: Vec<ConfigError> = metric_problem.into_iter().collect();
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            problems.push(ConfigError::new(
                "tolerance",
                "must be a finite number of at least 0",
            ));
        }
        if self.max_replicas < 1 {
            problems.push(ConfigError::new("max_replicas", "must be at least 1"));
        }
        if self.min_replicas > self.max_replicas {
            problems.push(ConfigError::new(
                "min_replicas",
                "must not exceed max_replicas",
            ));
        }
        for (name, rules) in [
            ("scale_up", &self.scale_up),
            ("scale_down", &self.scale_down),
        ] {
            let s = rules.stabilization_s;
            if !(s.is_finite() && s >= 0.0) {
                problems.push(ConfigError::new(
                    format!("{name}_stabilization_s"),
                    "must be a finite number of seconds, at least 0",
                ));
            }
            if rules.policies.is_empty() {
                problems.push(ConfigError::new(
                    format!("{name}_policies"),
                    "must hold at least one policy",
                ));
            }
            for (i, p) in rules.policies.iter().enumerate() {
                if p.value == 0 {
                    problems.push(ConfigError::new(
                        format!("{name}_policies[{i}].value"),
                        "must be positive",
                    ));
                }
                if !(p.period_s.is_finite() && p.period_s > 0.0) {
                    problems.push(ConfigError::new(
                        format!("{name}_policies[{i}].period_s"),
                        "must be a positive finite number of seconds",
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// A fresh [`ScaleLoop`] with these bounds and rules (not validated).
    pub fn scale_loop(&self) -> ScaleLoop {
        ScaleLoop::new(
            self.min_replicas,
            self.max_replicas,
            self.scale_up.clone(),
            self.scale_down.clone(),
        )
    }
}

/// The HPA of `BACKTEST.md`'s reference point: a CPU Utilization target and the
/// autoscaling/v2 default behavior. [`HpaConfig::default`] gives exactly that.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// Target average CPU utilization in percent of the request (default 70).
    pub target_utilization: i64,
    /// Tolerance, bounds and rate limits ([`Behavior::default`]).
    pub behavior: Behavior,
}

impl Default for HpaConfig {
    fn default() -> HpaConfig {
        HpaConfig {
            target_utilization: 70,
            behavior: Behavior::default(),
        }
    }
}

/// The metric half of an HPA configuration: the target that turns the last observation into
/// an unclamped proposal, next to the [`Behavior`] that [`ScaleLoop`] applies to it.
/// [`HpaConfig`] (CPU utilization) and [`KedaConfig`](crate::keda::KedaConfig) (an External
/// AverageValue metric) implement it; an [`Autoscaler`] runs either.
pub trait Metric {
    /// The metric-independent settings.
    fn behavior(&self) -> &Behavior;

    /// The problem with the metric's target, if any.
    fn target_problem(&self) -> Option<ConfigError>;

    /// The replica calculator's proposal from the observation of the last tick, for replicas
    /// that each serve `capacity` load units per second; `None` when there is no metric,
    /// which makes the controller keep the count.
    fn proposal(&self, capacity: f64, last: &TickObservation) -> Option<i64>;

    /// Checks every field; returns all problems at once, the target's first.
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        self.behavior().validate_after(self.target_problem())
    }
}

impl Metric for HpaConfig {
    fn behavior(&self) -> &Behavior {
        &self.behavior
    }

    fn target_problem(&self) -> Option<ConfigError> {
        (self.target_utilization <= 0)
            .then(|| ConfigError::new("target_utilization", "must be a positive percent"))
    }

    /// The replica calculator's proposal (`GetResourceReplicas`) from the observation of the
    /// last tick; `None` when there is no metric (no ready pod, or an unusable capacity),
    /// which makes the controller keep the count.
    ///
    /// Utilization is an integer percent, truncated, over ready pods, each pod's usage
    /// saturating at its request: `trunc(100·min(r, ready·cap) / (ready·cap))`. Without
    /// unready pods (or when not scaling up) the result is `current` within tolerance, else
    /// `ceil(ratio·ready)`. On a scale-up with unready pods they count as 0 %: the percent is
    /// recomputed over all pods, and the count stays if the new ratio is within tolerance or
    /// flips the direction, else it is `ceil(newRatio·(ready + unready))` unless that moves
    /// against the ratio.
    fn proposal(&self, cap: f64, last: &TickObservation) -> Option<i64> {
        if !(cap.is_finite() && cap > 0.0) || last.replicas == 0 {
            return None;
        }
        let current = i64::from(last.allocated);
        let ready = i64::from(last.replicas);
        let unready = i64::from(last.allocated.saturating_sub(last.replicas));
        let target = self.target_utilization as f64;
        let tol = self.behavior.tolerance;

        let usage = last.demand.min(ready as f64 * cap);
        let ratio = percent(usage, ready as f64 * cap) as f64 / target;

        if !(unready > 0 && ratio > 1.0) {
            if within_tolerance(ratio, tol) {
                return Some(current);
            }
            return Some(ceil_i64(ratio * ready as f64));
        }

        let all = ready + unready;
        let new_ratio = percent(usage, all as f64 * cap) as f64 / target;
        if within_tolerance(new_ratio, tol) || new_ratio < 1.0 {
            // Too small a change, or counting the starting pods flips the direction.
            return Some(current);
        }
        let replicas = ceil_i64(new_ratio * all as f64);
        if replicas < current {
            return Some(current);
        }
        Some(replicas)
    }
}

/// The usage-ratio tolerance test of the replica calculator: inclusive at both bounds, in
/// the form `1 − tol ≤ ratio ≤ 1 + tol` (which keeps a ratio of exactly 1.1 inside, where
/// `|1 − ratio| ≤ tol` would not in floating point). False for NaN.
pub(crate) fn within_tolerance(ratio: f64, tolerance: f64) -> bool {
    (1.0 - tolerance) <= ratio && ratio <= (1.0 + tolerance)
}

/// The metric-independent half of the HPA controller: everything `reconcileAutoscaler` does
/// after (and around) computing the metric proposal, with the state it keeps between syncs.
///
/// One [`ScaleLoop::reconcile`] call is one sync:
///
/// 1. On the very first sync, the current count is recorded as a recommendation, so a fresh
///    HPA does not scale down within its first stabilization window.
/// 2. Before metrics: current 0 with a positive minimum → no change (scaling disabled);
///    above max → max; below min → min. These skip steps 3–5.
/// 3. The metric proposal (`None` = the metric failed → no change this sync).
/// 4. Stabilization: the result is the current count clamped to
///    `[lowest proposal in the scale-up window, highest proposal in the scale-down window]`,
///    the current proposal included; a record is in a window when its time is strictly
///    after `now − window`. Every (unclamped) proposal is recorded.
/// 5. Rate limits: per policy, the period's start count is
///    `current − pods added in the period + pods removed in the period` (scale events
///    strictly after `now − period`); Pods allows `start ± value`, Percent
///    `ceil(start·(1 + v/100))` up or `trunc(start·(1 − v/100))` down; the policies combine
///    by `selectPolicy`; a limit never goes past current; then `[min, max]`.
/// 6. A change is recorded as a scale event at `now`.
#[derive(Debug, Clone)]
pub struct ScaleLoop {
    min: i64,
    max: i64,
    up: ScalingRules,
    down: ScalingRules,
    initialized: bool,
    /// `(time, unclamped proposal)`, oldest first; records too old for both windows are
    /// dropped, which changes no result because time only moves forward.
    recommendations: VecDeque<(f64, i64)>,
    /// `(time, pods added)`, oldest first.
    up_events: VecDeque<(f64, i64)>,
    /// `(time, pods removed)`, oldest first.
    down_events: VecDeque<(f64, i64)>,
    /// The longest policy period of either direction: events older than that never count.
    longest_period_s: f64,
}

impl ScaleLoop {
    /// A fresh loop (no recommendations, no scale events) with these bounds and rules.
    /// Does not validate; see [`Behavior::validate`].
    pub fn new(min: u32, max: u32, up: ScalingRules, down: ScalingRules) -> ScaleLoop {
        let longest_period_s = up
            .policies
            .iter()
            .chain(&down.policies)
            .map(|p| p.period_s)
            .fold(0.0, f64::max);
        ScaleLoop {
            min: i64::from(min),
            max: i64::from(max),
            up,
            down,
            initialized: false,
            recommendations: VecDeque::new(),
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
            longest_period_s,
        }
    }

    /// One sync at `now_s` with `current` replicas (`spec.replicas`); `proposal` computes the
    /// metric's unclamped proposal and is only called when the bounds let metrics decide.
    /// Returns the new desired count (see the type's documentation for the steps).
    pub fn reconcile(
        &mut self,
        now_s: f64,
        current: u32,
        proposal: impl FnOnce() -> Option<i64>,
    ) -> u32 {
        let current = i64::from(current);
        if !self.initialized {
            self.initialized = true;
            self.recommendations.push_back((now_s, current));
        }

        let desired = if current == 0 && self.min > 0 {
            return 0;
        } else if current > self.max {
            self.max
        } else if current < self.min {
            self.min
        } else {
            let Some(proposal) = proposal() else {
                return current as u32;
            };
            // The controller starts from 0 and takes the largest metric proposal.
            let proposal = proposal.max(0);
            let stabilized = self.stabilize(now_s, current, proposal);
            self.limit_rate(now_s, current, stabilized)
        };

        if desired != current {
            self.record_scale_event(now_s, current, desired);
        }
        // Within [0, max] and max came from a u32.
        desired.clamp(0, i64::from(u32::MAX)) as u32
    }

    fn stabilize(&mut self, now_s: f64, current: i64, proposal: i64) -> i64 {
        let up_cutoff = now_s - self.up.stabilization_s;
        let down_cutoff = now_s - self.down.stabilization_s;
        let (mut up, mut down) = (proposal, proposal);
        for &(t, rec) in &self.recommendations {
            if t > up_cutoff {
                up = up.min(rec);
            }
            if t > down_cutoff {
                down = down.max(rec);
            }
        }
        let mut stabilized = current;
        if stabilized < up {
            stabilized = up;
        }
        if stabilized > down {
            stabilized = down;
        }

        self.recommendations.push_back((now_s, proposal));
        let horizon = up_cutoff.min(down_cutoff);
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| t <= horizon)
        {
            self.recommendations.pop_front();
        }
        stabilized
    }

    fn limit_rate(&self, now_s: f64, current: i64, desired: i64) -> i64 {
        if desired > current {
            // A limit below current means "not further up until old events expire".
            let limit = self.scale_up_limit(now_s, current).max(current);
            let allowed = self.max.min(limit);
            desired.min(allowed)
        } else if desired < current {
            let limit = self.scale_down_limit(now_s, current).min(current);
            let allowed = self.min.max(limit);
            desired.max(allowed)
        } else {
            desired
        }
    }

    /// Count at the start of the period ending now: current minus pods added plus pods
    /// removed strictly after `now − period`.
    fn period_start(&self, now_s: f64, period_s: f64, current: i64) -> i64 {
        let cutoff = now_s - period_s;
        let sum = |events: &VecDeque<(f64, i64)>| -> i64 {
            events
                .iter()
                .filter(|&&(t, _)| t > cutoff)
                .map(|&(_, n)| n)
                .sum()
        };
        current - sum(&self.up_events) + sum(&self.down_events)
    }

    fn scale_up_limit(&self, now_s: f64, current: i64) -> i64 {
        let select = self.up.select;
        let mut limit = match select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Max => i64::MIN,
            SelectPolicy::Min => i64::MAX,
        };
        for p in &self.up.policies {
            let start = self.period_start(now_s, p.period_s, current);
            let proposed = match p.kind {
                PolicyKind::Pods => start + i64::from(p.value),
                // Rounded up so that a small count can always grow.
                PolicyKind::Percent => {
                    (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
            };
            limit = match select {
                SelectPolicy::Min => limit.min(proposed),
                _ => limit.max(proposed),
            };
        }
        limit
    }

    fn scale_down_limit(&self, now_s: f64, current: i64) -> i64 {
        let select = self.down.select;
        let mut limit = match select {
            SelectPolicy::Disabled => return current,
            // The largest change is the lowest count.
            SelectPolicy::Max => i64::MAX,
            SelectPolicy::Min => i64::MIN,
        };
        for p in &self.down.policies {
            let start = self.period_start(now_s, p.period_s, current);
            let proposed = match p.kind {
                PolicyKind::Pods => start - i64::from(p.value),
                // Truncated like Go's int32() conversion.
                PolicyKind::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            };
            limit = match select {
                SelectPolicy::Min => limit.max(proposed),
                _ => limit.min(proposed),
            };
        }
        limit
    }

    fn record_scale_event(&mut self, now_s: f64, from: i64, to: i64) {
        let horizon = now_s - self.longest_period_s;
        for events in [&mut self.up_events, &mut self.down_events] {
            while events.front().is_some_and(|&(t, _)| t <= horizon) {
                events.pop_front();
            }
        }
        if to > from {
            self.up_events.push_back((now_s, to - from));
        } else {
            self.down_events.push_back((now_s, from - to));
        }
    }
}

/// An HPA as a backtest controller: its [`Metric`] configuration proposes, its
/// [`ScaleLoop`] does the rest. One sync per tick, on the observation of the tick before.
#[derive(Debug, Clone)]
pub struct Autoscaler<M> {
    config: M,
    capacity: f64,
    scale_loop: ScaleLoop,
}

/// The HPA on CPU utilization, as a backtest controller.
pub type Hpa = Autoscaler<HpaConfig>;

impl<M: Metric> Autoscaler<M> {
    /// An autoscaler with `config`, for replicas that each serve `capacity` load units per
    /// second (for the HPA, their CPU request).
    pub fn new(config: M, capacity: f64) -> Result<Autoscaler<M>, Vec<ConfigError>> {
        config.validate()?;
        Ok(Autoscaler::build(config, capacity))
    }

    /// The reference point of `BACKTEST.md`: the default configuration
    /// ([`HpaConfig::default`], [`KedaConfig::default`](crate::keda::KedaConfig::default)).
    pub fn reference(capacity: f64) -> Autoscaler<M>
    where
        M: Default,
    {
        // The default configurations are valid (checked by tests), so no validation here.
        Autoscaler::build(M::default(), capacity)
    }

    fn build(config: M, capacity: f64) -> Autoscaler<M> {
        let scale_loop = config.behavior().scale_loop();
        Autoscaler {
            config,
            capacity,
            scale_loop,
        }
    }

    /// The metric's proposal from the observation of the last tick ([`Metric::proposal`]).
    pub fn proposal(&self, last: &TickObservation) -> Option<i64> {
        self.config.proposal(self.capacity, last)
    }
}

impl<M: Metric> Controller for Autoscaler<M> {
    fn decide(&mut self, _k: usize, now_s: f64, seen: &[TickObservation]) -> u32 {
        let Some(last) = seen.last() else {
            // Only reachable if called for tick 0, which keeps the initial count anyway.
            return self.config.behavior().min_replicas;
        };
        let Autoscaler {
            config,
            capacity,
            scale_loop,
        } = self;
        scale_loop.reconcile(now_s, last.allocated, || config.proposal(*capacity, last))
    }
}

/// `trunc(100·usage / request)` as the integer percent the controller computes, with the
/// float slack of [`PERCENT_SLACK`].
fn percent(usage: f64, request: f64) -> i64 {
    (100.0 * usage / request + PERCENT_SLACK).floor() as i64
}

/// Go's `int32(math.Ceil(x))` on a float, saturating instead of overflowing.
pub(crate) fn ceil_i64(x: f64) -> i64 {
    x.ceil() as i64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const CAP: f64 = 100.0;

    /// An observation with `demand`, `ready` ready and `allocated` allocated replicas; the
    /// fields no HPA reads are 0.
    pub(crate) fn obs(demand: f64, ready: u32, allocated: u32) -> TickObservation {
        TickObservation {
            tick: 0,
            end_s: 0.0,
            demand,
            replicas: ready,
            allocated,
            load_per_replica: demand / f64::from(ready.max(1)),
            utilization: 0.0, // the HPA computes its own integer percent
            backlog: 0.0,
        }
    }

    fn proposal(demand: f64, ready: u32, allocated: u32) -> Option<i64> {
        Hpa::reference(CAP).proposal(&obs(demand, ready, allocated))
    }

    #[test]
    fn the_default_config_is_valid_and_matches_backtest_md() {
        let c = HpaConfig::default();
        assert_eq!(c.validate(), Ok(()));
        let b = &c.behavior;
        assert_eq!(
            (c.target_utilization, b.tolerance, b.min_replicas),
            (70, 0.1, 1)
        );
        assert_eq!(
            (b.scale_up.stabilization_s, b.scale_down.stabilization_s),
            (0.0, 300.0)
        );
    }

    #[test]
    fn validation_names_every_bad_field() {
        let c = HpaConfig {
            target_utilization: 0,
            behavior: Behavior {
                tolerance: -0.1,
                min_replicas: 5,
                max_replicas: 3,
                scale_up: ScalingRules {
                    policies: vec![ScalingPolicy {
                        kind: PolicyKind::Pods,
                        value: 0,
                        period_s: 0.0,
                    }],
                    ..ScalingRules::default_scale_up()
                },
                scale_down: ScalingRules {
                    policies: vec![],
                    ..ScalingRules::default_scale_down()
                },
            },
        };
        let fields: Vec<String> = c
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "target_utilization",
                "tolerance",
                "min_replicas",
                "scale_up_policies[0].value",
                "scale_up_policies[0].period_s",
                "scale_down_policies",
            ]
        );
        assert!(Hpa::new(c, CAP).is_err());
    }

    #[test]
    fn a_ratio_exactly_at_the_tolerance_bounds_changes_nothing() {
        // 10 ready pods of 100: 63 % → 0.9 and 77 % → 1.1, both inclusive.
        assert_eq!(proposal(630.0, 10, 10), Some(10));
        assert_eq!(proposal(770.0, 10, 10), Some(10));
        // One percent further is outside: ceil(78/70·10) = 12, ceil(62/70·10) = 9.
        assert_eq!(proposal(780.0, 10, 10), Some(12));
        assert_eq!(proposal(620.0, 10, 10), Some(9));
    }

    #[test]
    fn utilization_is_truncated_to_an_integer_percent() {
        // 77.99 % truncates to 77 %, inside the tolerance; a float ratio would scale up.
        assert_eq!(proposal(779.9, 10, 10), Some(10));
        // 0.9 % truncates to 0 %: the proposal is 0 pods (the minimum applies later).
        assert_eq!(proposal(9.0, 10, 10), Some(0));
        // Float noise does not lose a percent: 0.21 / (3 · 0.1) is exactly 70 %.
        let hpa = Hpa::reference(0.1);
        assert_eq!(hpa.proposal(&obs(0.21, 3, 3)), Some(3));
    }

    #[test]
    fn usage_saturates_at_the_request() {
        // 10 × demand still reads as 100 %: ceil(100/70 · 4) = 6.
        assert_eq!(proposal(4000.0, 4, 4), Some(6));
    }

    #[test]
    fn unready_pods_count_as_zero_on_a_scale_up() {
        // 4 ready at 100 %, 4 starting: counting them at 0 % gives 50 %, which flips the
        // direction, so the count stays 8 (ignoring them would say ceil(1.43·4) = 6).
        assert_eq!(proposal(400.0, 4, 8), Some(8));
        // 4 ready, 2 starting: 400/600 = 66 % → 0.94, within tolerance → stays 6.
        assert_eq!(proposal(400.0, 4, 6), Some(6));
        // 20 ready at 100 %, 2 starting: 2000/2200 = 90 % → ceil(90/70 · 22) = 29.
        assert_eq!(proposal(2000.0, 20, 22), Some(29));
    }

    #[test]
    fn unready_pods_are_left_out_on_a_scale_down() {
        // 10 ready at 30 %, 5 starting: ceil(30/70 · 10) = 5, the starting ones ignored.
        assert_eq!(proposal(300.0, 10, 15), Some(5));
    }

    #[test]
    fn no_ready_pod_means_no_metric() {
        assert_eq!(proposal(500.0, 0, 3), None);
        assert_eq!(Hpa::reference(f64::NAN).proposal(&obs(1.0, 1, 1)), None);
    }

    /// Drives a controller through syncs at the given times with synthetic observations.
    fn sync(hpa: &mut Hpa, now_s: f64, demand: f64, ready: u32, allocated: u32) -> u32 {
        hpa.decide(1, now_s, &[obs(demand, ready, allocated)])
    }

    #[test]
    fn stabilization_holds_a_scale_down_for_300_s_after_a_high_recommendation() {
        let mut hpa = Hpa::reference(CAP);
        // 10 pods at 100 %: ceil(1.43 · 10) = 15.
        assert_eq!(sync(&mut hpa, 60.0, 1000.0, 10, 10), 15);
        // Then demand collapses to 100: the proposal is 2, but 15 was recommended at 60 s.
        for now in [120.0, 180.0, 240.0, 300.0] {
            assert_eq!(sync(&mut hpa, now, 100.0, 15, 15), 15, "at {now}");
        }
        // At 360 the record of 60 is no longer strictly after 360 − 300.
        assert_eq!(sync(&mut hpa, 360.0, 100.0, 15, 15), 2);
    }

    #[test]
    fn a_fresh_hpa_does_not_scale_down_within_its_first_window() {
        let mut hpa = Hpa::reference(CAP);
        // The first sync records the current count (10) as a recommendation.
        assert_eq!(sync(&mut hpa, 0.0, 100.0, 10, 10), 10);
        assert_eq!(sync(&mut hpa, 299.0, 100.0, 10, 10), 10);
        assert_eq!(sync(&mut hpa, 300.0, 100.0, 10, 10), 2);
    }

    fn default_loop(min: u32, max: u32) -> ScaleLoop {
        ScaleLoop::new(
            min,
            max,
            ScalingRules::default_scale_up(),
            ScalingRules::default_scale_down(),
        )
    }

    #[test]
    fn scale_up_is_limited_to_the_larger_of_four_pods_and_double() {
        assert_eq!(
            default_loop(1, UNBOUNDED_REPLICAS).reconcile(0.0, 1, || Some(100)),
            5
        );
        assert_eq!(
            default_loop(1, UNBOUNDED_REPLICAS).reconcile(0.0, 10, || Some(100)),
            20
        );
        assert_eq!(
            default_loop(1, UNBOUNDED_REPLICAS).reconcile(0.0, 10, || Some(13)),
            13
        );
    }

    #[test]
    fn the_rate_limit_counts_from_the_period_start() {
        let mut l = default_loop(1, UNBOUNDED_REPLICAS);
        assert_eq!(l.reconcile(0.0, 1, || Some(100)), 5);
        // 10 s later the period began at 1 replica: still at most 5.
        assert_eq!(l.reconcile(10.0, 5, || Some(100)), 5);
        // At 15 s the event of 0 s is out of the period: 5 → 10.
        assert_eq!(l.reconcile(15.0, 5, || Some(100)), 10);
    }

    #[test]
    fn scale_down_may_remove_everything_down_to_min() {
        let mut l = default_loop(2, UNBOUNDED_REPLICAS);
        l.reconcile(0.0, 10, || Some(10));
        assert_eq!(l.reconcile(300.0, 10, || Some(0)), 2);
    }

    #[test]
    fn bounds_apply_before_metrics() {
        let called = std::cell::Cell::new(false);
        let metric = || {
            called.set(true);
            Some(7)
        };
        // Above max → max, below min → min, current 0 → nothing; none asks the metric.
        assert_eq!(default_loop(1, 5).reconcile(0.0, 8, metric), 5);
        assert_eq!(default_loop(3, 10).reconcile(0.0, 1, metric), 3);
        assert_eq!(default_loop(1, 10).reconcile(0.0, 0, metric), 0);
        assert!(!called.get());
        // Within bounds, the proposal is clamped to [min, max] after the rate limits.
        assert_eq!(default_loop(1, 6).reconcile(0.0, 5, || Some(9)), 6);
        let mut l = default_loop(2, 10);
        l.reconcile(0.0, 5, || Some(5));
        assert_eq!(l.reconcile(300.0, 5, || Some(0)), 2);
    }

    #[test]
    fn a_failed_metric_keeps_the_count() {
        let mut l = default_loop(1, 10);
        assert_eq!(l.reconcile(0.0, 4, || None), 4);
    }

    #[test]
    fn disabled_directions_never_move() {
        let up_off = ScalingRules {
            select: SelectPolicy::Disabled,
            ..ScalingRules::default_scale_up()
        };
        let mut l = ScaleLoop::new(1, 100, up_off, ScalingRules::default_scale_down());
        assert_eq!(l.reconcile(0.0, 3, || Some(50)), 3);
    }

    #[test]
    fn min_select_takes_the_smallest_change() {
        let up = ScalingRules {
            select: SelectPolicy::Min,
            ..ScalingRules::default_scale_up()
        };
        let mut l = ScaleLoop::new(1, 100, up, ScalingRules::default_scale_down());
        // min(10 + 4, 20) = 14.
        assert_eq!(l.reconcile(0.0, 10, || Some(50)), 14);
    }
}
