//! Budget alerts through the engine: a policy whose estimated hourly spend reaches 90 % of
//! its `max_hourly_cost` raises one alert per crossing, and its share of the budget is
//! published as `ballast_budget_used_ratio{policy}` next to `ballast_budget_alerts_total`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ballast_core::{Format, PolicySpec, load_policies};
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem};
use ballast_runtime::{Engine, EngineConfig, ExecutorFactory, TargetBlock, Telemetry};
use ballast_store::{PolicyRecord, Store};
use chrono::{TimeDelta, Utc};

/// A target at 0.5 €/h per replica whose count starts at 1 and follows every scale.
#[derive(Debug)]
struct Priced {
    count: Mutex<u32>,
}

#[async_trait]
impl Executor for Priced {
    fn describe(&self) -> Description {
        Description {
            price_per_replica_hour: Some(0.5),
            currency: Some("EUR".to_owned()),
            ..Description::new("priced", "test target")
        }
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        Ok(*self.count.lock().unwrap())
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        *self.count.lock().unwrap() = to;
        Ok(to)
    }
}

#[derive(Debug)]
struct Factory(Arc<Priced>);

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

/// A policy whose schedule asks for 3 replicas: 3 × 0.5 €/h = 1.5 €/h against a budget of
/// 1.6 €/h is 93.75 % of it (and within it, so the budget constraint lets all 3 run).
fn spec(yaml_extra: &str) -> PolicySpec {
    load_policies(
        &format!(
            "name: spend\nmin_replicas: 1\nmax_replicas: 10\n{yaml_extra}\
             schedules: [{{cron_expression: '* * * * *', desired_replicas: 3, timezone: UTC}}]\n"
        ),
        Format::Yaml,
    )
    .expect("valid")
    .remove(0)
    .spec
}

async fn setup(spec: &PolicySpec) -> (Engine, Arc<Priced>, PolicyRecord) {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let record = store.create_policy(spec, "test").await.expect("stored");
    let target = Arc::new(Priced {
        count: Mutex::new(1),
    });
    let engine = Engine::new(
        store,
        None,
        Arc::new(Factory(target.clone())),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );
    (engine, target, record)
}

/// The value of `metric{policy="spend"}` in the `/metrics` text, if the series exists.
fn sample(engine: &Engine, metric: &str) -> Option<f64> {
    let text = engine.telemetry().render();
    let prefix = format!("{metric}{{policy=\"spend\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("a number"))
}

async fn set_budget(engine: &Engine, record: &PolicyRecord, budget: f64) -> PolicyRecord {
    let current = engine
        .store()
        .get_policy(record.id)
        .await
        .expect("read")
        .expect("present");
    let mut spec = current.spec.clone();
    spec.max_hourly_cost = Some(budget);
    engine
        .store()
        .update_policy(record.id, &spec, current.version, "test")
        .await
        .expect("updated")
}

#[tokio::test]
async fn spend_reaching_ninety_percent_of_the_budget_alerts_once_per_crossing() {
    let (engine, target, record) = setup(&spec("max_hourly_cost: 1.6\n")).await;
    let t0 = Utc::now();

    // 1 → 3 replicas: 1.5 €/h of 1.6 €/h.
    let report = engine.tick(t0).await;
    assert_eq!(report.actions, 1, "{report:?}");
    engine.settle().await;
    assert_eq!(*target.count.lock().unwrap(), 3);
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), Some(0.9375));
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), Some(1.0));

    // Holding at 3 stays above the threshold: no second alert.
    engine.tick(t0 + TimeDelta::seconds(2)).await;
    engine.tick(t0 + TimeDelta::seconds(4)).await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), Some(0.9375));
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), Some(1.0));

    // A larger budget brings the ratio down and arms the alert again...
    set_budget(&engine, &record, 10.0).await;
    engine.tick(t0 + TimeDelta::seconds(6)).await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), Some(0.15));
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), Some(1.0));

    // ...so the next crossing alerts once more.
    set_budget(&engine, &record, 1.6).await;
    engine.tick(t0 + TimeDelta::seconds(8)).await;
    engine.tick(t0 + TimeDelta::seconds(10)).await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), Some(0.9375));
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), Some(2.0));

    // A deleted policy's ratio leaves /metrics.
    let current = engine
        .store()
        .get_policy(record.id)
        .await
        .expect("read")
        .expect("present");
    engine
        .store()
        .delete_policy(record.id, Some(current.version), "test")
        .await
        .expect("deleted");
    engine.tick(t0 + TimeDelta::seconds(12)).await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), None);
}

#[tokio::test]
async fn spend_below_ninety_percent_or_without_a_budget_raises_no_alert() {
    // 1.5 €/h of 2 €/h is 75 %.
    let (engine, _target, _record) = setup(&spec("max_hourly_cost: 2\n")).await;
    engine.tick(Utc::now()).await;
    engine.settle().await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), Some(0.75));
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), None);

    let (engine, _target, _record) = setup(&spec("")).await;
    engine.tick(Utc::now()).await;
    engine.settle().await;
    assert_eq!(sample(&engine, "ballast_budget_used_ratio"), None);
    assert_eq!(sample(&engine, "ballast_budget_alerts_total"), None);
}
