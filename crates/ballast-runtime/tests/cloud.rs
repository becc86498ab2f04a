//! A cloud node group through the whole engine, against the loopback server that follows
//! the Hetzner Cloud API reference (`ballast_cloud::testing::hetzner`): the decision's cost
//! estimate comes from the provider's catalogue, and a budget it would exceed holds the
//! group at the budget, with that reason recorded.

use std::sync::Arc;
use std::time::Duration;

use ballast_cloud::GROUP_LABEL;
use ballast_cloud::testing::hetzner::{HetznerMock, TOKEN};
use ballast_core::{Format, load_policies};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_store::{HistoryFilter, HistoryKind, Outcome, Store};

#[tokio::test(flavor = "multi_thread")]
async fn a_node_group_decision_is_priced_from_the_catalogue_and_held_at_the_budget() {
    let mock = HetznerMock::start().await;
    mock.add_server("web-old0", &[(GROUP_LABEL, "web")]);
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("hcloud.env");
    std::fs::write(&credentials, format!("HCLOUD_TOKEN={TOKEN}\n")).unwrap();

    // cx22 at fsn1 costs 0.00714 €/h gross in the mock's catalogue: a budget of 0.015 €/h
    // fits two servers, while the schedule asks for three.
    let yaml = format!(
        "name: web-nodes
min_replicas: 1
max_replicas: 10
max_hourly_cost: 0.015
schedules: [{{cron_expression: '* * * * *', desired_replicas: 3, timezone: UTC}}]
target:
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
    );
    let spec = load_policies(&yaml, Format::Yaml)
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
    let report = engine.tick(chrono::Utc::now()).await;
    assert_eq!((report.actions, report.failures), (1, 0), "{report:?}");
    engine.settle().await;

    let entry = engine
        .store()
        .history(&HistoryFilter {
            policy_id: Some(record.id),
            kind: Some(HistoryKind::Decision),
            limit: 10,
            ..HistoryFilter::default()
        })
        .await
        .unwrap()
        .items
        .remove(0);
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
