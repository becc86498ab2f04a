//! `ballast demo`: the whole loop on one machine, with nothing else installed. A server on
//! SQLite, a pool of small worker processes as the target, and a load generator that
//! replays a recorded trace in compressed time and pushes its rate to
//! `POST /api/v1/metrics`. The engine scales the pool as the load moves; every decision
//! and why is printed here and kept in history.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ballast_core::{Format, load_policies};
use ballast_sim::trace::Trace;
use ballast_store::{HistoryFilter, HistoryKind, Scope};

use crate::config::Config;
use crate::serve;

/// The trace replayed unless `--trace` names another: English Wikipedia's requests per
/// hour in January 2016 (see examples/traces/README.md).
const BUILT_IN_TRACE: &str =
    include_str!("../../../examples/traces/wikipedia_en_requests_per_hour_2016-01.csv");

/// Arguments of `ballast demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the API listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A trace (CSV `timestamp_s,value`) to replay instead of the built-in one.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Trace seconds replayed per wall-clock second.
    #[arg(long, default_value_t = 1200.0)]
    pub speed: f64,
    /// Stop after this long (such as `5m`); without it, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Where the demo keeps its database and worker records (a temporary directory,
    /// removed at the end, unless given).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// What the demo's policy and load are made of.
struct Plan {
    /// The load, in requests per second, at each step of the trace.
    rates: Vec<f64>,
    /// Wall-clock time between steps.
    step: Duration,
    /// Requests per second one worker serves.
    per_worker: f64,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    anyhow::ensure!(
        args.speed.is_finite() && args.speed > 0.0,
        "--speed must be a positive number"
    );
    let (text, name) = match &args.trace {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (BUILT_IN_TRACE.to_owned(), "built-in".to_owned()),
    };
    let trace = Trace::from_reader(text.as_bytes()).with_context(|| format!("trace {name}"))?;
    let step_seconds = trace.median_step();
    // Rates per second, whatever the trace's step.
    let rates: Vec<f64> = trace.values.iter().map(|v| v / step_seconds).collect();
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    Ok(Plan {
        step: Duration::from_secs_f64((step_seconds / args.speed).max(0.05)),
        // About eight workers at the mean load.
        per_worker: (mean / 8.0).max(1.0),
        rates,
    })
}

fn policy_yaml(per_worker: f64, worker: &str) -> String {
    format!(
        "name: demo-workers
min_replicas: 1
max_replicas: 30
evaluation_interval: 2s
cooldown_seconds: 6
price_per_replica_hour: 0.05
stabilization: {{scale_up: 0s, scale_down: 6s}}
metrics:
  load:
    query: demo_requests_per_second
    source: pushed
    max_staleness: 30s
target_tracking: {{metric: load, target: {per_worker:.0}, tolerance: 0.1}}
target:
  type: process
  command: {worker:?}
  args: [demo-worker, '{{index}}']
  grace_period: 2s
"
    )
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let plan = plan(args)?;
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("cannot create a temporary directory")?),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().expect("made above").path().to_path_buf());
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let config = Config {
        listen: args.listen,
        database_url: format!("sqlite://{}/ballast.db", data_dir.display()),
        data_dir: data_dir.clone(),
        interval: "2s".to_owned(),
        log_level: "warn".to_owned(),
        ..Config::default()
    };
    serve::init_logging(&config);
    let server = serve::start(&config).await?;
    let store = server.engine.store().clone();

    let worker = std::env::current_exe().context("cannot find the ballast binary")?;
    let spec = load_policies(
        &policy_yaml(plan.per_worker, &worker.display().to_string()),
        Format::Yaml,
    )
    .map_err(|e| anyhow::anyhow!("the demo policy is invalid: {e}"))?
    .remove(0)
    .spec;
    let policy = match store.get_policy_by_name(&spec.name).await? {
        Some(existing) => {
            store
                .update_policy(existing.id, &spec, existing.version, "demo")
                .await?
        }
        None => store.create_policy(&spec, "demo").await?,
    };
    let (token, hash) = ballast_api::auth::new_token();
    let token_name = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let token_record = store
        .create_token(&token_name, Scope::Admin, &hash, "demo")
        .await?;

    let base = format!("http://{}", server.addr);
    println!(
        "Ballast demo: up to 30 workers of {:.0} req/s each, the load replayed at {}x",
        plan.per_worker, args.speed
    );
    println!("  API         {base}/api/v1/scaling/policies/{}", policy.id);
    println!(
        "  history     {base}/api/v1/scaling/history?policy_id={}",
        policy.id
    );
    println!("  metrics     {base}/metrics");
    println!("  token       {token}");
    println!(
        "  try         curl -H 'Authorization: Bearer {token}' '{base}/api/v1/scaling/history?policy_id={}'",
        policy.id
    );
    println!("  data        {}", data_dir.display());
    println!("Ctrl-C stops the demo and its workers.\n");

    let load = tokio::spawn(replay(plan.rates, plan.step, base.clone(), token.clone()));
    let printer = tokio::spawn(print_decisions(store.clone(), policy.id));
    match args.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = serve::wait_for_signal() => {}
            }
        }
        None => serve::wait_for_signal().await,
    }
    println!("\nstopping: the load, the engine, then the workers");
    load.abort();
    let engine = server.engine.clone();
    server.stop().await?;
    engine.release_all().await;
    // The last decisions' outcomes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    printer.abort();
    if let Err(e) = store.delete_token(token_record.id, "demo").await {
        eprintln!("cannot revoke the demo's token: {e}");
    }
    store.close().await;
    drop(temp);
    Ok(())
}

/// Pushes the trace's rate at each step, over and over.
async fn replay(rates: Vec<f64>, step: Duration, base: String, token: String) {
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/metrics");
    let mut ticker = tokio::time::interval(step);
    for (i, rate) in rates.iter().cycle().enumerate() {
        ticker.tick().await;
        let body = serde_json::json!({"samples": [
            {"name": "demo_requests_per_second", "value": rate}
        ]});
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        if let Err(e) = sent.and_then(|r| r.error_for_status()) {
            eprintln!("load: cannot push: {e}");
        }
        if i % 24 == 0 {
            println!("load  {rate:>8.0} req/s");
        }
    }
}

/// Prints each new decision of the policy with its reason, and its outcome.
async fn print_decisions(store: ballast_store::Store, policy: uuid::Uuid) {
    let mut seen = 0_i64;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(page) = store
            .history(&HistoryFilter {
                policy_id: Some(policy),
                kind: Some(HistoryKind::Decision),
                limit: 50,
                ..HistoryFilter::default()
            })
            .await
        else {
            continue;
        };
        let mut fresh: Vec<_> = page.items.into_iter().filter(|e| e.id > seen).collect();
        fresh.sort_by_key(|e| e.id);
        for e in fresh {
            seen = e.id;
            println!(
                "{}  {:<10} {} -> {}  {}",
                e.at.format("%H:%M:%S"),
                e.action.as_deref().unwrap_or("?"),
                e.from_replicas.unwrap_or_default(),
                e.to_replicas.unwrap_or_default(),
                e.reason
            );
        }
    }
}

/// `ballast demo-worker INDEX`: one of the demo's workers. It holds its place until it is
/// told to stop (SIGTERM ends it at once, well inside the grace period).
pub fn worker() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
