//! Engine ticks with many policies against a real Prometheus (from scripts/services.sh).
//!
//! `cargo bench -p ballast-runtime --bench tick` creates `BALLAST_BENCH_POLICIES` policies
//! (default 10,000) in a SQLite store, each with two scale-up rules and one scale-down rule
//! on one of `BALLAST_BENCH_SERIES` series (default 1,000, so ten policies share a query)
//! scraped by Prometheus from a loopback exporter, then runs a first tick (states loaded,
//! rule windows filled with range queries) and `BALLAST_BENCH_TICKS` warm ticks (default
//! 5, one a second). It prints each tick's duration, query count and phases (policies,
//! fetch, decide, save), and the process' resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ballast_core::{Format, load_policies};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_sources::testing::{TestExporter, TestPrometheus};
use ballast_store::Store;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn policy_yaml(i: usize, series: usize) -> String {
    let app = i % series;
    format!(
        "name: bench-{i}
min_replicas: 1
max_replicas: 50
cooldown_seconds: 60
metrics:
  load:
    query: app_load{{app=\"a{app}\"}}
scale_up_rules:
  - {{metric: load, operator: gt, threshold: 80, duration: 2m, scale_by: 2}}
  - {{metric: load, operator: gt, threshold: 95, duration: 30s, scale_by: 4}}
scale_down_rules:
  - {{metric: load, operator: lt, threshold: 20, duration: 5m, scale_by: -1}}
"
    )
}

#[tokio::main]
async fn main() {
    let policies = env_or("BALLAST_BENCH_POLICIES", 10_000);
    let series = env_or("BALLAST_BENCH_SERIES", 1_000).clamp(1, policies);
    let ticks = env_or("BALLAST_BENCH_TICKS", 5);

    let body: String = (0..series)
        .map(|a| format!("app_load{{app=\"a{a}\"}} {}\n", 30 + a % 40))
        .collect();
    let exporter = TestExporter::start(&body).await;
    let prometheus = TestPrometheus::start_scraping(exporter.addr()).await;
    let source = prometheus.source(Duration::from_secs(10));
    let probe = format!("app_load{{app=\"a{}\"}}", series - 1);
    let waited = Instant::now();
    while !matches!(
        source.instant(&probe, chrono::Utc::now()).await,
        ballast_core::MetricObservation::Samples(_)
    ) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .expect("the store opens");
    let created = Instant::now();
    for i in 0..policies {
        let spec = load_policies(&policy_yaml(i, series), Format::Yaml)
            .expect("the bench policy is valid")
            .remove(0)
            .spec;
        store.create_policy(&spec, "bench").await.expect("stored");
    }
    println!(
        "{policies} policies on {series} series stored in {:.1} s",
        created.elapsed().as_secs_f64()
    );
    let baseline = rss_kib("VmRSS:");

    let engine = Engine::new(
        store,
        Some(source),
        Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );
    let mut warm = Vec::new();
    for k in 0..=ticks {
        if k > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let started = Instant::now();
        let report = engine.tick(chrono::Utc::now()).await;
        engine.settle().await;
        let took = started.elapsed();
        assert_eq!(report.failures, 0, "{report:?}");
        println!(
            "tick {k}{}: {:>8.1} ms, {} policies evaluated, {} distinct queries, {} actions",
            if k == 0 { " (cold)" } else { "" },
            took.as_secs_f64() * 1e3,
            report.evaluated,
            report.queries,
            report.actions
        );
        println!(
            "  {}",
            report
                .phases
                .labelled()
                .iter()
                .map(|(name, d)| format!("{name} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if k > 0 {
            warm.push(took);
        }
    }
    warm.sort();
    if let Some(median) = warm.get(warm.len() / 2) {
        println!("warm tick median: {:.1} ms", median.as_secs_f64() * 1e3);
    }
    println!(
        "resident memory: {} MiB now, {} MiB peak ({} MiB before the engine started)",
        rss_kib("VmRSS:") / 1024,
        rss_kib("VmHWM:") / 1024,
        baseline / 1024
    );
}
