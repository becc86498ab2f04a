//! Per-policy engine state: everything a decision depends on besides the policy, `now` and
//! the observations. A plain value, serializable so a store can save it and a restarted
//! engine continues where it stopped (cooldowns, rule windows, stabilization).

use serde::{Deserialize, Serialize};

use crate::policy::Timestamp;

/// The state of one policy between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyState {
    /// The last desired count decided.
    pub desired: Option<u32>,
    /// When the count was last raised.
    pub last_scale_up: Option<Timestamp>,
    /// When the count was last lowered.
    pub last_scale_down: Option<Timestamp>,
    /// When the policy was last evaluated.
    pub last_evaluated: Option<Timestamp>,
    /// One window per rule, matched by the rule's key.
    pub rules: Vec<RuleWindow>,
    /// Recommendations kept for the stabilization windows.
    pub recommendations: Vec<Recommendation>,
    /// Changes of the count kept for the rate-limit periods.
    pub scale_events: Vec<ScaleEvent>,
    /// Since when the scale-to-zero activation metric has been at or below its threshold.
    pub idle_since: Option<Timestamp>,
}

/// How long a rule's condition has held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleWindow {
    /// The rule's key ([`crate::Rule::key`]).
    pub key: String,
    /// The time of the first sample of the current unbroken run of samples that satisfy the
    /// condition; `None` when the last sample did not.
    pub holding_since: Option<Timestamp>,
    /// The newest sample already taken into account.
    pub last_sample: Option<Timestamp>,
}

/// A recommendation (the count the strategies asked for) at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// When.
    pub at: Timestamp,
    /// The count.
    pub replicas: u32,
}

/// A change of the desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When.
    pub at: Timestamp,
    /// The count before.
    pub from: u32,
    /// The count after.
    pub to: u32,
}
