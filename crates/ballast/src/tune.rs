//! `ballast tune`: searches one setting of a policy (a forecast's confidence, a target, rule
//! thresholds) on a recorded trace, or on a Prometheus range query, for the cheapest setting
//! that meets a service-level objective, and prints every setting tried.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use ballast_core::{MetricObservation, Policy};
use ballast_sim::grid::{Grid, Scenario};
use ballast_sim::trace::Trace;
use ballast_sim::tune::{Knob, Search, Slo, Trial, Tuning, tune};
use ballast_sim::{Reference, Summary};
use ballast_sources::PrometheusSource;
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backtest::ModelArgs;

/// Prometheus answers at most 11,000 points per series; longer ranges are fetched in pieces
/// of this many steps.
const POINTS_PER_QUERY: usize = 10_000;

/// Arguments of `ballast tune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The load trace: CSV with the header `timestamp_s,value`. Or take the load from
    /// Prometheus with `--prometheus` and `--query`.
    #[arg(
        long,
        required_unless_present = "prometheus",
        conflicts_with = "prometheus"
    )]
    pub trace: Option<PathBuf>,
    /// Base URL of a Prometheus (`http://host:9090`) to take the load from with a range query.
    #[arg(long, requires_all = ["query", "start", "end"])]
    pub prometheus: Option<String>,
    /// PromQL giving one series: the load's rate in load units per second (such as
    /// `sum(rate(http_requests_total[1m]))`). The value at each step counts for the step
    /// that starts there.
    #[arg(long, requires = "prometheus")]
    pub query: Option<String>,
    /// Start of the range: RFC 3339 (`2025-06-01T00:00:00Z`), Unix seconds, `now` or
    /// `now-7d`.
    #[arg(long, requires = "prometheus")]
    pub start: Option<TimeArg>,
    /// End of the range, written like `--start`.
    #[arg(long, requires = "prometheus")]
    pub end: Option<TimeArg>,
    /// Resolution of the range query (`30s`, `1m`, `5m`).
    #[arg(long, default_value = "1m", requires = "prometheus", value_parser = humantime::parse_duration)]
    pub step: Duration,
    /// Timeout of each Prometheus request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub query_timeout: Duration,
    /// The policy file. It must hold one policy, or name one with `--name`.
    #[arg(long)]
    pub policy: PathBuf,
    /// Which policy of the file to tune.
    #[arg(long)]
    pub name: Option<String>,
    /// The replica model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Objectives every tuned setting must meet, such as `unserved<=0.1%,tau_u<=1%`.
    /// Figures: unserved, tau_u, theta_u, instability; a bound is a percentage or a
    /// reference autoscaler (`unserved<=hpa`: no more unserved demand than the HPA).
    #[arg(long)]
    pub slo: Slo,
    /// The setting to search: `confidence` (the predictive strategy's interval), `target`
    /// (target tracking's target per replica) or `thresholds` (the rules' thresholds, moved
    /// together). Default: the first the policy has, in that order.
    #[arg(long)]
    pub knob: Option<Knob>,
    /// The range searched, as `LO..HI` (default: one that suits the knob and its metric).
    #[arg(long)]
    pub range: Option<RangeArg>,
    /// Settings tried in the first, evenly spaced pass.
    #[arg(long, default_value_t = 9)]
    pub points: usize,
    /// Bisection steps after the first pass.
    #[arg(long, default_value_t = 4)]
    pub refine: usize,
    /// Write the policy with the winning setting here, as YAML.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
    /// Print the result as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A point in time on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// A fixed time.
    At(DateTime<Utc>),
    /// This long before the command runs (`now` is zero).
    Ago(TimeDelta),
}

impl FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeArg, String> {
        let s = s.trim();
        if s == "now" {
            return Ok(TimeArg::Ago(TimeDelta::zero()));
        }
        if let Some(ago) = s.strip_prefix("now-") {
            let d = humantime::parse_duration(ago)
                .map_err(|e| format!("`{s}`: `{ago}` is not a duration ({e})"))?;
            return TimeDelta::from_std(d)
                .map(TimeArg::Ago)
                .map_err(|_| format!("`{s}`: the duration is too long"));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(TimeArg::At(t.with_timezone(&Utc)));
        }
        if let Ok(seconds) = s.parse::<f64>()
            && let Some(t) = DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        {
            return Ok(TimeArg::At(t));
        }
        Err(format!(
            "`{s}` is not a time: use RFC 3339 (2025-06-01T00:00:00Z), Unix seconds, `now` or `now-7d`"
        ))
    }
}

impl TimeArg {
    fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeArg::At(t) => t,
            TimeArg::Ago(d) => now - d,
        }
    }
}

/// `--range LO..HI`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeArg(pub f64, pub f64);

impl FromStr for RangeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<RangeArg, String> {
        let (lo, hi) = s
            .split_once("..")
            .ok_or_else(|| format!("`{s}` is not a range: write it as LO..HI, such as 60..90"))?;
        let number = |part: &str, which: &str| {
            part.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    format!("`{s}`: the {which} bound `{}` is not a number", part.trim())
                })
        };
        let (lo, hi) = (number(lo, "lower")?, number(hi, "upper")?);
        if lo >= hi {
            return Err(format!(
                "`{s}`: the lower bound must be below the upper one"
            ));
        }
        Ok(RangeArg(lo, hi))
    }
}

/// Where the load came from, for the report.
enum Origin {
    File(PathBuf),
    Prometheus {
        url: String,
        query: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    },
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::File(path) => path.display().to_string(),
            Origin::Prometheus {
                url,
                query,
                start,
                end,
                step,
            } => format!(
                "`{query}` at {url}, {} to {} every {}",
                start.format("%Y-%m-%dT%H:%M:%SZ"),
                end.format("%Y-%m-%dT%H:%M:%SZ"),
                humantime::format_duration(*step)
            ),
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let policy = pick_policy(
        crate::validate::load(std::slice::from_ref(&args.policy))?,
        args,
    )?;
    let (trace, origin) = load_trace(args)?;
    let scenario = args.model.scenario(&trace)?;
    let grid = Grid::new(&trace, &scenario)?;
    let knob = Knob::choose(&policy, args.knob)?;
    let search = Search {
        points: args.points,
        refine: args.refine,
        range: args.range.map(|RangeArg(lo, hi)| (lo, hi)),
    };

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
        );
        bar.set_message("backtesting the references");
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    let mut tried = 0;
    let tuning = tune(
        &policy,
        knob,
        &grid,
        &scenario,
        &args.slo,
        &search,
        &mut |t: &Trial| {
            tried += 1;
            bar.set_message(format!(
                "{tried} setting{} tried; last {} = {}",
                if tried == 1 { "" } else { "s" },
                knob.name(),
                t.value
            ));
        },
    )?;
    bar.finish_and_clear();

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&tuning, &scenario))?
        );
    } else {
        print!("{}", report(&tuning, &origin, &scenario, &grid, &args.slo));
    }

    let Some(best) = tuning.best() else {
        eprintln!(
            "no setting in {}..{} meets the SLO; try another --range or a looser --slo",
            tuning.range.0, tuning.range.1
        );
        return Ok(ExitCode::FAILURE);
    };
    if let Some(path) = &args.write {
        let spec = knob.apply(&policy, best.value);
        let yaml = serde_yaml_ng::to_string(&spec)?;
        let text = format!(
            "# `{}` with {} = {} (was {}), tuned by `ballast tune` on {}\n# for {} (capacity {} per replica, startup {} s, tick {} s).\n{yaml}",
            policy.name,
            tuning.field,
            best.value,
            tuning.original,
            origin.describe(),
            args.slo,
            trim(scenario.capacity),
            trim(scenario.startup_s),
            trim(scenario.tick_s)
        );
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the tuned policy to {}", path.display()))?;
        eprintln!("tuned policy written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn pick_policy(policies: Vec<Policy>, args: &Args) -> anyhow::Result<Policy> {
    let names = || {
        policies
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &args.name {
        Some(name) => {
            let found = policies.iter().position(|p| &p.name == name);
            match found {
                Some(i) => Ok(policies.into_iter().nth(i).expect("found above")),
                None => anyhow::bail!(
                    "{} holds no policy named `{name}`; it holds {}",
                    args.policy.display(),
                    names()
                ),
            }
        }
        None if policies.len() == 1 => Ok(policies.into_iter().next().expect("one policy")),
        None => anyhow::bail!(
            "{} holds {} policies ({}); choose one with --name",
            args.policy.display(),
            policies.len(),
            names()
        ),
    }
}

fn load_trace(args: &Args) -> anyhow::Result<(Trace, Origin)> {
    if let Some(path) = &args.trace {
        return Ok((Trace::from_path(path)?, Origin::File(path.clone())));
    }
    let (Some(url), Some(query), Some(start), Some(end)) =
        (&args.prometheus, &args.query, args.start, args.end)
    else {
        anyhow::bail!("give --trace, or --prometheus with --query, --start and --end");
    };
    let now = Utc::now();
    let (start, end) = (start.resolve(now), end.resolve(now));
    let source = PrometheusSource::new(url, args.query_timeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let trace = runtime.block_on(fetch_trace(
        &source,
        query,
        start,
        end,
        args.step,
        POINTS_PER_QUERY,
    ))?;
    Ok((
        trace,
        Origin::Prometheus {
            url: source.base_url().to_owned(),
            query: query.clone(),
            start,
            end,
            step: args.step,
        },
    ))
}

/// Runs `query` as range queries over `start..=end` every `step`, at most `points_per_query`
/// steps per request, and turns its samples into a trace: each sample's value is the load's
/// rate, so the trace row at its time holds `value × step` (the load of the step that
/// starts there). Steps without a sample are left out, which the trace reads as a gap.
pub async fn fetch_trace(
    source: &PrometheusSource,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
    points_per_query: usize,
) -> anyhow::Result<Trace> {
    let range = || {
        format!(
            "cannot query {} to {} every {}",
            rfc3339(start),
            rfc3339(end),
            humantime::format_duration(step)
        )
    };
    anyhow::ensure!(
        step.as_secs() > 0 && step.subsec_nanos() == 0,
        "{}: the step must be a whole number of seconds, at least 1",
        range()
    );
    anyhow::ensure!(
        start < end,
        "{}: the start must come before the end",
        range()
    );
    let step_delta = TimeDelta::from_std(step).with_context(range)?;
    let piece = step_delta * i32::try_from(points_per_query.max(1)).unwrap_or(i32::MAX);

    let mut rows: Vec<(f64, f64)> = Vec::new();
    let mut from = start;
    while from <= end {
        // Both ends are evaluated: a piece of N steps ends N − 1 steps after it starts.
        let to = (from + piece - step_delta).min(end);
        match source.range(query, from, to, step).await {
            MetricObservation::Samples(samples) => {
                for s in samples {
                    anyhow::ensure!(
                        s.value.is_finite() && s.value >= 0.0,
                        "the sample at {} is {}; a load must be a finite number of at least 0",
                        rfc3339(s.at),
                        s.value
                    );
                    let at = s.at.timestamp_millis() as f64 / 1000.0;
                    rows.push((at, s.value * step.as_secs_f64()));
                }
            }
            MetricObservation::Empty | MetricObservation::NotFetched => {}
            MetricObservation::Failed(reason) => anyhow::bail!(
                "the range query for {} to {} failed: {reason}",
                rfc3339(from),
                rfc3339(to)
            ),
        }
        from += piece;
    }
    anyhow::ensure!(
        rows.len() >= 2,
        "`{query}` gave {} sample(s) from {} to {}; a trace needs at least 2 (check the query and the range)",
        rows.len(),
        rfc3339(start),
        rfc3339(end)
    );
    Ok(Trace::from_rows(rows)?)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn report(t: &Tuning, origin: &Origin, s: &Scenario, grid: &Grid, slo: &Slo) -> String {
    let mut out = String::new();
    let ticks = grid.demand.len();
    let _ = writeln!(
        out,
        "`{}` on {}: {ticks} ticks of {} s ({:.1} days); capacity {} per replica, startup {} s, price {}/h",
        t.policy,
        origin.describe(),
        trim(s.tick_s),
        ticks as f64 * s.tick_s / 86_400.0,
        trim(s.capacity),
        trim(s.startup_s),
        trim(s.price),
    );
    let limits: Vec<String> = slo
        .objectives
        .iter()
        .zip(&t.limits)
        .map(|(o, (figure, limit))| match o.bound {
            ballast_sim::tune::Bound::Percent(_) => format!("{figure} ≤ {limit} %"),
            ballast_sim::tune::Bound::Reference(r) => {
                format!("{figure} ≤ {} ({limit:.4} %)", r.name())
            }
        })
        .collect();
    let _ = writeln!(out, "SLO: {}", limits.join(", "));
    let _ = writeln!(
        out,
        "searching {} over {}..{} (as written: {})\n",
        t.field, t.range.0, t.range.1, t.original
    );

    let oracle = t.oracle_cost().unwrap_or(f64::NAN);
    let figures = |s: &Summary| {
        vec![
            format!("{:.2}", s.cost),
            format!("{:.3}", s.cost / oracle),
            format!("{:.4}", s.unserved),
            format!("{:.2}", s.tau_u),
            format!("{:.2}", s.theta_u),
            format!("{:.2}", s.instability),
        ]
    };
    let mut rows = vec![
        [
            "reference",
            "cost",
            "×oracle",
            "unserved %",
            "τU %",
            "θU %",
            "υ %",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (r, summary) in &t.references {
        let mut row = vec![r.name().to_owned()];
        row.extend(figures(summary));
        rows.push(row);
    }
    out.push_str(&table(&rows).join("\n"));
    out.push_str("\n\n");

    let best = t.best().map(|b| b.value);
    let mut rows = vec![
        [
            t.knob.name(),
            "headroom",
            "cost",
            "×oracle",
            "unserved %",
            "τU %",
            "θU %",
            "υ %",
            "meets SLO",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut marks = vec![String::new()];
    for trial in t.by_setting() {
        let mut mark = String::new();
        if Some(trial.value) == best {
            mark.push_str("  ◀ best");
        }
        if trial.value == t.original {
            mark.push_str("  (as written)");
        }
        marks.push(mark);
        let mut row = vec![
            trial.value.to_string(),
            trial
                .headroom
                .map_or_else(|| "-".to_owned(), |h| format!("{h:.3}")),
        ];
        row.extend(figures(&trial.summary));
        row.push(if trial.meets { "yes" } else { "no" }.to_owned());
        rows.push(row);
    }
    let mut lines = table(&rows);
    // The header's rule sits between the header and the first trial.
    for (line, mark) in lines.iter_mut().skip(2).zip(marks.iter().skip(1)) {
        line.push_str(mark);
    }
    out.push_str(&lines.join("\n"));
    out.push_str("\n\n");

    match t.best() {
        Some(b) => {
            let _ = write!(
                out,
                "best: {} = {}{}: cost {:.2} ({:.3} × oracle",
                t.field,
                b.value,
                b.headroom
                    .map_or_else(String::new, |h| format!(" (headroom {h:.3})")),
                b.summary.cost,
                b.summary.cost / oracle
            );
            if let Some(hpa) = t.reference(Reference::Hpa) {
                let _ = write!(out, ", {:.3} × HPA", b.summary.cost / hpa.cost);
            }
            let _ = writeln!(
                out,
                "), unserved {:.4} %, τU {:.2} %",
                b.summary.unserved, b.summary.tau_u
            );
            if t.best_at_range_edge() {
                let _ = writeln!(
                    out,
                    "note: the best setting is at the end of the range; a wider --range may hold a cheaper one"
                );
            }
        }
        None => {
            let _ = writeln!(out, "best: none of the settings tried meets the SLO");
        }
    }
    out
}

fn json(t: &Tuning, s: &Scenario) -> serde_json::Value {
    let oracle = t.oracle_cost();
    let figures = |summary: &Summary| {
        serde_json::json!({
            "cost": summary.cost,
            "cost_vs_oracle": oracle.map(|o| summary.cost / o),
            "unserved": summary.unserved,
            "tau_u": summary.tau_u,
            "theta_u": summary.theta_u,
            "tau_o": summary.tau_o,
            "theta_o": summary.theta_o,
            "instability": summary.instability,
            "actions": summary.actions,
        })
    };
    serde_json::json!({
        "policy": t.policy,
        "knob": t.knob.name(),
        "field": t.field,
        "original": t.original,
        "range": [t.range.0, t.range.1],
        "scenario": {
            "capacity": s.capacity,
            "startup_s": s.startup_s,
            "tick_s": s.tick_s,
            "price": s.price,
            "initial": s.initial,
        },
        "slo": t.limits.iter().map(|(f, limit)| serde_json::json!({
            "figure": f.name(),
            "at_most": limit,
        })).collect::<Vec<_>>(),
        "references": t.references.iter().map(|(r, summary)| {
            let mut v = figures(summary);
            v["controller"] = r.name().into();
            v
        }).collect::<Vec<_>>(),
        "trials": t.by_setting().into_iter().map(|trial| {
            let mut v = figures(&trial.summary);
            v["setting"] = trial.value.into();
            v["headroom"] = trial.headroom.into();
            v["meets_slo"] = trial.meets.into();
            v
        }).collect::<Vec<_>>(),
        "best": t.best().map(|b| b.value),
    })
}

/// Lines of a table with its columns aligned, the first to the left and the others to the
/// right, and a rule under the header row.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            if c == 0 {
                let _ = write!(line, "{cell}{pad}");
            } else {
                let _ = write!(line, "  {pad}{cell}");
            }
        }
        out.push(line.trim_end().to_owned());
        if i == 0 {
            out.push("-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1)));
        }
    }
    out
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    //! The command line, and tuning on a Prometheus range query against a real Prometheus
    //! (Debian's `prometheus` package, through `ballast-sources`' `test-support`), fed by
    //! backfilling a slice of a shared trace.

    use clap::Parser as _;

    use super::*;
    use ballast_sources::testing::TestPrometheus;

    fn parse(args: &[&str]) -> Result<Args, String> {
        let mut all = vec!["ballast", "tune"];
        all.extend_from_slice(args);
        match crate::Cli::try_parse_from(all) {
            Ok(crate::Cli {
                command: crate::Command::Tune(args),
            }) => Ok(args),
            Ok(other) => panic!("not a tune: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    const BASE: [&str; 6] = [
        "--policy",
        "web.yaml",
        "--capacity",
        "auto",
        "--slo",
        "unserved<=0.1%,tau_u<=1%",
    ];

    fn with_base(extra: &[&'static str]) -> Vec<&'static str> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn the_command_line_takes_a_trace_file_or_a_prometheus_query() {
        let args = parse(&with_base(&["--trace", "t.csv"])).unwrap();
        assert_eq!(args.slo.objectives.len(), 2);
        assert_eq!((args.points, args.refine, args.knob), (9, 4, None));
        let args = parse(&with_base(&[
            "--prometheus",
            "http://localhost:9090",
            "--query",
            "sum(rate(http_requests_total[1m]))",
            "--start",
            "now-7d",
            "--end",
            "2025-06-08T00:00:00Z",
            "--step",
            "5m",
            "--range",
            "60..90",
            "--knob",
            "target",
        ]))
        .unwrap();
        assert_eq!(args.start, Some(TimeArg::Ago(TimeDelta::days(7))));
        assert_eq!(args.step, Duration::from_secs(300));
        assert_eq!(args.range, Some(RangeArg(60.0, 90.0)));
        assert_eq!(args.knob, Some(Knob::Target));

        let err = parse(&BASE).unwrap_err();
        assert!(err.contains("--trace"), "{err}");
        let err = parse(&with_base(&[
            "--trace",
            "t.csv",
            "--prometheus",
            "http://p:9090",
        ]))
        .unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
        let err = parse(&with_base(&["--prometheus", "http://p:9090"])).unwrap_err();
        assert!(err.contains("--query"), "{err}");
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let err = parse(&[
            "--trace",
            "t.csv",
            "--policy",
            "p.yaml",
            "--capacity",
            "auto",
            "--slo",
            "unserved<=0.1%,tau_x<=1%",
        ])
        .unwrap_err();
        assert!(err.contains("`tau_x<=1%`: unknown figure `tau_x`"), "{err}");
        let err = parse(&with_base(&["--trace", "t.csv", "--range", "90"])).unwrap_err();
        assert!(err.contains("write it as LO..HI"), "{err}");
        let err = parse(&with_base(&["--trace", "t.csv", "--knob", "speed"])).unwrap_err();
        assert!(err.contains("unknown knob `speed`"), "{err}");
        assert_eq!(
            "yesterday".parse::<TimeArg>().unwrap_err(),
            "`yesterday` is not a time: use RFC 3339 (2025-06-01T00:00:00Z), Unix seconds, `now` or `now-7d`"
        );
        assert!(
            "now-7x"
                .parse::<TimeArg>()
                .unwrap_err()
                .starts_with("`now-7x`: `7x` is not a duration")
        );
        assert_eq!(
            "1700000000".parse::<TimeArg>().unwrap(),
            TimeArg::At(DateTime::from_timestamp(1_700_000_000, 0).unwrap())
        );
        assert_eq!(
            "60..x".parse::<RangeArg>().unwrap_err(),
            "`60..x`: the upper bound `x` is not a number"
        );
    }

    /// Rows 138 to 905 of the AWS ELB trace (no gaps: 768 steps of 5 minutes), moved to
    /// end a day ago, with each value as a rate per second.
    fn aws_slice() -> (Trace, DateTime<Utc>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/traces/aws_elb_request_count_5min.csv"
        );
        let full = Trace::from_path(std::path::Path::new(path)).unwrap();
        let first = full.timestamps[138];
        let rows = 768;
        let now = Utc::now().timestamp();
        let start = (now - 86_400 - rows as i64 * 300) / 300 * 300;
        let moved: Vec<(f64, f64)> = (138..138 + rows)
            .map(|i| {
                assert_eq!(full.timestamps[i] - first, (i - 138) as f64 * 300.0);
                (start as f64 + (i - 138) as f64 * 300.0, full.values[i])
            })
            .collect();
        (
            Trace::from_rows(moved).unwrap(),
            DateTime::from_timestamp(start, 0).unwrap(),
        )
    }

    #[tokio::test]
    async fn tuning_on_a_prometheus_range_query_matches_tuning_on_the_same_trace_file() {
        let (trace, start) = aws_slice();
        let mut openmetrics = String::from("# TYPE elb_requests_per_second gauge\n");
        for (t, v) in trace.timestamps.iter().zip(&trace.values) {
            openmetrics.push_str(&format!("elb_requests_per_second {} {t}\n", v / 300.0));
        }
        openmetrics.push_str("# EOF\n");
        let prometheus = TestPrometheus::start_with_backfill(&openmetrics).await;
        let source = prometheus.source(Duration::from_secs(10));
        let end = start + TimeDelta::seconds(300 * 767);
        let step = Duration::from_secs(300);

        // 100 steps per request: eight requests, stitched together.
        let fetched = fetch_trace(&source, "elb_requests_per_second", start, end, step, 100)
            .await
            .unwrap();
        assert_eq!(fetched.timestamps, trace.timestamps);
        for (a, b) in fetched.values.iter().zip(&trace.values) {
            assert!((a - b).abs() <= 1e-9 * b.max(1.0), "{a} vs {b}");
        }

        // The same search on both gives the same table.
        let policy = crate::validate::load(&[PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/policies/web.yaml"
        ))])
        .unwrap()
        .remove(0);
        let slo: Slo = "unserved<=hpa".parse().unwrap();
        let search = Search {
            points: 3,
            refine: 2,
            range: None,
        };
        let tuned = |t: &Trace| {
            let scenario = Scenario::new(t.mean_rate() / 10.0);
            let grid = Grid::new(t, &scenario).unwrap();
            tune(
                &policy,
                Knob::Target,
                &grid,
                &scenario,
                &slo,
                &search,
                &mut |_| {},
            )
            .unwrap()
        };
        let (from_prometheus, from_file) = (tuned(&fetched), tuned(&trace));
        assert_eq!(
            from_prometheus.trials.len(),
            from_file.trials.len(),
            "{:?}",
            from_prometheus.trials
        );
        for (a, b) in from_prometheus.trials.iter().zip(&from_file.trials) {
            assert_eq!(a.value, b.value);
            assert_eq!(a.meets, b.meets);
            assert!((a.summary.cost - b.summary.cost).abs() < 1e-6 * b.summary.cost);
        }
        let best = from_prometheus.best().expect("a winner").value;
        assert_eq!(Some(best), from_file.best().map(|b| b.value));
    }

    #[tokio::test]
    async fn a_failed_or_empty_range_query_is_an_error_that_says_so() {
        let (trace, start) = aws_slice();
        let openmetrics = format!(
            "# TYPE load gauge\nload 1 {}\nload 2 {}\n# EOF\n",
            trace.timestamps[0], trace.timestamps[1]
        );
        let prometheus = TestPrometheus::start_with_backfill(&openmetrics).await;
        let source = prometheus.source(Duration::from_secs(10));
        let end = start + TimeDelta::hours(1);
        let step = Duration::from_secs(60);

        let err = fetch_trace(&source, "sum(", start, end, step, 10_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("the range query for "), "{err}");
        assert!(err.contains("parse error"), "{err}");

        let err = fetch_trace(&source, "no_such_metric", start, end, step, 10_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("gave 0 sample(s)"), "{err}");

        let err = fetch_trace(&source, "-load", start, end, step, 10_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is -1; a load must be"), "{err}");

        let err = fetch_trace(&source, "load", end, start, step, 10_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("the start must come before the end"), "{err}");
    }
}
