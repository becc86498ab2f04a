//! The Hetzner node group against a loopback server following the Hetzner Cloud API
//! reference (`docs.hetzner.cloud`; see `ballast_cloud::testing::hetzner`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ballast_cloud::testing::Fault;
use ballast_cloud::testing::hetzner::{HetznerMock, TOKEN};
use ballast_cloud::{
    GROUP_LABEL, NodeMetric, Platform, PriceQuery, ProviderKind, build_with_env, check_with_env,
    parse, prices_with_env,
};
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_executor::{Executor, ExecutorError};
use serde_json::{Map, Value, json};

fn env(name: &str) -> Option<String> {
    (name == "HCLOUD_TOKEN").then(|| TOKEN.to_string())
}

fn target(mock: &HetznerMock, extra: Value) -> Map<String, Value> {
    let mut t = json!({
        "type": "hetzner",
        "group": "web",
        "server_type": "cx22",
        "image": "ubuntu-24.04",
        "location": "fsn1",
        "ssh_keys": ["ops"],
        "labels": {"team": "platform"},
        "user_data_template": "#cloud-config\nhostname: {{ name }}\nwrite_files:\n- path: /etc/index\n  content: \"{{ group }}/{{ index }}\"\n",
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
    mock: &HetznerMock,
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

fn count(mock: &HetznerMock) -> u32 {
    mock.count(GROUP_LABEL, "web")
}

struct World {
    mock: HetznerMock,
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        self.mock.reset();
        for i in 0..initial {
            self.mock
                .add_server(&format!("web-old{i}"), &[(GROUP_LABEL, "web")]);
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
async fn the_hetzner_node_group_conforms() {
    let mut world = World {
        mock: HetznerMock::start().await,
    };
    conformance::run(&mut world).await;
}

#[tokio::test]
async fn scale_up_creates_labelled_servers_with_rendered_user_data_and_waits_until_ready() {
    let mock = HetznerMock::start().await;
    mock.set_action_polls(3);
    let g = group(&mock, json!({}), None).await;
    assert_eq!(g.scale(2).await, Ok(2));
    let names = mock.names(GROUP_LABEL, "web");
    assert_eq!(names.len(), 2);
    for name in &names {
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 6,
            "{name}"
        );
        let labels = mock.labels(name).expect("labels");
        assert_eq!(labels.get(GROUP_LABEL).map(String::as_str), Some("web"));
        assert_eq!(labels.get("team").map(String::as_str), Some("platform"));
        let user_data = mock.user_data(name).expect("user data");
        assert!(
            user_data.contains(&format!("hostname: {name}\n")),
            "{user_data}"
        );
    }
    let mut indexes: Vec<String> = names
        .iter()
        .map(|n| {
            let u = mock.user_data(n).expect("user data");
            u.split("content: \"")
                .nth(1)
                .expect("content")
                .split('"')
                .next()
                .expect("end")
                .to_string()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["web/0", "web/1"]);
    // Asking for the same count again changes nothing.
    let changes = mock.changes();
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(mock.changes(), changes);
}

#[tokio::test]
async fn the_group_is_read_through_every_page_and_other_servers_are_left_alone() {
    let mock = HetznerMock::start().await;
    for i in 0..120 {
        mock.add_server(&format!("web-p{i:03}"), &[(GROUP_LABEL, "web")]);
    }
    for i in 0..7 {
        mock.add_server(&format!("db-{i}"), &[(GROUP_LABEL, "db")]);
    }
    mock.add_server("stray", &[]);
    let g = group(&mock, json!({}), None).await;
    let pages = mock.server_list_pages();
    assert_eq!(g.current().await, Ok(120));
    assert_eq!(mock.server_list_pages() - pages, 3, "50 + 50 + 20");
    assert_eq!(g.scale(121).await, Ok(121));
    assert_eq!(count(&mock), 121);
    assert_eq!(mock.count(GROUP_LABEL, "db"), 7);
}

#[tokio::test]
async fn a_429_is_waited_out_until_the_reset_it_names() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({}), None).await;
    mock.rate_limit_once(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(
        mock.journal().matching("429").len(),
        1,
        "the retry waited for the reset: {:?}",
        mock.journal().entries()
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(count(&mock), 1);
}

#[tokio::test]
async fn a_429_asking_for_longer_than_allowed_is_transient() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({"timeouts": {"rate_limit_wait": "1s"}}), None).await;
    mock.rate_limit_once(Duration::from_secs(120));
    match g.scale(1).await {
        Err(ExecutorError::Transient(m)) => assert!(m.contains("rate limited"), "{m}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert_eq!(count(&mock), 0);
}

#[tokio::test]
async fn a_server_that_never_becomes_ready_is_deleted_and_the_failure_recorded() {
    let mock = HetznerMock::start().await;
    let g = group(
        &mock,
        json!({"timeouts": {"poll_interval": "10ms", "ready": "300ms"}}),
        None,
    )
    .await;
    assert_eq!(g.scale(1).await, Ok(1));
    let before = mock.names(GROUP_LABEL, "web");
    mock.never_ready_next();
    let err = g
        .scale(2)
        .await
        .expect_err("the new server never became ready");
    assert!(err.is_transient(), "{err:?}");
    let m = err.message();
    assert!(m.contains("never became ready within 300ms"), "{m}");
    assert!(m.contains("it was deleted"), "{m}");
    assert_eq!(
        mock.names(GROUP_LABEL, "web"),
        before,
        "only the ready server is left"
    );
    let deleted = mock.journal().matching("deleted ");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(m.contains(deleted[0].trim_start_matches("deleted ")), "{m}");
    assert_eq!(g.current().await, Ok(1));
}

#[tokio::test]
async fn an_action_ending_in_error_deletes_the_server_and_is_transient() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({}), None).await;
    mock.fail_next_action();
    let err = g.scale(1).await.expect_err("the action failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.message().contains("ended in error: action_failed"),
        "{err:?}"
    );
    assert!(err.message().contains("it was deleted"), "{err:?}");
    assert_eq!(count(&mock), 0);
    assert_eq!(g.scale(1).await, Ok(1), "a retry succeeds");
}

#[tokio::test]
async fn a_create_failing_mid_way_keeps_what_came_up_and_says_how_far_it_got() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({}), None).await;
    mock.fail_create(1, Fault::Transient);
    let err = g.scale(3).await.expect_err("the second create failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.message().contains("(2 of 3) failed"), "{err:?}");
    assert!(err.message().contains("unavailable"), "{err:?}");
    assert_eq!(count(&mock), 1);
    assert_eq!(g.current().await, Ok(1));
    assert_eq!(g.scale(3).await, Ok(3));

    mock.fail_create(0, Fault::Permanent);
    let err = g.scale(4).await.expect_err("refused");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.message().contains("resource_limit_exceeded"), "{err:?}");
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
async fn scale_down_drains_then_deletes_the_least_utilized() {
    let mock = HetznerMock::start().await;
    for n in ["web-a", "web-b", "web-c", "web-d"] {
        mock.add_server(n, &[(GROUP_LABEL, "web")]);
    }
    let metric = Fixed(
        [
            ("web-a", 0.7),
            ("web-b", 0.1),
            ("web-c", 0.9),
            ("web-d", 0.4),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    let g = group(
        &mock,
        json!({"node_metric": "avg by (node) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))"}),
        Some(Arc::new(metric)),
    )
    .await;
    assert_eq!(g.scale(2).await, Ok(2));
    let mut left = mock.names(GROUP_LABEL, "web");
    left.sort();
    assert_eq!(left, ["web-a", "web-c"]);
    let order: Vec<String> = mock
        .journal()
        .entries()
        .into_iter()
        .filter(|e| {
            e.starts_with("drain ") || e.starts_with("delete ") || e.starts_with("deleted ")
        })
        .collect();
    assert_eq!(
        order,
        [
            "drain web-b",
            "delete web-b",
            "deleted web-b",
            "drain web-d",
            "delete web-d",
            "deleted web-d"
        ]
    );
}

#[tokio::test]
async fn without_a_metric_scale_down_removes_the_newest() {
    let mock = HetznerMock::start().await;
    for n in ["web-first", "web-second", "web-third"] {
        mock.add_server(n, &[(GROUP_LABEL, "web")]);
    }
    let g = group(&mock, json!({}), None).await;
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(mock.names(GROUP_LABEL, "web"), ["web-first"]);
    assert_eq!(
        mock.journal().matching("drain "),
        ["drain web-third", "drain web-second"]
    );
}

#[tokio::test]
async fn a_failed_drain_keeps_the_server() {
    let mock = HetznerMock::start().await;
    mock.add_server("web-a", &[(GROUP_LABEL, "web")]);
    mock.add_server("web-b", &[(GROUP_LABEL, "web")]);
    mock.fail_drains(true);
    let g = group(&mock, json!({}), None).await;
    let err = g.scale(1).await.expect_err("the drain failed");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.message()
            .contains("draining web-b failed, so it was kept"),
        "{err:?}"
    );
    assert_eq!(count(&mock), 2);
    assert!(mock.journal().matching("delete").is_empty());
}

#[tokio::test]
async fn the_description_carries_the_catalogue_price() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({}), None).await;
    let d = g.describe();
    assert_eq!(d.kind, "hetzner");
    assert_eq!(d.target, "group web (cx22) at fsn1");
    assert_eq!(d.price_per_replica_hour, Some(0.00714));
    assert_eq!(d.currency.as_deref(), Some("EUR"));

    let g = group(&mock, json!({"server_type": "cpx11"}), None).await;
    assert_eq!(
        g.describe().price_per_replica_hour,
        None,
        "not sold in fsn1"
    );
}

#[tokio::test]
async fn a_price_that_could_not_be_read_is_read_again_later() {
    let mock = HetznerMock::start().await;
    mock.fail_server_types(1);
    let g = group(&mock, json!({"timeouts": {"price_refresh": "50ms"}}), None).await;
    assert_eq!(
        g.describe().price_per_replica_hour,
        None,
        "the first read failed"
    );
    assert_eq!(g.current().await, Ok(0));
    assert_eq!(g.describe().price_per_replica_hour, None, "not due yet");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(g.current().await, Ok(0));
    assert_eq!(g.describe().price_per_replica_hour, Some(0.00714));
}

#[tokio::test]
async fn prices_list_every_type_and_location() {
    let mock = HetznerMock::start().await;
    let query = PriceQuery {
        endpoint: Some(mock.endpoint()),
        ..PriceQuery::default()
    };
    let rows = prices_with_env(ProviderKind::Hetzner, &query, &env)
        .await
        .expect("prices");
    let flat: Vec<(String, String, f64)> = rows
        .iter()
        .map(|r| (r.location.clone(), r.server_type.clone(), r.hourly))
        .collect();
    assert_eq!(
        flat,
        [
            ("ash".into(), "cpx11".into(), 0.00833),
            ("fsn1".into(), "cx22".into(), 0.00714),
            ("fsn1".into(), "cx32".into(), 0.01309),
            ("nbg1".into(), "cx22".into(), 0.00714),
        ]
    );
    assert_eq!(rows[1].cpus, Some(2.0));
    assert_eq!(rows[1].memory_gb, Some(4.0));
    assert_eq!(rows[1].currency, "EUR");
    let fsn1 = prices_with_env(
        ProviderKind::Hetzner,
        &PriceQuery {
            place: Some("fsn1".into()),
            ..query
        },
        &env,
    )
    .await
    .expect("prices");
    assert_eq!(fsn1.len(), 2);
}

#[tokio::test]
async fn the_token_never_shows_in_debug_output_or_errors() {
    let mock = HetznerMock::start().await;
    let g = group(&mock, json!({}), None).await;
    let debug = format!("{g:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    let config = parse(&target(&mock, json!({}))).expect("valid");
    let creds = ballast_cloud::Credentials::load(&config, &env).expect("credentials");
    assert!(!format!("{creds:?}").contains(TOKEN));

    // A wrong token: the error names the failure, not the token.
    let wrong = "hcloud-wrong-token-abcdef";
    let config = parse(&target(&mock, json!({}))).expect("valid");
    let g = build_with_env(&config, Platform::default(), &|n| {
        (n == "HCLOUD_TOKEN").then(|| wrong.to_string())
    })
    .await
    .expect("builds; the price read fails and is logged");
    let err = g.current().await.expect_err("unauthorized");
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.message().contains("unauthorized"), "{err:?}");
    assert!(!err.message().contains(wrong), "{err:?}");
    assert!(!format!("{g:?}").contains(wrong));
}

#[tokio::test]
async fn credentials_come_from_a_file_when_one_is_named() {
    let mock = HetznerMock::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hcloud.env");
    std::fs::write(&path, format!("# Hetzner\nHCLOUD_TOKEN={TOKEN}\n")).expect("write");
    let t = target(&mock, json!({"credentials_file": path}));
    assert_eq!(check_with_env(&t, &|_| None), []);
    let config = parse(&t).expect("valid");
    let g = build_with_env(&config, Platform::default(), &|_| None)
        .await
        .expect("builds");
    assert_eq!(g.current().await, Ok(0));

    std::fs::write(&path, "OTHER=1\n").expect("write");
    let problems = check_with_env(&t, &|_| None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "target.credentials_file");
    assert!(
        problems[0].reason.contains("HCLOUD_TOKEN is not set"),
        "{problems:?}"
    );
}

#[test]
fn bad_target_blocks_are_named_by_their_field() {
    let base = json!({
        "type": "hetzner", "group": "web", "server_type": "cx22",
        "image": "ubuntu-24.04", "location": "fsn1",
    });
    let problems = |extra: Value| -> Vec<(String, String)> {
        let mut t = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            if v.is_null() {
                t.as_object_mut().expect("object").remove(k);
            } else {
                t[k] = v.clone();
            }
        }
        check_with_env(t.as_object().expect("object"), &env)
            .into_iter()
            .map(|p| (p.path, p.reason))
            .collect()
    };
    assert_eq!(problems(json!({})), []);
    let paths =
        |extra: Value| -> Vec<String> { problems(extra).into_iter().map(|p| p.0).collect() };
    assert_eq!(paths(json!({"locaton": "fsn1"})), ["target.locaton"]);
    assert_eq!(paths(json!({"server_type": null})), ["target.server_type"]);
    assert_eq!(paths(json!({"type": "aws"})), ["target.type"]);
    assert_eq!(
        paths(json!({"labels": {"hetzner.cloud/x": "y"}})),
        ["target.labels.hetzner.cloud/x"]
    );
    assert_eq!(
        paths(json!({"labels": {"env": "has space"}})),
        ["target.labels.env"]
    );
    assert_eq!(paths(json!({"group": "Web_1"})), ["target.group"]);
    assert_eq!(paths(json!({"zone": "fr-par-1"})), ["target.zone"]);
    assert_eq!(paths(json!({"location": null})), ["target.location"]);
    assert_eq!(
        paths(json!({"readiness": {"htp": "x"}})),
        ["target.readiness"]
    );
    assert_eq!(
        paths(json!({"readiness": {"http": "http://{host}/"}})),
        ["target.readiness.http"]
    );
    assert_eq!(
        paths(json!({"drain": {"webhook": "ftp://x"}})),
        ["target.drain.webhook"]
    );
    assert_eq!(
        paths(json!({"timeouts": {"ready": "soon"}})),
        ["target.timeouts.ready"]
    );
    assert_eq!(
        paths(json!({"timeouts": {"poll_interval": "0s"}})),
        ["target.timeouts.poll_interval"]
    );
    assert_eq!(
        paths(json!({"user_data_template": "{{ nmae }}"})),
        ["target.user_data_template"]
    );
    let big = format!("#cloud-config\n# {}\n", "x".repeat(33 * 1024));
    let p = problems(json!({"user_data_template": big}));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, "target.user_data_template");
    assert!(p[0].1.contains("32 KiB"), "{p:?}");
    let p = problems(json!({"user_data_file": "/nonexistent/cloud-init.yaml"}));
    assert_eq!(p[0].0, "target.user_data_file");

    // Missing credentials are named by their variable; nothing is shown of any value.
    let t = base.as_object().expect("object").clone();
    let p = check_with_env(&t, &|_| None);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "target");
    assert!(
        p[0].reason
            .contains("HCLOUD_TOKEN is not set in the environment"),
        "{p:?}"
    );
}

#[tokio::test]
async fn kubernetes_readiness_needs_a_cluster() {
    let mock = HetznerMock::start().await;
    let config = parse(&target(&mock, json!({"readiness": {"kubernetes": true}}))).expect("valid");
    let err = build_with_env(&config, Platform::default(), &env)
        .await
        .expect_err("no cluster");
    assert_eq!(err.path, "target.readiness.kubernetes");
}
