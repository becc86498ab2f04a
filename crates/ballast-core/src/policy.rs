//! The validated policy the engine evaluates. Built only by [`crate::validate`], so every
//! value here has been checked: bounds are ordered, durations parsed, cron expressions and
//! time zones resolved, and every metric reference points into [`Policy::metrics`].

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::spec::PolicySpec;

/// A point in time. The core never reads the clock: callers pass `now`.
pub type Timestamp = DateTime<Utc>;

/// A scaling policy, ready for [`crate::decide`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique name.
    pub name: String,
    /// The policy as written, for reading back and storing.
    pub spec: PolicySpec,
    /// Decide and record, never act.
    pub dry_run: bool,
    /// Evaluated by the engine only when enabled.
    pub enabled: bool,
    /// Per-policy evaluation interval, when set.
    pub evaluation_interval: Option<TimeDelta>,
    /// Lower bound.
    pub min_replicas: u32,
    /// Upper bound.
    pub max_replicas: u32,
    /// Cooldowns per direction.
    pub cooldown: Cooldown,
    /// Every metric the policy reads, defined or raw, each once. Observations are passed in
    /// this order.
    pub metrics: Vec<Metric>,
    /// Rules that must all hold to scale up.
    pub scale_up_rules: Vec<Rule>,
    /// Rules that must all hold to scale down.
    pub scale_down_rules: Vec<Rule>,
    /// Target tracking, when configured.
    pub target_tracking: Option<TargetTracking>,
    /// Schedule entries.
    pub schedules: Vec<Schedule>,
    /// Stabilization windows.
    pub stabilization: Stabilization,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Hard hourly budget.
    pub max_hourly_cost: Option<f64>,
    /// Price of one replica-hour from the policy file; an executor's price overrides it.
    pub price_per_replica_hour: Option<f64>,
    /// What to do while metric data is bad.
    pub on_metric_error: OnMetricError,
    /// Scale to zero, when enabled.
    pub scale_to_zero: Option<ScaleToZero>,
    /// The predictive strategy, when configured.
    pub predictive: Option<Predictive>,
    /// The spare pool, when configured.
    pub spare: Option<Spare>,
}

impl Policy {
    /// The index of a metric by its name (a definition name or a raw expression).
    pub fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }
}

/// A metric the policy reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The definition's name, or the raw expression itself.
    pub name: String,
    /// The query sent to the source.
    pub query: String,
    /// The source (`prometheus`).
    pub source: String,
    /// The value is per replica, so removing replicas raises it.
    pub per_replica: bool,
    /// An empty result means 0 rather than "no data".
    pub empty_is_zero: bool,
    /// Samples older than this are stale.
    pub max_staleness: TimeDelta,
    /// Defined under `metrics` (not a raw expression).
    pub defined: bool,
}

/// Cooldowns. A scale-up waits `scale_up` after the previous scale-up; a scale-down waits
/// `scale_down` after the previous scaling action of either direction (removing capacity
/// right after adding it is the flapping case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// Since the last scale-up.
    pub scale_up: TimeDelta,
    /// Since the last scaling action.
    pub scale_down: TimeDelta,
}

/// Comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
}

impl Operator {
    /// Whether `value <op> threshold` holds. NaN never holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::Gt => value > threshold,
            Operator::Lt => value < threshold,
            Operator::Gte => value >= threshold,
            Operator::Lte => value <= threshold,
        }
    }

    /// The spelling in policy files.
    pub fn word(self) -> &'static str {
        match self {
            Operator::Gt => "gt",
            Operator::Lt => "lt",
            Operator::Gte => "gte",
            Operator::Lte => "lte",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::Gte => ">=",
            Operator::Lte => "<=",
        })
    }
}

/// A threshold rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Index into [`Policy::metrics`].
    pub metric: usize,
    /// The comparison.
    pub operator: Operator,
    /// The threshold.
    pub threshold: f64,
    /// How long the condition must have held.
    pub duration: TimeDelta,
    /// Replicas to add (positive) or remove (negative).
    pub scale_by: i64,
    /// Identifies the rule's window in [`crate::PolicyState`], so that a changed rule starts
    /// a fresh window instead of inheriting another rule's.
    pub key: String,
}

/// Target tracking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetTracking {
    /// Index into [`Policy::metrics`].
    pub metric: usize,
    /// The value wanted per replica.
    pub target: f64,
    /// Relative tolerance around the target.
    pub tolerance: f64,
}

/// A schedule entry.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as written.
    pub expression: String,
    /// The parsed expression.
    pub cron: croner::Cron,
    /// The zone the expression is read in.
    pub timezone: Tz,
    /// The floor this entry sets.
    pub desired_replicas: u32,
}

/// Stabilization windows (zero means off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stabilization {
    /// Window for scale-ups.
    pub scale_up: TimeDelta,
    /// Window for scale-downs.
    pub scale_down: TimeDelta,
}

/// Rate limits per direction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimits {
    /// On adding replicas.
    pub scale_up: Option<RateLimit>,
    /// On removing replicas.
    pub scale_down: Option<RateLimit>,
}

/// How far one direction may move within `period`; with both limits the larger change is
/// allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Replicas per period.
    pub max_step: Option<u32>,
    /// Percent of the count at the start of the period.
    pub max_percent: Option<f64>,
    /// The period.
    pub period: TimeDelta,
}

/// What to do while metric data is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMetricError {
    /// Keep the current count (scale-ups from strategies with good data still happen).
    #[default]
    Hold,
    /// Go up to this count, never down.
    Fallback(u32),
}

/// Scale to zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleToZero {
    /// Index into [`Policy::metrics`] of the activation metric.
    pub metric: usize,
    /// Active while the metric is above this.
    pub activation_threshold: f64,
    /// Inactive this long before going to zero.
    pub idle: TimeDelta,
}

/// The predictive strategy: a forecast of a metric over the lead time, made outside the core
/// from the metric's own history (see [`crate::Forecast`]), turned into a count.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictive {
    /// Index into [`Policy::metrics`] of the metric forecast. For a per-replica metric the
    /// forecaster is fed, and forecasts, the total: the value times the replicas it
    /// describes.
    pub metric: usize,
    /// The value wanted per replica: the count is `ceil(upper bound / target)`.
    pub target: f64,
    /// Whether the strategy acts.
    pub mode: PredictiveMode,
    /// Confidence level of the forecast interval (between 0 and 1).
    pub confidence: f64,
    /// How far ahead the forecast looks.
    pub lead: Lead,
    /// How much history the model is trained on.
    pub history: TimeDelta,
    /// Seasonal periods.
    pub seasonality: Vec<TimeDelta>,
    /// How often the model is trained again.
    pub retrain_every: TimeDelta,
    /// The strategy stands aside while the recent MASE is above this.
    pub max_mase: f64,
    /// The strategy stands aside while the interval's recent coverage is below this.
    pub min_coverage: Option<f64>,
    /// How far back forecasts are scored.
    pub accuracy_window: TimeDelta,
}

impl Predictive {
    /// The replicas a forecast upper bound of `upper` needs at the strategy's target:
    /// `ceil(upper / target)`, 0 for a negative or non-finite bound.
    pub fn replicas_for(&self, upper: f64) -> u32 {
        crate::decide::ceil(upper.max(0.0) / self.target)
    }

    /// The time the forecast must cover when the policy is evaluated every `interval`:
    /// the provisioning time plus one interval (a replica asked for now is ready after the
    /// provisioning time and must then carry the load until the next decision can act),
    /// or the policy's fixed `lead_time`.
    pub fn lead_time(&self, interval: TimeDelta) -> TimeDelta {
        match self.lead {
            Lead::Provisioning(p) => p + interval,
            Lead::Fixed(l) => l,
        }
    }
}

/// Whether the predictive strategy acts on its forecasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictiveMode {
    /// Propose counts from the forecast.
    Scale,
    /// Record forecasts and what they would ask for; act on nothing.
    ForecastOnly,
}

impl PredictiveMode {
    /// The spelling in policy files.
    pub fn word(self) -> &'static str {
        match self {
            PredictiveMode::Scale => "scale",
            PredictiveMode::ForecastOnly => "forecast_only",
        }
    }
}

/// How far ahead the predictive strategy looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lead {
    /// The provisioning time; one evaluation interval is added.
    Provisioning(TimeDelta),
    /// A fixed lead time.
    Fixed(TimeDelta),
}

/// The spare pool: replicas kept beyond what demand needs.
#[derive(Debug, Clone)]
pub struct Spare {
    /// Spares when no entry applies.
    pub replicas: u32,
    /// Entries setting the spares by time.
    pub schedules: Vec<SpareSchedule>,
}

/// A cron entry of the spare pool.
#[derive(Debug, Clone)]
pub struct SpareSchedule {
    /// The expression as written.
    pub expression: String,
    /// The parsed expression.
    pub cron: croner::Cron,
    /// The zone the expression is read in.
    pub timezone: Tz,
    /// Spares while the entry applies.
    pub replicas: u32,
    /// How long it applies after firing; `None`: until another entry fires.
    pub duration: Option<TimeDelta>,
}
