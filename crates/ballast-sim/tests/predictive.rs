//! Predictive policies in a backtest: the forecaster learns from the trace as the engine
//! would, never sees past the decision's tick, and moves capacity ahead of a daily cycle.

use ballast_core::{Format, Policy, load_policies};
use ballast_sim::policy::PolicyController;
use ballast_sim::{Grid, Run, Scenario, Trace, default_initial, simulate};

/// Five-minute rows: a daily cycle with a sharp morning ramp, a level that differs from day
/// to day, and some noise.
fn daily_trace(days: usize) -> Trace {
    const LEVELS: [f64; 6] = [1.0, 1.2, 0.9, 1.1, 0.95, 1.15];
    let rows = (0..days * 288)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            let busy = if (8.0..20.0).contains(&hour) {
                1.0
            } else {
                0.0
            };
            let wave = (hour / 24.0 * std::f64::consts::TAU).sin();
            let noise = ((i * 7919) % 17) as f64 / 17.0;
            let level = LEVELS[(i / 288) % LEVELS.len()];
            let value = level * (3000.0 + 6000.0 * busy + 1500.0 * wave) + 300.0 * noise;
            (i as f64 * 300.0, value)
        })
        .collect();
    Trace::from_rows(rows).unwrap()
}

fn policy(yaml: &str) -> Policy {
    load_policies(yaml, Format::Yaml).unwrap().remove(0)
}

const PREDICTIVE: &str = r#"
name: predictive
min_replicas: 1
max_replicas: 1000
scale_up_cooldown: 0s
scale_down_cooldown: 0s
scale_up_rules:
  - {metric: utilization, operator: gte, threshold: 100, scale_by: 2}
target_tracking: {metric: utilization, target: 100, tolerance: 0}
predictive:
  metric: utilization
  target: 100
  confidence: 0.99
  provisioning_time: 10m
  seasonality: [1d]
  history: 3d
  retrain_every: 6h
"#;

/// The policy without its predictive block (the block is last).
fn reactive(yaml: &str) -> &str {
    yaml.split("predictive:\n").next().unwrap()
}

fn scenario(trace: &Trace) -> Scenario {
    Scenario {
        tick_s: 300.0,
        startup_s: 600.0,
        ..Scenario::new(trace.mean_rate() / 10.0)
    }
}

fn run(trace: &Trace, scenario: &Scenario, policy: &Policy) -> (Run, PolicyController) {
    let grid = Grid::new(trace, scenario).unwrap();
    let mut c = PolicyController::new(policy, scenario.price).unwrap();
    let run = simulate(
        &grid,
        scenario,
        &policy.name,
        default_initial(&grid, scenario),
        &mut c,
        &mut |_, _| {},
    );
    (run, c)
}

fn desired(run: &Run, upto: usize) -> Vec<u32> {
    run.rows[..=upto].iter().map(|r| r.desired).collect()
}

#[test]
fn a_predictive_backtest_never_looks_ahead() {
    let trace = daily_trace(4);
    let scenario = scenario(&trace);
    let policy = policy(PREDICTIVE);
    let (full, c) = run(&trace, &scenario, &policy);
    assert!(c.forecast_stats.trainings > 0 && c.forecast_stats.acting > 0);
    // Cuts after the forecaster has a daily season and acts, and one before it trains.
    for k in [40, 700, 900] {
        // Tick k covers rows k (one row per tick); change everything from tick k + 1 on.
        let mut changed = trace.clone();
        for (i, v) in changed.values.iter_mut().enumerate().skip(k + 1) {
            *v = if i % 3 == 0 { *v * 5.0 } else { 0.0 };
        }
        let (other, _) = run(&changed, &scenario, &policy);
        assert_eq!(
            desired(&full, k),
            desired(&other, k),
            "changed after tick {k}"
        );
        assert_ne!(full.rows, other.rows, "the change is visible later");
        // Truncating the trace there does not change them either.
        let cut = Trace::from_rows(
            trace.timestamps[..=k + 1]
                .iter()
                .copied()
                .zip(trace.values[..=k + 1].iter().copied())
                .collect(),
        )
        .unwrap();
        let (short, _) = run(&cut, &scenario, &policy);
        assert_eq!(
            desired(&full, k),
            desired(&short, k),
            "truncated after tick {k}"
        );
    }
}

#[test]
fn the_forecast_moves_capacity_ahead_of_the_morning_ramp() {
    let trace = daily_trace(4);
    let scenario = scenario(&trace);
    let (with, c) = run(&trace, &scenario, &policy(PREDICTIVE));
    // The same policy without its predictive block: the reactive strategies alone.
    let (without, _) = run(&trace, &scenario, &policy(reactive(PREDICTIVE)));
    // Compare the days where the forecaster has seen a whole day before: from day 2.
    let from = 2 * 288;
    let under = |r: &Run| {
        r.rows[from..]
            .iter()
            .filter(|row| row.required > row.ready)
            .count()
    };
    assert!(
        under(&with) * 4 <= under(&without),
        "under-provisioned ticks from day 2: {} with the forecast, {} without; {:?}",
        under(&with),
        under(&without),
        c.forecast_stats
    );
    assert!(under(&without) > 0, "the reactive policy misses the ramps");
    let f = &c.forecast_stats;
    assert!(f.mase.is_some_and(|m| m < 1.0), "{f:?}");
    assert!(f.coverage.is_some_and(|c| c > 0.9), "{f:?}");
}

#[test]
fn forecast_only_scores_forecasts_and_decides_as_the_policy_without_them() {
    let trace = daily_trace(3);
    let scenario = scenario(&trace);
    let only = policy(&PREDICTIVE.replace(
        "  target: 100\n  confidence",
        "  target: 100\n  mode: forecast_only\n  confidence",
    ));
    let (recorded, c) = run(&trace, &scenario, &only);
    let (plain, _) = run(&trace, &scenario, &policy(reactive(PREDICTIVE)));
    assert_eq!(recorded.rows, plain.rows);
    assert_eq!(c.forecast_stats.acting, 0);
    assert!(c.forecast_stats.scored > 100, "{:?}", c.forecast_stats);
}
