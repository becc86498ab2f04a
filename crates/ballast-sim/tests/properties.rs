//! Invariants of the backtest model on random traces and scenarios.

use ballast_sim::{
    Grid, Reference, Scenario, Schedule, Trace, oracle_desired, run_reference, simulate,
};
use proptest::prelude::*;

/// A random trace: uneven steps around a base step, occasional long gaps, zero runs.
fn trace_strategy() -> impl Strategy<Value = Trace> {
    (
        prop::sample::select(vec![1.0, 60.0, 300.0, 3600.0]),
        prop::collection::vec(
            (
                prop_oneof![8 => Just(1.0), 1 => 1.5..3.5f64, 1 => 3.5..20.0f64],
                prop_oneof![1 => Just(0.0), 6 => 0.0..5_000.0f64],
            ),
            2..80,
        ),
    )
        .prop_map(|(base, rows)| {
            let mut t = 1_400_000_000.0;
            let rows = rows
                .into_iter()
                .map(|(step, value)| {
                    let row = (t, value);
                    // Whole seconds, like real traces.
                    t += (step * base).round().max(1.0);
                    row
                })
                .collect();
            Trace::from_rows(rows).expect("generated rows are valid")
        })
}

fn scenario_strategy(trace: &Trace) -> impl Strategy<Value = Scenario> + use<> {
    let step = trace.median_step();
    (
        prop::sample::select(vec![0.25, 0.5, 1.0, 2.0, 7.0]),
        0.0..600.0f64,
        1.0..400.0f64,
    )
        .prop_map(move |(tick_factor, startup_s, capacity)| Scenario {
            tick_s: (step * tick_factor).max(1.0),
            startup_s,
            ..Scenario::new(capacity / step)
        })
}

fn trace_and_scenario() -> impl Strategy<Value = (Trace, Scenario)> {
    trace_strategy().prop_flat_map(|trace| {
        let scenario = scenario_strategy(&trace);
        (Just(trace), scenario)
    })
}

/// `BACKTEST.md`'s grid computed the slow, obvious way: every row against every tick.
fn naive_demand(trace: &Trace, tick: f64) -> Vec<f64> {
    let step = trace.median_step();
    let ts = &trace.timestamps;
    let n = ts.len();
    let coverage: Vec<(f64, f64, f64)> = (0..n)
        .map(|i| {
            let end = if i + 1 < n && ts[i + 1] - ts[i] <= 3.0 * step {
                ts[i + 1]
            } else {
                ts[i] + step
            };
            (ts[i] - ts[0], end - ts[0], trace.values[i] / step)
        })
        .collect();
    let span = coverage[n - 1].1;
    let ticks = ((span / tick) + 1e-9).floor() as usize;
    (0..ticks)
        .map(|k| {
            let (a, b) = (k as f64 * tick, (k + 1) as f64 * tick);
            coverage
                .iter()
                .map(|&(s, e, rate)| rate * (e.min(b) - s.max(a)).max(0.0))
                .sum::<f64>()
                / tick
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_sweep_equals_the_naive_integral((trace, scenario) in trace_and_scenario()) {
        let grid = match Grid::new(&trace, &scenario) {
            Ok(g) => g,
            Err(_) => return Ok(()), // shorter than a tick
        };
        let naive = naive_demand(&trace, scenario.tick_s);
        prop_assert_eq!(grid.len(), naive.len());
        for (k, (&fast, &slow)) in grid.demand.iter().zip(&naive).enumerate() {
            prop_assert!((fast - slow).abs() <= 1e-9 * slow.abs().max(1.0), "tick {}: {} vs {}", k, fast, slow);
        }
    }

    #[test]
    fn the_oracle_is_never_under_provisioned((trace, scenario) in trace_and_scenario()) {
        let Ok(grid) = Grid::new(&trace, &scenario) else { return Ok(()) };
        let run = run_reference(&grid, &scenario, Reference::Oracle, &mut |_, _| {});
        for (k, row) in run.rows.iter().enumerate() {
            prop_assert!(row.ready >= row.required, "tick {}: {:?}", k, row);
        }
        // And it never pays for more than it will need within its lead time.
        let desired = oracle_desired(&grid, scenario.lead_ticks());
        for (row, &d) in run.rows.iter().zip(&desired) {
            prop_assert_eq!(row.allocated, d);
        }
    }

    #[test]
    fn replica_counts_are_consistent_for_any_schedule(
        desired in prop::collection::vec(0u32..50, 1..200),
        startup_s in 0.0..400.0f64,
    ) {
        let scenario = Scenario { startup_s, ..Scenario::new(1.0) };
        let grid = Grid::from_demand(0.0, &scenario, vec![1.0; desired.len()]).unwrap();
        let run = simulate(&grid, &scenario, "s", desired[0], &mut Schedule(desired.clone()), &mut |_, _| {});
        let lead = scenario.lead_ticks();
        for (k, row) in run.rows.iter().enumerate() {
            // The allocation always follows the decision at once; readiness never exceeds it.
            prop_assert_eq!(row.allocated, desired[k]);
            prop_assert!(row.ready <= row.allocated);
            // Reductions remove the newest replicas first, so the ready ones at k are
            // exactly those that stayed allocated since tick k − L (or since tick 0, whose
            // replicas start ready).
            let since = k.saturating_sub(lead);
            let survivors = desired[since..=k].iter().copied().min().unwrap();
            prop_assert_eq!(row.ready, survivors, "tick {}", k);
        }
    }

    #[test]
    fn hpa_and_keda_stay_in_bounds_and_within_the_rate_limit((trace, scenario) in trace_and_scenario()) {
        let Ok(grid) = Grid::new(&trace, &scenario) else { return Ok(()) };
        for which in [Reference::Hpa, Reference::Keda] {
            let run = run_reference(&grid, &scenario, which, &mut |_, _| {});
            for pair in run.rows.windows(2) {
                let (prev, row) = (pair[0].desired, pair[1].desired);
                prop_assert!(row >= 1, "{:?}: min 1", which);
                // One sync per tick: a 15 s period never reaches back to the previous tick
                // when the tick is at least 15 s, else several ticks share a period.
                if scenario.tick_s >= 15.0 {
                    prop_assert!(row <= (prev + 4).max(prev * 2), "{:?}: {} → {}", which, prev, row);
                }
            }
        }
    }

    #[test]
    fn controllers_never_look_ahead((trace, scenario) in trace_and_scenario(), cut in 0.0..1.0f64) {
        let Ok(grid) = Grid::new(&trace, &scenario) else { return Ok(()) };
        let k = ((grid.len() - 1) as f64 * cut) as usize;
        let short = grid.truncated(k + 1);
        for which in [Reference::Hpa, Reference::Keda] {
            let full = run_reference(&grid, &scenario, which, &mut |_, _| {});
            let part = run_reference(&short, &scenario, which, &mut |_, _| {});
            prop_assert_eq!(&part.rows[..], &full.rows[..=k], "{:?}", which);
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_run((trace, scenario) in trace_and_scenario()) {
        let Ok(grid) = Grid::new(&trace, &scenario) else { return Ok(()) };
        for which in Reference::ALL {
            let a = run_reference(&grid, &scenario, which, &mut |_, _| {});
            let b = run_reference(&grid, &scenario, which, &mut |_, _| {});
            prop_assert_eq!(a, b);
        }
    }
}
