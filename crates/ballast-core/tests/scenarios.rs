//! Scenario tests of the decision pipeline on a virtual clock.
//!
//! Each scenario is a policy, a start time, a tick interval, the count at the start and the
//! metric values of every tick. The harness runs [`decide`] once per tick and assumes the
//! executor applies each decision at once, so the next tick's `current` is the previous
//! tick's `desired`. The decision timeline is rendered as text (one line per tick) and
//! compared with a snapshot under `tests/snapshots/`; after a deliberate change of
//! behaviour, `UPDATE_EXPECT=1 cargo test -p ballast-core` rewrites the snapshots, which
//! are then read line by line against the rules in `decide`'s doc comment.

#[allow(dead_code)]
mod common;

use std::fmt::Write as _;

use ballast_core::{
    Accuracy, Action, Constraint, Decision, Forecast, Observations, Policy, PolicyState, Strategy,
    Timestamp, decide_with_forecast,
};
use chrono::TimeDelta;
use chrono_tz::Tz;
use common::{M, at, policy};
use expect_test::expect_file;

/// Where a metric's values come from in a scenario.
#[derive(Debug, Clone)]
enum Series {
    /// The value the source reports, as written.
    Direct(Vec<M>),
    /// A total load; the source reports it per ready replica (`load / ready`), so the
    /// value follows the count the way CPU utilization does.
    PerReplicaLoad(Vec<M>),
}

impl Series {
    fn len(&self) -> usize {
        match self {
            Series::Direct(v) | Series::PerReplicaLoad(v) => v.len(),
        }
    }
}

/// A scenario: a policy run tick by tick on a virtual clock.
#[derive(Debug)]
struct Sim {
    policy: Policy,
    start: Timestamp,
    tick: TimeDelta,
    initial: u32,
    /// One series per metric of the policy, by index.
    series: Vec<Option<Series>>,
    /// Ready replicas per tick (`None`: all of them).
    ready: Vec<Option<u32>>,
    /// Executor price per tick (`None`: the policy's own).
    prices: Vec<Option<f64>>,
    /// Show each tick's local time in this zone as well.
    local: Option<Tz>,
    /// The number of ticks, for a policy without metrics.
    ticks: Option<usize>,
    /// What the forecaster hands the predictive strategy at each tick (see [`F`]).
    forecasts: Vec<F>,
}

/// The forecaster's output at one tick, in the terms of the tests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum F {
    /// No forecast (no model yet).
    None,
    /// A fresh forecast with this upper bound and MASE (`None`: not scored enough yet).
    Upper(f64, Option<f64>),
    /// A forecast made long ago (older than the metric's staleness limit).
    Stale(f64),
}

impl F {
    /// Parses whitespace-separated items, each optionally repeated with `*n`: `none`, an
    /// upper bound with MASE 0.3 (`1200`), an upper bound with its MASE (`1200@1.7`) or
    /// not yet known (`1200@?`), or `stale:<upper>`.
    fn series(text: &str) -> Vec<F> {
        let mut out = Vec::new();
        for token in text.split_whitespace() {
            let (item, times) = match token.split_once('*') {
                Some((item, n)) => (item, n.parse::<usize>().expect("a repeat count")),
                None => (token, 1),
            };
            let f = if item == "none" {
                F::None
            } else if let Some(v) = item.strip_prefix("stale:") {
                F::Stale(v.parse().expect("a number after stale:"))
            } else {
                let (upper, mase) = match item.split_once('@') {
                    Some((u, "?")) => (u, None),
                    Some((u, m)) => (u, Some(m.parse().expect("a MASE after @"))),
                    None => (item, Some(0.3)),
                };
                F::Upper(upper.parse().expect("an upper bound"), mase)
            };
            out.extend(std::iter::repeat_n(f, times));
        }
        out
    }

    /// The forecast handed to the core at `now`: the peak is 90 % of the upper bound, the
    /// lead 3 minutes, the interval at 95 %, coverage 96 % over a day of forecasts.
    fn forecast(self, now: Timestamp) -> Option<Forecast> {
        let (upper, mase, made_at) = match self {
            F::None => return None,
            F::Upper(u, m) => (u, m, now),
            F::Stale(u) => (u, Some(0.3), now - TimeDelta::hours(1)),
        };
        Some(Forecast {
            made_at,
            lead: TimeDelta::minutes(3),
            peak: upper * 0.9,
            lower: upper * 0.8,
            upper,
            confidence: 0.95,
            trained_at: made_at - TimeDelta::minutes(30),
            accuracy: Accuracy {
                scored: if mase.is_some() { 1440 } else { 12 },
                mase,
                coverage: mase.map(|_| 0.96),
            },
        })
    }

    fn label(self) -> String {
        match self {
            F::None => "-".to_owned(),
            F::Upper(u, Some(m)) => format!("{}@{m}", num(u)),
            F::Upper(u, None) => format!("{}@?", num(u)),
            F::Stale(u) => format!("{}(stale)", num(u)),
        }
    }
}

impl Sim {
    fn new(policy_yaml: &str, start: &str, tick: TimeDelta, initial: u32) -> Sim {
        let policy = policy(policy_yaml);
        let series = vec![None; policy.metrics.len()];
        Sim {
            policy,
            start: at(start),
            tick,
            initial,
            series,
            ready: Vec::new(),
            prices: Vec::new(),
            local: None,
            ticks: None,
            forecasts: Vec::new(),
        }
    }

    /// What the forecaster hands the predictive strategy, per tick (see [`F::series`]).
    fn forecasts(mut self, values: &str) -> Sim {
        self.forecasts = F::series(values);
        self
    }

    fn index(&self, name: &str) -> usize {
        self.policy
            .metric_index(name)
            .unwrap_or_else(|| panic!("the policy has no metric `{name}`"))
    }

    /// The values the source reports for metric `name` (see [`M::series`]).
    fn metric(mut self, name: &str, values: &str) -> Sim {
        let i = self.index(name);
        self.series[i] = Some(Series::Direct(M::series(values)));
        self
    }

    /// A total load behind a per-replica metric `name`.
    fn per_replica_load(mut self, name: &str, load: &str) -> Sim {
        let i = self.index(name);
        assert!(
            self.policy.metrics[i].per_replica,
            "`{name}` is not per replica"
        );
        self.series[i] = Some(Series::PerReplicaLoad(M::series(load)));
        self
    }

    /// Ready replicas per tick: numbers, or `none` for "all of them".
    fn ready(mut self, values: &str) -> Sim {
        self.ready = numbers(values)
            .into_iter()
            .map(|v| v.map(|v| v as u32))
            .collect();
        self
    }

    /// The executor's price per tick: numbers, or `none` for the policy's own.
    fn executor_price(mut self, values: &str) -> Sim {
        self.prices = numbers(values);
        self
    }

    /// Runs `n` ticks (for a policy without metrics).
    fn ticks(mut self, n: usize) -> Sim {
        self.ticks = Some(n);
        self
    }

    fn local_time(mut self, zone: Tz) -> Sim {
        self.local = Some(zone);
        self
    }

    /// Runs every tick and renders the timeline.
    fn run(&self) -> (String, Vec<Decision>) {
        let ticks = self.series.iter().flatten().map(Series::len).max();
        let ticks = self.ticks.or(ticks).expect("a scenario needs ticks");
        for (i, s) in self.series.iter().enumerate() {
            let name = &self.policy.metrics[i].name;
            let s = s
                .as_ref()
                .unwrap_or_else(|| panic!("no series for metric `{name}`"));
            assert_eq!(s.len(), ticks, "series `{name}` has the wrong length");
        }

        let mut out = String::new();
        writeln!(
            out,
            "policy {}; start {} ({}); tick {}; initial count {}",
            self.policy.name,
            self.start.to_rfc3339(),
            self.start.format("%a"),
            short(self.tick),
            self.initial
        )
        .unwrap();
        let mut state = PolicyState::default();
        let mut current = self.initial;
        let mut decisions = Vec::new();
        for t in 0..ticks {
            let now = self.start + self.tick * t as i32;
            let ready = self.ready.get(t).copied().flatten();
            let covered = ready.unwrap_or(current);
            let mut obs = Observations::new(current, self.policy.metrics.len());
            obs.ready = ready;
            obs.price_per_replica_hour = self.prices.get(t).copied().flatten();
            let mut shown = Vec::new();
            for (i, series) in self.series.iter().enumerate() {
                let metric = &self.policy.metrics[i];
                let (m, note) = match series.as_ref().unwrap() {
                    Series::Direct(v) => (v[t], String::new()),
                    Series::PerReplicaLoad(v) => match v[t] {
                        // No replica reports anything: the query has no series.
                        M::V(_) if covered == 0 => (M::Empty, " (no replica)".to_owned()),
                        M::V(load) => (
                            M::V(load / f64::from(covered)),
                            format!(" ({}/{covered})", num(load)),
                        ),
                        other => (other, String::new()),
                    },
                };
                obs.metrics[i] = m.observe(now, metric);
                shown.push(format!("{}={}{note}", label(&metric.name), value(m)));
            }

            let forecast = self.forecasts.get(t).copied().unwrap_or(F::None);
            if !self.forecasts.is_empty() {
                shown.push(format!("forecast={}", forecast.label()));
            }
            let d = decide_with_forecast(
                &self.policy,
                &mut state,
                now,
                &obs,
                forecast.forecast(now).as_ref(),
            );

            let mut line = format!("{:>9}", offset(now - self.start));
            if let Some(zone) = self.local {
                write!(line, "  {}", now.with_timezone(&zone).format("%a %H:%M %Z")).unwrap();
            }
            if !shown.is_empty() {
                write!(line, "  {:<24}", shown.join(" ")).unwrap();
            }
            if !self.ready.is_empty() {
                let r = ready.map_or("all".to_owned(), |r| r.to_string());
                write!(line, "  ready {r:<3}").unwrap();
            }
            if !self.prices.is_empty() {
                let p = obs
                    .price_per_replica_hour
                    .map_or("policy's".to_owned(), |p| format!("{}/h", num(p)));
                write!(line, "  price {p:<8}").unwrap();
            }
            write!(
                line,
                "  {:>2} → {:<2} {:<10}",
                d.current,
                d.desired,
                d.action.as_str()
            )
            .unwrap();
            let proposals: Vec<String> = d
                .proposals
                .iter()
                .map(|p| format!("{} {}", strategy(p.strategy), p.desired))
                .collect();
            if proposals.is_empty() {
                line.push_str(" | no proposal");
            } else {
                write!(line, " | {}", proposals.join(", ")).unwrap();
            }
            for c in &d.constraints {
                write!(
                    line,
                    " | {} {}→{}: {}",
                    constraint(c.constraint),
                    c.before,
                    c.after,
                    c.reason
                )
                .unwrap();
            }
            for p in d
                .proposals
                .iter()
                .filter(|p| matches!(p.strategy, Strategy::Predictive | Strategy::Forecast))
            {
                write!(line, " | {}: {}", strategy(p.strategy), p.reason).unwrap();
            }
            if !d.data_problems.is_empty() && d.constraints.is_empty() {
                write!(line, " | bad data: {}", d.data_problems.join("; ")).unwrap();
            }
            writeln!(out, "{}", line.trim_end()).unwrap();

            assert_eq!(d.current, current);
            assert_eq!(
                d.action,
                match d.desired.cmp(&current) {
                    std::cmp::Ordering::Greater => Action::ScaleUp,
                    std::cmp::Ordering::Less => Action::ScaleDown,
                    std::cmp::Ordering::Equal => Action::Hold,
                }
            );
            current = d.desired;
            decisions.push(d);
        }
        (out, decisions)
    }
}

fn numbers(values: &str) -> Vec<Option<f64>> {
    M::series(values)
        .into_iter()
        .map(|m| match m {
            M::V(v) => Some(v),
            M::NotFetched => None,
            other => panic!("`{other:?}` is not a number or `none`"),
        })
        .collect()
}

/// `+1:05:00`
fn offset(d: TimeDelta) -> String {
    let s = d.num_seconds();
    format!("+{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `5m`, `1h`, `30s`
fn short(d: TimeDelta) -> String {
    let s = d.num_seconds();
    if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn num(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    format!("{r}")
}

fn value(m: M) -> String {
    match m {
        M::V(v) => num(v),
        M::Stale(v) => format!("{}(stale)", num(v)),
        M::Empty => "empty".to_owned(),
        M::Failed => "failed".to_owned(),
        M::NotFetched => "-".to_owned(),
    }
}

/// A raw expression is shown by its series name.
fn label(name: &str) -> &str {
    name.split(['{', '(']).next().unwrap_or(name)
}

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::Rules => "rules",
        Strategy::TargetTracking => "tracking",
        Strategy::Schedule => "schedule",
        Strategy::Fallback => "fallback",
        Strategy::Predictive => "predictive",
        Strategy::Forecast => "forecast (no vote)",
    }
}

fn constraint(c: Constraint) -> &'static str {
    match c {
        Constraint::Spare => "spare",
        Constraint::DataGuard => "data guard",
        Constraint::FlapGuard => "flap guard",
        Constraint::Stabilization => "stabilization",
        Constraint::RateLimit => "rate limit",
        Constraint::Cooldown => "cooldown",
        Constraint::Bounds => "bounds",
        Constraint::Budget => "budget",
        Constraint::ScaleToZero => "scale to zero",
    }
}

fn actions(decisions: &[Decision]) -> Vec<(u32, u32)> {
    decisions.iter().map(|d| (d.current, d.desired)).collect()
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// The specification's example request, as YAML.
const SPEC_EXAMPLE: &str = r#"
name: cdc-worker-autoscaling
target_type: cdc-worker
target_id: 550e8400-e29b-41d4-a716-446655440000
min_replicas: 1
max_replicas: 10
cooldown_seconds: 300
scale_to_zero: false
scale_up_rules:
  - {metric: philotes_cdc_lag_seconds, operator: gt, threshold: 60, duration: 5m, scale_by: 2}
scale_down_rules:
  - {metric: philotes_cdc_lag_seconds, operator: lt, threshold: 10, duration: 10m, scale_by: -1}
schedules:
  - {cron_expression: "0 8 * * 1-5", desired_replicas: 5, timezone: Europe/Budapest}
"#;

#[test]
fn spec_example_scales_up_by_two_only_after_five_minutes_of_lag_then_waits_out_the_cooldown() {
    // Monday 11:00 in Budapest: the 08:00 entry has fired, so the floor is 5.
    let sim = Sim::new(SPEC_EXAMPLE, "2025-01-06T10:00:00Z", minutes(1), 5)
        .metric("philotes_cdc_lag_seconds", "30*2 70*20");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/spec_example_scale_up.txt"].assert_eq(&timeline);
    // Lag is above 60 from +2m: the rule holds for 5m at +7m, and the cooldown of 300 s
    // then spaces the +2 steps five minutes apart until max_replicas.
    let ups: Vec<(usize, u32)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.action == Action::ScaleUp)
        .map(|(t, d)| (t, d.desired))
        .collect();
    assert_eq!(ups, vec![(7, 7), (12, 9), (17, 10)]);
}

#[test]
fn spec_example_scales_down_one_replica_per_cooldown_after_ten_minutes_of_low_lag_down_to_the_schedule_floor()
 {
    // Saturday evening: the most recent entry is Friday 08:00, so the floor is still 5.
    let sim = Sim::new(SPEC_EXAMPLE, "2025-01-11T20:00:00Z", minutes(1), 8)
        .metric("philotes_cdc_lag_seconds", "5*30");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/spec_example_scale_down.txt"].assert_eq(&timeline);
    let downs: Vec<(usize, u32)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.action == Action::ScaleDown)
        .map(|(t, d)| (t, d.desired))
        .collect();
    assert_eq!(downs, vec![(10, 7), (15, 6), (20, 5)]);
}

const LAG_RULES: &str = r#"
name: lag-rules
min_replicas: 1
max_replicas: 10
cooldown_seconds: 300
metrics:
  lag: {query: philotes_cdc_lag_seconds}
scale_up_rules: [{metric: lag, operator: gt, threshold: 60, duration: 5m, scale_by: 2}]
scale_down_rules: [{metric: lag, operator: lt, threshold: 10, duration: 10m, scale_by: -1}]
"#;

#[test]
fn one_sample_above_the_threshold_restarts_the_scale_down_window() {
    let sim =
        Sim::new(LAG_RULES, "2025-01-06T10:00:00Z", minutes(1), 4).metric("lag", "5*8 15 5*12");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/scale_down_window_broken.txt"].assert_eq(&timeline);
    // Not at +10m (the first run was broken at +8m) but 10 minutes after the run that
    // started at +9m.
    let first_down = decisions.iter().position(|d| d.action == Action::ScaleDown);
    assert_eq!(first_down, Some(19));
}

#[test]
fn a_failed_fetch_pauses_the_scale_down_window_without_breaking_it() {
    let sim = Sim::new(LAG_RULES, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("lag", "5*4 failed*2 5*6");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/scale_down_window_failed_fetch.txt"].assert_eq(&timeline);
    let first_down = decisions.iter().position(|d| d.action == Action::ScaleDown);
    assert_eq!(first_down, Some(10));
}

#[test]
fn a_gap_longer_than_the_staleness_limit_restarts_a_rule_window() {
    let yaml = r#"
name: gappy
min_replicas: 1
max_replicas: 10
metrics:
  lag: {query: philotes_cdc_lag_seconds, max_staleness: 2m}
scale_up_rules: [{metric: lag, operator: gt, threshold: 60, duration: 3m, scale_by: 1}]
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 2)
        .metric("lag", "70*2 none*3 70*4 stale:70 70");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/rule_window_gap.txt"].assert_eq(&timeline);
    // Samples at +0m and +1m, none until +5m: a 4m gap is longer than the 2m limit, so the
    // window starts again at +5m and holds for 3m at +8m.
    assert_eq!(
        decisions.iter().position(|d| d.action == Action::ScaleUp),
        Some(8)
    );
}

#[test]
fn target_tracking_on_per_replica_cpu_holds_within_the_tolerance_and_moves_in_one_step_outside_it()
{
    let yaml = r#"
name: web-cpu
min_replicas: 2
max_replicas: 20
scale_up_cooldown: 0s
scale_down_cooldown: 3m
metrics:
  cpu: {query: 'avg(rate(container_cpu_usage_seconds_total{app="web"}[1m])) * 100', per_replica: true}
target_tracking: {metric: cpu, target: 60, tolerance: 0.1}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 4)
        .per_replica_load("cpu", "240 260 360 360 180*4 120*4");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/tracking_per_replica_cpu.txt"].assert_eq(&timeline);
    assert_eq!(
        actions(&decisions),
        vec![
            (4, 4), // 60%: on target
            (4, 4), // 65%: within 10%
            (4, 6), // 90%: ceil(4 · 1.5)
            (6, 6), // 60%
            (6, 6), // 30%, but the scale-down cooldown (3m after the scale-up) holds
            (6, 3), // ceil(6 · 0.5)
            (3, 3), // 60%
            (3, 3), // 60%
            (3, 2), // 40%: ceil(3 · 2/3)
            (2, 2), // 60%
            (2, 2),
            (2, 2),
        ]
    );
}

#[test]
fn target_tracking_on_a_total_queue_length_asks_for_length_over_target_replicas() {
    let yaml = r#"
name: queue-workers
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
metrics:
  queue: {query: 'sum(redis_queue_length{queue="jobs"})', on_empty: zero}
target_tracking: {metric: queue, target: 100}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 1)
        .metric("queue", "250 250 1000 950 1200 400 empty 0");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/tracking_total_queue.txt"].assert_eq(&timeline);
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired).collect();
    assert_eq!(desired, vec![3, 3, 10, 10, 10, 4, 1, 1]);
}

#[test]
fn starting_replicas_carry_no_load_so_a_per_replica_metric_does_not_double_count_them() {
    let yaml = r#"
name: web-ready
min_replicas: 1
max_replicas: 20
cooldown_seconds: 0
metrics:
  cpu: {query: 'avg(cpu_utilization)', per_replica: true}
target_tracking: {metric: cpu, target: 50}
"#;
    // At +1m four of the eight replicas are still starting; the four ready ones report
    // 100% each, which the new four will halve once ready.
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 4)
        .per_replica_load("cpu", "400*4")
        .ready("none 4 8 none");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/tracking_unready_replicas.txt"].assert_eq(&timeline);
    assert_eq!(actions(&decisions), vec![(4, 8), (8, 8), (8, 8), (8, 8)]);
}

#[test]
fn schedule_floors_follow_local_time_in_budapest() {
    let yaml = r#"
name: office-hours
min_replicas: 1
max_replicas: 10
schedules:
  - {cron_expression: "0 8 * * 1-5", desired_replicas: 6, timezone: Europe/Budapest}
  - {cron_expression: "0 20 * * 1-5", desired_replicas: 2, timezone: Europe/Budapest}
"#;
    // A winter Monday: Budapest is UTC+1, so 08:00 local is 07:00 UTC.
    let sim = Sim::new(yaml, "2025-01-06T04:00:00Z", TimeDelta::hours(1), 2)
        .local_time(chrono_tz::Europe::Budapest)
        .ticks(18);
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/schedule_budapest.txt"].assert_eq(&timeline);
    let changes: Vec<(usize, u32)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.action != Action::Hold)
        .map(|(t, d)| (t, d.desired))
        .collect();
    assert_eq!(changes, vec![(3, 6), (15, 2)]);
}

#[test]
fn a_scale_down_waits_until_every_recommendation_in_the_stabilization_window_agrees() {
    let yaml = r#"
name: web-stable
min_replicas: 1
max_replicas: 20
cooldown_seconds: 0
metrics:
  cpu: {query: 'avg(cpu_utilization)', per_replica: true}
target_tracking: {metric: cpu, target: 50}
stabilization: {scale_down: 5m}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 10)
        .per_replica_load("cpu", "500 250*9 500 250*6");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/stabilization_scale_down.txt"].assert_eq(&timeline);
    let changes: Vec<(usize, u32)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.action != Action::Hold)
        .map(|(t, d)| (t, d.desired))
        .collect();
    // Down 5 minutes after the last recommendation of 10; up at once (no scale-up window).
    assert_eq!(changes, vec![(5, 5), (10, 10), (15, 5)]);
}

#[test]
fn rate_limits_allow_the_larger_of_step_and_percent_per_period() {
    let yaml = r#"
name: queue-rate-limited
min_replicas: 2
max_replicas: 50
cooldown_seconds: 0
metrics:
  queue: {query: 'sum(queue_length)'}
target_tracking: {metric: queue, target: 10}
rate_limits:
  scale_up: {max_step: 2, max_percent: 50, period: 2m}
  scale_down: {max_percent: 25, period: 2m}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 2).metric("queue", "400*10 0*9");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/rate_limits.txt"].assert_eq(&timeline);
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired).collect();
    assert_eq!(
        desired,
        // Up: max(start + 2, ceil(start · 1.5)) every 2 minutes; down: ceil(start · 0.75).
        vec![
            4, 4, 6, 6, 9, 9, 14, 14, 21, 21, 16, 16, 12, 12, 9, 9, 7, 7, 6
        ]
    );
}

#[test]
fn the_flap_guard_shrinks_or_skips_a_scale_down_that_would_trigger_a_scale_up_at_once() {
    let yaml = r#"
name: flap-guarded
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
metrics:
  cpu: {query: 'avg(cpu_utilization)', per_replica: true}
scale_up_rules: [{metric: cpu, operator: gt, threshold: 40, scale_by: 1}]
scale_down_rules: [{metric: cpu, operator: lt, threshold: 30, duration: 2m, scale_by: -3}]
"#;
    let sim =
        Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 4).per_replica_load("cpu", "100*4 84*5");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/flap_guard.txt"].assert_eq(&timeline);
    // 4 → 1 would put 100 on one replica (> 40): shrunk to 3 (33.3 each). Later 3 → 0
    // would leave 42 per replica even at 2: skipped.
    assert_eq!(decisions[2].desired, 3);
    assert!(decisions[6..].iter().all(|d| d.desired == 3));
    assert!(decisions[6].constraints[0].reason.contains("skipped"));
}

#[test]
fn the_budget_holds_the_count_at_max_hourly_cost_over_price() {
    let yaml = r#"
name: budgeted
min_replicas: 1
max_replicas: 20
price_per_replica_hour: 0.5
max_hourly_cost: 3
metrics:
  queue: {query: 'sum(queue_length)'}
target_tracking: {metric: queue, target: 10}
"#;
    // From +3m the executor reports a price of 1/h: the budget then affords 3, and the
    // count goes down at once, cooldown or not.
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 2)
        .metric("queue", "100*6")
        .executor_price("none*3 1*3");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/budget.txt"].assert_eq(&timeline);
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired).collect();
    assert_eq!(desired, vec![6, 6, 6, 3, 3, 3]);
    for d in &decisions {
        let cost = d.hourly_cost_after.expect("a price is known");
        assert!(cost <= 3.0, "{d:?}");
    }
}

#[test]
fn scale_to_zero_after_the_idle_time_and_activation_only_above_the_threshold() {
    let yaml = r#"
name: to-zero
min_replicas: 1
max_replicas: 5
metrics:
  queue: {query: 'sum(queue_length)', on_empty: zero}
target_tracking: {metric: queue, target: 10}
scale_to_zero: {metric: queue, activation_threshold: 3, idle: 5m}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 2)
        .metric("queue", "15 0*7 empty*2 2*2 5 20");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/scale_to_zero.txt"].assert_eq(&timeline);
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired).collect();
    assert_eq!(desired, vec![2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
}

#[test]
fn bad_data_never_scales_down_and_says_why() {
    let yaml = r#"
name: bad-data
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
metrics:
  cpu: {query: 'avg(cpu_utilization)', per_replica: true}
target_tracking: {metric: cpu, target: 50}
schedules: [{cron_expression: "0 0 * * *", desired_replicas: 2}]
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 6)
        .metric("cpu", "nan inf empty failed none stale:10 10");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/bad_data.txt"].assert_eq(&timeline);
    for d in &decisions[..6] {
        assert_eq!(d.desired, 6, "{d:?}");
        assert_eq!(d.constraints[0].constraint, Constraint::DataGuard);
        assert_eq!(d.data_problems.len(), 1);
    }
    assert_eq!(
        decisions[6].desired, 2,
        "good data again: down to the floor"
    );
}

#[test]
fn on_metric_error_fallback_goes_up_to_its_count_but_never_down() {
    let yaml = r#"
name: fallback
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
on_metric_error: {fallback: 4}
metrics:
  lag: {query: philotes_cdc_lag_seconds}
scale_up_rules: [{metric: lag, operator: gt, threshold: 60, scale_by: 1}]
scale_down_rules: [{metric: lag, operator: lt, threshold: 10, scale_by: -1}]
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 2)
        .metric("lag", "failed*2 70*3 empty nan 5*2");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/fallback.txt"].assert_eq(&timeline);
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired).collect();
    assert_eq!(desired, vec![4, 4, 5, 6, 7, 7, 7, 6, 5]);
}

#[test]
fn cooldown_blocks_scale_down_but_not_scale_up() {
    let yaml = r#"
name: cooldowns
min_replicas: 1
max_replicas: 10
scale_up_cooldown: 2m
scale_down_cooldown: 5m
metrics:
  lag: {query: philotes_cdc_lag_seconds}
scale_up_rules: [{metric: lag, operator: gt, threshold: 60, scale_by: 1}]
scale_down_rules: [{metric: lag, operator: lt, threshold: 10, scale_by: -1}]
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 6).metric("lag", "5 70 70 70 5*5");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/cooldown_down_not_up.txt"].assert_eq(&timeline);
    assert_eq!(
        actions(&decisions),
        vec![
            (6, 5), // scale-down: nothing happened before
            (5, 6), // scale-up one minute after a scale-down: not blocked
            (6, 6), // scale-up one minute after a scale-up: blocked (2m)
            (6, 7), // two minutes after the scale-up
            (7, 7), // scale-down one minute after a scale-up: blocked (5m)
            (7, 7),
            (7, 7),
            (7, 7),
            (7, 6), // five minutes after the last action
        ]
    );
}

// Defects found while writing these tests. Each test states the behaviour the documented
// rules call for, and fails until the core is fixed.

#[test]
fn scale_to_zero_waits_for_the_scale_down_cooldown() {
    // `Cooldown`: a scale-down waits `scale_down` after the previous scaling action of either
    // direction. Going to zero is a scale-down, but the scale-to-zero step comes after the
    // cooldown step and overrides it: woken at +0m, back at zero at +2m.
    let yaml = r#"
name: to-zero-too-soon
min_replicas: 1
max_replicas: 5
scale_up_cooldown: 0s
scale_down_cooldown: 5m
metrics:
  queue: {query: 'sum(queue_length)'}
target_tracking: {metric: queue, target: 10}
scale_to_zero: {metric: queue, idle: 1m}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 0).metric("queue", "5 0*6");
    let (timeline, decisions) = sim.run();
    let early = decisions[..5]
        .iter()
        .position(|d| d.action == Action::ScaleDown);
    assert_eq!(
        early, None,
        "a scale-down within 5m of the scale-up at +0m:\n{timeline}"
    );
    assert_eq!(decisions[5].desired, 0, "at +5m it may go:\n{timeline}");
}

#[test]
fn per_replica_tracking_with_no_ready_replica_never_scales_an_overloaded_target_down() {
    // With `ready: 0` the per-replica branch is skipped and the per-replica value is read as
    // a total: 90 (150% of the target per replica) asks for ceil(90 / 60) = 2 of 4.
    let yaml = r#"
name: none-ready
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
metrics:
  cpu: {query: 'avg(cpu_utilization)', per_replica: true}
target_tracking: {metric: cpu, target: 60}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("cpu", "90")
        .ready("0");
    let (timeline, decisions) = sim.run();
    assert!(decisions[0].desired >= 4, "{timeline}");
}

#[test]
fn a_percent_rate_limit_does_not_keep_a_target_at_zero_forever() {
    // min_replicas 0 without scale to zero: the count may rest at 0. A percent limit of 0
    // is 0, so with only max_percent set nothing ever starts again.
    let yaml = r#"
name: queue-from-zero
min_replicas: 0
max_replicas: 10
cooldown_seconds: 0
metrics:
  queue: {query: 'sum(queue_length)'}
target_tracking: {metric: queue, target: 10}
rate_limits:
  scale_up: {max_percent: 100}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 0).metric("queue", "50*5");
    let (timeline, decisions) = sim.run();
    assert!(
        decisions.iter().any(|d| d.desired > 0),
        "50 jobs queued and no worker for 5 minutes:\n{timeline}"
    );
}

#[test]
fn duration_rules_still_fire_when_ticks_are_further_apart_than_the_staleness_limit() {
    // With `evaluation_interval: 10m` and the default 5m staleness limit, every new sample
    // comes 10m after the previous one, so each restarts the window ("a gap longer than
    // the staleness limit") and a rule with a duration never holds. Either validation
    // rejects such a policy, or the rule fires (as a Prometheus alert's `for: 5m` does on
    // the second evaluation 10 minutes apart).
    let yaml = r#"
name: slow-ticks
min_replicas: 1
max_replicas: 10
evaluation_interval: 10m
scale_up_rules:
  - {metric: philotes_cdc_lag_seconds, operator: gt, threshold: 60, duration: 5m, scale_by: 2}
"#;
    if ballast_core::load_policies(yaml, ballast_core::Format::Yaml).is_err() {
        return;
    }
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(10), 2)
        .metric("philotes_cdc_lag_seconds", "70*6");
    let (timeline, decisions) = sim.run();
    assert!(
        decisions.iter().any(|d| d.action == Action::ScaleUp),
        "lag above 60 for 50 minutes, no scale-up:\n{timeline}"
    );
}

/// Requests per second in total, tracked at 100 per replica, with the predictive strategy
/// on the same metric.
const WEB_PREDICTIVE: &str = r#"
name: web-predictive
min_replicas: 1
max_replicas: 50
scale_up_cooldown: 0s
scale_down_cooldown: 0s
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
target_tracking: {metric: requests, target: 100}
predictive: {metric: requests, target: 100, confidence: 0.95}
"#;

fn desired(decisions: &[Decision]) -> Vec<u32> {
    decisions.iter().map(|d| d.desired).collect()
}

#[test]
fn predictive_scales_ahead_of_the_forecast_peak_and_target_tracking_stays_the_floor() {
    let sim = Sim::new(WEB_PREDICTIVE, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("requests", "400*5 900*2 1500*2 600*2")
        .forecasts("none 450@? 450 1000*4 1000*2 700 650");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/predictive_ahead.txt"].assert_eq(&timeline);
    // No forecast, then one whose accuracy is not known: tracking alone. From +2m the
    // forecast's upper bound leads: 10 replicas two minutes before the load reaches 900.
    // The surprise of 1500 is met by target tracking, the floor; afterwards the forecast
    // keeps one replica of headroom over tracking's 6.
    assert_eq!(
        desired(&decisions),
        vec![4, 4, 5, 10, 10, 10, 10, 15, 15, 7, 7]
    );
    let p = &decisions[3].proposals[1];
    assert_eq!(p.strategy, Strategy::Predictive);
    assert_eq!(
        p.reason,
        "requests over the next 3m: peak 900, up to 1000 at 95% confidence (MASE 0.3, coverage 96% over 1440 scored), target 100 per replica: 10 replicas"
    );
    assert_eq!(decisions[0].proposals[1].strategy, Strategy::Forecast);
    assert_eq!(
        decisions[1].proposals[1].desired, 5,
        "what it would ask for"
    );
}

#[test]
fn predictive_stands_aside_while_its_accuracy_is_below_the_threshold_and_says_so() {
    let sim = Sim::new(WEB_PREDICTIVE, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("requests", "400*6")
        .forecasts("800 800@1.7 800@2 800 stale:800 800");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/predictive_stands_aside.txt"].assert_eq(&timeline);
    assert_eq!(desired(&decisions), vec![8, 4, 4, 8, 4, 8]);
    let aside = &decisions[1].proposals[1];
    assert_eq!(aside.strategy, Strategy::Forecast);
    assert_eq!(aside.desired, 8, "what it would have asked for");
    assert!(
        aside
            .reason
            .starts_with("predictive stands aside: MASE 1.7 is above max_mase 1"),
        "{}",
        aside.reason
    );
    assert!(
        decisions[4].proposals[1]
            .reason
            .contains("the newest forecast is 1h old (limit 5m)"),
        "{:?}",
        decisions[4].proposals
    );
    // The summary names the strategy that decided, never the one standing aside.
    assert!(
        decisions[1]
            .summary()
            .contains("target 100 per replica: 4 replicas"),
        "{}",
        decisions[1].summary()
    );
}

#[test]
fn forecast_only_records_what_the_forecast_would_ask_for_and_acts_on_nothing() {
    let yaml = WEB_PREDICTIVE.replace(
        "predictive: {metric: requests, target: 100, confidence: 0.95}",
        "predictive: {metric: requests, target: 100, mode: forecast_only}",
    );
    let sim = Sim::new(&yaml, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("requests", "400*3")
        .forecasts("1000*3");
    let (_, decisions) = sim.run();
    assert_eq!(desired(&decisions), vec![4, 4, 4]);
    for d in &decisions {
        let p = &d.proposals[1];
        assert_eq!((p.strategy, p.desired), (Strategy::Forecast, 10));
        assert!(p.reason.starts_with("forecast only: "), "{}", p.reason);
        assert_eq!(d.combined, 4);
    }
}

#[test]
fn a_predictive_policy_without_a_forecast_holds_and_never_scales_down() {
    let yaml = r#"
name: predictive-only
min_replicas: 1
max_replicas: 50
cooldown_seconds: 0
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
predictive: {metric: requests, target: 100}
"#;
    let sim = Sim::new(yaml, "2025-01-06T10:00:00Z", minutes(1), 6)
        .metric("requests", "100*4")
        .forecasts("none 250 none 250@5");
    let (_, decisions) = sim.run();
    assert_eq!(desired(&decisions), vec![6, 3, 3, 3]);
}

const SHOP: &str = r#"
name: shop
min_replicas: 1
max_replicas: 30
scale_up_cooldown: 0s
scale_down_cooldown: 0s
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
target_tracking: {metric: requests, target: 100, tolerance: 0.1}
spare:
  replicas: 1
  schedules:
    - {cron_expression: "0 18 * * 5,6", replicas: 3, duration: 5h, timezone: Europe/London}
"#;

#[test]
fn the_spare_pool_keeps_scheduled_spares_on_top_of_what_demand_needs() {
    // Friday 16:00 in London (UTC in winter), hourly ticks until Saturday 02:00.
    let sim = Sim::new(SHOP, "2025-01-10T16:00:00Z", TimeDelta::hours(1), 5)
        .local_time(chrono_tz::Europe::London)
        .metric("requests", "500 500 560 560 560 failed 560 560 560 560 560");
    let (timeline, decisions) = sim.run();
    expect_file!["snapshots/spare_pool.txt"].assert_eq(&timeline);
    // One spare by default, three from Friday 18:00 for five hours. At 560 requests the
    // demand needs 6: 7 with one spare, 9 with three. A failed query gives no measure of
    // demand, so the pool adds nothing and the count holds.
    assert_eq!(desired(&decisions), vec![6, 6, 9, 9, 9, 9, 9, 7, 7, 7, 7]);
    let step = &decisions[2].constraints[0];
    assert_eq!(step.constraint, Constraint::Spare);
    assert_eq!(
        step.reason,
        "3 spares (spare schedule `0 18 * * 5,6` (Europe/London) fired at 2025-01-10 18:00 GMT for 5h) on top of the 6 demand needs"
    );
}

#[test]
fn spares_within_the_tracking_tolerance_do_not_ratchet_the_count_up() {
    // 6 replicas needed; with the spare the count is 7, where the load per replica is
    // within the tolerance of the target. The spare must be counted once, not again on
    // every tick.
    let sim = Sim::new(SHOP, "2025-01-06T10:00:00Z", minutes(1), 6).metric("requests", "560*8");
    let (_, decisions) = sim.run();
    assert_eq!(desired(&decisions), vec![7; 8]);
}

#[test]
fn spares_are_added_on_top_of_the_predictive_count() {
    let yaml = format!("{WEB_PREDICTIVE}spare: {{replicas: 2}}\n");
    let sim = Sim::new(&yaml, "2025-01-06T10:00:00Z", minutes(1), 4)
        .metric("requests", "400*3")
        .forecasts("none 800 800@3");
    let (_, decisions) = sim.run();
    // Tracking's 4 + 2; the forecast's 8 + 2; the forecast standing aside: 4 + 2 again.
    assert_eq!(desired(&decisions), vec![6, 10, 6]);
    assert_eq!(decisions[1].constraints[0].constraint, Constraint::Spare);
}
