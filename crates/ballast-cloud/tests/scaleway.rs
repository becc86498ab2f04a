//! The Scaleway node group against a loopback server following Scaleway's Instance API v1
//! reference (`www.scaleway.com/en/developers/api/instance/`; see
//! `ballast_cloud::testing::scaleway`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ballast_cloud::testing::Fault;
use ballast_cloud::testing::scaleway::{PROJECT, SECRET_KEY, ScalewayMock, ZONE};
use ballast_cloud::{
    NodeMetric, Platform, PriceQuery, ProviderKind, build_with_env, check_with_env, parse,
    prices_with_env,
};
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_executor::{Executor, ExecutorError};
use serde_json::{Map, Value, json};

const TAG: &str = "ballast/group=web";

fn env(name: &str) -> Option<String> {
    match name {
        "SCW_SECRET_KEY" => Some(SECRET_KEY.to_string()),
        "SCW_DEFAULT_PROJECT_ID" => Some(PROJECT.to_string()),
        _ => None,
    }
}

fn target(mock: &ScalewayMock, extra: Value) -> Map<String, Value> {
    let mut t = json!({
        "type": "scaleway",
        "group": "web",
        "server_type": "DEV1-S",
        "image": "ubuntu_noble",
        "zone": ZONE,
        "labels": {"team": "platform"},
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

async fn group(
    mock: &ScalewayMock,
    extra: Value,
    metric: Option<Arc<dyn NodeMetric>>,
) -> Arc<dyn Executor> {
    let config = parse(&target(mock, extra)).expect("a valid target");
    let platform = Platform {
        kubernetes: None,
        node_metric: metric,
    };
    build_with_env(&config, platform, &env)
        .await
        .expect("the group builds")
}

fn count(mock: &ScalewayMock) -> u32 {
    mock.names(TAG).len() as u32
}

struct World {
    mock: ScalewayMock,
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        self.mock.reset();
        for i in 0..initial {
            self.mock.add_server(&format!("web-old{i}"), &[TAG]);
        }
        group(&self.mock, json!({}), None).await
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
async fn the_scaleway_node_group_conforms() {
    let mut world = World {
        mock: ScalewayMock::start().await,
    };
    conformance::run(&mut world).await;
}

#[tokio::test]
async fn scale_up_creates_tagged_servers_sends_cloud_init_and_powers_them_on() {
    let mock = ScalewayMock::start().await;
    mock.set_polls(3);
    let g = group(&mock, json!({}), None).await;
    assert_eq!(g.scale(2).await, Ok(2));
    let names = mock.names(TAG);
    assert_eq!(names.len(), 2);
    for name in &names {
        let tags = mock.tags(name).expect("tags");
        assert!(tags.contains(&TAG.to_string()), "{tags:?}");
        assert!(tags.contains(&"team=platform".to_string()), "{tags:?}");
        assert_eq!(
            mock.user_data(name).as_deref(),
            Some(format!("#cloud-config\nhostname: {name}\n").as_str())
        );
    }
    let changes = mock.changes();
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(mock.changes(), changes, "the same count changes nothing");
}

#[tokio::test]
async fn the_group_is_read_through_every_page() {
    let mock = ScalewayMock::start().await;
    for i in 0..230 {
        mock.add_server(&format!("web-p{i:03}"), &[TAG]);
    }
    mock.add_server("db-1", &["ballast/group=db"]);
    let g = group(&mock, json!({}), None).await;
    let pages = mock.list_pages();
    assert_eq!(g.current().await, Ok(230));
    assert_eq!(mock.list_pages() - pages, 3, "100 + 100 + 30");
    assert_eq!(g.scale(231).await, Ok(231));
    assert_eq!(count(&mock), 231);
}

#[tokio::test]
async fn a_429_is_waited_out_as_retry_after_says() {
    let mock = ScalewayMock::start().await;
    let g = group(&mock, json!({}), None).await;
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

    let g = group(&mock, json!({"timeouts": {"rate_limit_wait": "1s"}}), None).await;
    mock.rate_limit_once(Duration::from_secs(60));
    match g.current().await {
        Err(ExecutorError::Transient(m)) => assert!(m.contains("rate limited"), "{m}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_becomes_ready_is_terminated_and_the_failure_recorded() {
    let mock = ScalewayMock::start().await;
    let g = group(
        &mock,
        json!({"timeouts": {"poll_interval": "10ms", "ready": "300ms"}}),
        None,
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
    assert_eq!(mock.all(), 0, "terminated");
    assert_eq!(mock.volumes(), 0, "with its volume");
    assert_eq!(g.current().await, Ok(0));
}

#[tokio::test]
async fn a_server_that_fails_to_boot_is_deleted_with_its_volume() {
    let mock = ScalewayMock::start().await;
    let g = group(&mock, json!({}), None).await;
    mock.fail_next_boot();
    let err = g.scale(1).await.expect_err("boot failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.message().contains("booting failed"), "{err:?}");
    assert_eq!(mock.all(), 0);
    assert_eq!(mock.volumes(), 0);
}

#[tokio::test]
async fn a_create_failing_mid_way_removes_the_half_made_server() {
    let mock = ScalewayMock::start().await;
    let g = group(&mock, json!({}), None).await;
    mock.fail_next_poweron();
    let err = g.scale(2).await.expect_err("poweron failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.message().contains("no capacity"), "{err:?}");
    assert!(
        err.message().contains("the half-made server was deleted"),
        "{err:?}"
    );
    assert!(err.message().contains("(1 of 2)"), "{err:?}");
    assert_eq!(mock.all(), 0, "nothing left behind");
    assert_eq!(mock.volumes(), 0);
    assert_eq!(g.scale(2).await, Ok(2));

    mock.fail_create(1, Fault::Permanent);
    let err = g.scale(4).await.expect_err("quota");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.message().contains("quotas_exceeded"), "{err:?}");
    assert_eq!(count(&mock), 3);
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
async fn scale_down_drains_then_terminates_the_least_utilized() {
    let mock = ScalewayMock::start().await;
    for n in ["web-a", "web-b", "web-c"] {
        mock.add_server(n, &[TAG]);
    }
    let metric = Fixed(
        [("web-a", 0.5), ("web-b", 0.8), ("web-c", 0.2)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    let g = group(
        &mock,
        json!({"node_metric": "node_load1"}),
        Some(Arc::new(metric)),
    )
    .await;
    assert_eq!(g.scale(2).await, Ok(2));
    let mut left = mock.names(TAG);
    left.sort();
    assert_eq!(left, ["web-a", "web-b"]);
    let order: Vec<String> = mock
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("drain ") || e.starts_with("delete"))
        .collect();
    assert_eq!(order, ["drain web-c", "delete web-c", "deleted web-c"]);

    // Without a metric: the newest.
    let g = group(&mock, json!({}), None).await;
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(mock.names(TAG), ["web-a"]);
}

#[tokio::test]
async fn the_description_and_the_price_list_come_from_the_products_catalogue() {
    let mock = ScalewayMock::start().await;
    let g = group(&mock, json!({}), None).await;
    let d = g.describe();
    assert_eq!(d.kind, "scaleway");
    assert_eq!(d.target, "group web (DEV1-S) at fr-par-1");
    assert_eq!(d.price_per_replica_hour, Some(0.0088));
    assert_eq!(d.currency.as_deref(), Some("EUR"));

    let query = PriceQuery {
        place: Some(ZONE.into()),
        endpoint: Some(mock.endpoint()),
        ..PriceQuery::default()
    };
    let rows = prices_with_env(ProviderKind::Scaleway, &query, &env)
        .await
        .expect("prices");
    let flat: Vec<(&str, f64, Option<f64>, Option<f64>)> = rows
        .iter()
        .map(|r| (r.server_type.as_str(), r.hourly, r.cpus, r.memory_gb))
        .collect();
    assert_eq!(
        flat,
        [
            ("DEV1-S", 0.0088, Some(2.0), Some(2.0)),
            ("DEV1-M", 0.0198, Some(3.0), Some(4.0)),
            ("GP1-XS", 0.091, Some(4.0), Some(16.0)),
        ]
    );
    let no_zone = prices_with_env(ProviderKind::Scaleway, &PriceQuery::default(), &env).await;
    assert!(
        no_zone
            .expect_err("a zone is needed")
            .message()
            .contains("zone")
    );
}

#[tokio::test]
async fn the_secret_key_never_shows_in_debug_output_or_errors() {
    let mock = ScalewayMock::start().await;
    let g = group(&mock, json!({}), None).await;
    assert!(!format!("{g:?}").contains(SECRET_KEY));
    let wrong = "scw-wrong-secret-9999";
    let config = parse(&target(&mock, json!({}))).expect("valid");
    let g = build_with_env(&config, Platform::default(), &|n| match n {
        "SCW_SECRET_KEY" => Some(wrong.to_string()),
        other => env(other),
    })
    .await
    .expect("builds");
    let err = g.scale(1).await.expect_err("denied");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.message().contains("denied_authentication"), "{err:?}");
    assert!(!err.message().contains(wrong), "{err:?}");
    assert!(!format!("{g:?}").contains(wrong));
}

#[test]
fn bad_target_blocks_are_named_by_their_field() {
    let base = json!({
        "type": "scaleway", "group": "web", "server_type": "DEV1-S",
        "image": "ubuntu_noble", "zone": ZONE,
    });
    let paths = |extra: Value, env: &(dyn Fn(&str) -> Option<String> + Sync)| -> Vec<String> {
        let mut t = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            t[k] = v.clone();
        }
        check_with_env(t.as_object().expect("object"), env)
            .into_iter()
            .map(|p| p.path)
            .collect()
    };
    assert_eq!(paths(json!({}), &env), Vec::<String>::new());
    assert_eq!(
        paths(json!({"location": "fsn1"}), &env),
        ["target.location"]
    );
    assert_eq!(
        paths(json!({"ssh_keys": ["ops"]}), &env),
        ["target.ssh_keys"]
    );
    assert_eq!(
        paths(json!({"labels": {"a,b": "c"}}), &env),
        ["target.labels.a,b"]
    );
    // The project may come from the block instead of SCW_DEFAULT_PROJECT_ID.
    let only_key = |n: &str| (n == "SCW_SECRET_KEY").then(|| SECRET_KEY.to_string());
    let missing = check_with_env(base.as_object().expect("object"), &only_key);
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0]
            .reason
            .contains("SCW_DEFAULT_PROJECT_ID is not set"),
        "{missing:?}"
    );
    assert_eq!(
        paths(json!({"project": PROJECT}), &only_key),
        Vec::<String>::new()
    );
}
