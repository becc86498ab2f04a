//! `ballast backtest`: replays a trace against policies and the reference autoscalers, as
//! `BACKTEST.md` fixes it, and prints the figures side by side.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use ballast_sim::chart::{ChartOptions, ChartSeries, write_chart};
use ballast_sim::grid::{Grid, Scenario};
use ballast_sim::model::{Run, default_initial, simulate};
use ballast_sim::policy::{ForecastStats, PolicyController};
use ballast_sim::trace::Trace;
use ballast_sim::{Reference, run_reference, timeline};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `ballast backtest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The load trace: CSV with the header `timestamp_s,value`.
    #[arg(long)]
    pub trace: PathBuf,
    /// Policy files (each may hold several policies); repeat for a side-by-side comparison.
    #[arg(long = "policy", required = true)]
    pub policies: Vec<PathBuf>,
    /// The replica model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the timeline CSV here (with several policies, the policy's name is added
    /// before the extension).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw demand against ready capacity and replicas over time (`.svg` or `.png`).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Print the decisions that changed the count, up to this many per policy, with reasons.
    #[arg(long, default_value_t = 0)]
    pub explain: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The replica model's settings, the same for `backtest` and `tune`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Load units per second one ready replica serves, or `auto` for the trace's mean rate
    /// divided by 10.
    #[arg(long)]
    pub capacity: Capacity,
    /// Seconds from launch to ready.
    #[arg(long, default_value_t = 120.0)]
    pub startup: f64,
    /// The evaluation interval in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub tick: f64,
    /// Price of one replica for one hour.
    #[arg(long, default_value_t = 1.0)]
    pub price: f64,
    /// Replicas ready at the first tick (default: enough for the first row's rate).
    #[arg(long)]
    pub initial: Option<u32>,
}

impl ModelArgs {
    /// The scenario these settings describe on `trace`.
    pub fn scenario(&self, trace: &Trace) -> anyhow::Result<Scenario> {
        self.capacity.scenario(
            trace,
            Scenario {
                capacity: 0.0,
                startup_s: self.startup,
                tick_s: self.tick,
                price: self.price,
                initial: self.initial,
            },
        )
    }
}

/// `--capacity`: a number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    /// Load units per second per replica.
    Fixed(f64),
    /// Mean rate over the trace / 10.
    Auto,
}

impl Capacity {
    /// `scenario` with this capacity: the fixed one, or a tenth of `trace`'s mean rate.
    pub fn scenario(self, trace: &Trace, scenario: Scenario) -> anyhow::Result<Scenario> {
        let capacity = match self {
            Capacity::Fixed(c) => c,
            Capacity::Auto => {
                let mean = trace.mean_rate();
                anyhow::ensure!(
                    mean > 0.0,
                    "the trace's mean rate is 0, so `--capacity auto` has nothing to go by"
                );
                mean / 10.0
            }
        };
        Ok(Scenario {
            capacity,
            ..scenario
        })
    }
}

impl FromStr for Capacity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Capacity::Auto);
        }
        match s.parse::<f64>() {
            Ok(c) if c.is_finite() && c > 0.0 => Ok(Capacity::Fixed(c)),
            _ => Err(format!(
                "`{s}` is not a capacity: give load units per second per replica (a number above 0) or `auto`"
            )),
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let trace = Trace::from_path(&args.trace)?;
    let policies = crate::validate::load(&args.policies)?;
    let scenario = args.model.scenario(&trace)?;
    let grid = Grid::new(&trace, &scenario)?;
    let mut controllers = policies
        .iter()
        .map(|p| PolicyController::new(p, scenario.price).map(|c| c.keep_changes(args.explain)))
        .collect::<Result<Vec<_>, _>>()?;

    let ticks = grid.demand.len();
    let total_runs = controllers.len() + 3;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((ticks * total_runs) as u64).with_style(
            ProgressStyle::with_template("{spinner} {msg:12} [{bar:40}] {percent:>3}% {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        )
    };

    let mut runs: Vec<Run> = Vec::new();
    let initial = default_initial(&grid, &scenario);
    for (i, c) in controllers.iter_mut().enumerate() {
        bar.set_message(c.name().to_owned());
        let offset = (i * ticks) as u64;
        let name = c.name().to_owned();
        runs.push(simulate(
            &grid,
            &scenario,
            &name,
            initial,
            c,
            &mut |done, _| bar.set_position(offset + done as u64),
        ));
    }
    for (j, which) in [Reference::Oracle, Reference::Hpa, Reference::Keda]
        .into_iter()
        .enumerate()
    {
        let offset = ((controllers.len() + j) * ticks) as u64;
        bar.set_message(format!("{which:?}").to_lowercase());
        runs.push(run_reference(&grid, &scenario, which, &mut |done, _| {
            bar.set_position(offset + done as u64)
        }));
    }
    bar.finish_and_clear();

    let forecasts: Vec<(String, ForecastStats)> = controllers
        .iter()
        .filter(|c| c.forecast_stats.trainings + c.forecast_stats.failed_trainings > 0)
        .map(|c| (c.name().to_owned(), c.forecast_stats.clone()))
        .collect();
    if args.json {
        let mut doc = json(&runs, &scenario);
        doc["forecasts"] = forecasts
            .iter()
            .map(|(name, f)| {
                serde_json::json!({
                    "controller": name,
                    "trainings": f.trainings,
                    "failed_trainings": f.failed_trainings,
                    "last_failure": f.last_failure,
                    "scored": f.scored,
                    "mase": f.mase,
                    "coverage": f.coverage,
                    "acting": f.acting,
                    "leading": f.leading,
                    "aside": f.aside,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}",
            header(&args.trace, &trace, &scenario, ticks, grid.tick_s)
        );
        println!("{}", table(&runs));
        for (name, f) in &forecasts {
            println!("{}", forecast_line(name, f));
        }
    }

    for c in &controllers {
        if args.explain > 0 && !args.json && !c.changes.is_empty() {
            println!(
                "\nWhy `{}` changed the count (first {}):",
                c.name(),
                c.changes.len()
            );
            for d in &c.changes {
                let offset = (d.at.timestamp_millis() as f64 / 1000.0 - grid.t0) / 3600.0;
                println!("  +{offset:>8.2}h  {}", d.summary());
            }
        }
    }

    let policy_runs = &runs[..controllers.len()];
    if let Some(out) = &args.out {
        for run in policy_runs {
            let path = if policy_runs.len() == 1 {
                out.clone()
            } else {
                with_suffix(out, &run.name)
            };
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot write the timeline to {}", path.display()))?;
            timeline::write_csv(&run.rows, std::io::BufWriter::new(file))
                .with_context(|| format!("cannot write the timeline to {}", path.display()))?;
            eprintln!("timeline of `{}` written to {}", run.name, path.display());
        }
    }
    if let Some(chart) = &args.chart {
        let series: Vec<ChartSeries> = runs
            .iter()
            .filter(|r| r.name != "keda")
            .map(|r| ChartSeries {
                name: &r.name,
                rows: &r.rows,
            })
            .collect();
        let title = format!(
            "{} — capacity {} per replica, startup {} s, tick {} s",
            file_name(&args.trace),
            trim(scenario.capacity),
            trim(scenario.startup_s),
            trim(scenario.tick_s)
        );
        write_chart(chart, &series, &ChartOptions::new(title, scenario.capacity))?;
        eprintln!("chart written to {}", chart.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What a predictive policy's forecaster did over the run, in a line.
fn forecast_line(name: &str, f: &ForecastStats) -> String {
    let mut out = format!(
        "`{name}` forecasts: {} models trained{}, {} forecasts scored",
        f.trainings,
        if f.failed_trainings > 0 {
            format!(
                " ({} failed: {})",
                f.failed_trainings,
                f.last_failure.as_deref().unwrap_or("")
            )
        } else {
            String::new()
        },
        f.scored
    );
    if let Some(m) = f.mase {
        let _ = write!(out, "; at the end MASE {m:.3}");
    }
    if let Some(c) = f.coverage {
        let _ = write!(out, ", coverage {:.1} %", c * 100.0);
    }
    let _ = write!(
        out,
        "; the forecast took part in {} decisions (set the count in {}) and stood aside in {}",
        f.acting, f.leading, f.aside
    );
    out
}

fn header(path: &Path, trace: &Trace, s: &Scenario, ticks: usize, tick: f64) -> String {
    let mut out = format!(
        "{}: {} rows, {} ticks of {} s ({:.1} days); capacity {} per replica, startup {} s, price {}/h",
        path.display(),
        trace.len(),
        ticks,
        trim(tick),
        ticks as f64 * tick / 86_400.0,
        trim(s.capacity),
        trim(s.startup_s),
        trim(s.price)
    );
    if let Some(source) = attribution(&file_name(path)) {
        let _ = write!(out, "\ntrace: {source}");
    }
    out
}

fn json(runs: &[Run], scenario: &Scenario) -> serde_json::Value {
    let oracle = runs
        .iter()
        .find(|r| r.name == "oracle")
        .map(|r| r.summary.cost);
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let s = &r.summary;
            serde_json::json!({
                "controller": r.name,
                "ticks": s.ticks,
                "cost": s.cost,
                "cost_vs_oracle": oracle.map(|o| s.cost / o),
                "theta_u": s.theta_u,
                "theta_o": s.theta_o,
                "tau_u": s.tau_u,
                "tau_o": s.tau_o,
                "instability": s.instability,
                "unserved": s.unserved,
                "actions": s.actions,
            })
        })
        .collect();
    serde_json::json!({
        "scenario": {
            "capacity": scenario.capacity,
            "startup_s": scenario.startup_s,
            "tick_s": scenario.tick_s,
            "price": scenario.price,
            "initial": scenario.initial,
        },
        "runs": rows,
    })
}

fn table(runs: &[Run]) -> String {
    let oracle = runs
        .iter()
        .find(|r| r.name == "oracle")
        .map(|r| r.summary.cost)
        .unwrap_or(f64::NAN);
    let head = [
        "controller",
        "cost",
        "×oracle",
        "θU %",
        "θO %",
        "τU %",
        "τO %",
        "υ %",
        "unserved %",
        "actions",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in runs {
        let s = &r.summary;
        rows.push(vec![
            r.name.clone(),
            format!("{:.2}", s.cost),
            format!("{:.3}", s.cost / oracle),
            format!("{:.2}", s.theta_u),
            format!("{:.2}", s.theta_o),
            format!("{:.2}", s.tau_u),
            format!("{:.2}", s.tau_o),
            format!("{:.2}", s.instability),
            format!("{:.3}", s.unserved),
            s.actions.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out.trim_end().to_owned()
}

fn with_suffix(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match path.extension() {
        Some(ext) => format!("{stem}-{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{name}"),
    };
    path.with_file_name(file)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Where the shipped and shared traces come from, to show beside their figures.
fn attribution(file: &str) -> Option<&'static str> {
    Some(match file {
        "worldcup98_requests_per_min.csv" => {
            "1998 FIFA World Cup web site requests per minute (Arlitt & Jin, HP Labs HPL-1999-35R1, ITA archive)"
        }
        "nasa_http_requests_per_min.csv" => {
            "NASA Kennedy Space Center HTTP requests per minute, July–August 1995 (ITA archive)"
        }
        "wikipedia_en_requests_per_hour_2016-01.csv" => {
            "English Wikipedia page requests per hour, January 2016 (Wikimedia pagecounts-raw, public domain)"
        }
        "aws_elb_request_count_5min.csv" => {
            "AWS ELB requests per 5 minutes, April 2014 (Numenta Anomaly Benchmark, MIT; Lavin & Ahmad, IEEE ICMLA 2015)"
        }
        "azure_vm2019_total_cpu_5min.csv" => {
            "Summed VM CPU of the Azure Public Dataset V2 (Cortez et al., SOSP 2017, CC-BY)"
        }
        "isp_uk_academic_traffic_5min.csv" => {
            "UK academic network backbone traffic per 5 minutes (Cortez et al., Expert Systems 2012)"
        }
        _ => return None,
    })
}
