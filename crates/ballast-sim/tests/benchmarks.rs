//! `docs/benchmarks.md` against the code: every row of its table is computed again with the
//! acceptance scenario (capacity = the trace's mean rate / 10, startup 120 s, tick 60 s).
//!
//! - Reference rows (oracle, HPA, KEDA) must equal the recorded figures, to the digits
//!   printed: they are the yardstick, fixed by `BACKTEST.md`.
//! - Policy rows must be no worse than recorded (within the digits printed), figure by
//!   figure, so that a change to the core or the model cannot make them silently worse.
//! - A tuned policy row (one that names a setting) must cost less than the HPA and leave no
//!   more demand unserved, on every trace: the acceptance of `ballast tune`.
//! - The shipped `predictive.yaml` must cost at most 1.10 × the oracle with τ_U at most
//!   0.5 % on the Wikipedia, Azure and UK ISP traces.
//!
//! The table is read from the document itself, so the two cannot drift apart.

use std::collections::BTreeMap;

use ballast_core::{Format, Policy, load_policies};
use ballast_sim::policy::PolicyController;
use ballast_sim::tune::{Figure, Knob, evaluate, meets};
use ballast_sim::{
    Grid, Reference, Run, Scenario, Summary, Trace, default_initial, run_reference, simulate,
};

const DOC: &str = include_str!("../../../docs/benchmarks.md");
const START: &str = "<!-- benchmarks-table:start -->";
const END: &str = "<!-- benchmarks-table:end -->";

/// The columns after `trace` and `controller`, in order.
const COLUMNS: [&str; 7] = [
    "cost",
    "×oracle",
    "unserved %",
    "τ_U %",
    "θ_U %",
    "θ_O %",
    "υ %",
];

/// A recorded number and the half unit of its last printed digit.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    value: f64,
    tolerance: f64,
}

impl Recorded {
    fn parse(text: &str) -> Recorded {
        let text = text.trim();
        let value: f64 = text
            .parse()
            .unwrap_or_else(|_| panic!("`{text}` in docs/benchmarks.md is not a number"));
        let decimals = text.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        Recorded {
            value,
            tolerance: 0.5 * 10f64.powi(-decimals) + 1e-9 * value.abs(),
        }
    }
}

#[derive(Debug, Clone)]
enum Controller {
    Reference(Reference),
    /// A policy file of `examples/policies/`, with a knob set or as written.
    Policy {
        file: String,
        setting: Option<(Knob, f64)>,
    },
}

#[derive(Debug, Clone)]
struct Row {
    controller: Controller,
    label: String,
    figures: [Recorded; 7],
}

fn controller(cell: &str) -> Controller {
    let cell = cell.trim();
    if let Some(r) = Reference::ALL
        .into_iter()
        .find(|r| r.name().eq_ignore_ascii_case(cell))
    {
        return Controller::Reference(r);
    }
    // `` `web.yaml`, target 72.16 `` or `` `predictive.yaml` ``.
    let rest = cell
        .strip_prefix('`')
        .unwrap_or_else(|| panic!("controller `{cell}`: a reference or a `policy file`"));
    let (file, rest) = rest.split_once('`').expect("a closing backtick");
    let rest = rest.trim_start_matches(',').trim();
    let setting = (!rest.is_empty()).then(|| {
        let (knob, value) = rest
            .split_once(' ')
            .unwrap_or_else(|| panic!("setting `{rest}`: write it as `knob value`"));
        let knob = Knob::by_name(knob).unwrap_or_else(|| panic!("unknown knob `{knob}`"));
        (knob, value.trim().parse::<f64>().expect("a setting value"))
    });
    Controller::Policy {
        file: file.to_owned(),
        setting,
    }
}

/// The table's rows by trace file, in the document's order.
fn table() -> BTreeMap<String, Vec<Row>> {
    let start = DOC.find(START).expect("the table's start marker") + START.len();
    let end = DOC.find(END).expect("the table's end marker");
    let mut rows: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut trace = String::new();
    let mut header_seen = false;
    for line in DOC[start..end].lines().map(str::trim) {
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !header_seen {
            assert_eq!(cells[2..], COLUMNS, "the table's columns");
            header_seen = true;
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        assert_eq!(cells.len(), 2 + COLUMNS.len(), "row `{line}`");
        if !cells[0].is_empty() {
            trace = cells[0].trim_matches('`').to_owned();
        }
        let figures = std::array::from_fn(|i| Recorded::parse(cells[2 + i]));
        rows.entry(trace.clone()).or_default().push(Row {
            controller: controller(cells[1]),
            label: cells[1].to_owned(),
            figures,
        });
    }
    rows
}

fn policy(file: &str) -> Policy {
    let path = format!(
        "{}/../../examples/policies/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    load_policies(&text, Format::from_file_name(file))
        .expect("a valid policy")
        .remove(0)
}

fn figures(s: &Summary, oracle: f64) -> [f64; 7] {
    [
        s.cost,
        s.cost / oracle,
        s.unserved,
        s.tau_u,
        s.theta_u,
        s.theta_o,
        s.instability,
    ]
}

/// The traces on which the shipped predictive policy must cost at most 1.10 × the oracle
/// with τ_U at most 0.5 %.
const PREDICTIVE_ACCEPTANCE: [&str; 3] = [
    "wikipedia_en_requests_per_hour_2016-01.csv",
    "azure_vm2019_total_cpu_5min.csv",
    "isp_uk_academic_traffic_5min.csv",
];

/// Computes every row of `file` again and compares it with the document.
fn check(file: &str) {
    let trace_file = file;
    let rows = table()
        .remove(file)
        .unwrap_or_else(|| panic!("docs/benchmarks.md has no rows for {file}"));
    let path = format!(
        "{}/../../examples/traces/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let trace = Trace::from_path(std::path::Path::new(&path)).expect("shared trace");
    let scenario = Scenario::new(trace.mean_rate() / 10.0);
    let grid = Grid::new(&trace, &scenario).expect("grid");
    let reference = |r| run_reference(&grid, &scenario, r, &mut |_, _| {}).summary;
    let (oracle, hpa) = (reference(Reference::Oracle), reference(Reference::Hpa));

    let mut problems = Vec::new();
    for row in &rows {
        let (summary, is_reference) = match &row.controller {
            Controller::Reference(Reference::Oracle) => (oracle, true),
            Controller::Reference(Reference::Hpa) => (hpa, true),
            Controller::Reference(r) => (reference(*r), true),
            Controller::Policy { file, setting } => {
                let p = policy(file);
                let run: Run = match setting {
                    Some((knob, value)) => {
                        evaluate(&p, *knob, *value, &grid, &scenario).expect("backtests")
                    }
                    None => {
                        let mut c = PolicyController::new(&p, scenario.price).expect("binds");
                        let initial = default_initial(&grid, &scenario);
                        simulate(&grid, &scenario, &p.name, initial, &mut c, &mut |_, _| {})
                    }
                };
                // "No more unserved" as `ballast tune` judges it: equal up to float noise.
                let no_more_unserved = meets(&run.summary, &[(Figure::Unserved, hpa.unserved)]);
                if setting.is_some() && !(run.summary.cost < hpa.cost && no_more_unserved) {
                    problems.push(format!(
                        "{}: costs {:.2} with {:.4} % unserved; the HPA {:.2} with {:.4} %",
                        row.label, run.summary.cost, run.summary.unserved, hpa.cost, hpa.unserved
                    ));
                }
                if file == "predictive.yaml" && PREDICTIVE_ACCEPTANCE.contains(&trace_file) {
                    let ratio = run.summary.cost / oracle.cost;
                    if ratio > 1.10 || run.summary.tau_u > 0.5 {
                        problems.push(format!(
                            "{}: {ratio:.3} × the oracle's cost with τ_U {:.2} %; at most 1.10 × and 0.5 % wanted",
                            row.label, run.summary.tau_u
                        ));
                    }
                }
                (run.summary, false)
            }
        };
        let actual = figures(&summary, oracle.cost);
        for ((column, recorded), value) in COLUMNS.iter().zip(&row.figures).zip(actual) {
            let off = value - recorded.value;
            let bad = if is_reference {
                off.abs() > recorded.tolerance
            } else {
                off > recorded.tolerance
            };
            if bad {
                problems.push(format!(
                    "{}: {column} is {value}, recorded {}",
                    row.label, recorded.value
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{file} against docs/benchmarks.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_table_covers_every_shared_trace_with_each_reference_and_a_tuned_policy() {
    let table = table();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/traces");
    let mut traces: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    traces.sort();
    assert_eq!(table.keys().cloned().collect::<Vec<_>>(), traces);
    for (trace, rows) in &table {
        for r in Reference::ALL {
            assert!(
                rows.iter()
                    .any(|row| matches!(row.controller, Controller::Reference(x) if x == r)),
                "{trace}: no {} row",
                r.name()
            );
        }
        assert!(
            rows.iter().any(|row| matches!(
                row.controller,
                Controller::Policy {
                    setting: Some(_),
                    ..
                }
            )),
            "{trace}: no tuned policy row"
        );
    }
}

#[test]
fn benchmarks_hold_on_the_wikipedia_trace() {
    check("wikipedia_en_requests_per_hour_2016-01.csv");
}

#[test]
fn benchmarks_hold_on_the_aws_elb_trace() {
    check("aws_elb_request_count_5min.csv");
}

#[test]
fn benchmarks_hold_on_the_azure_trace() {
    check("azure_vm2019_total_cpu_5min.csv");
}

#[test]
fn benchmarks_hold_on_the_isp_trace() {
    check("isp_uk_academic_traffic_5min.csv");
}

#[test]
fn benchmarks_hold_on_the_nasa_trace() {
    check("nasa_http_requests_per_min.csv");
}

#[test]
fn benchmarks_hold_on_the_worldcup_trace() {
    check("worldcup98_requests_per_min.csv");
}
