//! Node readiness and drain against a loopback server that follows the Kubernetes API
//! reference for nodes (`GET`, merge `PATCH`), pods (list with a `spec.nodeName` field
//! selector) and the Eviction API (`policy/v1`, 429 from a disruption budget); see
//! `ballast_kubernetes::testing`.

use std::time::Duration;

use ballast_executor::{ExecutorError, NodeLifecycle};
use ballast_kubernetes::KubernetesNodes;
use ballast_kubernetes::testing::{Fault, MockCluster, PodOwner};

/// Drain timing short enough for tests: 20 ms between tries, 400 ms in all.
fn nodes(cluster: &MockCluster) -> KubernetesNodes {
    KubernetesNodes::new(cluster.client())
        .with_drain_timing(Duration::from_millis(400), Duration::from_millis(20))
}

#[tokio::test]
async fn a_node_is_ready_only_when_its_ready_condition_is_true() {
    let cluster = MockCluster::start().await;
    cluster.add_node("node-a", Some(true));
    cluster.add_node("node-b", Some(false));
    cluster.add_node("node-c", None);
    let nodes = nodes(&cluster);
    assert_eq!(nodes.ready("node-a").await, Ok(true));
    assert_eq!(nodes.ready("node-b").await, Ok(false));
    assert_eq!(
        nodes.ready("node-c").await,
        Ok(false),
        "Unknown is not ready"
    );
    assert_eq!(
        nodes.ready("node-d").await,
        Ok(false),
        "a server that has not registered yet"
    );
}

fn populate(cluster: &MockCluster) {
    cluster.add_node("node-a", Some(true));
    cluster.add_node("node-b", Some(true));
    cluster.add_pod("shop", "web-1", "node-a", PodOwner::ReplicaSet);
    cluster.add_pod("shop", "web-2", "node-b", PodOwner::ReplicaSet);
    cluster.add_pod("shop", "cron", "node-a", PodOwner::None);
    cluster.add_pod("kube-system", "log-agent", "node-a", PodOwner::DaemonSet);
    cluster.add_pod("kube-system", "etcd-node-a", "node-a", PodOwner::Mirror);
}

#[tokio::test]
async fn drain_cordons_and_evicts_all_but_daemon_set_and_mirror_pods() {
    let cluster = MockCluster::start().await;
    populate(&cluster);
    let nodes = nodes(&cluster);
    assert_eq!(nodes.drain("node-a").await, Ok(()));
    assert_eq!(cluster.unschedulable("node-a"), Some(true));
    assert_eq!(cluster.unschedulable("node-b"), Some(false));
    let mut evicted = cluster.evictions();
    evicted.sort();
    assert_eq!(evicted, ["shop/cron", "shop/web-1"]);
    assert_eq!(
        cluster.pods_on("node-a"),
        ["kube-system/etcd-node-a", "kube-system/log-agent"]
    );
    assert_eq!(
        cluster.pods_on("node-b"),
        ["shop/web-2"],
        "other nodes untouched"
    );
}

#[tokio::test]
async fn drain_waits_through_a_disruption_budget_refusal_then_succeeds() {
    let cluster = MockCluster::start().await;
    populate(&cluster);
    cluster.block_eviction("shop", "web-1", "web-budget", Some(2));
    let nodes = nodes(&cluster);
    assert_eq!(nodes.drain("node-a").await, Ok(()));
    assert_eq!(
        cluster.pods_on("node-a"),
        ["kube-system/etcd-node-a", "kube-system/log-agent"]
    );
    let mut evicted = cluster.evictions();
    evicted.sort();
    assert_eq!(evicted, ["shop/cron", "shop/web-1"]);
    // One cordon, cron's eviction, and web-1's two refused tries and the third.
    assert_eq!(cluster.changes(), 5);
}

#[tokio::test]
async fn drain_is_transient_when_the_budget_never_allows_it() {
    let cluster = MockCluster::start().await;
    populate(&cluster);
    cluster.block_eviction("shop", "web-1", "web-budget", None);
    let nodes = nodes(&cluster);
    let started = std::time::Instant::now();
    match nodes.drain("node-a").await {
        Err(ExecutorError::Transient(m)) => {
            assert!(m.contains("shop/web-1"), "{m}");
            assert!(!m.contains("shop/cron"), "cron was evicted: {m}");
            assert!(m.contains("The disruption budget web-budget"), "{m}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "gave up after {took:?}");
    assert_eq!(
        cluster.unschedulable("node-a"),
        Some(true),
        "still cordoned"
    );
    assert_eq!(cluster.evictions(), ["shop/cron"]);
    // A cordon, cron's eviction, and several tries for web-1 (20, 40, 80, 160 ms apart).
    assert!(cluster.changes() >= 5, "{} changes", cluster.changes());
}

#[tokio::test]
async fn draining_a_node_that_never_registered_evicts_nothing() {
    let cluster = MockCluster::start().await;
    populate(&cluster);
    assert_eq!(nodes(&cluster).drain("node-z").await, Ok(()));
    assert!(cluster.evictions().is_empty());
}

#[tokio::test]
async fn a_forbidden_cordon_is_permanent() {
    let cluster = MockCluster::start().await;
    populate(&cluster);
    cluster.fail_next(Fault::Forbidden);
    match nodes(&cluster).drain("node-a").await {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.starts_with("cordon node node-a: 403 Forbidden"), "{m}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(cluster.evictions().is_empty());
}
