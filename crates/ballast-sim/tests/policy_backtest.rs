//! Policies in a backtest: bound to the simulated metrics, and never looking ahead.

use ballast_core::{Format, Policy, load_policies};
use ballast_sim::policy::PolicyController;
use ballast_sim::{Grid, Run, Scenario, Trace, default_initial, simulate};

fn policy(file: &str) -> Policy {
    let path = format!(
        "{}/../../examples/policies/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("shipped example");
    load_policies(&text, Format::Yaml).expect("valid").remove(0)
}

fn trace(file: &str) -> Trace {
    let path = format!(
        "{}/../../examples/traces/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    Trace::from_path(std::path::Path::new(&path)).expect("shipped trace")
}

fn run(trace: &Trace, scenario: &Scenario, policy: &Policy) -> Run {
    let grid = Grid::new(trace, scenario).expect("grid");
    let mut c = PolicyController::new(policy, scenario.price).expect("binds");
    simulate(
        &grid,
        scenario,
        &policy.name,
        default_initial(&grid, scenario),
        &mut c,
        &mut |_, _| {},
    )
}

#[test]
fn a_policy_backtest_never_looks_ahead() {
    let trace = trace("aws_elb_request_count_5min.csv");
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    for file in ["web.yaml", "rules.yaml"] {
        let policy = policy(file);
        let full = run(&trace, &scenario, &policy);
        for cut_row in [3, 500, 2_000, 4_000] {
            // Change every row from `cut_row` on: a tenfold surge and then silence.
            let mut changed = trace.clone();
            for (i, v) in changed.values.iter_mut().enumerate().skip(cut_row) {
                *v = if i % 2 == 0 { *v * 10.0 } else { 0.0 };
            }
            let other = run(&changed, &scenario, &policy);
            // Tick k decides from ticks before k, so ticks ending at or before the first
            // changed row must match; the first tick that overlaps it may differ only in
            // its demand columns, not in its decision.
            let t_cut = trace.timestamps[cut_row] - trace.timestamps[0];
            let k = (t_cut / scenario.tick_s).floor() as usize;
            assert!(k > 0 && k < full.rows.len());
            let desired = |r: &Run| r.rows[..=k].iter().map(|x| x.desired).collect::<Vec<_>>();
            assert_eq!(
                desired(&full),
                desired(&other),
                "{file}, decisions up to tick {k}"
            );
            assert_eq!(
                full.rows[..k],
                other.rows[..k],
                "{file}, rows before tick {k}"
            );
            assert_ne!(full.rows, other.rows, "the change must matter later on");
        }
    }
}

#[test]
fn a_policy_backtest_is_deterministic() {
    let trace = trace("wikipedia_en_requests_per_hour_2016-01.csv");
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    let policy = policy("web.yaml");
    assert_eq!(
        run(&trace, &scenario, &policy),
        run(&trace, &scenario, &policy)
    );
}

#[test]
fn a_policy_keeps_its_bounds_and_budget_in_a_backtest() {
    let trace = trace("worldcup98_requests_per_min.csv");
    let scenario = Scenario {
        price: 0.5,
        ..Scenario::new(trace.mean_rate() / 10.0)
    };
    let doc = "
name: capped
min_replicas: 2
max_replicas: 30
price_per_replica_hour: 0.5
max_hourly_cost: 10
target_tracking: {metric: utilization, target: 70}
scale_up_cooldown: 0s
";
    let policy = load_policies(doc, Format::Yaml).unwrap().remove(0);
    let grid = Grid::new(&trace, &scenario).unwrap();
    let mut c = PolicyController::new(&policy, scenario.price).unwrap();
    let out = simulate(&grid, &scenario, "capped", 5, &mut c, &mut |_, _| {});
    // 10 per hour at 0.5 per replica is 20 replicas, below max_replicas 30.
    assert!(out.rows[1..].iter().all(|r| (2..=20).contains(&r.desired)));
    assert!(
        out.rows.iter().any(|r| r.desired == 20),
        "the peak reaches the budget"
    );
    assert!(
        out.rows.iter().any(|r| r.required > 20),
        "and the budget binds"
    );
}
