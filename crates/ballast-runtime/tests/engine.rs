//! The engine end to end, against a real Prometheus (installed by `scripts/services.sh`)
//! and a SQLite store on disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ballast_core::{Action, Constraint, Format, MetricObservation, PolicyState, load_policies};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_sources::testing::{TestExporter, TestPrometheus};
use ballast_store::{HistoryEntry, HistoryFilter, HistoryKind, Outcome, PolicyRecord, Store};
use chrono::{TimeDelta, Utc};
use tempfile::TempDir;

/// A SQLite store in a fresh temporary directory (kept alive by the returned `TempDir`).
async fn file_store() -> (TempDir, String, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/b.db", dir.path().display());
    let store = Store::connect(&url).await.expect("the store opens");
    (dir, url, store)
}

async fn create(store: &Store, yaml: &str) -> PolicyRecord {
    let policies = load_policies(yaml, Format::Yaml).expect("the test policy is valid");
    store
        .create_policy(&policies[0].spec, "test")
        .await
        .expect("the policy is stored")
}

fn engine(store: Store, prometheus: &TestPrometheus, telemetry: Arc<Telemetry>) -> Engine {
    Engine::new(
        store,
        Some(prometheus.source(Duration::from_secs(2))),
        std::sync::Arc::new(Targets::default()),
        telemetry,
        EngineConfig {
            interval: Duration::from_secs(1),
            query_timeout: Duration::from_secs(2),
            concurrency: 4,
            ..EngineConfig::default()
        },
    )
}

/// The decision entries (not dry runs) of a policy with this action.
async fn decisions(store: &Store, record: &PolicyRecord, action: &str) -> Vec<HistoryEntry> {
    store
        .history(&HistoryFilter {
            policy_id: Some(record.id),
            kind: Some(HistoryKind::Decision),
            action: Some(action.to_owned()),
            limit: 500,
            ..HistoryFilter::default()
        })
        .await
        .expect("history reads")
        .items
        .into_iter()
        .filter(|e| !e.dry_run)
        .collect()
}

/// `# TYPE queue_depth gauge` with `value` every 15 s from 5 min ago to 15 min ahead, so
/// instant queries at any time of the test see it.
fn backfill_queue_depth(value: f64) -> String {
    let now = Utc::now().timestamp();
    let mut om = String::from("# TYPE queue_depth gauge\n");
    let mut t = now - 300;
    while t <= now + 900 {
        om.push_str(&format!("queue_depth {value} {t}\n"));
        t += 15;
    }
    om.push_str("# EOF\n");
    om
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_that_holds_for_its_duration_scales_within_one_interval() {
    let exporter = TestExporter::start("queue_depth 500\n").await;
    let prometheus = TestPrometheus::start_scraping(exporter.addr()).await;
    let (_dir, _url, store) = file_store().await;
    let record = create(
        &store,
        r#"
name: queue
min_replicas: 1
max_replicas: 10
evaluation_interval: 1s
scale_up_cooldown: 0s
metrics:
  queue_depth:
    query: queue_depth
    max_staleness: 10s
scale_up_rules:
  - metric: queue_depth
    operator: gt
    threshold: 100
    duration: 3s
    scale_by: 2
"#,
    )
    .await;
    let telemetry = Arc::new(Telemetry::new());
    let engine = engine(store.clone(), &prometheus, telemetry.clone());

    // Tick from before the first scrape, as the engine's loop would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        engine.tick(Utc::now()).await;
        engine.settle().await;
        if let Some(entry) = decisions(&store, &record, "scale_up").await.pop() {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "no scale-up within 30 s; exporter scraped {} times\n--- Prometheus' log:\n{}",
            exporter.scrapes(),
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // When the value first became visible: the oldest raw sample Prometheus holds.
    let raw = prometheus
        .source(Duration::from_secs(2))
        .instant("queue_depth[5m]", Utc::now())
        .await;
    let MetricObservation::Samples(samples) = raw else {
        panic!("raw samples of queue_depth: {raw:?}");
    };
    let first_visible = samples.first().expect("at least one sample").at;

    let decision = entry
        .decision
        .clone()
        .expect("a decision entry has its decision");
    assert_eq!(decision.action, Action::ScaleUp);
    assert_eq!((decision.current, decision.desired), (1, 3), "{decision:?}");
    assert_eq!(entry.outcome, Some(Outcome::Succeeded), "{entry:?}");
    let after = decision.at - first_visible;
    assert!(
        after >= TimeDelta::seconds(3),
        "scaled {after} after the value became visible, before the rule's 3 s"
    );
    // 3 s, plus up to two evaluation intervals and one scrape of jitter.
    assert!(
        after <= TimeDelta::seconds(3 + 2 + 1),
        "scaled {after} after the value became visible: more than one interval late"
    );
    assert!(
        entry.reason.contains("queue_depth > 100"),
        "the history reason names the rule: {}",
        entry.reason
    );
    assert!(
        decision
            .proposals
            .iter()
            .any(|p| p.reason.contains("queue_depth > 100")),
        "a proposal names the rule: {:?}",
        decision.proposals
    );
    let metrics = telemetry.render();
    let count = metrics
        .lines()
        .find(|l| l.starts_with("ballast_decisions_total{action=\"scale_up\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no scale_up decision count in:\n{metrics}"));
    assert!(count >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_in_the_middle_of_a_cooldown_does_not_let_the_policy_act_early() {
    let prometheus = TestPrometheus::start_with_backfill(&backfill_queue_depth(500.0)).await;
    let (_dir, url, store) = file_store().await;
    let record = create(
        &store,
        r#"
name: queue
min_replicas: 1
max_replicas: 10
evaluation_interval: 1s
scale_up_cooldown: 1h
scale_up_rules:
  - metric: queue_depth
    operator: gt
    threshold: 100
    scale_by: 2
"#,
    )
    .await;

    let t0 = Utc::now();
    let first = engine(store.clone(), &prometheus, Arc::new(Telemetry::new()));
    let report = first.tick(t0).await;
    first.settle().await;
    assert_eq!((report.evaluated, report.actions), (1, 1), "{report:?}");
    let ups = decisions(&store, &record, "scale_up").await;
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].outcome, Some(Outcome::Succeeded));
    let saved = store.load_state(record.id).await.unwrap().expect("a state");
    assert_eq!(saved.desired, Some(3));
    let last_scale_up = saved.last_scale_up.expect("the scale-up is remembered");
    drop(first);
    store.close().await;
    drop(store);

    // A new process: the same file, a new engine and executor.
    let store = Store::connect(&url).await.expect("the store opens again");
    let telemetry = Arc::new(Telemetry::new());
    let second = engine(store.clone(), &prometheus, telemetry.clone());
    for k in 1..=5 {
        let report = second.tick(t0 + TimeDelta::seconds(2 * k)).await;
        assert_eq!((report.evaluated, report.actions), (1, 0), "{report:?}");
    }
    let ups = decisions(&store, &record, "scale_up").await;
    assert_eq!(
        ups.len(),
        1,
        "no second scale-up inside the cooldown: {ups:?}"
    );
    let state = store.load_state(record.id).await.unwrap().expect("a state");
    assert_eq!(state.last_scale_up, Some(last_scale_up));
    assert_eq!(state.desired, Some(3));
    assert!(state.last_evaluated > Some(t0), "{state:?}");

    let (decision, _) = second
        .evaluate(&record, t0 + TimeDelta::seconds(12), "test")
        .await
        .expect("a dry run");
    assert_eq!(decision.action, Action::Hold, "{decision:?}");
    assert_eq!(
        decision.current, 3,
        "the count is taken from the saved state"
    );
    assert_eq!(decision.desired, 3);
    assert!(
        decision
            .constraints
            .iter()
            .any(|c| c.constraint == Constraint::Cooldown && c.reason.contains("cooldown")),
        "{:?}",
        decision.constraints
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_query_is_recorded_and_never_scales_down() {
    let prometheus = TestPrometheus::start_with_backfill(&backfill_queue_depth(5.0)).await;
    let (_dir, _url, store) = file_store().await;
    let record = create(
        &store,
        r#"
name: queue
min_replicas: 1
max_replicas: 10
evaluation_interval: 1s
scale_down_cooldown: 0s
metrics:
  queue_depth:
    query: no_such_function(queue_depth)
scale_down_rules:
  - metric: queue_depth
    operator: lt
    threshold: 1000
    scale_by: -1
"#,
    )
    .await;
    store
        .save_state(
            record.id,
            &PolicyState {
                desired: Some(5),
                ..PolicyState::default()
            },
        )
        .await
        .unwrap();
    let telemetry = Arc::new(Telemetry::new());
    let engine = engine(store.clone(), &prometheus, telemetry.clone());

    let t0 = Utc::now();
    for k in 0..3 {
        let report = engine.tick(t0 + TimeDelta::seconds(2 * k)).await;
        assert_eq!((report.evaluated, report.actions), (1, 0), "{report:?}");
    }
    assert!(decisions(&store, &record, "scale_down").await.is_empty());
    assert_eq!(
        store.load_state(record.id).await.unwrap().unwrap().desired,
        Some(5)
    );
    let metrics = telemetry.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ballast_errors_total{kind=\"query\"}") && !l.ends_with(" 0")),
        "{metrics}"
    );

    let (decision, id) = engine
        .evaluate(&record, t0 + TimeDelta::seconds(8), "test")
        .await
        .expect("a dry run");
    assert_eq!(decision.current, 5);
    assert!(decision.desired >= decision.current, "{decision:?}");
    assert_eq!(decision.action, Action::Hold);
    assert!(
        decision
            .data_problems
            .iter()
            .any(|p| p.contains("bad_data") && p.contains("no_such_function")),
        "Prometheus' own words: {:?}",
        decision.data_problems
    );
    // The dry run is in history with the same problems.
    let entry = store
        .history(&HistoryFilter {
            policy_id: Some(record.id),
            kind: Some(HistoryKind::Decision),
            ..HistoryFilter::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.id == id)
        .expect("the dry run is recorded");
    assert_eq!(entry.decision.as_ref(), Some(&decision));
}
