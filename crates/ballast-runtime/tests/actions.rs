//! How the engine carries decisions out: in the background, one action per target at a
//! time, transient errors retried with backoff, permanent ones marking the policy failing,
//! and the outcome recorded on the decision either way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ballast_core::{Format, load_policies};
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem};
use ballast_runtime::{Engine, EngineConfig, ExecutorFactory, TargetBlock, Telemetry};
use ballast_store::{HistoryEntry, HistoryFilter, HistoryKind, Outcome, PolicyRecord, Store};
use chrono::{TimeDelta, Utc};

/// A target whose count starts at 1 and whose `scale` answers from a script first.
#[derive(Debug, Default)]
struct Scripted {
    count: Mutex<u32>,
    script: Mutex<VecDeque<ExecutorError>>,
    calls: Mutex<u32>,
    /// Held while a scale runs, so a test can keep an action in flight.
    gate: tokio::sync::Mutex<()>,
}

#[async_trait]
impl Executor for Scripted {
    fn describe(&self) -> Description {
        Description {
            price_per_replica_hour: Some(0.5),
            currency: Some("EUR".to_owned()),
            ..Description::new("scripted", "test target")
        }
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        Ok(*self.count.lock().unwrap())
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let _gate = self.gate.lock().await;
        *self.calls.lock().unwrap() += 1;
        if let Some(e) = self.script.lock().unwrap().pop_front() {
            return Err(e);
        }
        *self.count.lock().unwrap() = to;
        Ok(to)
    }
}

#[derive(Debug)]
struct Factory(Arc<Scripted>);

#[async_trait]
impl ExecutorFactory for Factory {
    fn check(&self, _: Option<&TargetBlock>) -> Vec<TargetProblem> {
        Vec::new()
    }
    async fn build(
        &self,
        _: &str,
        _: Option<&TargetBlock>,
        _: u32,
    ) -> Result<Box<dyn Executor>, ExecutorError> {
        Ok(Box::new(self.0.clone()))
    }
}

/// A policy that wants 3 replicas whatever the metrics say (a schedule's floor that fires
/// every minute), on a store.
async fn setup(script: Vec<ExecutorError>) -> (Engine, Arc<Scripted>, PolicyRecord) {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let spec = load_policies(
        "name: floor\nmin_replicas: 1\nmax_replicas: 10\nprice_per_replica_hour: 2\n\
         schedules: [{cron_expression: '* * * * *', desired_replicas: 3, timezone: UTC}]\n",
        Format::Yaml,
    )
    .expect("valid")
    .remove(0)
    .spec;
    let record = store.create_policy(&spec, "test").await.expect("stored");
    let target = Arc::new(Scripted {
        count: Mutex::new(1),
        script: Mutex::new(script.into()),
        ..Scripted::default()
    });
    let engine = Engine::new(
        store,
        None,
        Arc::new(Factory(target.clone())),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: Duration::from_secs(1),
            attempts: 3,
            retry_backoff: Duration::from_millis(10),
            ..EngineConfig::default()
        },
    );
    (engine, target, record)
}

async fn decisions(engine: &Engine, record: &PolicyRecord) -> Vec<HistoryEntry> {
    engine
        .store()
        .history(&HistoryFilter {
            policy_id: Some(record.id),
            kind: Some(HistoryKind::Decision),
            limit: 100,
            ..HistoryFilter::default()
        })
        .await
        .expect("history")
        .items
}

#[tokio::test]
async fn a_transient_error_is_retried_and_the_success_recorded() {
    let (engine, target, record) =
        setup(vec![ExecutorError::Transient("409 conflict".into())]).await;
    let report = engine.tick(Utc::now()).await;
    assert_eq!(report.actions, 1, "{report:?}");
    engine.settle().await;
    assert_eq!(*target.calls.lock().unwrap(), 2, "one failure, one retry");
    assert_eq!(*target.count.lock().unwrap(), 3);
    let entries = decisions(&engine, &record).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].outcome,
        Some(Outcome::Succeeded),
        "{:?}",
        entries[0]
    );
    assert_eq!(engine.failing(record.id), None);
}

#[tokio::test]
async fn transient_errors_past_the_attempts_fail_without_marking_the_policy() {
    let busy = || ExecutorError::Transient("503 unavailable".into());
    let (engine, target, record) = setup(vec![busy(), busy(), busy()]).await;
    engine.tick(Utc::now()).await;
    engine.settle().await;
    assert_eq!(*target.calls.lock().unwrap(), 3, "the configured attempts");
    let entries = decisions(&engine, &record).await;
    assert_eq!(entries[0].outcome, Some(Outcome::Failed));
    let detail = entries[0].outcome_detail.clone().unwrap_or_default();
    assert!(
        detail.contains("503 unavailable") && detail.contains("after 3 attempts"),
        "{detail}"
    );
    assert_eq!(
        engine.failing(record.id),
        None,
        "transient errors do not mark it failing"
    );
}

#[tokio::test]
async fn a_permanent_error_is_not_retried_and_marks_the_policy_failing_until_a_success() {
    let (engine, target, record) = setup(vec![ExecutorError::Permanent(
        "403 forbidden: no RBAC".into(),
    )])
    .await;
    let t0 = Utc::now();
    engine.tick(t0).await;
    engine.settle().await;
    assert_eq!(*target.calls.lock().unwrap(), 1, "no retry");
    let entries = decisions(&engine, &record).await;
    assert_eq!(entries[0].outcome, Some(Outcome::Failed));
    let failing = engine.failing(record.id).expect("marked failing");
    assert!(failing.reason.contains("no RBAC"), "{failing:?}");

    // The failed action still started the cooldown, so a broken target is not hammered
    // every tick; after it, the engine tries again (the operator may have fixed the
    // permission), and a success clears the mark.
    engine.tick(t0 + TimeDelta::seconds(2)).await;
    engine.settle().await;
    assert_eq!(*target.calls.lock().unwrap(), 1, "held by the cooldown");
    engine.tick(t0 + TimeDelta::minutes(10)).await;
    engine.settle().await;
    assert_eq!(*target.count.lock().unwrap(), 3);
    assert_eq!(engine.failing(record.id), None);
}

#[tokio::test]
async fn a_policy_whose_action_is_in_flight_waits_for_the_next_tick() {
    let (engine, target, record) = setup(Vec::new()).await;
    let gate = target.gate.lock().await;
    let t0 = Utc::now();
    let first = engine.tick(t0).await;
    assert_eq!(first.actions, 1);
    let second = engine.tick(t0 + TimeDelta::seconds(2)).await;
    assert_eq!((second.busy, second.evaluated), (1, 0), "{second:?}");
    let pending = decisions(&engine, &record).await;
    assert_eq!(
        pending.len(),
        1,
        "no second decision while the first is in flight"
    );
    assert_eq!(pending[0].outcome, Some(Outcome::Pending));
    drop(gate);
    engine.settle().await;
    assert_eq!(
        decisions(&engine, &record).await[0].outcome,
        Some(Outcome::Succeeded)
    );
    assert_eq!(*target.calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn the_cost_estimate_uses_the_executors_price_over_the_policys() {
    let (engine, _target, record) = setup(Vec::new()).await;
    engine.tick(Utc::now()).await;
    engine.settle().await;
    let entry = &decisions(&engine, &record).await[0];
    let decision = entry
        .decision
        .as_ref()
        .expect("a decision entry carries its decision");
    assert_eq!(decision.hourly_cost_before, Some(0.5));
    assert_eq!(decision.hourly_cost_after, Some(1.5));
}
