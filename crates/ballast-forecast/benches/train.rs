//! How fast the forecaster trains and forecasts, for the claim that a thousand predictive
//! policies keep up with the engine.
//!
//! - `train_and_forecast/one_policy`: one policy's training (MSTL with a daily season,
//!   AutoETS on the deseasonalised bucket means) on a week of one-minute samples, then one
//!   forecast of a three-minute lead time, on one core.
//! - `train_and_forecast/1000_policies`: the same for 1,000 policies, each with its own
//!   series, trained on as many threads as the machine has cores (the runtime runs
//!   trainings on its blocking pool), as an engine would when every policy is due at once.
//!   Throughput is policies per second; one iteration takes tens of seconds, so this group
//!   runs for a few minutes.
//!
//! Building the histories is not measured; copying one into its training job is.
//!
//! Run with `cargo bench -p ballast-forecast --bench train`.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::Duration;

use ballast_core::{Format, Timestamp, load_policies};
use ballast_forecast::Forecaster;
use chrono::{DateTime, TimeDelta};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// A week of one-minute samples.
const WEEK: usize = 7 * 1440;
/// Policies in the fleet.
const POLICIES: usize = 1000;

const POLICY: &str = r#"
name: bench
max_replicas: 1000
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
predictive:
  metric: requests
  target: 100
  provisioning_time: 2m
  history: 14d
  seasonality: [1d, 1w]
"#;

/// Policy `i`'s load: its own level, daily amplitude and phase, a weekend dip, and noise
/// from a small linear congruential generator.
fn series(i: usize) -> Vec<f64> {
    let level = 500.0 + (i % 97) as f64 * 40.0;
    let amplitude = 0.2 + (i % 13) as f64 * 0.04;
    let phase = (i % 24) as f64 / 24.0 * TAU;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ i as u64;
    (0..WEEK)
        .map(|t| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let day = t as f64 / 1440.0 * TAU + phase;
            let weekend = if (t / 1440) % 7 >= 5 { 0.8 } else { 1.0 };
            level * weekend * (1.0 + amplitude * day.sin()) + 0.05 * level * noise
        })
        .collect()
}

/// A forecaster that has observed `series(i)`, one sample a minute.
fn forecaster(i: usize, start: Timestamp) -> Forecaster {
    let policy = load_policies(POLICY, Format::Yaml).unwrap().remove(0);
    let mut f = Forecaster::for_policy(&policy, TimeDelta::minutes(1)).unwrap();
    for (t, v) in series(i).into_iter().enumerate() {
        f.observe(start + TimeDelta::minutes(t as i64), v, 1);
    }
    f
}

/// Trains `f` and forecasts once; the forecast's upper bound.
fn train_and_forecast(f: &mut Forecaster) -> f64 {
    let job = f.training_job().expect("a week of history is enough");
    f.install(job.run().expect("trains"));
    f.forecast().expect("a model").upper
}

fn bench(c: &mut Criterion) {
    let start = DateTime::UNIX_EPOCH;
    let mut group = c.benchmark_group("train_and_forecast");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10));

    let one = forecaster(0, start);
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_policy", |b| {
        b.iter_batched(
            || one.clone(),
            |mut f| black_box(train_and_forecast(&mut f)),
            BatchSize::LargeInput,
        )
    });

    let fleet: Vec<Forecaster> = (0..POLICIES).map(|i| forecaster(i, start)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    group.throughput(Throughput::Elements(POLICIES as u64));
    group.measurement_time(Duration::from_secs(60));
    group.bench_function(format!("{POLICIES}_policies"), |b| {
        b.iter_batched(
            || fleet.clone(),
            |mut fleet| {
                let chunk = fleet.len().div_ceil(threads);
                std::thread::scope(|s| {
                    for part in fleet.chunks_mut(chunk) {
                        s.spawn(move || {
                            for f in part {
                                black_box(train_and_forecast(f));
                            }
                        });
                    }
                });
                fleet
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
