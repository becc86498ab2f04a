//! The OVHcloud node group against a loopback server following the OVHcloud API v1
//! reference (`/cloud` and `/order/catalog` of `eu.api.ovh.com/console`) and its request
//! signature (see `ballast_cloud::testing::ovh`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ballast_cloud::testing::Fault;
use ballast_cloud::testing::ovh::{
    APPLICATION_KEY, APPLICATION_SECRET, CONSUMER_KEY, OvhMock, PROJECT, REGION,
};
use ballast_cloud::{
    NodeMetric, Platform, PriceQuery, ProviderKind, build_with_env, check_with_env, parse,
    prices_with_env,
};
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_executor::{Executor, ExecutorError};
use serde_json::{Map, Value, json};

fn env(name: &str) -> Option<String> {
    match name {
        "OVH_APPLICATION_KEY" => Some(APPLICATION_KEY.to_string()),
        "OVH_APPLICATION_SECRET" => Some(APPLICATION_SECRET.to_string()),
        "OVH_CONSUMER_KEY" => Some(CONSUMER_KEY.to_string()),
        _ => None,
    }
}

fn target(mock: &OvhMock, extra: Value) -> Map<String, Value> {
    let mut t = json!({
        "type": "ovh",
        "group": "web",
        "server_type": "b2-7",
        "image": "img-debian-12",
        "region": REGION,
        "project": PROJECT,
        "ssh_keys": ["ops"],
        "user_data_template": "#cloud-config\nhostname: {{ name }}\n",
        "readiness": {"http": mock.health_template()},
        "drain": {"webhook": mock.drain_url()},
        "endpoint": mock.endpoint(),
        "timeouts": {"poll_interval": "10ms", "ready": "1s", "create": "5s", "delete": "5s", "rate_limit_wait": "5s", "request": "5s"},
    });
    for (k, v) in extra.as_object().expect("an object") {
        t[k] = v.clone();
    }
    t.as_object().expect("an object").clone()
}

async fn group_with(
    mock: &OvhMock,
    extra: Value,
    metric: Option<Arc<dyn NodeMetric>>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Arc<dyn Executor> {
    let config = parse(&target(mock, extra)).expect("a valid target");
    let platform = Platform {
        kubernetes: None,
        node_metric: metric,
    };
    build_with_env(&config, platform, env)
        .await
        .expect("the group builds")
}

async fn group(mock: &OvhMock, extra: Value) -> Arc<dyn Executor> {
    group_with(mock, extra, None, &env).await
}

fn count(mock: &OvhMock) -> u32 {
    mock.names("web-").len() as u32
}

struct World {
    mock: OvhMock,
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        self.mock.reset();
        for i in 0..initial {
            self.mock.add_instance(&format!("web-old{i:03}"));
        }
        group(&self.mock, json!({})).await
    }
    async fn observed(&self) -> u32 {
        count(&self.mock)
    }
    async fn changes(&self) -> Option<u64> {
        Some(self.mock.changes())
    }
    async fn fail_next(&self, failure: Failure) -> bool {
        self.mock.fail_create(
            0,
            match failure {
                Failure::Transient => Fault::Transient,
                Failure::Permanent => Fault::Permanent,
            },
        );
        true
    }
}

#[tokio::test]
async fn the_ovh_node_group_conforms() {
    let mut world = World {
        mock: OvhMock::start().await,
    };
    conformance::run(&mut world).await;
    assert!(world.mock.signed_ok() > 0);
}

#[tokio::test]
async fn scale_up_follows_the_operation_and_only_counts_the_groups_instances() {
    let mock = OvhMock::start().await;
    mock.set_polls(3);
    // Another group sharing the prefix, and an instance made by hand.
    mock.add_instance("web-api-abc123");
    mock.add_instance("web-hand-made");
    let g = group(&mock, json!({})).await;
    assert_eq!(g.current().await, Ok(0));
    assert_eq!(g.scale(2).await, Ok(2));
    let mine: Vec<String> = mock
        .names("web-")
        .into_iter()
        .filter(|n| n.len() == "web-".len() + 6)
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    for name in &mine {
        let (user_data, ssh_key) = mock.created_with(name).expect("created");
        assert_eq!(
            user_data,
            Some(format!("#cloud-config\nhostname: {name}\n"))
        );
        assert_eq!(ssh_key.as_deref(), Some("ops"));
    }
    assert_eq!(mock.all(), 4, "the others are left alone");
    let changes = mock.changes();
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(mock.changes(), changes);
}

#[tokio::test]
async fn requests_are_signed_with_the_servers_clock() {
    let mock = OvhMock::start().await;
    // The server's clock runs 20 minutes ahead: a signature with the local time would be
    // refused as out of time.
    mock.set_time_offset(1200);
    let g = group(&mock, json!({})).await;
    assert_eq!(g.scale(1).await, Ok(1));
    assert!(
        mock.journal().matching("refused").is_empty(),
        "{:?}",
        mock.journal().entries()
    );
    assert_eq!(mock.time_calls(), 1, "the offset is read once");
}

#[tokio::test]
async fn a_request_signed_with_another_secret_is_refused_as_an_invalid_signature() {
    let mock = OvhMock::start().await;
    let tampered = |name: &str| match name {
        "OVH_APPLICATION_SECRET" => Some("not-the-secret".to_string()),
        other => env(other),
    };
    let g = group_with(&mock, json!({}), None, &tampered).await;
    let err = g.current().await.expect_err("refused");
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        err.message()
            .contains("Client::Forbidden::InvalidSignature"),
        "{err:?}"
    );
    assert!(
        err.message().contains("query EU.ext-3"),
        "the query id is kept: {err:?}"
    );
    assert!(!err.message().contains("not-the-secret"), "{err:?}");
    assert_eq!(mock.signed_ok(), 0);
    assert!(!mock.journal().matching("refused GET").is_empty());
    assert!(
        g.describe().price_per_replica_hour.is_none(),
        "the flavor could not be read"
    );
}

#[tokio::test]
async fn a_429_is_waited_out_as_retry_after_says() {
    let mock = OvhMock::start().await;
    let g = group(&mock, json!({})).await;
    mock.rate_limit_once(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(
        mock.journal().matching("429").len(),
        1,
        "{:?}",
        mock.journal().entries()
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn an_instance_that_never_becomes_ready_is_deleted_and_the_failure_recorded() {
    let mock = OvhMock::start().await;
    let g = group(
        &mock,
        json!({"timeouts": {"poll_interval": "10ms", "ready": "300ms"}}),
    )
    .await;
    mock.never_ready_next();
    let err = g.scale(1).await.expect_err("never ready");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.message().contains("never became ready within 300ms"),
        "{err:?}"
    );
    assert!(err.message().contains("it was deleted"), "{err:?}");
    assert_eq!(mock.all(), 0);
    assert_eq!(mock.journal().matching("deleted ").len(), 1);
}

#[tokio::test]
async fn an_operation_in_error_deletes_the_instance() {
    let mock = OvhMock::start().await;
    let g = group(&mock, json!({})).await;
    mock.fail_next_operation();
    let err = g.scale(1).await.expect_err("the operation failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.message().contains("ended in-error"), "{err:?}");
    assert_eq!(mock.all(), 0, "the ERROR instance was deleted");

    mock.fail_create(1, Fault::Permanent);
    let err = g.scale(3).await.expect_err("quota");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.message().contains("QuotaExceeded"), "{err:?}");
    assert_eq!(count(&mock), 1, "the first came up");
}

#[derive(Debug)]
struct Fixed(HashMap<String, f64>);

#[async_trait]
impl NodeMetric for Fixed {
    async fn values(&self) -> Result<HashMap<String, f64>, ExecutorError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn scale_down_drains_then_deletes_the_least_utilized_or_the_newest() {
    let mock = OvhMock::start().await;
    for n in ["web-aaaaaa", "web-bbbbbb", "web-cccccc"] {
        mock.add_instance(n);
    }
    let metric = Fixed(
        [
            ("web-aaaaaa", 0.1),
            ("web-bbbbbb", 0.6),
            ("web-cccccc", 0.3),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    let g = group_with(
        &mock,
        json!({"node_metric": "node_load1"}),
        Some(Arc::new(metric)),
        &env,
    )
    .await;
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(mock.names("web-"), ["web-bbbbbb", "web-cccccc"]);
    let order: Vec<String> = mock
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("drain ") || e.starts_with("delete"))
        .collect();
    assert_eq!(
        order,
        [
            "drain web-aaaaaa",
            "delete web-aaaaaa",
            "deleted web-aaaaaa"
        ]
    );

    let g = group(&mock, json!({})).await;
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(mock.names("web-"), ["web-bbbbbb"], "the newest went");
}

#[tokio::test]
async fn prices_come_from_the_public_catalogue_by_hourly_plan_code() {
    let mock = OvhMock::start().await;
    let g = group(&mock, json!({})).await;
    let d = g.describe();
    assert_eq!(d.kind, "ovh");
    assert_eq!(d.target, "group web (b2-7) at GRA11");
    assert_eq!(d.price_per_replica_hour, Some(0.0681));
    assert_eq!(d.currency.as_deref(), Some("EUR"));

    let g = group(&mock, json!({"server_type": "c3-8"})).await;
    assert_eq!(g.describe().price_per_replica_hour, None, "no hourly plan");

    // The catalogue is public: no keys needed.
    let query = PriceQuery {
        endpoint: Some(mock.endpoint()),
        ..PriceQuery::default()
    };
    let rows = prices_with_env(ProviderKind::Ovh, &query, &|_| None)
        .await
        .expect("prices");
    let flat: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {:?} {:?} {}",
                r.server_type, r.location, r.hourly, r.cpus, r.memory_gb, r.currency
            )
        })
        .collect();
    assert_eq!(
        flat,
        [
            "d2-4 * 0.0178 Some(2.0) Some(4.0) EUR",
            "b2-7 * 0.0681 Some(2.0) Some(7.0) EUR",
        ]
    );
}

#[tokio::test]
async fn the_keys_never_show_in_debug_output() {
    let mock = OvhMock::start().await;
    let g = group(&mock, json!({})).await;
    let debug = format!("{g:?}");
    for secret in [APPLICATION_KEY, APPLICATION_SECRET, CONSUMER_KEY] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let config = parse(&target(&mock, json!({}))).expect("valid");
    let creds = ballast_cloud::Credentials::load(&config, &env).expect("credentials");
    let debug = format!("{creds:?}");
    for secret in [APPLICATION_KEY, APPLICATION_SECRET, CONSUMER_KEY] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn bad_target_blocks_are_named_by_their_field() {
    let base = json!({
        "type": "ovh", "group": "web", "server_type": "b2-7",
        "image": "img", "region": REGION, "project": PROJECT,
    });
    let problems =
        |extra: Value, env: &(dyn Fn(&str) -> Option<String> + Sync)| -> Vec<(String, String)> {
            let mut t = base.clone();
            for (k, v) in extra.as_object().expect("object") {
                if v.is_null() {
                    t.as_object_mut().expect("object").remove(k);
                } else {
                    t[k] = v.clone();
                }
            }
            check_with_env(t.as_object().expect("object"), env)
                .into_iter()
                .map(|p| (p.path, p.reason))
                .collect()
        };
    assert_eq!(problems(json!({}), &env), []);
    let paths =
        |extra: Value| -> Vec<String> { problems(extra, &env).into_iter().map(|p| p.0).collect() };
    assert_eq!(paths(json!({"project": null})), ["target.project"]);
    assert_eq!(paths(json!({"labels": {"a": "b"}})), ["target.labels"]);
    assert_eq!(paths(json!({"ssh_keys": ["a", "b"]})), ["target.ssh_keys"]);
    assert_eq!(paths(json!({"location": "x"})), ["target.location"]);
    let no_consumer = |n: &str| {
        if n == "OVH_CONSUMER_KEY" {
            None
        } else {
            env(n)
        }
    };
    let p = problems(json!({}), &no_consumer);
    assert_eq!(p.len(), 1);
    assert!(p[0].1.contains("OVH_CONSUMER_KEY is not set"), "{p:?}");
    assert!(!p[0].1.contains(APPLICATION_SECRET), "{p:?}");
}
