//! Tuning by backtest: reading SLOs, the knobs each kind of policy has, the search, and
//! tuning the shipped `web.yaml` on the shared traces (`examples/traces/`) with the
//! acceptance scenario (capacity = mean rate / 10, startup 120 s, tick 60 s) until it costs
//! less than the HPA and leaves no more demand unserved.
//!
//! A backtest of a big trace takes seconds in a debug build, so the all-traces check runs a
//! coarse search here on the smaller traces and one big one (`isp`); `benchmarks.rs` checks
//! the settings `docs/benchmarks.md` records for every trace.

use ballast_core::{Format, Policy, load_policies};
use ballast_sim::tune::{
    Bound, Figure, Knob, Objective, Search, Slo, SloError, TuneError, Tuning, evaluate, tune,
};
use ballast_sim::{Grid, Reference, Scenario, Trace};

fn policy(file: &str) -> Policy {
    let path = format!(
        "{}/../../examples/policies/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("shipped example");
    let format = Format::from_file_name(file);
    load_policies(&text, format).expect("valid").remove(0)
}

fn inline(yaml: &str) -> Policy {
    load_policies(yaml, Format::Yaml).expect("valid").remove(0)
}

fn trace(file: &str) -> Trace {
    let path = format!(
        "{}/../../examples/traces/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    Trace::from_path(std::path::Path::new(&path)).expect("shipped trace")
}

/// The acceptance scenario: capacity a tenth of the mean rate, default startup and tick.
fn scenario(trace: &Trace) -> (Grid, Scenario) {
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    (Grid::new(trace, &scenario).expect("grid"), scenario)
}

/// The first `rows` rows of a shipped trace, for quick searches.
fn head(file: &str, rows: usize) -> Trace {
    let t = trace(file);
    Trace::from_rows(t.timestamps.into_iter().zip(t.values).take(rows).collect()).unwrap()
}

fn slo(text: &str) -> Slo {
    text.parse().expect("a valid SLO")
}

fn run_tune(policy: &Policy, trace: &Trace, slo_text: &str, search: &Search) -> Tuning {
    let (grid, scenario) = scenario(trace);
    let knob = Knob::choose(policy, None).expect("a knob");
    tune(
        policy,
        knob,
        &grid,
        &scenario,
        &slo(slo_text),
        search,
        &mut |_| {},
    )
    .expect("tunes")
}

#[test]
fn an_slo_reads_percentages_references_and_symbols() {
    let parsed = slo(" unserved<=0.1% , tau_u <= 1");
    assert_eq!(
        parsed.objectives,
        [
            Objective {
                figure: Figure::Unserved,
                bound: Bound::Percent(0.1)
            },
            Objective {
                figure: Figure::TauU,
                bound: Bound::Percent(1.0)
            },
        ]
    );
    let parsed = slo("τ_U≤2 %,theta_u<=HPA,instability<=keda");
    assert_eq!(
        parsed.objectives,
        [
            Objective {
                figure: Figure::TauU,
                bound: Bound::Percent(2.0)
            },
            Objective {
                figure: Figure::ThetaU,
                bound: Bound::Reference(Reference::Hpa)
            },
            Objective {
                figure: Figure::Instability,
                bound: Bound::Reference(Reference::Keda)
            },
        ]
    );
    assert_eq!(parsed.to_string(), "τ_U ≤ 2%, θ_U ≤ hpa, υ ≤ keda");
}

#[test]
fn slo_errors_name_the_part_that_is_wrong() {
    let err = |text: &str| text.parse::<Slo>().unwrap_err();
    assert_eq!(err(""), SloError::Empty);
    assert_eq!(err("  "), SloError::Empty);
    assert_eq!(
        err("unserved<=0.1%,").to_string(),
        "objective 2 of the SLO is empty (a stray comma?)"
    );
    assert_eq!(
        err("unserved<=0.1%,tau_x<=1%").to_string(),
        "`tau_x<=1%`: unknown figure `tau_x`; an SLO can bound unserved, tau_u, theta_u, instability"
    );
    assert_eq!(
        err("unserved 0.1%").to_string(),
        "`unserved 0.1%`: an objective is `figure<=bound`, such as `unserved<=0.1%`"
    );
    assert_eq!(
        err("tau_u>=1%").to_string(),
        "`tau_u>=1%`: `>=` is not supported; an SLO bounds a figure from above, with `<=`"
    );
    assert!(
        matches!(err("tau_u<1%"), SloError::WrongComparison { ref operator, .. } if operator == "<")
    );
    assert_eq!(
        err("unserved<=lots").to_string(),
        "`unserved<=lots`: bound `lots` is neither a percentage (such as `0.1%`) nor a reference autoscaler (`hpa`, `keda`, `oracle`)"
    );
    assert_eq!(
        err("unserved<=-1%").to_string(),
        "`unserved<=-1%`: the bound must be a finite percentage of at least 0"
    );
    assert!(matches!(err("unserved<=inf"), SloError::OutOfRange { .. }));
    assert_eq!(
        err("unserved<=1%,Unserved<=2%").to_string(),
        "`Unserved<=2%`: unserved is already bounded earlier in the SLO"
    );
}

#[test]
fn target_tracking_on_utilization_searches_its_target() {
    let web = policy("web.yaml");
    assert_eq!(Knob::available(&web), [Knob::Target]);
    let knob = Knob::choose(&web, None).unwrap();
    assert_eq!(knob, Knob::Target);
    assert_eq!(knob.field(&web), "target_tracking.target");
    assert_eq!(knob.current(&web), Some(70.0));
    // Above 100 / 1.1 ≈ 90.9, saturated utilization sits inside the tolerance.
    let s = Scenario::new(50.0);
    assert_eq!(knob.default_range(&web, &s), Some((40.0, 89.0)));
    assert_eq!(knob.headroom(&web, &s, 80.0), Some(1.25));
    let tuned = knob.tuned(&web, 78.5).unwrap();
    assert_eq!(tuned.target_tracking.unwrap().target, 78.5);
    assert_eq!(tuned.spec.target_tracking.unwrap().target, 78.5);
    // Everything else stays as written.
    assert_eq!(tuned.stabilization, web.stabilization);
    assert_eq!(tuned.name, web.name);
}

#[test]
fn target_tracking_on_a_load_searches_a_headroom_of_one_to_two_and_a_half() {
    let p = inline(
        "name: load\nmax_replicas: 50\ntarget_tracking:\n  metric: load_per_replica\n  target: 100\n",
    );
    let s = Scenario::new(200.0);
    assert_eq!(Knob::Target.default_range(&p, &s), Some((80.0, 200.0)));
    assert_eq!(Knob::Target.headroom(&p, &s, 160.0), Some(1.25));
}

#[test]
fn rule_thresholds_move_together_and_keep_the_band() {
    let rules = policy("rules.yaml");
    assert_eq!(Knob::available(&rules), [Knob::Thresholds]);
    let knob = Knob::choose(&rules, None).unwrap();
    assert_eq!(knob.field(&rules), "scale_up_rules[0].threshold");
    assert_eq!(knob.current(&rules), Some(80.0));
    assert_eq!(
        knob.default_range(&rules, &Scenario::new(1.0)),
        Some((40.0, 99.0))
    );
    // Up at 60 instead of 80: down at 30 instead of 40.
    let tuned = knob.tuned(&rules, 60.0).unwrap();
    assert_eq!(tuned.scale_up_rules[0].threshold, 60.0);
    assert_eq!(tuned.scale_down_rules[0].threshold, 30.0);
    assert_eq!(
        tuned.scale_up_rules[0].duration,
        rules.scale_up_rules[0].duration
    );

    // Without scale-up rules, the first scale-down rule is the setting.
    let down_only = inline(
        "name: down\nmax_replicas: 9\nscale_down_rules:\n  - {metric: utilization, operator: lt, threshold: 30, duration: 5m, scale_by: -1}\n",
    );
    assert_eq!(
        Knob::Thresholds.field(&down_only),
        "scale_down_rules[0].threshold"
    );
    let tuned = Knob::Thresholds.tuned(&down_only, 20.0).unwrap();
    assert_eq!(tuned.scale_down_rules[0].threshold, 20.0);
}

#[test]
fn a_predictive_policy_searches_its_confidence_first() {
    let p = inline(
        "name: ahead\nmax_replicas: 50\ntarget_tracking:\n  metric: load_per_replica\n  target: 100\npredictive:\n  metric: demand\n  target: 100\n",
    );
    assert_eq!(Knob::available(&p), [Knob::Confidence, Knob::Target]);
    let knob = Knob::choose(&p, None).unwrap();
    assert_eq!(knob, Knob::Confidence);
    assert_eq!(knob.field(&p), "predictive.confidence");
    assert_eq!(knob.current(&p), Some(0.95));
    assert_eq!(
        knob.default_range(&p, &Scenario::new(10.0)),
        Some((0.5, 0.99))
    );
    assert_eq!(knob.headroom(&p, &Scenario::new(10.0), 0.9), None);
    let tuned = knob.tuned(&p, 0.8).unwrap();
    assert_eq!(tuned.predictive.unwrap().confidence, 0.8);
    assert_eq!(tuned.target_tracking, p.target_tracking);
    let err = knob.tuned(&p, 1.5).unwrap_err().to_string();
    assert!(
        err.starts_with("predictive.confidence = 1.5 makes the policy invalid: "),
        "{err}"
    );
}

#[test]
fn a_policy_without_a_knob_or_with_another_one_is_refused() {
    let fixed = inline(
        "name: fixed\nmax_replicas: 5\nschedules:\n  - {cron_expression: '0 8 * * *', desired_replicas: 3}\n",
    );
    let err = Knob::choose(&fixed, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy `fixed` has nothing to tune: it has no `predictive` block, no `target_tracking` and no scaling rules"
    );
    let err = Knob::choose(&policy("web.yaml"), Some(Knob::Thresholds)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy `web` has no `thresholds` setting to tune; it has: target"
    );
    assert_eq!(
        "speed".parse::<Knob>().unwrap_err(),
        "unknown knob `speed`; the knobs are confidence, target, thresholds"
    );
}

#[test]
fn bad_searches_and_unsimulated_metrics_are_refused() {
    let t = head("wikipedia_en_requests_per_hour_2016-01.csv", 24);
    let (grid, s) = scenario(&t);
    let web = policy("web.yaml");
    let go = |p: &Policy, search: Search| {
        tune(
            p,
            Knob::choose(p, None).unwrap(),
            &grid,
            &s,
            &slo("unserved<=1%"),
            &search,
            &mut |_| {},
        )
    };
    let err = go(
        &web,
        Search {
            range: Some((80.0, 60.0)),
            ..Search::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, TuneError::BadRange { .. }), "{err}");
    let err = go(
        &web,
        Search {
            points: 1,
            ..Search::default()
        },
    )
    .unwrap_err();
    assert_eq!(err, TuneError::TooFewPoints(1));
    let err = go(&policy("cdc-worker.json"), Search::default()).unwrap_err();
    assert!(matches!(err, TuneError::Bind(_)), "{err}");
    // A target the policy's validation refuses names the field.
    let err = Knob::Target.tuned(&web, -5.0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("target_tracking.target = -5 makes the policy invalid: "),
        "{err}"
    );
}

#[test]
fn the_search_keeps_every_trial_and_picks_the_cheapest_that_meets_the_slo() {
    // Four days of Wikipedia: 5,760 ticks.
    let t = head("wikipedia_en_requests_per_hour_2016-01.csv", 96);
    let web = policy("web.yaml");
    let search = Search {
        points: 5,
        refine: 3,
        range: None,
    };
    let tuning = run_tune(&web, &t, "unserved<=0.01%,tau_u<=0.1%", &search);
    assert_eq!(tuning.field, "target_tracking.target");
    assert_eq!((tuning.original, tuning.range), (70.0, (40.0, 89.0)));
    assert_eq!(
        tuning.limits,
        [(Figure::Unserved, 0.01), (Figure::TauU, 0.1)]
    );

    // The first pass: five evenly spaced settings, and the one as written.
    let first: Vec<f64> = tuning
        .trials
        .iter()
        .filter(|t| !t.refined)
        .map(|t| t.value)
        .collect();
    assert_eq!(first, [40.0, 52.25, 64.5, 76.75, 89.0, 70.0]);
    assert!(tuning.trials.len() <= 9);

    // Each trial's verdict matches its figures, and its figures are a backtest's.
    let (grid, s) = scenario(&t);
    for trial in &tuning.trials {
        let expected = trial.summary.unserved <= 0.01 && trial.summary.tau_u <= 0.1;
        assert_eq!(trial.meets, expected, "{trial:?}");
        assert_eq!(trial.headroom, Some(100.0 / trial.value));
    }
    let best = tuning.best().expect("a winner");
    let again = evaluate(&web, Knob::Target, best.value, &grid, &s).unwrap();
    assert_eq!(again.summary, best.summary);
    let cheapest = tuning
        .trials
        .iter()
        .filter(|t| t.meets)
        .map(|t| t.summary.cost)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best.summary.cost, cheapest);

    // Bisection narrowed in on the boundary: the winner's nearest tried neighbour on its
    // cheaper side fails, and is closer than a step of the first pass.
    let sorted = tuning.by_setting();
    let i = sorted.iter().position(|t| t.value == best.value).unwrap();
    let above = sorted
        .get(i + 1)
        .expect("a cheaper setting above the winner");
    assert!(!above.meets && above.summary.cost < best.summary.cost);
    assert!(above.value - best.value < 12.25 / 2.0, "{sorted:?}");
    assert!(tuning.trials.iter().any(|t| t.refined));

    // The references are the ones of `reference.rs`.
    let names: Vec<Reference> = tuning.references.iter().map(|(r, _)| *r).collect();
    assert_eq!(names, Reference::ALL);
    assert_eq!(tuning.reference(Reference::Oracle).unwrap().unserved, 0.0);
}

#[test]
fn an_slo_nothing_meets_leaves_no_winner_and_stops_after_the_first_pass() {
    let t = head("aws_elb_request_count_5min.csv", 600);
    let tuning = run_tune(
        &policy("rules.yaml"),
        &t,
        "unserved<=0%",
        &Search {
            points: 3,
            refine: 4,
            range: Some((90.0, 99.0)),
        },
    );
    assert_eq!(tuning.knob, Knob::Thresholds);
    assert!(tuning.best().is_none());
    assert!(!tuning.best_at_range_edge());
    // Three points; the setting as written (80) is outside the range.
    let values: Vec<f64> = tuning.trials.iter().map(|t| t.value).collect();
    assert_eq!(values, [90.0, 94.5, 99.0]);
}

#[test]
fn rule_thresholds_tune_against_the_hpa() {
    let t = head("aws_elb_request_count_5min.csv", 600);
    let tuning = run_tune(
        &policy("rules.yaml"),
        &t,
        "unserved<=hpa",
        &Search {
            points: 4,
            refine: 2,
            range: None,
        },
    );
    let hpa = *tuning.reference(Reference::Hpa).unwrap();
    assert_eq!(tuning.limits, [(Figure::Unserved, hpa.unserved)]);
    let best = tuning.best().expect("a winner");
    assert!(best.summary.unserved <= hpa.unserved);
    assert!((40.0..=99.0).contains(&best.value));
}

/// Tunes `web.yaml` on a whole shared trace for no more unserved demand than the HPA, and
/// checks that the winner also costs less than the HPA.
fn beats_the_hpa(file: &str, search: Search) {
    let t = trace(file);
    let tuning = run_tune(&policy("web.yaml"), &t, "unserved<=hpa", &search);
    let hpa = *tuning.reference(Reference::Hpa).unwrap();
    let best = tuning
        .best()
        .unwrap_or_else(|| panic!("{file}: nothing meets the SLO: {:?}", tuning.trials));
    assert!(
        best.meets && best.summary.cost < hpa.cost,
        "{file}: target {} costs {} with {} % unserved; the HPA {} with {} %",
        best.value,
        best.summary.cost,
        best.summary.unserved,
        hpa.cost,
        hpa.unserved
    );
}

/// Five points over 40..89 and three bisection steps, besides the setting as written.
const COARSE: Search = Search {
    points: 5,
    refine: 3,
    range: None,
};

#[test]
fn tuning_beats_the_hpa_on_the_aws_elb_trace_with_the_default_search() {
    beats_the_hpa("aws_elb_request_count_5min.csv", Search::default());
}

#[test]
fn tuning_beats_the_hpa_on_the_wikipedia_trace() {
    beats_the_hpa("wikipedia_en_requests_per_hour_2016-01.csv", COARSE);
}

#[test]
fn tuning_beats_the_hpa_on_the_azure_trace() {
    beats_the_hpa("azure_vm2019_total_cpu_5min.csv", COARSE);
}

#[test]
fn tuning_beats_the_hpa_on_the_isp_trace() {
    beats_the_hpa("isp_uk_academic_traffic_5min.csv", COARSE);
}
