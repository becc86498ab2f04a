//! The `kubernetes` executor against a loopback server that follows the Kubernetes API
//! reference for the scale subresource (`autoscaling/v1` `Scale`, `Status` errors with
//! codes 403, 404, 409 and 503; see `ballast_kubernetes::testing`).

use std::io::Write;

use ballast_executor::{Executor, ExecutorError};
use ballast_kubernetes::testing::{Fault, MockCluster, ObjectRef};
use ballast_kubernetes::{KubernetesExecutor, KubernetesTarget, client_from_config};

fn target(block: serde_json::Value) -> KubernetesTarget {
    KubernetesTarget::parse(block.as_object().expect("an object")).expect("a valid target")
}

fn web() -> KubernetesTarget {
    target(serde_json::json!({"type": "kubernetes", "name": "web"}))
}

async fn cluster_with_web(replicas: u32) -> (MockCluster, KubernetesExecutor) {
    let cluster = MockCluster::start().await;
    cluster.add_workload(&ObjectRef::deployment("default", "web"), replicas);
    let executor = KubernetesExecutor::with_client(cluster.client(), &web()).expect("executor");
    (cluster, executor)
}

#[tokio::test]
async fn describes_the_workload_as_kubectl_names_it() {
    let (_cluster, executor) = cluster_with_web(1).await;
    let d = executor.describe();
    assert_eq!(d.kind, "kubernetes");
    assert_eq!(d.target, "deployments.apps/default/web");
    assert_eq!(d.price_per_replica_hour, None);
}

#[tokio::test]
async fn a_missing_workload_is_permanent_with_the_servers_message() {
    let cluster = MockCluster::start().await;
    let executor = KubernetesExecutor::with_client(cluster.client(), &web()).expect("executor");
    for result in [executor.current().await, executor.scale(2).await] {
        match result {
            Err(ExecutorError::Permanent(m)) => {
                assert!(m.contains("404"), "{m}");
                assert!(m.contains(r#"deployments.apps "web" not found"#), "{m}");
            }
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }
    assert_eq!(cluster.changes(), 0, "nothing was written");
}

#[tokio::test]
async fn a_forbidden_workload_is_permanent_with_the_servers_message() {
    let (cluster, executor) = cluster_with_web(2).await;
    cluster.forbid(&ObjectRef::deployment("default", "web"));
    match executor.scale(3).await {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.contains("403 Forbidden"), "{m}");
            assert!(
                m.contains(r#"cannot get resource "deployments/scale" in API group "apps""#),
                "{m}"
            );
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_forbidden_write_is_permanent_and_changes_nothing() {
    let (cluster, executor) = cluster_with_web(2).await;
    cluster.fail_next(Fault::Forbidden);
    match executor.scale(5).await {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.contains("cannot update resource"), "{m}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(
        cluster.replicas(&ObjectRef::deployment("default", "web")),
        Some(2)
    );
}

#[tokio::test]
async fn a_concurrent_change_is_a_transient_conflict_and_not_overwritten() {
    let (cluster, executor) = cluster_with_web(2).await;
    let web = ObjectRef::deployment("default", "web");
    // Someone else scales to 5 between the executor's read and its write.
    cluster.change_after_next_read(&web, 5);
    match executor.scale(3).await {
        Err(ExecutorError::Transient(m)) => {
            assert!(m.contains("409 Conflict"), "{m}");
            assert!(m.contains("the object has been modified"), "{m}");
        }
        other => panic!("expected a transient conflict, got {other:?}"),
    }
    assert_eq!(cluster.replicas(&web), Some(5), "the other write stands");
    assert_eq!(executor.current().await, Ok(5));
    assert_eq!(executor.scale(3).await, Ok(3), "the retry reads afresh");
    assert_eq!(cluster.replicas(&web), Some(3));
}

#[tokio::test]
async fn an_unavailable_server_is_transient() {
    let (cluster, executor) = cluster_with_web(2).await;
    cluster.fail_next(Fault::Unavailable);
    match executor.scale(4).await {
        Err(ExecutorError::Transient(m)) => assert!(m.contains("503"), "{m}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert_eq!(executor.scale(4).await, Ok(4));
}

#[tokio::test]
async fn a_refused_connection_is_transient_also_over_https() {
    // Port 1 on loopback: nothing listens there.
    for url in ["http://127.0.0.1:1", "https://127.0.0.1:1"] {
        let config = kube::Config::new(url.parse().expect("a URL"));
        let client = client_from_config(config).expect("the TLS stack builds a client");
        let executor = KubernetesExecutor::with_client(client, &web()).expect("executor");
        match executor.current().await {
            Err(ExecutorError::Transient(m)) => {
                assert!(m.contains("deployments.apps/default/web"), "{m}")
            }
            other => panic!("{url}: expected a transient error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_target_with_problems_is_refused_naming_the_fields() {
    let cluster = MockCluster::start().await;
    let mut bad = web();
    bad.namespace = "Not_A_Label".to_string();
    bad.name = String::new();
    match KubernetesExecutor::with_client(cluster.client(), &bad) {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.contains("target.name: must not be empty"), "{m}");
            assert!(m.contains("target.namespace:"), "{m}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

fn kubeconfig(cluster: &MockCluster) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    write!(
        file,
        r#"apiVersion: v1
kind: Config
clusters:
- name: mock
  cluster:
    server: {url}
- name: nowhere
  cluster:
    server: http://127.0.0.1:1
contexts:
- name: mock
  context:
    cluster: mock
    user: tester
- name: nowhere
  context:
    cluster: nowhere
    user: tester
current-context: nowhere
users:
- name: tester
  user:
    token: not-a-real-token
"#,
        url = cluster.url()
    )
    .expect("write the kubeconfig");
    file
}

#[tokio::test]
async fn connect_uses_the_kubeconfig_file_and_context_of_the_target() {
    let cluster = MockCluster::start().await;
    cluster.add_workload(&ObjectRef::stateful_set("data", "db"), 3);
    let file = kubeconfig(&cluster);
    let path = file.path().to_str().expect("a UTF-8 path");
    let block = |context: Option<&str>| {
        let mut b = serde_json::json!({
            "type": "kubernetes", "kind": "StatefulSet", "name": "db", "namespace": "data",
            "kubeconfig": path,
        });
        if let Some(c) = context {
            b["context"] = serde_json::json!(c);
        }
        target(b)
    };

    let executor = KubernetesExecutor::connect(&block(Some("mock")))
        .await
        .expect("connect");
    assert_eq!(executor.current().await, Ok(3));
    assert_eq!(executor.scale(1).await, Ok(1));
    assert_eq!(
        cluster.replicas(&ObjectRef::stateful_set("data", "db")),
        Some(1)
    );

    // Without `context`, the file's current context (a cluster that is not there).
    let executor = KubernetesExecutor::connect(&block(None))
        .await
        .expect("connect");
    assert!(executor.current().await.unwrap_err().is_transient());

    match KubernetesExecutor::connect(&block(Some("staging"))).await {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.starts_with("target.kubeconfig:"), "{m}");
            assert!(m.contains("staging"), "{m}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_with_an_unreadable_kubeconfig_is_permanent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("missing.yaml");
    let t = target(serde_json::json!({
        "type": "kubernetes", "name": "web", "kubeconfig": missing,
    }));
    match KubernetesExecutor::connect(&t).await {
        Err(ExecutorError::Permanent(m)) => {
            assert!(m.starts_with("target.kubeconfig: cannot read"), "{m}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}
