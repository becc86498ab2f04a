//! The reference controllers on the real traces kept in the repository
//! (`examples/traces/`), with `capacity = mean rate / 10` as in `BACKTEST.md`'s acceptance
//! context.

use ballast_sim::{
    Grid, Reference, Run, Scenario, Trace, read_csv, run_reference, summarize, write_csv,
};

macro_rules! repo_trace {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/traces/", $name)
    };
}

const WIKIPEDIA: &str = repo_trace!("wikipedia_en_requests_per_hour_2016-01.csv");
const AWS_ELB: &str = repo_trace!("aws_elb_request_count_5min.csv");
const AZURE: &str = repo_trace!("azure_vm2019_total_cpu_5min.csv");
const ISP: &str = repo_trace!("isp_uk_academic_traffic_5min.csv");
const NASA: &str = repo_trace!("nasa_http_requests_per_min.csv");
const WORLDCUP: &str = repo_trace!("worldcup98_requests_per_min.csv");
const ALL_TRACES: [&str; 6] = [WIKIPEDIA, AWS_ELB, AZURE, ISP, NASA, WORLDCUP];

/// The trace, and the default scenario with a capacity of a tenth of its mean rate
/// (`Σ value / (rows · median step)`), so that it needs about ten replicas on average.
fn load(path: &str) -> (Grid, Scenario) {
    let trace = Trace::from_path(std::path::Path::new(path)).expect("repository trace");
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    let grid = Grid::new(&trace, &scenario).expect("grid");
    (grid, scenario)
}

fn run_all(grid: &Grid, scenario: &Scenario) -> Vec<Run> {
    Reference::ALL
        .iter()
        .map(|&r| run_reference(grid, scenario, r, &mut |_, _| {}))
        .collect()
}

/// [`figures`] of all references on the trace at `path`.
fn figures_on(path: &str) -> String {
    let (grid, scenario) = load(path);
    figures(&run_all(&grid, &scenario))
}

fn figures(runs: &[Run]) -> String {
    let oracle = runs[0].summary.cost;
    runs.iter()
        .map(|r| {
            let s = r.summary;
            format!(
                "{:<6} cost {:.2} ratio {:.3} θU {:.2} θO {:.2} τU {:.2} τO {:.2} υ {:.2} unserved {:.4} actions {}\n",
                r.name,
                s.cost,
                s.cost / oracle,
                s.theta_u,
                s.theta_o,
                s.tau_u,
                s.tau_o,
                s.instability,
                s.unserved,
                s.actions
            )
        })
        .collect()
}

#[test]
fn references_on_wikipedia_cost_what_backtest_md_leads_us_to_expect() {
    let (grid, scenario) = load(WIKIPEDIA);
    assert_eq!(grid.len(), 744 * 60, "31 days of minute ticks");
    let runs = run_all(&grid, &scenario);
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["oracle", "hpa", "keda"]);

    let oracle = runs[0].summary;
    assert_eq!(oracle.unserved, 0.0);
    assert_eq!((oracle.theta_u, oracle.tau_u), (0.0, 0.0));
    // The HPA at a 70 % target with a 300 s scale-down window pays roughly 1/0.7 of the
    // clairvoyant cost: the acceptance range is 1.3–1.45.
    let hpa_ratio = runs[1].summary.cost / oracle.cost;
    let keda_ratio = runs[2].summary.cost / oracle.cost;
    assert!((1.30..=1.45).contains(&hpa_ratio), "HPA/oracle {hpa_ratio}");
    assert!(
        (1.30..=1.45).contains(&keda_ratio),
        "KEDA/oracle {keda_ratio}"
    );

    expect_test::expect![[r#"
        oracle cost 7810.97 ratio 1.000 θU 0.00 θO 0.00 τU 0.00 τO 0.00 υ 0.00 unserved 0.0000 actions 283
        hpa    cost 10823.43 ratio 1.386 θU 0.00 θO 38.81 τU 0.03 τO 99.95 υ 1.02 unserved 0.0040 actions 173
        keda   cost 10915.78 ratio 1.397 θU 0.00 θO 39.98 τU 0.01 τO 99.96 υ 1.04 unserved 0.0026 actions 183
    "#]]
    .assert_eq(&figures(&runs));
}

#[test]
fn references_on_the_aws_elb_trace_match_their_snapshot() {
    // A noisy trace with spikes: utilization saturates, so the HPA looks cheap only because
    // it leaves a third of the load unserved.
    expect_test::expect![[r#"
        oracle cost 4093.68 ratio 1.000 θU 0.00 θO 0.00 τU 0.00 τO 0.00 υ 0.00 unserved 0.0000 actions 3753
        hpa    cost 4177.45 ratio 1.020 θU 22.59 θO 141.31 τU 42.32 τO 52.01 υ 35.64 unserved 35.3607 actions 5128
        keda   cost 6380.78 ratio 1.559 θU 13.56 θO 225.11 τU 26.33 τO 69.27 υ 30.64 unserved 21.3839 actions 5151
    "#]]
    .assert_eq(&figures_on(AWS_ELB));
}

#[test]
fn references_on_the_azure_trace_match_their_snapshot() {
    expect_test::expect![[r#"
        oracle cost 7584.53 ratio 1.000 θU 0.00 θO 0.00 τU 0.00 τO 0.00 υ 0.00 unserved 0.0000 actions 1141
        hpa    cost 10468.55 ratio 1.380 θU 0.00 θO 38.47 τU 0.00 τO 99.99 υ 2.78 unserved 0.0000 actions 74
        keda   cost 10516.57 ratio 1.387 θU 0.00 θO 39.08 τU 0.00 τO 99.99 υ 2.79 unserved 0.0000 actions 82
    "#]]
    .assert_eq(&figures_on(AZURE));
}

#[test]
fn references_on_the_isp_trace_match_their_snapshot() {
    expect_test::expect![[r#"
        oracle cost 17459.35 ratio 1.000 θU 0.00 θO 0.00 τU 0.00 τO 0.00 υ 0.00 unserved 0.0000 actions 3328
        hpa    cost 24115.48 ratio 1.381 θU 0.00 θO 37.74 τU 0.00 τO 99.95 υ 4.33 unserved 0.0001 actions 1138
        keda   cost 24277.80 ratio 1.391 θU 0.00 θO 38.65 τU 0.00 τO 99.97 υ 4.37 unserved 0.0000 actions 1195
    "#]]
    .assert_eq(&figures_on(ISP));
}

#[test]
fn references_on_the_nasa_trace_match_their_snapshot() {
    expect_test::expect![[r#"
        oracle cost 17628.27 ratio 1.000 θU 0.00 θO 18.66 τU 0.00 τO 37.01 υ 40.27 unserved 0.0000 actions 35806
        hpa    cost 26152.12 ratio 1.484 θU 1.10 θO 107.73 τU 4.58 τO 92.56 υ 76.05 unserved 1.2000 actions 16425
        keda   cost 26935.17 ratio 1.528 θU 0.82 θO 113.00 τU 3.81 τO 93.54 υ 75.19 unserved 0.8611 actions 19042
    "#]]
    .assert_eq(&figures_on(NASA));
}

#[test]
fn references_on_the_worldcup_trace_match_their_snapshot() {
    expect_test::expect![[r#"
        oracle cost 22572.15 ratio 1.000 θU 0.00 θO 2.61 τU 0.00 τO 11.23 υ 15.98 unserved 0.0000 actions 18126
        hpa    cost 31424.35 ratio 1.392 θU 0.06 θO 41.58 τU 0.13 τO 82.04 υ 31.93 unserved 0.0394 actions 4044
        keda   cost 31703.33 ratio 1.405 θU 0.05 θO 43.06 τU 0.10 τO 82.88 υ 32.05 unserved 0.0321 actions 4341
    "#]]
    .assert_eq(&figures_on(WORLDCUP));
}

#[test]
fn the_oracle_is_never_under_provisioned_on_the_repository_traces() {
    for path in ALL_TRACES {
        let (grid, scenario) = load(path);
        let run = run_reference(&grid, &scenario, Reference::Oracle, &mut |_, _| {});
        for (k, row) in run.rows.iter().enumerate() {
            assert!(row.ready >= row.required, "{path} tick {k}: {row:?}");
        }
        assert_eq!(run.summary.unserved, 0.0, "{path}");
    }
}

#[test]
fn a_timeline_read_back_from_csv_gives_the_same_summary() {
    let (grid, scenario) = load(WIKIPEDIA);
    let run = run_reference(&grid, &scenario, Reference::Hpa, &mut |_, _| {});
    let mut csv = Vec::new();
    write_csv(&run.rows, &mut csv).expect("write to memory");
    let rows = read_csv(csv.as_slice()).expect("read back");
    assert_eq!(rows, run.rows);
    let again = summarize(&rows, scenario.tick_s, scenario.price, scenario.capacity);
    assert_eq!(again, run.summary);
}

#[test]
fn reference_autoscalers_never_look_ahead() {
    // Truncating the grid after tick k must not change desired_0..=k.
    let (grid, scenario) = load(WIKIPEDIA);
    for which in [Reference::Hpa, Reference::Keda] {
        let full = run_reference(&grid, &scenario, which, &mut |_, _| {});
        for k in [0, 1, 2, 59, 600, 9_999, 30_000] {
            let short = run_reference(&grid.truncated(k + 1), &scenario, which, &mut |_, _| {});
            assert_eq!(short.rows[..], full.rows[..=k], "{which:?} up to tick {k}");
        }
    }
}

#[test]
fn progress_reaches_the_total() {
    let (grid, scenario) = load(WIKIPEDIA);
    let mut last = (0, 0);
    let mut calls = 0;
    run_reference(&grid, &scenario, Reference::Keda, &mut |done, total| {
        assert!(done >= last.0, "progress goes forward");
        last = (done, total);
        calls += 1;
    });
    assert_eq!(last, (grid.len(), grid.len()));
    // Every 4096 ticks and at the end: cheap enough not to matter.
    assert_eq!(calls, grid.len() / 4096 + 1);
}
