//! The decision pipeline for one policy at one tick: observe, propose, combine, constrain.
//!
//! [`decide`] is pure: it reads the policy, the state, `now` and the observations, and
//! returns a [`Decision`], updating the state value it was given. No clock, no IO.

use chrono::TimeDelta;

use crate::decision::{Action, Constraint, ConstraintStep, Decision, Proposal, Strategy};
use crate::observe::{Forecast, MetricObservation, Observations};
use crate::policy::{
    Metric, OnMetricError, Policy, PredictiveMode, RateLimit, Rule, Spare, Timestamp,
};
use crate::state::{PolicyState, Recommendation, RuleWindow, ScaleEvent};

/// Decides the desired count of `policy` at `now`.
///
/// The pipeline:
/// 1. **Observe.** Each metric's newest sample is read; a missing, empty (unless the metric
///    says `on_empty: zero`), failed, stale or non-finite value is bad data. Rule windows
///    take in every new sample.
/// 2. **Propose.** Rules: `current + scale_by` once every rule of a direction has held for
///    its duration (scale-ups take the largest step of their rules, scale-downs the
///    smallest); with scale-down rules configured and no direction holding, the rules vote
///    to hold. Target tracking: `ceil(current · value / target)` for a per-replica metric,
///    `ceil(value / target)` for a total, unchanged within the tolerance. Schedules: the
///    most recently fired entry's count, as a floor. Fallback: while data is bad and
///    `on_metric_error` is `{fallback: N}`, `max(current, N)`. Predictive (with
///    [`decide_with_forecast`]): `ceil(upper bound / target)` of the forecast over the lead
///    time; it stands aside (recorded as [`Strategy::Forecast`], without a vote) while it
///    has no fresh forecast, while its accuracy is unknown or below the policy's
///    thresholds, and always in `forecast_only` mode.
/// 3. **Combine.** The largest voting proposal wins, so a scale-down happens only when
///    every strategy that votes agrees to it, and the reactive strategies stay a floor
///    under the predictive one. No proposal at all holds.
/// 4. **Constrain**, in this order, each step recorded: the spare pool (the count is raised
///    to what demand needs, by target tracking or the forecast, plus the spares in force),
///    data guard (bad data never lowers the count), flap guard (a scale-down is shrunk or
///    skipped when the per-replica metrics projected onto the smaller count would trigger
///    a scale-up at once), stabilization windows, rate limits, cooldowns, min/max, the
///    hourly budget (`floor(max_hourly_cost / price)`), then scale to zero and activation.
pub fn decide(
    policy: &Policy,
    state: &mut PolicyState,
    now: Timestamp,
    obs: &Observations,
) -> Decision {
    decide_with_forecast(policy, state, now, obs, None)
}

/// [`decide`] with the predictive strategy's forecast, when the policy has one and the
/// forecaster has produced it (the core does not train or forecast: it reads the result).
pub fn decide_with_forecast(
    policy: &Policy,
    state: &mut PolicyState,
    now: Timestamp,
    obs: &Observations,
    forecast: Option<&Forecast>,
) -> Decision {
    let current = obs.current;
    let readings: Vec<Reading> = policy
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| read(m, obs.metrics.get(i), now))
        .collect();
    let data_problems: Vec<String> = policy
        .metrics
        .iter()
        .zip(&readings)
        .filter_map(|(m, r)| match r {
            Reading::Bad(why) => Some(format!("{}: {why}", m.name)),
            Reading::Ok(_) => None,
        })
        .collect();
    let degraded = !data_problems.is_empty();

    update_rule_windows(policy, state, now, obs);

    let mut proposals = Vec::new();
    if let Some(p) = propose_rules(policy, state, now, current, &readings) {
        proposals.push(p);
    }
    let (tracking, tracking_need) = propose_tracking(policy, obs, &readings);
    proposals.extend(tracking);
    let mut predictive_need = None;
    if let Some((p, need)) = propose_predictive(policy, now, current, forecast) {
        proposals.push(p);
        predictive_need = need;
    }
    if let Some(p) = propose_schedule(policy, now) {
        proposals.push(p);
    }
    if let (true, OnMetricError::Fallback(n)) = (degraded, policy.on_metric_error) {
        proposals.push(Proposal {
            strategy: Strategy::Fallback,
            desired: current.max(n),
            reason: format!(
                "metric data is bad ({}); on_metric_error falls back to at least {n}",
                data_problems.join("; ")
            ),
        });
    }
    let combined = proposals
        .iter()
        .filter(|p| p.strategy.votes())
        .map(|p| p.desired)
        .max()
        .unwrap_or(current);

    let mut steps = Steps {
        desired: combined,
        list: Vec::new(),
    };
    if let Some(spare) = &policy.spare {
        let need = tracking_need.into_iter().chain(predictive_need).max();
        spare_pool(spare, now, need, &mut steps);
    }
    if degraded && steps.desired < current {
        steps.set(
            Constraint::DataGuard,
            current,
            format!(
                "metric data is bad ({}); bad data never lowers the count",
                data_problems.join("; ")
            ),
        );
    }
    if steps.desired < current {
        flap_guard(policy, &readings, obs, &mut steps);
    }
    stabilize(policy, state, now, current, &mut steps);
    rate_limit(policy, state, now, current, &mut steps);
    cooldown(policy, state, now, current, &mut steps);
    if steps.desired < policy.min_replicas {
        steps.set(
            Constraint::Bounds,
            policy.min_replicas,
            format!("raised to min_replicas {}", policy.min_replicas),
        );
    } else if steps.desired > policy.max_replicas {
        steps.set(
            Constraint::Bounds,
            policy.max_replicas,
            format!("capped at max_replicas {}", policy.max_replicas),
        );
    }
    let price = obs
        .price_per_replica_hour
        .or(policy.price_per_replica_hour)
        .filter(|p| p.is_finite() && *p >= 0.0);
    let budget_cap = budget_cap(policy, price);
    if let Some((cap, budget, price)) = budget_cap
        && steps.desired > cap
    {
        steps.set(
                Constraint::Budget,
                cap,
                format!(
                    "held at the budget: {cap} × {price}/h fits max_hourly_cost {budget}/h, {} would cost {}/h",
                    steps.desired,
                    round2(f64::from(steps.desired) * price)
                ),
            );
    }
    scale_to_zero(
        policy,
        state,
        now,
        current,
        &readings,
        degraded,
        budget_cap.map(|c| c.0),
        &mut steps,
    );

    let desired = steps.desired;
    let action = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleUp,
        std::cmp::Ordering::Less => Action::ScaleDown,
        std::cmp::Ordering::Equal => Action::Hold,
    };
    let previous_desired = state.desired;
    if desired != current {
        state.scale_events.push(ScaleEvent {
            at: now,
            from: current,
            to: desired,
        });
        if desired > current {
            state.last_scale_up = Some(now);
        } else {
            state.last_scale_down = Some(now);
        }
    }
    let keep_events = [policy.rate_limits.scale_up, policy.rate_limits.scale_down]
        .iter()
        .flatten()
        .map(|l| l.period)
        .max()
        .unwrap_or_default();
    state.scale_events.retain(|e| now - e.at < keep_events);
    state.desired = Some(desired);
    state.last_evaluated = Some(now);

    Decision {
        policy: policy.name.clone(),
        at: now,
        current,
        previous_desired,
        desired,
        action,
        dry_run: policy.dry_run,
        proposals,
        combined,
        constraints: steps.list,
        data_problems,
        hourly_cost_before: price.map(|p| f64::from(current) * p),
        hourly_cost_after: price.map(|p| f64::from(desired) * p),
    }
}

/// A metric's current value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Ok(f64),
    Bad(String),
}

impl Reading {
    fn value(&self) -> Option<f64> {
        match self {
            Reading::Ok(v) => Some(*v),
            Reading::Bad(_) => None,
        }
    }
}

fn read(metric: &Metric, obs: Option<&MetricObservation>, now: Timestamp) -> Reading {
    match obs {
        None | Some(MetricObservation::NotFetched) => Reading::Bad("not fetched".to_owned()),
        Some(MetricObservation::Failed(why)) => Reading::Bad(format!("query failed: {why}")),
        Some(MetricObservation::Empty) if metric.empty_is_zero => Reading::Ok(0.0),
        Some(MetricObservation::Empty) => {
            Reading::Bad("no data (the query returned no series)".to_owned())
        }
        Some(MetricObservation::Samples(samples)) => match samples.last() {
            None => Reading::Bad("no data (no samples)".to_owned()),
            Some(s) if !s.value.is_finite() => Reading::Bad(format!("value is {}", s.value)),
            Some(s) if now - s.at > metric.max_staleness => Reading::Bad(format!(
                "stale: the newest sample is {} old (limit {})",
                human(now - s.at),
                human(metric.max_staleness)
            )),
            Some(s) => Reading::Ok(s.value),
        },
    }
}

/// Takes every sample newer than a rule's window has seen into the window.
fn update_rule_windows(
    policy: &Policy,
    state: &mut PolicyState,
    now: Timestamp,
    obs: &Observations,
) {
    let rules = policy.scale_up_rules.iter().chain(&policy.scale_down_rules);
    let mut old = std::mem::take(&mut state.rules);
    for rule in rules {
        let mut window = match old.iter().position(|w| w.key == rule.key) {
            Some(i) => old.swap_remove(i),
            None => RuleWindow {
                key: rule.key.clone(),
                holding_since: None,
                last_sample: None,
            },
        };
        let metric = &policy.metrics[rule.metric];
        match obs.metrics.get(rule.metric) {
            Some(MetricObservation::Samples(samples)) => {
                for s in samples {
                    if window.last_sample.is_some_and(|last| s.at <= last) {
                        continue;
                    }
                    let holds = s.value.is_finite() && rule.operator.holds(s.value, rule.threshold);
                    // A gap longer than the staleness limit means nobody knows whether the
                    // condition held in between: the window starts again.
                    let gap = window
                        .last_sample
                        .is_some_and(|last| s.at - last > metric.max_staleness);
                    window.holding_since = match (holds, gap) {
                        (false, _) => None,
                        (true, true) => Some(s.at),
                        (true, false) => window.holding_since.or(Some(s.at)),
                    };
                    window.last_sample = Some(s.at);
                }
            }
            Some(MetricObservation::Empty) if metric.empty_is_zero => {
                let holds = rule.operator.holds(0.0, rule.threshold);
                window.holding_since = if holds {
                    window.holding_since.or(Some(now))
                } else {
                    None
                };
                window.last_sample = Some(now);
            }
            // No series: the condition does not hold (as a Prometheus alert's `for`).
            Some(MetricObservation::Empty) => window.holding_since = None,
            // A failed or skipped fetch says nothing about the condition; later samples (a
            // range query) may still fill the gap.
            Some(MetricObservation::Failed(_) | MetricObservation::NotFetched) | None => {}
        }
        state.rules.push(window);
    }
}

/// Whether every rule of a direction holds now, and a reason either way.
fn direction_holds(
    policy: &Policy,
    rules: &[Rule],
    state: &PolicyState,
    now: Timestamp,
    readings: &[Reading],
) -> (bool, String) {
    let mut held = Vec::with_capacity(rules.len());
    for rule in rules {
        let metric = &policy.metrics[rule.metric];
        let cond = format!("{} {} {}", metric.name, rule.operator, rule.threshold);
        let value = match &readings[rule.metric] {
            Reading::Ok(v) => *v,
            Reading::Bad(why) => return (false, format!("{cond}: no usable data ({why})")),
        };
        if !rule.operator.holds(value, rule.threshold) {
            return (
                false,
                format!("{cond} does not hold (now {})", round2(value)),
            );
        }
        let since = state
            .rules
            .iter()
            .find(|w| w.key == rule.key)
            .and_then(|w| w.holding_since);
        let held_for = since.map_or(TimeDelta::zero(), |s| now - s);
        if held_for < rule.duration || since.is_none() {
            return (
                false,
                format!(
                    "{cond} has held for {} of {} (now {})",
                    human(held_for),
                    human(rule.duration),
                    round2(value)
                ),
            );
        }
        if rule.duration > TimeDelta::zero() {
            held.push(format!(
                "{cond} for {} (now {})",
                human(held_for),
                round2(value)
            ));
        } else {
            held.push(format!("{cond} (now {})", round2(value)));
        }
    }
    (true, held.join(" and "))
}

fn propose_rules(
    policy: &Policy,
    state: &PolicyState,
    now: Timestamp,
    current: u32,
    readings: &[Reading],
) -> Option<Proposal> {
    let up = &policy.scale_up_rules;
    let down = &policy.scale_down_rules;
    if up.is_empty() && down.is_empty() {
        return None;
    }
    let up_status = (!up.is_empty()).then(|| direction_holds(policy, up, state, now, readings));
    if let Some((true, why)) = &up_status {
        let step = up.iter().map(|r| r.scale_by).max().unwrap_or(1);
        return Some(Proposal {
            strategy: Strategy::Rules,
            desired: add(current, step),
            reason: format!("scale-up rules hold: {why}; +{step}"),
        });
    }
    let down_status =
        (!down.is_empty()).then(|| direction_holds(policy, down, state, now, readings));
    if let Some((true, why)) = &down_status {
        let step = down.iter().map(|r| r.scale_by).max().unwrap_or(-1);
        return Some(Proposal {
            strategy: Strategy::Rules,
            desired: add(current, step),
            reason: format!("scale-down rules hold: {why}; {step}"),
        });
    }
    // With scale-down rules, not holding is a vote against scaling down; without them the
    // rules have no say on scale-downs and leave them to the other strategies.
    let (_, down_why) = down_status?;
    let mut reason = format!("scale-down: {down_why}");
    if let Some((_, up_why)) = up_status {
        reason = format!("scale-up: {up_why}; {reason}");
    }
    Some(Proposal {
        strategy: Strategy::Rules,
        desired: current,
        reason,
    })
}

fn add(current: u32, step: i64) -> u32 {
    (i64::from(current) + step).clamp(0, i64::from(u32::MAX)) as u32
}

/// `ceil` that forgives floating-point noise just above a whole number.
pub(crate) fn ceil(x: f64) -> u32 {
    let r = x.round();
    let c = if (x - r).abs() < 1e-9 { r } else { x.ceil() };
    c.clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Target tracking's proposal, and the count the load needs (for the spare pool): unlike
/// the proposal, the need ignores the tolerance and the count of replicas still starting.
fn propose_tracking(
    policy: &Policy,
    obs: &Observations,
    readings: &[Reading],
) -> (Option<Proposal>, Option<u32>) {
    let Some(tt) = policy.target_tracking else {
        return (None, None);
    };
    let current = obs.current;
    let metric = &policy.metrics[tt.metric];
    let Some(value) = readings[tt.metric].value() else {
        return (None, None);
    };
    let target = round2(tt.target);
    let covered = covered_replicas(obs);
    if metric.per_replica && covered == 0 && current > 0 {
        // A per-replica value with no ready replica describes nobody; like the HPA with no
        // pod metrics, keep the count until replicas are ready to be measured.
        let hold = Proposal {
            strategy: Strategy::TargetTracking,
            desired: current,
            reason: format!(
                "{} is per replica and none of the {current} replicas is ready yet: hold",
                metric.name
            ),
        };
        return (Some(hold), None);
    }
    let need;
    let (ratio, wanted, what) = if metric.per_replica && covered > 0 {
        // The metric is the mean over the ready replicas: the load is value × ready, and
        // replicas still starting will take their share once ready.
        let ratio = value / tt.target;
        let mut wanted = ceil(f64::from(covered) * ratio);
        need = wanted;
        if ratio > 1.0 && wanted < current {
            wanted = current;
        }
        let what = if covered < current {
            format!(
                "{} = {} per ready replica ({covered} of {current} ready)",
                metric.name,
                round2(value)
            )
        } else {
            format!("{} = {} per replica", metric.name, round2(value))
        };
        (Some(ratio), wanted, what)
    } else {
        let ratio =
            (current > 0 && !metric.per_replica).then(|| value / (tt.target * f64::from(current)));
        need = ceil(value / tt.target);
        (
            ratio,
            need,
            format!("{} = {} in total", metric.name, round2(value)),
        )
    };
    if let Some(r) = ratio {
        // A hair of slack so that exactly ±tolerance is treated alike on both sides.
        if (r - 1.0).abs() <= tt.tolerance + 1e-9 {
            let hold = Proposal {
                strategy: Strategy::TargetTracking,
                desired: current,
                reason: format!(
                    "{what}, target {target} per replica: ratio {} is within tolerance {}",
                    round2(r),
                    tt.tolerance
                ),
            };
            return (Some(hold), Some(need));
        }
    }
    let proposal = Proposal {
        strategy: Strategy::TargetTracking,
        desired: wanted,
        reason: format!(
            "{what}, target {target} per replica: {wanted} replica{}",
            if wanted == 1 { "" } else { "s" }
        ),
    };
    (Some(proposal), Some(need))
}

/// The predictive strategy's proposal, and the count the forecast needs when the strategy
/// acts (for the spare pool).
///
/// The count is `ceil(upper / target)`: the upper bound of the forecast's interval at the
/// policy's confidence, so noisy load gets more headroom than steady load. The strategy
/// stands aside, recording why as a [`Strategy::Forecast`] entry without a vote, while it
/// has no forecast or a stale one (older than the metric's staleness limit), while fewer
/// forecasts have been scored than the forecaster needs to judge its accuracy, while the
/// recent MASE is above `max_mase` or the interval's coverage below `min_coverage`, and
/// always in `forecast_only` mode.
fn propose_predictive(
    policy: &Policy,
    now: Timestamp,
    current: u32,
    forecast: Option<&Forecast>,
) -> Option<(Proposal, Option<u32>)> {
    let p = policy.predictive.as_ref()?;
    let metric = &policy.metrics[p.metric];
    let aside = |desired: u32, why: String| {
        let proposal = Proposal {
            strategy: Strategy::Forecast,
            desired,
            reason: format!("predictive stands aside: {why}"),
        };
        Some((proposal, None))
    };
    let Some(f) = forecast else {
        return aside(
            current,
            format!(
                "no forecast of {} yet (the model needs history to train on)",
                metric.name
            ),
        );
    };
    if !(f.peak.is_finite() && f.upper.is_finite()) {
        return aside(
            current,
            format!(
                "the forecast is not a number (peak {}, upper bound {})",
                f.peak, f.upper
            ),
        );
    }
    let age = now - f.made_at;
    if age > metric.max_staleness {
        return aside(
            current,
            format!(
                "the newest forecast is {} old (limit {})",
                human(age),
                human(metric.max_staleness)
            ),
        );
    }
    let count = p.replicas_for(f.upper);
    let plural = if count == 1 { "" } else { "s" };
    let what = format!(
        "{} over the next {}: peak {}, up to {} at {}% confidence",
        metric.name,
        human(f.lead),
        round2(f.peak),
        round2(f.upper),
        round2(f.confidence * 100.0)
    );
    let scored = f.accuracy.scored;
    let Some(mase) = f.accuracy.mase else {
        return aside(
            count,
            format!(
                "its accuracy is not known yet ({scored} forecast{} scored); {what} would ask for {count}",
                if scored == 1 { "" } else { "s" }
            ),
        );
    };
    let mut accuracy = format!("MASE {}", round2(mase));
    if let Some(c) = f.accuracy.coverage {
        accuracy.push_str(&format!(", coverage {}%", round2(c * 100.0)));
    }
    accuracy.push_str(&format!(" over {scored} scored"));
    if mase > p.max_mase {
        return aside(
            count,
            format!(
                "MASE {} is above max_mase {} ({what} would ask for {count})",
                round2(mase),
                p.max_mase
            ),
        );
    }
    if let (Some(min), Some(c)) = (p.min_coverage, f.accuracy.coverage)
        && c < min
    {
        return aside(
            count,
            format!(
                "coverage {}% is below min_coverage {}% ({what} would ask for {count})",
                round2(c * 100.0),
                round2(min * 100.0)
            ),
        );
    }
    if p.mode == PredictiveMode::ForecastOnly {
        let proposal = Proposal {
            strategy: Strategy::Forecast,
            desired: count,
            reason: format!(
                "forecast only: {what} ({accuracy}) would ask for {count} replica{plural}"
            ),
        };
        return Some((proposal, None));
    }
    let proposal = Proposal {
        strategy: Strategy::Predictive,
        desired: count,
        reason: format!(
            "{what} ({accuracy}), target {} per replica: {count} replica{plural}",
            round2(p.target)
        ),
    };
    Some((proposal, Some(count)))
}

/// The spares in force at `now`, and why: the most recently fired entry's count, while it
/// applies (its `duration`, or until another entry fires), else the pool's default.
fn spares_at(spare: &Spare, now: Timestamp) -> (u32, String) {
    let latest = latest_fired(&spare.schedules, now, |s| (&s.cron, s.timezone, s.replicas));
    match latest {
        Some((fired, s)) if s.duration.is_none_or(|d| now - fired < d) => {
            let until = s
                .duration
                .map(|d| format!(" for {}", human(d)))
                .unwrap_or_default();
            (
                s.replicas,
                format!(
                    "spare schedule `{}` ({}) fired at {}{until}",
                    s.expression,
                    s.timezone.name(),
                    fired.with_timezone(&s.timezone).format("%Y-%m-%d %H:%M %Z"),
                ),
            )
        }
        _ => (spare.replicas, "the pool's default".to_owned()),
    }
}

/// The spare pool: raises the count to what demand needs plus the spares in force. What
/// demand needs is the largest count of the strategies that measure it (target tracking
/// without its tolerance, the acting predictive strategy); without one this tick (bad
/// data, predictive standing aside) the pool adds nothing rather than guess.
fn spare_pool(spare: &Spare, now: Timestamp, need: Option<u32>, steps: &mut Steps) {
    let (n, why) = spares_at(spare, now);
    let Some(need) = need else {
        return;
    };
    let wanted = need.saturating_add(n);
    if n > 0 && wanted > steps.desired {
        steps.set(
            Constraint::Spare,
            wanted,
            format!(
                "{n} spare{} ({why}) on top of the {need} demand needs",
                if n == 1 { "" } else { "s" }
            ),
        );
    }
}

/// The replicas a per-replica metric describes: the ready ones when known.
fn covered_replicas(obs: &Observations) -> u32 {
    obs.ready.unwrap_or(obs.current)
}

/// The entry of `entries` that fired most recently at or before `now` in its own time
/// zone, with the time it fired; on a tie, the one with the larger count. `of` gives an
/// entry's cron, time zone and count.
fn latest_fired<T>(
    entries: &[T],
    now: Timestamp,
    of: impl Fn(&T) -> (&croner::Cron, chrono_tz::Tz, u32),
) -> Option<(Timestamp, &T)> {
    let mut latest: Option<(Timestamp, u32, &T)> = None;
    for entry in entries {
        let (cron, timezone, count) = of(entry);
        let Ok(fired) = cron.find_previous_occurrence(&now.with_timezone(&timezone), true) else {
            continue;
        };
        let fired = fired.with_timezone(&chrono::Utc);
        let newer = latest.is_none_or(|(t, c, _)| fired > t || (fired == t && count > c));
        if newer {
            latest = Some((fired, count, entry));
        }
    }
    latest.map(|(fired, _, entry)| (fired, entry))
}

fn propose_schedule(policy: &Policy, now: Timestamp) -> Option<Proposal> {
    let (fired, s) = latest_fired(&policy.schedules, now, |s| {
        (&s.cron, s.timezone, s.desired_replicas)
    })?;
    Some(Proposal {
        strategy: Strategy::Schedule,
        desired: s.desired_replicas,
        reason: format!(
            "schedule `{}` ({}) fired at {}: floor {}",
            s.expression,
            s.timezone.name(),
            fired.with_timezone(&s.timezone).format("%Y-%m-%d %H:%M %Z"),
            s.desired_replicas
        ),
    })
}

/// The running desired count and the constraint steps that shaped it.
struct Steps {
    desired: u32,
    list: Vec<ConstraintStep>,
}

impl Steps {
    fn set(&mut self, constraint: Constraint, after: u32, reason: String) {
        self.list.push(ConstraintStep {
            constraint,
            before: self.desired,
            after,
            reason,
        });
        self.desired = after;
    }
}

/// Would the policy want to scale up at once if it ran `m` replicas instead of `current`?
fn would_scale_up(policy: &Policy, readings: &[Reading], covered: u32, m: u32) -> Option<String> {
    let project = |metric: usize| -> Option<f64> {
        let v = readings[metric].value()?;
        if !policy.metrics[metric].per_replica {
            return Some(v);
        }
        Some(if m == 0 {
            if v > 0.0 { f64::INFINITY } else { 0.0 }
        } else {
            v * f64::from(covered) / f64::from(m)
        })
    };
    let up = &policy.scale_up_rules;
    if !up.is_empty()
        && up
            .iter()
            .all(|r| project(r.metric).is_some_and(|v| r.operator.holds(v, r.threshold)))
    {
        let r = &up[0];
        return Some(format!(
            "at {m} the scale-up rules would hold ({} would be {})",
            policy.metrics[r.metric].name,
            round2(project(r.metric).unwrap_or(f64::NAN))
        ));
    }
    if let Some(tt) = policy.target_tracking {
        let v = project(tt.metric)?;
        let per_replica_value = if policy.metrics[tt.metric].per_replica {
            v
        } else if m == 0 {
            if v > 0.0 { f64::INFINITY } else { 0.0 }
        } else {
            v / f64::from(m)
        };
        if per_replica_value / tt.target > 1.0 + tt.tolerance {
            return Some(format!(
                "at {m} target tracking would ask for more ({} would be {} per replica, target {})",
                policy.metrics[tt.metric].name,
                round2(per_replica_value),
                round2(tt.target)
            ));
        }
    }
    None
}

fn flap_guard(policy: &Policy, readings: &[Reading], obs: &Observations, steps: &mut Steps) {
    let current = obs.current;
    let covered = match covered_replicas(obs) {
        0 => current,
        n => n,
    };
    // Counts below min_replicas are raised by the bounds anyway; no need to test them.
    let asked = steps.desired;
    let wanted = asked.max(policy.min_replicas.min(current));
    // The reason kept is the one at the largest count that still triggers: the one that
    // decided where the search stopped.
    let mut last_reason = None;
    let mut m = wanted;
    while m < current {
        match would_scale_up(policy, readings, covered, m) {
            None => break,
            Some(why) => {
                last_reason = Some(why);
                m += 1;
            }
        }
    }
    if let Some(why) = last_reason {
        let reason = if m >= current {
            format!("scale-down to {asked} skipped: {why}")
        } else {
            format!("scale-down shrunk to {m}: {why}")
        };
        steps.set(Constraint::FlapGuard, m.min(current), reason);
    }
}

fn stabilize(
    policy: &Policy,
    state: &mut PolicyState,
    now: Timestamp,
    current: u32,
    steps: &mut Steps,
) {
    let w = policy.stabilization;
    if w.scale_up <= TimeDelta::zero() && w.scale_down <= TimeDelta::zero() {
        state.recommendations.clear();
        return;
    }
    let proposal = steps.desired;
    let (mut up_rec, mut down_rec) = (proposal, proposal);
    let up_cutoff = now - w.scale_up;
    let down_cutoff = now - w.scale_down;
    for r in &state.recommendations {
        if r.at > up_cutoff {
            up_rec = up_rec.min(r.replicas);
        }
        if r.at > down_cutoff {
            down_rec = down_rec.max(r.replicas);
        }
    }
    let keep = w.scale_up.max(w.scale_down);
    state.recommendations.retain(|r| now - r.at < keep);
    state.recommendations.push(Recommendation {
        at: now,
        replicas: proposal,
    });
    // As Kubernetes' HPA: the count moves only as far as every recommendation in the
    // window agrees.
    let stabilized = current.max(up_rec).min(down_rec);
    if stabilized != proposal {
        let reason = if stabilized > proposal {
            format!(
                "held at {stabilized}: the highest recommendation within the {} scale-down window",
                human(w.scale_down)
            )
        } else {
            format!(
                "held at {stabilized}: the lowest recommendation within the {} scale-up window",
                human(w.scale_up)
            )
        };
        steps.set(Constraint::Stabilization, stabilized, reason);
    }
}

fn rate_limit(
    policy: &Policy,
    state: &PolicyState,
    now: Timestamp,
    current: u32,
    steps: &mut Steps,
) {
    let up = steps.desired > current;
    let limit = match (
        up,
        policy.rate_limits.scale_up,
        policy.rate_limits.scale_down,
    ) {
        (true, Some(l), _) => l,
        (false, _, Some(l)) if steps.desired < current => l,
        _ => return,
    };
    let start = period_start(state, now, current, &limit);
    let allowed = if up {
        let by_step = limit.max_step.map(|s| start.saturating_add(s));
        // Any percentage of zero is zero; a percent limit still lets one replica start.
        let by_pct = limit
            .max_percent
            .map(|p| ceil(f64::from(start) * (1.0 + p / 100.0)).max(start.saturating_add(1)));
        by_step
            .into_iter()
            .chain(by_pct)
            .max()
            .unwrap_or(u32::MAX)
            .max(current)
    } else {
        let by_step = limit.max_step.map(|s| start.saturating_sub(s));
        let by_pct = limit
            .max_percent
            .map(|p| ceil(f64::from(start) * (1.0 - p / 100.0).max(0.0)));
        by_step
            .into_iter()
            .chain(by_pct)
            .min()
            .unwrap_or(0)
            .min(current)
    };
    let limited = if up {
        steps.desired.min(allowed)
    } else {
        steps.desired.max(allowed)
    };
    if limited != steps.desired {
        let what = [
            limit.max_step.map(|s| format!("{s} replicas")),
            limit.max_percent.map(|p| format!("{p}%")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" or ");
        steps.set(
            Constraint::RateLimit,
            limited,
            format!(
                "rate limit: at most {what} per {} from {start}",
                human(limit.period)
            ),
        );
    }
}

/// The count at the start of the rate-limit period: current minus what was added plus what
/// was removed within it.
fn period_start(state: &PolicyState, now: Timestamp, current: u32, limit: &RateLimit) -> u32 {
    let cutoff = now - limit.period;
    let mut start = i64::from(current);
    for e in state.scale_events.iter().filter(|e| e.at > cutoff) {
        start -= i64::from(e.to) - i64::from(e.from);
    }
    start.clamp(0, i64::from(u32::MAX)) as u32
}

fn cooldown(policy: &Policy, state: &PolicyState, now: Timestamp, current: u32, steps: &mut Steps) {
    if steps.desired > current {
        if let Some(last) = state.last_scale_up {
            let since = now - last;
            if since < policy.cooldown.scale_up {
                steps.set(
                    Constraint::Cooldown,
                    current,
                    format!(
                        "scale-up cooldown: the last scale-up was {} ago, cooldown {}",
                        human(since),
                        human(policy.cooldown.scale_up)
                    ),
                );
            }
        }
    } else if steps.desired < current {
        let last = state.last_scale_up.max(state.last_scale_down);
        if let Some(last) = last {
            let since = now - last;
            if since < policy.cooldown.scale_down {
                steps.set(
                    Constraint::Cooldown,
                    current,
                    format!(
                        "scale-down cooldown: the last scaling action was {} ago, cooldown {}",
                        human(since),
                        human(policy.cooldown.scale_down)
                    ),
                );
            }
        }
    }
}

/// The largest count the budget allows, with the budget and price.
fn budget_cap(policy: &Policy, price: Option<f64>) -> Option<(u32, f64, f64)> {
    let budget = policy.max_hourly_cost?;
    let price = price.filter(|p| *p > 0.0)?;
    // A tiny allowance so that 10.0 / 0.1 is 100 and not 99.
    let cap = (budget / price + 1e-9)
        .floor()
        .clamp(0.0, f64::from(u32::MAX)) as u32;
    Some((cap, budget, price))
}

#[allow(clippy::too_many_arguments)]
fn scale_to_zero(
    policy: &Policy,
    state: &mut PolicyState,
    now: Timestamp,
    current: u32,
    readings: &[Reading],
    degraded: bool,
    budget_cap: Option<u32>,
    steps: &mut Steps,
) {
    let Some(z) = policy.scale_to_zero else {
        state.idle_since = None;
        return;
    };
    let name = &policy.metrics[z.metric].name;
    let reading = &readings[z.metric];
    let active = reading.value().map(|v| v > z.activation_threshold);
    state.idle_since = match active {
        Some(false) => state.idle_since.or(Some(now)),
        _ => None,
    };
    let wants_only_min = steps.desired <= policy.min_replicas;
    if current == 0 {
        match reading {
            Reading::Ok(v) if *v > z.activation_threshold => {
                let wake = steps
                    .desired
                    .max(policy.min_replicas.max(1))
                    .min(budget_cap.unwrap_or(u32::MAX));
                if wake != steps.desired {
                    steps.set(
                        Constraint::ScaleToZero,
                        wake,
                        format!(
                            "activation: {name} = {} is above the activation threshold {}",
                            round2(*v),
                            z.activation_threshold
                        ),
                    );
                }
            }
            Reading::Ok(v) => {
                if wants_only_min && steps.desired > 0 {
                    steps.set(
                        Constraint::ScaleToZero,
                        0,
                        format!(
                            "stays at zero: {name} = {} is not above the activation threshold {}",
                            round2(*v),
                            z.activation_threshold
                        ),
                    );
                }
            }
            Reading::Bad(why) => {
                if wants_only_min && steps.desired > 0 {
                    steps.set(
                        Constraint::ScaleToZero,
                        0,
                        format!("stays at zero: no usable data for {name} ({why})"),
                    );
                }
            }
        }
        return;
    }
    if let Some(since) = state.idle_since {
        let idle_for = now - since;
        // Going to zero is a scale-down, so it waits out the scale-down cooldown too.
        let cooling = state
            .last_scale_up
            .max(state.last_scale_down)
            .is_some_and(|last| now - last < policy.cooldown.scale_down);
        if idle_for >= z.idle && wants_only_min && !degraded && !cooling && steps.desired > 0 {
            steps.set(
                Constraint::ScaleToZero,
                0,
                format!(
                    "scale to zero: {name} has not been above {} for {}",
                    z.activation_threshold,
                    human(idle_for)
                ),
            );
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `5m`, `1h30m`, `45s`, `250ms`: short and exact.
pub(crate) fn human(d: TimeDelta) -> String {
    let ms = d.num_milliseconds();
    if ms < 0 {
        return format!("-{}", human(-d));
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    if s == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}
