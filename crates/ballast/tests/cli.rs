//! The `ballast` binary as a user runs it: `validate` and `backtest`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ballast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const FIVE_MISTAKES: &str = "\
name: checkout
min_replicas: 3
max_replicas: 2
scale_up_rules:
  - metric: http_requests_in_flight
    operator: above
    threshold: 100
    duration: five minutes
    scale_by: 2
schedules:
  - cron_expression: '0 8 * * 1-5'
    desired_replicas: 2
    timezone: Mars/Olympus_Mons
scale_to_zero: {enabled: true, idle_for: 10m}
";

#[test]
fn validate_reports_all_five_mistakes_with_file_and_path_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkout.yaml");
    std::fs::write(&file, FIVE_MISTAKES).unwrap();
    let out = ballast(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let f = file.display().to_string();
    for expected in [
        format!("{f}: min_replicas: min_replicas (3) is greater than max_replicas (2)"),
        format!("{f}: scale_up_rules[0].operator: unknown operator `above`"),
        format!("{f}: scale_up_rules[0].duration: `five minutes` is not a duration"),
        format!("{f}: schedules[0].timezone: unknown time zone `Mars/Olympus_Mons`"),
        format!("{f}: scale_to_zero.idle_for: unknown field `idle_for`; did you mean `idle`?"),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&expected)),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().count(),
        5,
        "exactly the five mistakes:\n{stdout}"
    );
    assert!(text(&out.stderr).contains("5 problems in 1 file"));
}

#[test]
fn validate_checks_the_executors_own_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pods.yaml");
    std::fs::write(
        &file,
        "name: pods\nmin_replicas: 1\nmax_replicas: 5\n\
         schedules: [{cron_expression: '0 8 * * *', desired_replicas: 2, timezone: UTC}]\n\
         target: {type: kubernetes, name: web, namespce: prod}\n",
    )
    .unwrap();
    let out = ballast(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}: target.namespce: unknown field",
            file.display()
        )),
        "{stdout}"
    );
    std::fs::write(
        &file,
        "name: pods\nmin_replicas: 1\nmax_replicas: 5\n\
         schedules: [{cron_expression: '0 8 * * *', desired_replicas: 2, timezone: UTC}]\n\
         target: {type: kubernets}\n",
    )
    .unwrap();
    let out = ballast(&["validate", file.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("target.type: unknown executor `kubernets`"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_accepts_the_shipped_examples() {
    let out = ballast(&["validate", "examples/policies"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("policies in"));
}

#[test]
fn validate_catches_a_name_used_in_two_files() {
    let dir = tempfile::tempdir().unwrap();
    let doc = "name: same\nmax_replicas: 3\nschedules: [{cron_expression: '0 8 * * *', desired_replicas: 2}]\n";
    std::fs::write(dir.path().join("a.yaml"), doc).unwrap();
    std::fs::write(dir.path().join("b.yaml"), doc).unwrap();
    let out = ballast(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("b.yaml: name: duplicate policy name `same` (also in"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_names_a_file_that_is_not_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, "{\"name\": ").unwrap();
    let out = ballast(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("broken.json: invalid JSON"),
        "{}",
        text(&out.stdout)
    );
}

/// Figures recomputed from a timeline CSV with nothing but the formulas of BACKTEST.md.
struct Recomputed {
    cost: f64,
    theta_u: f64,
    theta_o: f64,
    tau_u: f64,
    tau_o: f64,
    instability: f64,
    unserved: f64,
    actions: usize,
}

fn recompute(csv: &str, capacity: f64, tick: f64, price: f64) -> Recomputed {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp_s,demand,required,desired,ready,allocated")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|x| x.parse::<f64>().unwrap()).collect())
        .collect();
    let t = rows.len() as f64;
    let (r, d, desired, s, a) = (
        |row: &Vec<f64>| row[1],
        |row: &Vec<f64>| row[2],
        |row: &Vec<f64>| row[3],
        |row: &Vec<f64>| row[4],
        |row: &Vec<f64>| row[5],
    );
    for row in &rows {
        let req = if r(row) == 0.0 {
            0.0
        } else {
            (r(row) / capacity - 1e-9).ceil()
        };
        assert_eq!(d(row), req, "required is ceil(demand / capacity)");
    }
    let sgn = |x: f64| x.partial_cmp(&0.0).map_or(0.0, |o| o as i8 as f64);
    let mut instability = 0.0;
    for k in 1..rows.len() {
        let ds = sgn(s(&rows[k]) - s(&rows[k - 1]));
        let dd = sgn(d(&rows[k]) - d(&rows[k - 1]));
        instability += (ds - dd).abs().min(1.0);
    }
    let served_short: f64 = rows.iter().map(|x| (r(x) - s(x) * capacity).max(0.0)).sum();
    let total: f64 = rows.iter().map(r).sum();
    Recomputed {
        cost: rows.iter().map(a).sum::<f64>() * tick / 3600.0 * price,
        theta_u: 100.0 / t
            * rows
                .iter()
                .map(|x| (d(x) - s(x)).max(0.0) / d(x).max(1.0))
                .sum::<f64>(),
        theta_o: 100.0 / t
            * rows
                .iter()
                .map(|x| (s(x) - d(x)).max(0.0) / d(x).max(1.0))
                .sum::<f64>(),
        tau_u: 100.0 / t * rows.iter().filter(|x| d(x) > s(x)).count() as f64,
        tau_o: 100.0 / t * rows.iter().filter(|x| s(x) > d(x)).count() as f64,
        instability: 100.0 / (t - 1.0) * instability,
        unserved: 100.0 * served_short / total,
        actions: rows
            .windows(2)
            .filter(|w| desired(&w[1]) != desired(&w[0]))
            .count(),
    }
}

#[test]
fn the_printed_summary_matches_one_recomputed_from_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("timeline.csv");
    let out = ballast(&[
        "backtest",
        "--trace",
        "examples/traces/aws_elb_request_count_5min.csv",
        "--policy",
        "examples/policies/rules.yaml",
        "--capacity",
        "0.05",
        "--startup",
        "180",
        "--tick",
        "30",
        "--price",
        "0.25",
        "--out",
        out_csv.to_str().unwrap(),
        "--json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy = &json["runs"][0];
    assert_eq!(policy["controller"], "web-rules");
    let csv = std::fs::read_to_string(&out_csv).unwrap();
    let mine = recompute(&csv, 0.05, 30.0, 0.25);
    let close = |field: &str, value: f64| {
        let printed = policy[field].as_f64().unwrap();
        assert!(
            (printed - value).abs() <= 1e-9 * value.abs().max(1.0),
            "{field}: printed {printed}, recomputed {value}"
        );
    };
    close("cost", mine.cost);
    close("theta_u", mine.theta_u);
    close("theta_o", mine.theta_o);
    close("tau_u", mine.tau_u);
    close("tau_o", mine.tau_o);
    close("instability", mine.instability);
    close("unserved", mine.unserved);
    assert_eq!(policy["actions"].as_u64().unwrap() as usize, mine.actions);
    assert!(
        mine.unserved > 0.0 && mine.actions > 0,
        "a scenario that exercises the figures"
    );
}

#[test]
fn backtest_compares_several_policies_with_the_references_and_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart.svg");
    let timeline = dir.path().join("t.csv");
    let out = ballast(&[
        "backtest",
        "--trace",
        "examples/traces/wikipedia_en_requests_per_hour_2016-01.csv",
        "--policy",
        "examples/policies/web.yaml",
        "--policy",
        "examples/policies/rules.yaml",
        "--capacity",
        "auto",
        "--chart",
        chart.to_str().unwrap(),
        "--out",
        timeline.to_str().unwrap(),
        "--explain",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in ["web ", "web-rules ", "oracle ", "hpa ", "keda "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "no row for `{name}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("Wikimedia pagecounts-raw"),
        "the trace's attribution is shown"
    );
    assert!(stdout.contains("Why `web` changed the count"));
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("web-rules"));
    assert!(dir.path().join("t-web.csv").exists() && dir.path().join("t-web-rules.csv").exists());
}

#[test]
fn backtest_names_a_metric_it_cannot_simulate() {
    let out = ballast(&[
        "backtest",
        "--trace",
        "examples/traces/wikipedia_en_requests_per_hour_2016-01.csv",
        "--policy",
        "examples/policies/cdc-worker.json",
        "--capacity",
        "100",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("reads `philotes_cdc_lag_seconds`, which a backtest does not simulate")
            && err.contains("utilization"),
        "{err}"
    );
}

#[test]
fn backtest_rejects_a_bad_capacity_and_a_missing_trace_clearly() {
    let out = ballast(&[
        "backtest",
        "--trace",
        "nope.csv",
        "--policy",
        "examples/policies/web.yaml",
        "--capacity=-3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`-3` is not a capacity"),
        "{}",
        text(&out.stderr)
    );
    let out = ballast(&[
        "backtest",
        "--trace",
        "nope.csv",
        "--policy",
        "examples/policies/web.yaml",
        "--capacity",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nope.csv"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_predictive_backtest_reports_what_its_forecaster_did() {
    let trace = "examples/traces/wikipedia_en_requests_per_hour_2016-01.csv";
    let policy = "examples/policies/predictive.yaml";
    let out = ballast(&[
        "backtest",
        "--trace",
        trace,
        "--policy",
        policy,
        "--capacity",
        "auto",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("`predictive` forecasts:"))
        .unwrap_or_else(|| panic!("no forecast line in:\n{stdout}"));
    assert!(
        line.contains("models trained") && line.contains("MASE"),
        "{line}"
    );

    let out = ballast(&[
        "backtest",
        "--trace",
        trace,
        "--policy",
        policy,
        "--capacity",
        "auto",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &doc["forecasts"][0];
    assert_eq!(f["controller"], "predictive", "{doc}");
    // A month replayed at one-minute ticks: a model every six hours from the first hour on,
    // and forecasts that beat the seasonal naive one by far.
    let trainings = f["trainings"].as_u64().unwrap();
    assert!((120..=125).contains(&trainings), "{f}");
    assert_eq!(f["failed_trainings"], 0, "{f}");
    assert!(f["mase"].as_f64().unwrap() < 0.5, "{f}");
    assert!(f["coverage"].as_f64().unwrap() > 0.9, "{f}");
    let acting = f["acting"].as_u64().unwrap();
    let aside = f["aside"].as_u64().unwrap();
    // Every decision but the first (which has no observation yet) says what it did.
    let ticks = doc["runs"][0]["ticks"].as_u64().unwrap();
    assert!(
        acting + aside + 1 >= ticks && acting + aside <= ticks,
        "{doc}"
    );
}
