//! Runs the three reference controllers of `BACKTEST.md` on traces and prints their figures
//! and how long the simulation took, with `capacity = mean rate / 10` and the default
//! scenario otherwise.
//!
//! ```text
//! cargo run --release -p ballast-sim --example references -- examples/traces/*.csv
//! ```

use std::path::Path;
use std::time::Instant;

use ballast_sim::{Grid, Reference, Scenario, Trace, run_reference};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: references TRACE.csv...".into());
    }
    for path in paths {
        let trace = Trace::from_path(Path::new(&path))?;
        // Mean rate over the rows: Σ value / (rows · median step).
        let mean_rate =
            trace.values.iter().sum::<f64>() / (trace.len() as f64 * trace.median_step());
        let scenario = Scenario::new(mean_rate / 10.0);
        let grid = Grid::new(&trace, &scenario)?;

        let started = Instant::now();
        let runs: Vec<_> = Reference::ALL
            .iter()
            .map(|&r| run_reference(&grid, &scenario, r, &mut |_, _| {}))
            .collect();
        let elapsed = started.elapsed();

        let oracle_cost = runs[0].summary.cost;
        println!(
            "{path}: {} rows, {} ticks, capacity {:.4}, simulated in {:.1} ms",
            trace.len(),
            grid.len(),
            scenario.capacity,
            elapsed.as_secs_f64() * 1000.0
        );
        for run in &runs {
            let s = &run.summary;
            let under = run.rows.iter().filter(|r| r.ready < r.required).count();
            println!(
                "  {:<6} cost {:>12.2}  ratio {:.3}  θU {:>6.2}  θO {:>6.2}  τU {:>6.2}  τO {:>6.2}  υ {:>6.2}  unserved {:>6.3} %  actions {:>6}  under-ticks {}",
                run.name,
                s.cost,
                s.cost / oracle_cost,
                s.theta_u,
                s.theta_o,
                s.tau_u,
                s.tau_o,
                s.instability,
                s.unserved,
                s.actions,
                under
            );
        }
    }
    Ok(())
}
