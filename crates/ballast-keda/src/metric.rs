//! The metric that makes the HPA land on a policy's desired count.
//!
//! KEDA gives the HPA an External metric with an AverageValue target. With metric value `v`
//! and target `t` per replica, the HPA (`GetExternalPerPodMetricReplicas`) proposes
//! `ceil(v / t)` replicas, unless the usage ratio `v / (t · s)` against the current count
//! `s` (`scale.status.replicas`) is within its tolerance (`[0.9, 1.1]` by default, bounds
//! inclusive), in which case it keeps `s`.
//!
//! The target is [`METRIC_TARGET`] (1000 per replica) and the value is, for a desired count
//! `d` ([`metric_value`]):
//!
//! - `1000·d` normally, so `v / t = d` exactly;
//! - `1000·d − 999` when the last change lowered the count, so `v / t = d − 0.999`, which
//!   still rounds up to `d` but gives the lowest usage ratio that does;
//! - `0` for `d = 0` (KEDA takes the target to zero through `IsActive`; until its cooldown
//!   ends the HPA sits at its minimum of 1).
//!
//! Both are whole numbers, so KEDA's conversion to thousandths (`int64(v·1000)`) and the
//! HPA's integer arithmetic lose nothing, and `ceil(v / t)` is `d` in every case. Any `v`
//! with `d − 1 < v / t ≤ d` would do that; the choice only decides when the tolerance lets
//! the HPA move. From `s` replicas (the count published before, which the HPA holds):
//!
//! - a raise to `d` lands when `d / s > 1.1`, i.e. `10·d > 11·s`: every raise below 10
//!   replicas, from 10 to 12 or more, from 20 to 23 or more;
//! - a cut to `d` lands when `(d − 0.999) / s < 0.9`, i.e. `1000·d < 900·s + 999`: every
//!   cut below 20 replicas, from 20 to 18 or fewer, from 100 to 90 or fewer;
//! - otherwise the HPA stays at `s`, and it moves as soon as a later decision leaves that
//!   band. No value can do better without knowing `s`, which KEDA does not send: a raise
//!   needs `v / t` high, a cut needs it low, and `ceil` pins both to `(d − 1, d]`.
//!
//! Where the HPA's tolerance can be set per object (the `HPAConfigurableTolerance` feature
//! of Kubernetes, alpha in 1.33, and KEDA 2.18 or later, which passes `tolerance` through
//! `advanced.horizontalPodAutoscalerConfig.behavior`), a tolerance of 0 in both directions
//! makes every change land: the ratio is then never exactly 1 unless `d = s`.

use crate::board::Published;

/// The target per replica in `GetMetricSpec` (`targetSizeFloat`, and `targetSize` for old
/// KEDA releases).
pub const METRIC_TARGET: f64 = 1000.0;

/// The value `GetMetrics` reports for a policy's published state (see the module
/// documentation for why): `1000·d`, or `1000·d − 999` after a cut, or 0 when `d = 0`.
pub fn metric_value(p: &Published) -> f64 {
    let d = f64::from(p.desired);
    match p.desired {
        0 => 0.0,
        _ if p.lowered => METRIC_TARGET * d - (METRIC_TARGET - 1.0),
        _ => METRIC_TARGET * d,
    }
}

/// The metric's name for `policy`: `ballast-` and the policy name in lower case, with every
/// character other than a letter, a digit or `-` replaced by `-` (KEDA prefixes it with the
/// trigger's index, `s0-ballast-web`).
pub fn metric_name(policy: &str) -> String {
    let mut name = String::from("ballast-");
    name.extend(policy.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' {
            c.to_ascii_lowercase()
        } else {
            '-'
        }
    }));
    name
}

#[cfg(test)]
mod tests {
    //! The claims of the module documentation, checked against the HPA reference model of
    //! `ballast-sim` (`keda::KedaConfig`, which follows `pkg/controller/podautoscaler`'s
    //! External AverageValue path, thousandths included).

    use super::*;
    use ballast_sim::hpa::{Behavior, Metric};
    use ballast_sim::{KedaConfig, TickObservation};

    /// The HPA's proposal from `s` replicas for metric value `v` and target `t`.
    fn hpa_proposal(v: f64, t: f64, s: u32, tolerance: f64) -> i64 {
        let config = KedaConfig {
            target_fraction: 1.0,
            behavior: Behavior {
                tolerance,
                ..Behavior::default()
            },
        };
        let seen = TickObservation {
            tick: 0,
            end_s: 0.0,
            demand: v,
            replicas: s,
            allocated: s,
            load_per_replica: 0.0,
            utilization: 0.0,
            backlog: 0.0,
        };
        config.proposal(t, &seen).expect("a usable target")
    }

    fn published(desired: u32, before: u32) -> Published {
        Published {
            desired,
            lowered: desired < before,
            changes: u64::from(desired != before),
        }
    }

    #[test]
    fn the_value_over_the_target_rounds_up_to_the_desired_count() {
        for d in [1, 2, 3, 10, 57, 999, 100_000, u32::MAX] {
            for lowered in [false, true] {
                let p = Published {
                    desired: d,
                    lowered,
                    changes: 1,
                };
                let v = metric_value(&p);
                assert_eq!(v.fract(), 0.0, "whole thousandths for {p:?}");
                assert_eq!((v / METRIC_TARGET).ceil(), f64::from(d), "{p:?}");
            }
        }
        let zero = Published {
            desired: 0,
            lowered: true,
            changes: 1,
        };
        assert_eq!(metric_value(&zero), 0.0);
    }

    #[test]
    fn the_hpa_lands_on_the_desired_count_or_stays_exactly_where_documented() {
        for s in 1..=120u32 {
            for d in 1..=140u32 {
                let v = metric_value(&published(d, s));
                let got = hpa_proposal(v, METRIC_TARGET, s, 0.1);
                let lands = if d > s {
                    10 * d > 11 * s
                } else if d < s {
                    1000 * d < 900 * s + 999
                } else {
                    true
                };
                let expected = if lands { d } else { s };
                assert_eq!(got, i64::from(expected), "from {s} to {d}");
            }
        }
    }

    #[test]
    fn every_change_lands_below_ten_replicas_and_every_cut_below_twenty() {
        for s in 1..=19u32 {
            for d in 1..=40u32 {
                let v = metric_value(&published(d, s));
                let got = hpa_proposal(v, METRIC_TARGET, s, 0.1);
                if s < 10 || d < s {
                    assert_eq!(got, i64::from(d), "from {s} to {d}");
                }
            }
        }
        // The limits of the module documentation.
        let at = |s, d| hpa_proposal(metric_value(&published(d, s)), METRIC_TARGET, s, 0.1);
        assert_eq!(at(10, 11), 10);
        assert_eq!(at(10, 12), 12);
        assert_eq!(at(20, 22), 20);
        assert_eq!(at(20, 23), 23);
        assert_eq!(at(20, 19), 20);
        assert_eq!(at(20, 18), 18);
        assert_eq!(at(100, 91), 100);
        assert_eq!(at(100, 90), 90);
    }

    #[test]
    fn with_a_tolerance_of_zero_every_change_lands() {
        for s in 1..=150u32 {
            for d in 1..=150u32 {
                let v = metric_value(&published(d, s));
                assert_eq!(
                    hpa_proposal(v, METRIC_TARGET, s, 0.0),
                    i64::from(d),
                    "from {s} to {d}"
                );
            }
        }
    }

    #[test]
    fn the_value_is_stable_once_the_hpa_has_landed() {
        // After a raise or a cut the HPA sits at d; the same value must keep it there.
        for d in 1..=200u32 {
            for lowered in [false, true] {
                let p = Published {
                    desired: d,
                    lowered,
                    changes: 1,
                };
                let got = hpa_proposal(metric_value(&p), METRIC_TARGET, d, 0.1);
                assert_eq!(got, i64::from(d), "{p:?}");
            }
        }
    }

    #[test]
    fn metric_names_are_lower_case_letters_digits_and_dashes() {
        assert_eq!(metric_name("web"), "ballast-web");
        assert_eq!(
            metric_name("Queue_Workers.eu-1"),
            "ballast-queue-workers-eu-1"
        );
    }
}
