//! How fast the decision pipeline is, on one core.
//!
//! - `decide_100k_policies`: one evaluation of 100,000 policies of three rules each (two
//!   scale-up rules, one scale-down rule, each on its own metric and with a duration), as an
//!   engine would run one tick. Throughput is decisions per second.
//! - `decide_rich_policy`: one decision of a single policy with target tracking, cron
//!   schedules in `Europe/Budapest`, stabilization windows, rate limits and a budget, to show
//!   what the richer pipeline costs per decision.
//!
//! Each policy watches a synthetic service whose load follows its own wave, and its count
//! follows its own decisions, so that over the run the policies hold, scale up and scale
//! down as real ones would. The virtual clock advances 60 s per evaluation, so rule windows,
//! cooldowns, stabilization and rate limits evolve. Building the policies is not measured,
//! nor, for the fleet, writing each tick's samples into the observations; `decide`
//! (including dropping the decision it returns) is. For the single rich policy the timed
//! loop also writes its one sample (a division and a store), a few nanoseconds.
//!
//! Run with `cargo bench -p ballast-core --bench decide`.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ballast_core::spec::{
    DurationSpec, MetricSpec, RateLimitSpec, RateLimitsSpec, RuleSpec, ScheduleSpec,
    StabilizationSpec, TargetTrackingSpec,
};
use ballast_core::{
    Action, Decision, MetricObservation, Observations, Policy, PolicySpec, PolicyState, Sample,
    Timestamp, decide, validate,
};
use chrono::TimeDelta;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Policies evaluated per pass.
const POLICIES: usize = 100_000;
/// Load units per second one replica serves in the synthetic services.
const CAPACITY: f64 = 100.0;
/// Seconds between evaluations.
const TICK_S: i64 = 60;
/// Evaluations run before measuring, so that windows and cooldowns are already in play.
const WARM_TICKS: usize = 10;

/// A Monday, 05:00 UTC: the rich policy's schedules fire within the first simulated hours.
fn start() -> Timestamp {
    "2026-03-02T05:00:00Z".parse().expect("a valid timestamp")
}

/// A small deterministic hash (SplitMix64), so every policy gets its own numbers without a
/// random-number dependency and every run sees the same fleet.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A number in `[0, 1)` from `seed`.
fn unit(seed: u64) -> f64 {
    (mix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

fn duration(text: &str) -> Option<DurationSpec> {
    Some(DurationSpec::Text(text.to_owned()))
}

fn metric(query: String, per_replica: bool) -> MetricSpec {
    MetricSpec {
        query,
        per_replica,
        ..MetricSpec::default()
    }
}

fn rule(metric: &str, operator: &str, threshold: f64, for_: &str, scale_by: i64) -> RuleSpec {
    RuleSpec {
        metric: metric.to_owned(),
        operator: operator.to_owned(),
        threshold,
        duration: duration(for_),
        scale_by,
    }
}

/// Policy `i` of the fleet: scale up by 2 when CPU is high for 2 minutes and the queue is
/// long for 1 minute, scale down by 1 when requests per replica have been low for 5
/// minutes. Thresholds and bounds differ from policy to policy.
fn fleet_spec(i: usize) -> PolicySpec {
    let n = i as u64;
    let app = format!("app-{i}");
    PolicySpec {
        name: app.clone(),
        enabled: true,
        min_replicas: 2,
        max_replicas: Some(40 + (n % 40) as u32),
        scale_up_cooldown: duration("2m"),
        scale_down_cooldown: duration("5m"),
        metrics: [
            (
                "cpu",
                metric(
                    format!("avg(rate(container_cpu_usage_seconds_total{{app=\"{app}\"}}[1m])) * 100"),
                    true,
                ),
            ),
            (
                "queue",
                metric(format!("sum(queue_depth{{app=\"{app}\"}})"), false),
            ),
            (
                "rps_per_replica",
                metric(
                    format!("sum(rate(http_requests_total{{app=\"{app}\"}}[1m])) / count(up{{app=\"{app}\"}})"),
                    true,
                ),
            ),
        ]
        .into_iter()
        .map(|(name, m)| (name.to_owned(), m))
        .collect(),
        scale_up_rules: vec![
            rule("cpu", "gt", 70.0 + (n % 16) as f64, "2m", 2),
            rule("queue", "gt", 60.0 + (n % 81) as f64, "1m", 1),
        ],
        scale_down_rules: vec![rule(
            "rps_per_replica",
            "lt",
            25.0 + (n % 16) as f64,
            "5m",
            -1,
        )],
        ..PolicySpec::default()
    }
}

/// The load of a synthetic service: a wave with its own level, depth, period and phase,
/// plus a little noise per tick.
#[derive(Debug, Clone, Copy)]
struct Wave {
    seed: u64,
    base: f64,
    depth: f64,
    period_s: f64,
    phase: f64,
}

impl Wave {
    fn new(seed: u64) -> Wave {
        Wave {
            seed,
            base: 300.0 + 1200.0 * unit(seed ^ 1),
            depth: 0.3 + 0.4 * unit(seed ^ 2),
            period_s: 60.0 * (30.0 + 150.0 * unit(seed ^ 3)),
            phase: TAU * unit(seed ^ 4),
        }
    }

    /// Load units per second at `t` (seconds since the start).
    fn at(&self, t: i64) -> f64 {
        let noise = 0.95 + 0.1 * unit(self.seed.rotate_left(32) ^ t as u64);
        self.base * (1.0 + self.depth * (TAU * t as f64 / self.period_s + self.phase).sin()) * noise
    }
}

/// The replicas that serve `load` at 60 % utilization, within the policy's bounds.
fn comfortable(load: f64, policy: &Policy) -> u32 {
    ((load / (0.6 * CAPACITY)).ceil() as u32).clamp(policy.min_replicas, policy.max_replicas)
}

/// Observations of `metrics` metrics, one sample each, to be overwritten every tick.
fn observations(current: u32, metrics: usize, now: Timestamp) -> Observations {
    Observations {
        current,
        ready: None,
        metrics: vec![MetricObservation::value(now, 0.0); metrics],
        price_per_replica_hour: None,
    }
}

/// Overwrites the newest (only) sample of metric `i`.
fn set(obs: &mut Observations, i: usize, at: Timestamp, value: f64) {
    if let MetricObservation::Samples(samples) = &mut obs.metrics[i] {
        samples[0] = Sample { at, value };
    }
}

/// Decisions counted by action.
#[derive(Debug, Default, Clone, Copy)]
struct Mix {
    up: u64,
    down: u64,
    hold: u64,
    /// Decisions that saw bad metric data (there should be none).
    bad_data: u64,
}

impl Mix {
    fn count(&mut self, decision: &Decision) {
        if !decision.data_problems.is_empty() {
            self.bad_data += 1;
        }
        match decision.action {
            Action::ScaleUp => self.up += 1,
            Action::ScaleDown => self.down += 1,
            Action::Hold => self.hold += 1,
        }
    }

    fn line(&self) -> String {
        let total = (self.up + self.down + self.hold).max(1) as f64;
        let pct = |n: u64| 100.0 * n as f64 / total;
        format!(
            "{} decisions: {:.1} % hold, {:.1} % scale up, {:.1} % scale down, {} with bad data",
            self.up + self.down + self.hold,
            pct(self.hold),
            pct(self.up),
            pct(self.down),
            self.bad_data
        )
    }
}

/// 100,000 policies, their states and observations, and the services they watch.
struct Fleet {
    policies: Vec<Policy>,
    states: Vec<PolicyState>,
    observations: Vec<Observations>,
    waves: Vec<Wave>,
    /// Seconds since [`start`] of the next evaluation.
    t: i64,
    mix: Mix,
}

impl Fleet {
    fn new() -> Fleet {
        let policies: Vec<Policy> = (0..POLICIES)
            .map(|i| validate(&fleet_spec(i)).expect("the fleet's policies are valid"))
            .collect();
        let waves: Vec<Wave> = (0..POLICIES as u64).map(Wave::new).collect();
        let observations = policies
            .iter()
            .zip(&waves)
            .map(|(p, w)| observations(comfortable(w.at(0), p), p.metrics.len(), start()))
            .collect();
        let mut fleet = Fleet {
            states: vec![PolicyState::default(); POLICIES],
            policies,
            observations,
            waves,
            t: 0,
            mix: Mix::default(),
        };
        for _ in 0..WARM_TICKS {
            fleet.pass();
        }
        fleet.mix = Mix::default();
        fleet
    }

    /// Writes this tick's samples: what each service's metrics read at its current count.
    fn observe(&mut self) -> Timestamp {
        let now = start() + TimeDelta::seconds(self.t);
        for ((policy, obs), wave) in self
            .policies
            .iter()
            .zip(&mut self.observations)
            .zip(&self.waves)
        {
            let load = wave.at(self.t);
            let served = f64::from(obs.current.max(1)) * CAPACITY;
            let cpu = (100.0 * load / served).min(100.0);
            let queue = ((load - 0.75 * served) * 1.5).max(0.0);
            let per_replica = load / f64::from(obs.current.max(1));
            for (i, m) in policy.metrics.iter().enumerate() {
                let value = match m.name.as_str() {
                    "cpu" => cpu,
                    "queue" => queue,
                    _ => per_replica,
                };
                set(obs, i, now, value);
            }
        }
        now
    }

    /// One evaluation of every policy; returns the time spent in `decide`. The executor
    /// is taken to apply each decision at once, so the next tick's count is the decision.
    fn pass(&mut self) -> Duration {
        let now = self.observe();
        let started = Instant::now();
        for ((policy, state), obs) in self
            .policies
            .iter()
            .zip(&mut self.states)
            .zip(&mut self.observations)
        {
            let decision = decide(policy, state, now, obs);
            self.mix.count(&decision);
            obs.current = decision.desired;
            black_box(decision);
        }
        let spent = started.elapsed();
        self.t += TICK_S;
        spent
    }
}

fn bench_fleet(c: &mut Criterion) {
    let built = Instant::now();
    let mut fleet = Fleet::new();
    eprintln!(
        "decide_100k_policies: built and warmed {POLICIES} policies ({WARM_TICKS} ticks) in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    let mut group = c.benchmark_group("decide_100k_policies");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(POLICIES as u64));
    group.bench_function("three_rules_one_pass", |b| {
        b.iter_custom(|passes| (0..passes).map(|_| fleet.pass()).sum())
    });
    group.finish();
    eprintln!(
        "decide_100k_policies: {} simulated minutes; {}",
        fleet.t / TICK_S,
        fleet.mix.line()
    );
}

/// One policy with every stage of the pipeline that costs something: target tracking, cron
/// schedules in `Europe/Budapest`, stabilization, rate limits and an hourly budget.
fn rich_spec() -> PolicySpec {
    let schedule = |cron: &str, desired_replicas| ScheduleSpec {
        cron_expression: cron.to_owned(),
        desired_replicas,
        timezone: Some("Europe/Budapest".to_owned()),
    };
    PolicySpec {
        name: "rich".to_owned(),
        enabled: true,
        min_replicas: 2,
        max_replicas: Some(100),
        scale_up_cooldown: duration("1m"),
        scale_down_cooldown: duration("3m"),
        metrics: [(
            "cpu".to_owned(),
            metric(
                "avg(rate(container_cpu_usage_seconds_total{app=\"rich\"}[1m])) * 100".to_owned(),
                true,
            ),
        )]
        .into_iter()
        .collect(),
        target_tracking: Some(TargetTrackingSpec {
            metric: "cpu".to_owned(),
            target: 60.0,
            tolerance: Some(0.1),
        }),
        schedules: vec![
            schedule("0 8 * * 1-5", 12),
            schedule("0 19 * * 1-5", 4),
            schedule("0 10 * * 0,6", 6),
        ],
        stabilization: Some(StabilizationSpec {
            scale_up: duration("1m"),
            scale_down: duration("5m"),
        }),
        rate_limits: Some(RateLimitsSpec {
            scale_up: Some(RateLimitSpec {
                max_step: Some(4),
                max_percent: Some(100.0),
                period: duration("1m"),
            }),
            scale_down: Some(RateLimitSpec {
                max_step: Some(2),
                max_percent: None,
                period: duration("2m"),
            }),
        }),
        max_hourly_cost: Some(20.0),
        price_per_replica_hour: Some(0.5),
        ..PolicySpec::default()
    }
}

fn bench_rich(c: &mut Criterion) {
    let policy = validate(&rich_spec()).expect("the rich policy is valid");
    // A daily wave peaking in the afternoon, high enough that the budget (40 replicas)
    // binds at the peak.
    let load = |t: i64| {
        let day = TAU * (t as f64 - 9.0 * 3600.0) / 86_400.0;
        (1500.0 - 1300.0 * day.cos()) * (0.95 + 0.1 * unit(t as u64))
    };
    let origin = start();
    let mut state = PolicyState::default();
    let mut obs = observations(2, policy.metrics.len(), origin);
    let mut t = 0;
    let mut mix = Mix::default();
    let mut loads = Vec::new();

    let mut group = c.benchmark_group("decide_rich_policy");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    group.bench_function("tracking_schedule_stabilization_rate_limit_budget", |b| {
        b.iter_custom(|decisions| {
            loads.clear();
            loads.extend((0..decisions as i64).map(|k| load(t + k * TICK_S)));
            let started = Instant::now();
            for &l in &loads {
                let now = origin + TimeDelta::seconds(t);
                let cpu = (100.0 * l / (f64::from(obs.current.max(1)) * CAPACITY)).min(100.0);
                set(&mut obs, 0, now, cpu);
                let decision = decide(&policy, &mut state, now, &obs);
                mix.count(&decision);
                obs.current = decision.desired;
                black_box(decision);
                t += TICK_S;
            }
            started.elapsed()
        })
    });
    group.finish();
    eprintln!(
        "decide_rich_policy: {:.1} simulated days; {}",
        t as f64 / 86_400.0,
        mix.line()
    );
}

criterion_group!(benches, bench_fleet, bench_rich);
criterion_main!(benches);
