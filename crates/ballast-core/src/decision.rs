//! A decision: the new desired count and everything that led to it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::Timestamp;

/// The outcome of one evaluation of one policy. Stored in history as it is, so it derives
/// serde: it is a record, not just an engine value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The policy's name.
    pub policy: String,
    /// When the decision was taken.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// The target's count when deciding.
    pub current: u32,
    /// The desired count decided at the previous evaluation.
    pub previous_desired: Option<u32>,
    /// The new desired count.
    pub desired: u32,
    /// Whether the count goes up, down, or stays.
    pub action: Action,
    /// The policy is a dry run: record, never act.
    pub dry_run: bool,
    /// Every strategy's proposal, with its reason.
    pub proposals: Vec<Proposal>,
    /// The combined proposal, before the constraints.
    pub combined: u32,
    /// Each constraint that changed (or held) the count, in the order applied.
    pub constraints: Vec<ConstraintStep>,
    /// Metrics whose data was bad at this evaluation, with why.
    pub data_problems: Vec<String>,
    /// Estimated hourly cost of the current count, when a price is known.
    pub hourly_cost_before: Option<f64>,
    /// Estimated hourly cost of the desired count, when a price is known.
    pub hourly_cost_after: Option<f64>,
}

impl Decision {
    /// A one-line explanation: the action and the reason that decided it.
    pub fn summary(&self) -> String {
        let verb = match self.action {
            Action::ScaleUp => format!("scale up {} → {}", self.current, self.desired),
            Action::ScaleDown => format!("scale down {} → {}", self.current, self.desired),
            Action::Hold => format!("hold at {}", self.desired),
        };
        let why = if let Some(step) = self.constraints.last() {
            step.reason.clone()
        } else if let Some(p) = self
            .proposals
            .iter()
            .filter(|p| p.strategy.votes() && p.desired == self.combined)
            .max_by_key(|p| p.desired)
        {
            p.reason.clone()
        } else {
            "no strategy proposed a change".to_owned()
        };
        format!("{verb}: {why}")
    }
}

/// The direction of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// More replicas.
    ScaleUp,
    /// Fewer replicas.
    ScaleDown,
    /// The same count.
    Hold,
}

impl Action {
    /// `scale_up`, `scale_down` or `hold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Hold => "hold",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy's proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    /// Which strategy.
    pub strategy: Strategy,
    /// The count it asks for.
    pub desired: u32,
    /// Why.
    pub reason: String,
}

/// The strategies of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Threshold rules with durations.
    Rules,
    /// Target tracking.
    TargetTracking,
    /// Cron schedules.
    Schedule,
    /// `on_metric_error: {fallback: N}` while data is bad.
    Fallback,
    /// The predictive strategy: the forecast's upper bound over the lead time.
    Predictive,
    /// The predictive strategy's forecast, recorded without a vote: the policy is
    /// `forecast_only`, or the strategy stands aside (no forecast yet, a stale one, or
    /// accuracy below the policy's threshold). Never combined; `desired` is what the
    /// forecast would ask for (the current count when there is no forecast).
    Forecast,
}

impl Strategy {
    /// Whether the proposal takes part in the combination (only [`Strategy::Forecast`]
    /// does not).
    pub fn votes(self) -> bool {
        self != Strategy::Forecast
    }
}

/// One constraint applied to the combined proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConstraintStep {
    /// Which constraint.
    pub constraint: Constraint,
    /// The count before it.
    pub before: u32,
    /// The count after it.
    pub after: u32,
    /// Why.
    pub reason: String,
}

/// The constraints, in the order they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// The spare pool raises the count to what demand needs plus the spares.
    Spare,
    /// Bad data never lowers the count.
    DataGuard,
    /// A scale-down that would at once trigger a scale-up is shrunk or skipped.
    FlapGuard,
    /// Stabilization windows.
    Stabilization,
    /// Rate limits.
    RateLimit,
    /// Cooldowns.
    Cooldown,
    /// `min_replicas` and `max_replicas`.
    Bounds,
    /// `max_hourly_cost`.
    Budget,
    /// Scale to zero and activation.
    ScaleToZero,
}
