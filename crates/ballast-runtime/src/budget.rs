//! Budget alerts: a warning when a policy's estimated hourly spend reaches 90 % of its
//! `max_hourly_cost`, and the share of the budget in use as a metric.
//!
//! The engine calls [`BudgetWatch::observe`] after every decision it acts on (dry runs on
//! request leave the watch alone). The spend is the decision's own estimate: what the
//! target costs an hour once the decision is carried out (`hourly_cost_after`, the desired
//! count × the price per replica-hour), or, for a dry-run policy, which never acts, what
//! it costs now (`hourly_cost_before`). A policy without a budget or without a price has
//! no ratio and no alert.
//!
//! The rule: the ratio `spend / max_hourly_cost` is published as
//! `ballast_budget_used_ratio{policy}`. When it reaches [`ALERT_RATIO`] (0.9) after being
//! below it (or on the policy's first decision), one warning is logged and
//! `ballast_budget_alerts_total{policy}` counts one; it stays quiet while the ratio stays
//! at or above the threshold, and is armed again once the ratio falls below it. The state
//! is in memory: after a restart, a policy already above the threshold alerts once more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use ballast_core::{Decision, Policy};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The share of the budget at which a policy alerts.
pub const ALERT_RATIO: f64 = 0.9;

/// Label set with one `policy` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    /// The policy's name.
    pub policy: String,
}

impl PolicyLabel {
    /// The label of the policy named `name`.
    pub fn of(name: &str) -> PolicyLabel {
        PolicyLabel {
            policy: name.to_owned(),
        }
    }
}

/// What one observation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetState {
    /// The policy has no budget, or no price to estimate its spend with.
    Unbudgeted,
    /// The spend is below the alert threshold.
    Within(f64),
    /// The spend has just reached the threshold: the alert was raised now.
    Alerted(f64),
    /// The spend is still at or above the threshold; it alerted before.
    StillAbove(f64),
}

/// Each policy's budget ratio and whether it is above the threshold, with the metrics.
#[derive(Debug)]
pub struct BudgetWatch {
    ratio: Family<PolicyLabel, Gauge<f64, AtomicU64>>,
    alerts: Family<PolicyLabel, Counter>,
    /// Policies (by name) whose ratio was at or above the threshold at their last decision.
    above: Mutex<HashMap<String, bool>>,
}

impl BudgetWatch {
    /// Registers the ratio gauge and the alert counter in `registry`.
    pub fn register(registry: &mut Registry) -> BudgetWatch {
        let ratio = Family::<PolicyLabel, Gauge<f64, AtomicU64>>::default();
        let alerts = Family::<PolicyLabel, Counter>::default();
        registry.register(
            "budget_used_ratio",
            "Estimated hourly spend of a policy's target over its max_hourly_cost",
            ratio.clone(),
        );
        registry.register(
            "budget_alerts",
            "Times a policy's estimated hourly spend reached 90 % of its max_hourly_cost",
            alerts.clone(),
        );
        BudgetWatch {
            ratio,
            alerts,
            above: Mutex::new(HashMap::new()),
        }
    }

    /// Takes in one decision of `policy`: updates its ratio and raises the alert when the
    /// ratio has just reached the threshold.
    pub fn observe(&self, policy: &Policy, decision: &Decision) -> BudgetState {
        let label = PolicyLabel::of(&policy.name);
        let spend = if decision.dry_run {
            decision.hourly_cost_before
        } else {
            decision.hourly_cost_after.or(decision.hourly_cost_before)
        };
        let budget = policy.max_hourly_cost.filter(|b| b.is_finite() && *b > 0.0);
        let (Some(spend), Some(budget)) = (spend.filter(|s| s.is_finite()), budget) else {
            self.ratio.remove(&label);
            self.above
                .lock()
                .expect("no panic under the budget lock")
                .remove(&policy.name);
            return BudgetState::Unbudgeted;
        };
        let ratio = spend / budget;
        self.ratio.get_or_create(&label).set(ratio);
        let reached = ratio >= ALERT_RATIO;
        let was = self
            .above
            .lock()
            .expect("no panic under the budget lock")
            .insert(policy.name.clone(), reached)
            .unwrap_or(false);
        match (reached, was) {
            (false, _) => BudgetState::Within(ratio),
            (true, true) => BudgetState::StillAbove(ratio),
            (true, false) => {
                self.alerts.get_or_create(&label).inc();
                tracing::warn!(
                    policy = %policy.name,
                    spend_per_hour = spend,
                    max_hourly_cost = budget,
                    ratio,
                    desired = decision.desired,
                    "estimated hourly spend reached {:.0} % of the policy's budget",
                    ALERT_RATIO * 100.0
                );
                BudgetState::Alerted(ratio)
            }
        }
    }

    /// Forgets the policies not named by `live` (deleted ones), so their gauges go away.
    pub fn retain<'a>(&self, live: impl IntoIterator<Item = &'a str>) {
        let live: std::collections::HashSet<&str> = live.into_iter().collect();
        let mut above = self.above.lock().expect("no panic under the budget lock");
        above.retain(|name, _| {
            let keep = live.contains(name.as_str());
            if !keep {
                self.ratio.remove(&PolicyLabel::of(name));
            }
            keep
        });
    }
}
