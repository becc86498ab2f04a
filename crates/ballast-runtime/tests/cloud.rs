//! A cloud node group through the whole engine, against the loopback server that follows
//! the Hetzner Cloud API reference (`ballast_cloud::testing::hetzner`): the decision's cost
//! estimate comes from the provider's catalogue, and a budget it would exceed holds the
//! group at the budget, with that reason recorded; a spare pool is kept as servers created
//! and ready beyond what the load needs.

use std::sync::Arc;
use std::time::Duration;

use ballast_cloud::GROUP_LABEL;
use ballast_cloud::testing::hetzner::{HetznerMock, TOKEN};
use ballast_core::{Format, load_policies};
use ballast_runtime::{Engine, EngineConfig, PushedSample, SeriesKey, Targets, Telemetry};
use ballast_store::{HistoryEntry, HistoryFilter, HistoryKind, Outcome, Store};
use uuid::Uuid;

/// The `target` block of a Hetzner node group named `web` on the mock (with the credentials
/// file written under `dir`).
fn target_block(mock: &HetznerMock, dir: &std::path::Path) -> String {
    let credentials = dir.join("hcloud.env");
    std::fs::write(&credentials, format!("HCLOUD_TOKEN={TOKEN}\n")).unwrap();
    format!(
        "target:
  type: hetzner
  group: web
  server_type: cx22
  image: ubuntu-24.04
  location: fsn1
  credentials_file: {credentials:?}
  endpoint: {endpoint:?}
  readiness: {{http: {health:?}}}
  drain: {{webhook: {drain:?}}}
  timeouts: {{poll_interval: 10ms, ready: 2s, create: 5s, delete: 5s, request: 5s}}
",
        endpoint = mock.endpoint(),
        health = mock.health_template(),
        drain = mock.drain_url(),
    )
}

/// An engine on an in-memory store holding the policy written in `yaml`.
async fn engine_with(yaml: &str) -> (Engine, Uuid) {
    let spec = load_policies(yaml, Format::Yaml)
        .expect("valid")
        .remove(0)
        .spec;
    let targets = Targets::default();
    assert_eq!(
        ballast_runtime::ExecutorFactory::check(&targets, spec.target.as_ref()),
        Vec::new()
    );
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let record = store.create_policy(&spec, "test").await.unwrap();
    let engine = Engine::new(
        store,
        None,
        Arc::new(targets),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );
    (engine, record.id)
}

/// The newest decision in the policy's history.
async fn last_decision(engine: &Engine, id: Uuid) -> HistoryEntry {
    engine
        .store()
        .history(&HistoryFilter {
            policy_id: Some(id),
            kind: Some(HistoryKind::Decision),
            limit: 10,
            ..HistoryFilter::default()
        })
        .await
        .unwrap()
        .items
        .remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_group_decision_is_priced_from_the_catalogue_and_held_at_the_budget() {
    let mock = HetznerMock::start().await;
    mock.add_server("web-old0", &[(GROUP_LABEL, "web")]);
    let dir = tempfile::tempdir().unwrap();

    // cx22 at fsn1 costs 0.00714 €/h gross in the mock's catalogue: a budget of 0.015 €/h
    // fits two servers, while the schedule asks for three.
    let yaml = format!(
        "name: web-nodes
min_replicas: 1
max_replicas: 10
max_hourly_cost: 0.015
schedules: [{{cron_expression: '* * * * *', desired_replicas: 3, timezone: UTC}}]
{}",
        target_block(&mock, dir.path())
    );
    let (engine, id) = engine_with(&yaml).await;
    let report = engine.tick(chrono::Utc::now()).await;
    assert_eq!((report.actions, report.failures), (1, 0), "{report:?}");
    engine.settle().await;

    let entry = last_decision(&engine, id).await;
    let decision = entry.decision.clone().expect("a decision");
    assert_eq!(
        (decision.current, decision.desired),
        (1, 2),
        "{}",
        entry.reason
    );
    let before = decision.hourly_cost_before.expect("priced");
    let after = decision.hourly_cost_after.expect("priced");
    assert!((before - 0.00714).abs() < 1e-9, "{before}");
    assert!((after - 0.01428).abs() < 1e-9, "{after}");
    assert!(entry.reason.contains("budget"), "{}", entry.reason);
    assert_eq!(entry.outcome, Some(Outcome::Succeeded), "{entry:?}");
    assert_eq!(mock.count(GROUP_LABEL, "web"), 2, "one server created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_groups_spare_pool_is_idle_servers_provisioned_beyond_the_load() {
    let mock = HetznerMock::start().await;
    mock.add_server("web-old0", &[(GROUP_LABEL, "web")]);
    let dir = tempfile::tempdir().unwrap();
    // 250 requests/s at 100 per server need 3 servers; the pool keeps one spare by default
    // and two while its schedule entry is in force (it fires every minute and lasts an
    // hour, so it always is here).
    let yaml = format!(
        "name: web-nodes
min_replicas: 1
max_replicas: 10
metrics:
  requests: {{source: pushed, query: requests_per_second}}
target_tracking: {{metric: requests, target: 100}}
spare:
  replicas: 1
  schedules: [{{cron_expression: '* * * * *', replicas: 2, duration: 1h, timezone: UTC}}]
{}",
        target_block(&mock, dir.path())
    );
    let (engine, id) = engine_with(&yaml).await;
    let now = chrono::Utc::now();
    let load = |value: f64| PushedSample {
        key: SeriesKey {
            name: "requests_per_second".to_owned(),
            labels: Default::default(),
        },
        value,
        at: now,
    };
    engine.pushed().push(vec![load(250.0)], now).unwrap();
    let report = engine.tick(now).await;
    assert_eq!((report.actions, report.failures), (1, 0), "{report:?}");
    engine.settle().await;

    let entry = last_decision(&engine, id).await;
    let decision = entry.decision.clone().expect("a decision");
    assert_eq!(
        (decision.current, decision.desired),
        (1, 5),
        "{}",
        entry.reason
    );
    let spare = decision
        .constraints
        .iter()
        .find(|c| c.constraint == ballast_core::Constraint::Spare)
        .unwrap_or_else(|| panic!("a spare step in {:?}", decision.constraints));
    assert_eq!((spare.before, spare.after), (3, 5), "{}", spare.reason);
    assert!(
        spare.reason.contains("2 spares") && spare.reason.contains("3 demand needs"),
        "{}",
        spare.reason
    );
    assert_eq!(entry.outcome, Some(Outcome::Succeeded), "{entry:?}");
    // Created and ready (the executor waits for each server's health check before it
    // reports success): two servers beyond the three the load needs, idle until it comes.
    assert_eq!(mock.count(GROUP_LABEL, "web"), 5);
    assert!(
        decision
            .hourly_cost_after
            .is_some_and(|c| (c - 5.0 * 0.00714).abs() < 1e-9),
        "spares are paid for and priced: {:?}",
        decision.hourly_cost_after
    );
}
