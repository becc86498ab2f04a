//! KEDA as a backtest [`Controller`](crate::model::Controller): the HPA of [`crate::hpa`]
//! (same [`ScaleLoop`](crate::hpa::ScaleLoop)) on an External metric with an AverageValue
//! target, which is how a KEDA ScaledObject drives the HPA between 1 and N replicas.
//!
//! The metric is the demand `r_{k−1}`; the target is `target_fraction · capacity` per
//! replica. As in `GetExternalPerPodMetricReplicas`, the proposal is `ceil(usage / target)`,
//! except that the count (`scale.status.replicas`, here `allocated_{k−1}`) stays when
//! `usage / (target · status)` is within tolerance. Readiness plays no part.
//!
//! Quantities: KEDA hands the HPA `resource.Quantity` values built with
//! `NewMilliQuantity(int64(v·1000))`, and the HPA computes with `MilliValue()`. So usage and
//! target are both truncated to whole thousandths here before the division, which matters
//! only for loads of a few units per second. (Recent KEDA releases build the quantity from
//! the decimal text instead, and `MilliValue()` then rounds up; the two differ by at most
//! one thousandth.) A target that truncates to 0 is taken as one thousandth, so the
//! division stays defined.

use crate::hpa::{Autoscaler, Behavior, ConfigError, Metric, ceil_i64, within_tolerance};
use crate::model::TickObservation;

/// The KEDA reference point of `BACKTEST.md`: target 70 % of capacity per replica and the
/// HPA's default behavior (min 1; KEDA's activation to and from 0 is not modelled).
/// [`KedaConfig::default`] gives exactly that.
///
/// KEDA's own `maxReplicaCount` default (100) is not applied: the reference measures the
/// scaling algorithm, and a cap would make it look under-provisioned for the wrong reason.
#[derive(Debug, Clone, PartialEq)]
pub struct KedaConfig {
    /// Target load per replica as a fraction of `capacity` (0.7).
    pub target_fraction: f64,
    /// Tolerance, bounds and rate limits ([`Behavior::default`]).
    pub behavior: Behavior,
}

impl Default for KedaConfig {
    fn default() -> KedaConfig {
        KedaConfig {
            target_fraction: 0.7,
            behavior: Behavior::default(),
        }
    }
}

impl Metric for KedaConfig {
    fn behavior(&self) -> &Behavior {
        &self.behavior
    }

    fn target_problem(&self) -> Option<ConfigError> {
        let valid = self.target_fraction.is_finite() && self.target_fraction > 0.0;
        (!valid)
            .then(|| ConfigError::new("target_fraction", "must be a finite number greater than 0"))
    }

    /// The replica calculator's proposal for the last observation (see the module
    /// documentation); `None` when the capacity makes the target meaningless.
    fn proposal(&self, capacity: f64, last: &TickObservation) -> Option<i64> {
        let target = milli(self.target_fraction * capacity).max(1.0);
        if !target.is_finite() {
            return None;
        }
        let usage = milli(last.demand);
        let status = f64::from(last.allocated);
        let ratio = usage / (target * status);
        if within_tolerance(ratio, self.behavior.tolerance) {
            Some(i64::from(last.allocated))
        } else {
            Some(ceil_i64(usage / target))
        }
    }
}

/// KEDA (the HPA on an External AverageValue metric of the demand), as a backtest controller.
pub type Keda = Autoscaler<KedaConfig>;

/// A quantity in whole thousandths, truncated like Go's `int64(v * 1000)` (NaN stays NaN).
fn milli(x: f64) -> f64 {
    (x * 1000.0).trunc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpa::tests::obs;
    use crate::model::Controller;

    const CAP: f64 = 100.0; // target 70 per replica

    fn proposal(demand: f64, ready: u32, allocated: u32) -> Option<i64> {
        Keda::reference(CAP).proposal(&obs(demand, ready, allocated))
    }

    #[test]
    fn the_default_config_is_valid() {
        assert_eq!(KedaConfig::default().validate(), Ok(()));
        let bad = KedaConfig {
            target_fraction: 0.0,
            ..KedaConfig::default()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["target_fraction"]);
    }

    #[test]
    fn the_proposal_is_demand_over_target_rounded_up() {
        // 700 / 70 = 10 from 5 replicas; 701 / 70 → 11; demand does not saturate.
        assert_eq!(proposal(700.0, 5, 5), Some(10));
        assert_eq!(proposal(701.0, 5, 5), Some(11));
        assert_eq!(proposal(7000.0, 5, 5), Some(100));
        assert_eq!(proposal(0.0, 5, 5), Some(0));
    }

    #[test]
    fn tolerance_uses_the_status_replicas_inclusively() {
        // 10 replicas, target 70 each: 630 → 0.9 and 770 → 1.1 keep 10.
        assert_eq!(proposal(630.0, 10, 10), Some(10));
        assert_eq!(proposal(770.0, 10, 10), Some(10));
        assert_eq!(proposal(771.0, 10, 10), Some(12));
        assert_eq!(proposal(629.0, 10, 10), Some(9));
    }

    #[test]
    fn readiness_plays_no_part() {
        // Same answer with all, some or none of the pods ready.
        for ready in [0, 3, 10] {
            assert_eq!(proposal(770.0, ready, 10), Some(10));
            assert_eq!(proposal(1400.0, ready, 10), Some(20));
        }
    }

    #[test]
    fn quantities_are_truncated_to_thousandths() {
        // capacity 1: target 0.7 = 700 milli. 1.4004 → 1400 milli → exactly 2 replicas
        // (the raw ratio 2.0006 would round up to 3).
        let keda = Keda::reference(1.0);
        assert_eq!(keda.proposal(&obs(1.4004, 1, 1)), Some(2));
        // A target below one thousandth is taken as one thousandth.
        let tiny = Keda::reference(1e-6);
        assert_eq!(tiny.proposal(&obs(0.005, 1, 1)), Some(5));
    }

    #[test]
    fn scale_up_is_rate_limited_since_demand_does_not_saturate() {
        let mut keda = Keda::reference(CAP);
        // Demand for 100 replicas from 1: max(1 + 4, 2) = 5 this sync.
        assert_eq!(keda.decide(1, 60.0, &[obs(7000.0, 1, 1)]), 5);
        // From 10: max(14, 20) = 20.
        assert_eq!(keda.decide(2, 120.0, &[obs(7000.0, 10, 10)]), 20);
    }

    #[test]
    fn a_scale_down_waits_for_the_stabilization_window() {
        let mut keda = Keda::reference(CAP);
        assert_eq!(keda.decide(1, 60.0, &[obs(1400.0, 10, 10)]), 20);
        assert_eq!(keda.decide(2, 120.0, &[obs(70.0, 20, 20)]), 20);
        assert_eq!(keda.decide(7, 360.0, &[obs(70.0, 20, 20)]), 1);
    }
}
