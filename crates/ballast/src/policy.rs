//! `ballast policy apply|list|get|delete|evaluate|forecast`: policies on a running server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ballast_core::{Decision, PolicySpec};
use serde::Serialize;
use serde_json::Value;

use crate::client::{Client, ServerArgs, Stored};

/// Arguments of `ballast policy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Policy commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make the server's policies match the files: create, update, and with --prune delete.
    Apply {
        /// Policy files, or folders whose `.yaml`, `.yml` and `.json` files are read.
        #[arg(short = 'f', long = "file", required = true)]
        files: Vec<PathBuf>,
        /// Delete the server's policies that are in none of the files.
        #[arg(long)]
        prune: bool,
        /// Print what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the server's policies.
    List,
    /// Print one policy as written (YAML, or JSON with --json).
    Get {
        /// The policy's name.
        name: String,
        /// JSON instead of YAML.
        #[arg(long)]
        json: bool,
    },
    /// Delete a policy (its history stays).
    Delete {
        /// The policy's name.
        name: String,
    },
    /// Evaluate a policy now, as a dry run, and print the decision with every reason.
    Evaluate {
        /// The policy's name.
        name: String,
    },
    /// Print a predictive policy's current forecast, its interval and accuracy, and
    /// whether the strategy acts or stands aside.
    Forecast {
        /// The policy's name.
        name: String,
        /// The server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Command::Apply {
            files,
            prune,
            dry_run,
        } => apply(&args.server, files, *prune, *dry_run).await,
        Command::List => {
            let client = Client::new(&args.server)?;
            print!("{}", table(&client.list().await?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Get { name, json } => {
            let client = Client::new(&args.server)?;
            let policy = client.find(name).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&policy.spec)?);
            } else {
                print!("{}", serde_yaml_ng::to_string(&policy.spec)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { name } => {
            let client = Client::new(&args.server)?;
            let policy = client.find(name).await?;
            client.delete(&policy.id, policy.version).await?;
            println!("deleted {name}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate { name } => {
            let client = Client::new(&args.server)?;
            let policy = client.find(name).await?;
            let evaluation = client.evaluate(&policy.id).await?;
            print!("{}", explain(&evaluation.decision));
            println!("recorded as history entry {}", evaluation.history_id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Forecast { name, json } => {
            let client = Client::new(&args.server)?;
            let policy = client.find(name).await?;
            let body = client.forecast(&policy.id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", forecast_text(&body));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The forecast answer in lines: status, the forecast, accuracy, the model, the verdict.
fn forecast_text(body: &Value) -> String {
    let num = |v: &Value, digits: usize| {
        v.as_f64()
            .map_or_else(|| "unknown".to_owned(), |x| format!("{x:.digits$}"))
    };
    let mut out = format!(
        "{} ({}): {}\n",
        body["policy"].as_str().unwrap_or("?"),
        body["mode"].as_str().unwrap_or("?"),
        body["detail"].as_str().unwrap_or("?")
    );
    let f = &body["forecast"];
    if f.is_object() {
        out.push_str(&format!(
            "forecast made at {} for the next {} s: peak {}, {}% interval {}..{} -> {} replicas\n",
            f["made_at"].as_str().unwrap_or("?"),
            num(&f["lead_seconds"], 0),
            num(&f["peak"], 2),
            num(
                &(f["confidence"].as_f64().unwrap_or(f64::NAN) * 100.0).into(),
                0
            ),
            num(&f["lower"], 2),
            num(&f["upper"], 2),
            f["replicas"]
        ));
    }
    let points: Vec<(&str, f64)> = body["outlook"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|p| Some((p["at"].as_str()?, p["value"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let low = points.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let high = points.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(low), Some(high)) = (low, high) {
        out.push_str(&format!(
            "outlook over the next {} intervals: lowest {:.2} at {}, highest {:.2} at {}\n",
            points.len(),
            low.1,
            low.0,
            high.1,
            high.0
        ));
    }
    let a = &body["accuracy"];
    out.push_str(&format!(
        "accuracy: {} forecasts scored, MASE {} (stands aside above {}), coverage {}\n",
        a["scored"],
        num(&a["mase"], 3),
        num(&a["max_mase"], 2),
        a["coverage"]
            .as_f64()
            .map_or_else(|| "unknown".to_owned(), |c| format!("{:.1}%", c * 100.0))
    ));
    let m = &body["model"];
    out.push_str(&format!(
        "model: {} samples of history ({} read back at start), {} trainings, {} failed",
        m["history_samples"], m["refilled_samples"], m["trainings"], m["failed_trainings"]
    ));
    if let Some(t) = m["trained_at"].as_str() {
        out.push_str(&format!(", last trained on data up to {t}"));
    }
    out.push('\n');
    for key in ["refill_error", "last_error"] {
        if let Some(e) = m[key].as_str() {
            out.push_str(&format!("{}: {e}\n", key.replace('_', " ")));
        }
    }
    let v = &body["last_decision"];
    if v.is_object() {
        out.push_str(&format!(
            "last decision at {}: {} ({})\n",
            v["at"].as_str().unwrap_or("?"),
            v["role"].as_str().unwrap_or("?").replace('_', " "),
            v["reason"].as_str().unwrap_or("?")
        ));
    }
    out
}

/// What apply does to one policy.
#[derive(Debug, PartialEq)]
enum Step {
    Create(Box<PolicySpec>),
    Update(Box<Stored>, Box<PolicySpec>, Vec<String>),
    Unchanged(String),
    Delete(Box<Stored>),
}

async fn apply(
    server: &ServerArgs,
    files: &[PathBuf],
    prune: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let (_, policies) = crate::validate::check_and_report(files)?;
    let Some(policies) = policies else {
        eprintln!("nothing was sent to the server");
        return Ok(ExitCode::from(1));
    };
    let client = Client::new(server)?;
    let stored = client.list().await?;
    let wanted: Vec<PolicySpec> = policies.into_iter().map(|p| p.spec).collect();
    let steps = plan(&wanted, stored, prune)?;
    for step in steps {
        match step {
            Step::Create(spec) => {
                if !dry_run {
                    client
                        .create(&spec)
                        .await
                        .with_context(|| format!("cannot create {}", spec.name))?;
                }
                println!(
                    "{} {}",
                    if dry_run { "create" } else { "created" },
                    spec.name
                );
            }
            Step::Update(old, spec, changed) => {
                if !dry_run {
                    client
                        .update(&old.id, old.version, &spec)
                        .await
                        .with_context(|| format!("cannot update {}", spec.name))?;
                }
                println!(
                    "{} {} (changed: {})",
                    if dry_run { "update" } else { "updated" },
                    spec.name,
                    changed.join(", ")
                );
            }
            Step::Unchanged(name) => println!("unchanged {name}"),
            Step::Delete(old) => {
                if !dry_run {
                    client
                        .delete(&old.id, old.version)
                        .await
                        .with_context(|| format!("cannot delete {}", old.spec.name))?;
                }
                println!(
                    "{} {}",
                    if dry_run { "delete" } else { "deleted" },
                    old.spec.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The steps that make the server hold `wanted`: by name, in the files' order, then the
/// deletions (with `prune`) by name.
fn plan(wanted: &[PolicySpec], stored: Vec<Stored>, prune: bool) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let names: BTreeSet<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
    for spec in wanted {
        match stored.iter().find(|s| s.spec.name == spec.name) {
            None => steps.push(Step::Create(Box::new(spec.clone()))),
            Some(old) => {
                let changed = changed_fields(&old.spec, spec)?;
                if changed.is_empty() {
                    steps.push(Step::Unchanged(spec.name.clone()));
                } else {
                    steps.push(Step::Update(
                        Box::new(old.clone()),
                        Box::new(spec.clone()),
                        changed,
                    ));
                }
            }
        }
    }
    if prune {
        let mut extra: Vec<Stored> = stored
            .into_iter()
            .filter(|s| !names.contains(s.spec.name.as_str()))
            .collect();
        extra.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        steps.extend(extra.into_iter().map(|s| Step::Delete(Box::new(s))));
    }
    Ok(steps)
}

/// The top-level fields whose JSON differs, by name.
fn changed_fields(old: &PolicySpec, new: &PolicySpec) -> anyhow::Result<Vec<String>> {
    let old = serde_json::to_value(old)?;
    let new = serde_json::to_value(new)?;
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect())
}

/// The policies as a table: name, version, enabled, dry_run, min..max.
fn table(policies: &[Stored]) -> String {
    let header = ["NAME", "VERSION", "ENABLED", "DRY_RUN", "REPLICAS"].map(str::to_owned);
    let rows: Vec<[String; 5]> = policies
        .iter()
        .map(|p| {
            [
                p.spec.name.clone(),
                p.version.to_string(),
                p.spec.enabled.to_string(),
                p.spec.dry_run.to_string(),
                format!(
                    "{}..{}",
                    p.spec.min_replicas,
                    p.spec
                        .max_replicas
                        .map_or_else(|| "?".to_owned(), |m| m.to_string())
                ),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no policies)\n");
    }
    out
}

/// A value's serde name, such as `target_tracking`.
fn label<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// A decision, with every proposal, constraint, data problem and cost.
fn explain(d: &Decision) -> String {
    let mut out = format!(
        "{}: {} {} → {}{}\n",
        d.policy,
        d.action,
        d.current,
        d.desired,
        if d.dry_run { " (dry run)" } else { "" }
    );
    out.push_str(&format!("  {}\n", d.summary()));
    if d.proposals.is_empty() {
        out.push_str("  proposals: none\n");
    }
    for p in &d.proposals {
        out.push_str(&format!(
            "  proposal {}: {} — {}\n",
            label(&p.strategy),
            p.desired,
            p.reason
        ));
    }
    out.push_str(&format!("  combined: {}\n", d.combined));
    for c in &d.constraints {
        out.push_str(&format!(
            "  constraint {}: {} → {} — {}\n",
            label(&c.constraint),
            c.before,
            c.after,
            c.reason
        ));
    }
    for problem in &d.data_problems {
        out.push_str(&format!("  data problem: {problem}\n"));
    }
    if d.hourly_cost_before.is_some() || d.hourly_cost_after.is_some() {
        let cost = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}/h"));
        out.push_str(&format!(
            "  cost: {} → {}\n",
            cost(d.hourly_cost_before),
            cost(d.hourly_cost_after)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, max: u32) -> PolicySpec {
        PolicySpec {
            name: name.to_owned(),
            min_replicas: 1,
            max_replicas: Some(max),
            enabled: true,
            ..PolicySpec::default()
        }
    }

    fn stored(name: &str, max: u32) -> Stored {
        Stored {
            id: format!("id-{name}"),
            version: 3,
            spec: spec(name, max),
        }
    }

    #[test]
    fn plan_creates_the_missing_updates_the_changed_and_keeps_the_same() {
        let wanted = [spec("a", 5), spec("b", 6), spec("c", 7)];
        let steps = plan(&wanted, vec![stored("b", 9), stored("c", 7)], false).unwrap();
        assert_eq!(steps.len(), 3);
        assert!(matches!(&steps[0], Step::Create(s) if s.name == "a"));
        assert!(
            matches!(&steps[1], Step::Update(old, _, changed) if old.version == 3 && changed == &["max_replicas"])
        );
        assert_eq!(steps[2], Step::Unchanged("c".to_owned()));
    }

    #[test]
    fn plan_deletes_what_is_in_no_file_only_when_pruning() {
        let wanted = [spec("a", 5)];
        let server = vec![stored("a", 5), stored("z", 1), stored("m", 1)];
        assert_eq!(plan(&wanted, server.clone(), false).unwrap().len(), 1);
        let steps = plan(&wanted, server, true).unwrap();
        let deleted: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete(old) => Some(old.spec.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["m", "z"]);
    }

    #[test]
    fn the_table_shows_name_version_flags_and_bounds() {
        let shown = table(&[stored("web", 10)]);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{shown}");
        assert!(
            lines[1].starts_with("web") && lines[1].ends_with("1..10"),
            "{shown}"
        );
        assert!(
            lines[1].contains("true") && lines[1].contains("false"),
            "{shown}"
        );
    }

    #[test]
    fn a_forecast_reads_as_lines_with_its_interval_accuracy_and_verdict() {
        let body = serde_json::json!({
            "policy": "web", "mode": "scale", "status": "forecasting",
            "detail": "forecasting; the forecast takes part in decisions",
            "forecast": {"made_at": "2026-03-02T10:00:00Z", "lead_seconds": 180.0,
                "until": "2026-03-02T10:03:00Z", "peak": 412.345, "lower": 380.0,
                "upper": 444.5, "confidence": 0.95, "replicas": 5},
            "outlook": [
                {"at": "2026-03-02T10:01:00Z", "value": 400.0, "lower": 380.0, "upper": 420.0},
                {"at": "2026-03-02T10:02:00Z", "value": 412.0, "lower": 392.0, "upper": 432.0},
                {"at": "2026-03-02T10:03:00Z", "value": 398.5, "lower": 378.5, "upper": 418.5}
            ],
            "accuracy": {"scored": 1440, "mase": 0.4213, "coverage": 0.962,
                "max_mase": 1.0, "min_coverage": null},
            "model": {"history_samples": 20160, "samples_needed": 60, "refilled_samples": 20000,
                "refill_error": null, "seasonal_periods_seconds": [86400.0, 604800.0],
                "trained_at": "2026-03-02T09:00:00Z", "training": false, "trainings": 12,
                "failed_trainings": 1, "last_error": "training failed: x"},
            "last_decision": {"at": "2026-03-02T10:00:00Z", "role": "acting", "desired": 5,
                "reason": "requests over the next 3m: ..."}
        });
        let text = forecast_text(&body);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "web (scale): forecasting; the forecast takes part in decisions",
                "forecast made at 2026-03-02T10:00:00Z for the next 180 s: peak 412.35, 95% interval 380.00..444.50 -> 5 replicas",
                "outlook over the next 3 intervals: lowest 398.50 at 2026-03-02T10:03:00Z, highest 412.00 at 2026-03-02T10:02:00Z",
                "accuracy: 1440 forecasts scored, MASE 0.421 (stands aside above 1.00), coverage 96.2%",
                "model: 20160 samples of history (20000 read back at start), 12 trainings, 1 failed, last trained on data up to 2026-03-02T09:00:00Z",
                "last error: training failed: x",
                "last decision at 2026-03-02T10:00:00Z: acting (requests over the next 3m: ...)",
            ]
        );
    }
}
