//! How long a backtest of the largest shipped trace takes, step by step.
//!
//! The trace is `examples/traces/worldcup98_requests_per_min.csv` (one row per minute for
//! about three months); the scenario is `BACKTEST.md`'s default with a capacity of a tenth
//! of the trace's mean rate, as `ballast backtest --capacity auto` uses. Measured:
//!
//! - `parse_and_grid`: reading and checking the CSV (from the page cache) and resampling it
//!   onto 60 s ticks;
//! - `reference_oracle`, `reference_hpa`, `reference_keda`: each reference run;
//! - `policy_web`: `examples/policies/web.yaml` through the core's `decide` at every tick.
//!
//! Run with `cargo bench -p ballast-sim --bench backtest`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use ballast_core::{Format, load_policies};
use ballast_sim::policy::PolicyController;
use ballast_sim::{Grid, Reference, Scenario, Trace, default_initial, run_reference, simulate};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/traces/worldcup98_requests_per_min.csv"
);
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/policies/web.yaml"
);

/// The trace, its scenario and its grid, as `ballast backtest --capacity auto` builds them.
fn load(path: &Path) -> (Trace, Scenario, Grid) {
    let trace = Trace::from_path(path).expect("the shipped trace is valid");
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    let grid = Grid::new(&trace, &scenario).expect("the shipped trace fills a grid");
    (trace, scenario, grid)
}

fn no_progress() -> impl FnMut(usize, usize) {
    |_, _| {}
}

fn bench_backtest(c: &mut Criterion) {
    let path = Path::new(TRACE);
    let bytes = std::fs::metadata(path).expect("the shipped trace").len();
    let (trace, scenario, grid) = load(path);
    let ticks = grid.len() as u64;
    let text = std::fs::read_to_string(POLICY).expect("the shipped policy");
    let policy = load_policies(&text, Format::Yaml)
        .expect("the shipped policy is valid")
        .remove(0);
    let initial = default_initial(&grid, &scenario);
    eprintln!(
        "worldcup98: {} rows ({bytes} bytes), {ticks} ticks of {} s, capacity {:.2} per replica",
        trace.len(),
        scenario.tick_s,
        scenario.capacity
    );

    let mut group = c.benchmark_group("worldcup98");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("parse_and_grid", |b| b.iter(|| load(black_box(path))));

    group.throughput(Throughput::Elements(ticks));
    for which in Reference::ALL {
        group.bench_function(format!("reference_{}", which.name()), |b| {
            b.iter(|| run_reference(&grid, &scenario, which, &mut no_progress()))
        });
    }

    let bind = || PolicyController::new(&policy, scenario.price).expect("web binds");
    let run_web = |controller: &mut PolicyController| {
        simulate(
            &grid,
            &scenario,
            "web",
            initial,
            controller,
            &mut no_progress(),
        )
    };

    // A policy run takes a few hundred milliseconds: ten runs of one iteration each rather
    // than criterion's 55-run linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("policy_web", |b| {
        b.iter_batched(
            bind,
            |mut controller| run_web(&mut controller),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut controller = bind();
    let run = run_web(&mut controller);
    eprintln!(
        "worldcup98 policy_web: {} scale-ups, {} scale-downs, {} holds over {} ticks",
        controller.counts.scale_up,
        controller.counts.scale_down,
        controller.counts.hold,
        run.rows.len()
    );
}

criterion_group!(benches, bench_backtest);
criterion_main!(benches);
