//! Kubernetes nodes for the cloud node groups: is a new server's node `Ready`, and empty
//! one (cordon, then evict its pods through the Eviction API) before it is deleted.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{ExecutorError, NodeLifecycle};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use tokio::time::Instant;

use crate::error::classify;

/// The annotation the kubelet puts on the API server's copy of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Node readiness and drain on one cluster.
///
/// `drain` gives up with a transient error when pods are still there after the drain
/// deadline (2 minutes unless set with [`with_drain_timing`](Self::with_drain_timing));
/// the runtime retries it later.
#[derive(Clone)]
pub struct KubernetesNodes {
    client: kube::Client,
    deadline: Duration,
    backoff: Duration,
    max_backoff: Duration,
}

impl std::fmt::Debug for KubernetesNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesNodes")
            .field("deadline", &self.deadline)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl KubernetesNodes {
    /// Nodes of the cluster `client` talks to.
    pub fn new(client: kube::Client) -> KubernetesNodes {
        KubernetesNodes {
            client,
            deadline: Duration::from_secs(120),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// Nodes of the cluster that `kubeconfig` and `context` name, or of the one `kubectl`
    /// would find (see [`connect`](crate::connect)).
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<KubernetesNodes, ExecutorError> {
        Ok(KubernetesNodes::new(
            crate::client::connect(kubeconfig, context).await?,
        ))
    }

    /// How long `drain` keeps trying, and its first wait between tries (it doubles up to
    /// ten times that, at most 10 s).
    pub fn with_drain_timing(mut self, deadline: Duration, backoff: Duration) -> KubernetesNodes {
        self.deadline = deadline;
        self.backoff = backoff;
        self.max_backoff = (backoff * 10).min(Duration::from_secs(10)).max(backoff);
        self
    }

    async fn cordon(&self, node: &str) -> Result<(), ExecutorError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({"spec": {"unschedulable": true}});
        match nodes
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            // A server that never joined has no node; its pods, if any, are still evicted.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                tracing::info!(node, "kubernetes: no such node to cordon");
                Ok(())
            }
            Err(e) => Err(classify(&format!("cordon node {node}"), e)),
        }
    }

    /// Asks the API server to evict `pod`; `Ok(Some(why))` when a disruption budget
    /// refuses for now.
    async fn evict(&self, pod: &Pod) -> Result<Option<String>, ExecutorError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let eviction = Eviction {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            delete_options: None,
        };
        let result = pods
            .create_subresource::<_, kube::core::Status>(
                "eviction",
                name,
                &PostParams::default(),
                &eviction,
            )
            .await;
        match result {
            Ok(_) => {
                tracing::info!(pod = %format!("{namespace}/{name}"), "kubernetes: evicted");
                Ok(None)
            }
            // Gone already.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e @ kube::Error::Api(_)) if is_too_many_requests(&e) => {
                let why = classify(&format!("evict pod {namespace}/{name}"), e);
                Ok(Some(why.message().to_string()))
            }
            Err(e) => Err(classify(&format!("evict pod {namespace}/{name}"), e)),
        }
    }
}

fn is_too_many_requests(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 429 || (s.code == 0 && s.reason == "TooManyRequests"))
}

/// Whether draining must evict `pod`: not a DaemonSet's (its controller would put it
/// straight back, and it tolerates the cordon), not a mirror of a static pod (the kubelet
/// owns it), and not finished.
fn evictable(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !daemon && !mirror && !finished
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[async_trait]
impl NodeLifecycle for KubernetesNodes {
    /// True when the node's `Ready` condition is `True`; false when it is `False` or
    /// `Unknown`, has no such condition, or the node has not registered yet.
    async fn ready(&self, node: &str) -> Result<bool, ExecutorError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let found = nodes
            .get_opt(node)
            .await
            .map_err(|e| classify(&format!("read node {node}"), e))?;
        Ok(found
            .and_then(|n| n.status)
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True"))
    }

    /// Cordons the node (`spec.unschedulable: true`), then evicts every pod on it except
    /// DaemonSet and mirror pods through the Eviction API (`policy/v1`), and returns once
    /// none of them is left. A disruption budget's refusal (429) is tried again after a
    /// short wait, doubling, until the drain deadline; then the drain is a transient error
    /// naming the pods left and why.
    async fn drain(&self, node: &str) -> Result<(), ExecutorError> {
        self.cordon(node).await?;
        let pods: Api<Pod> = Api::all(self.client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let deadline = Instant::now() + self.deadline;
        let mut wait = self.backoff;
        let mut look_again_at_once = true;
        loop {
            let list = pods
                .list(&on_node)
                .await
                .map_err(|e| classify(&format!("list the pods on node {node}"), e))?;
            let left: Vec<&Pod> = list.items.iter().filter(|p| evictable(p)).collect();
            if left.is_empty() {
                tracing::info!(node, "kubernetes: drained");
                return Ok(());
            }
            let mut refused = Vec::new();
            let mut terminating = 0;
            for pod in &left {
                if pod.metadata.deletion_timestamp.is_some() {
                    terminating += 1;
                } else if let Some(why) = self.evict(pod).await? {
                    refused.push(why);
                }
            }
            if refused.is_empty() && terminating == 0 && look_again_at_once {
                // Every pod accepted its eviction: look again at once (once; a pod that
                // is still there then without terminating waits like the others).
                look_again_at_once = false;
                continue;
            }
            if Instant::now() + wait > deadline {
                let names: Vec<String> = left.iter().map(|p| pod_name(p)).collect();
                let mut text = format!(
                    "drain node {node}: {} pod(s) still there after {:?}: {}",
                    left.len(),
                    self.deadline,
                    names.join(", ")
                );
                if !refused.is_empty() {
                    text.push_str(&format!("; {}", refused.join("; ")));
                }
                return Err(ExecutorError::Transient(text));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.max_backoff);
            look_again_at_once = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("a pod")
    }

    #[test]
    fn daemon_set_mirror_and_finished_pods_are_not_evicted() {
        let running = serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web", "uid": "u", "controller": true}]},
            "status": {"phase": "Running"},
        });
        assert!(evictable(&pod(running.clone())));

        let mut daemon = running.clone();
        daemon["metadata"]["ownerReferences"][0]["kind"] = serde_json::json!("DaemonSet");
        assert!(!evictable(&pod(daemon)));

        let mut mirror = running.clone();
        mirror["metadata"]["annotations"] = serde_json::json!({MIRROR_ANNOTATION: "abc"});
        assert!(!evictable(&pod(mirror)));

        for phase in ["Succeeded", "Failed"] {
            let mut done = running.clone();
            done["status"]["phase"] = serde_json::json!(phase);
            assert!(!evictable(&pod(done)), "{phase}");
        }
        let mut pending = running;
        pending["status"]["phase"] = serde_json::json!("Pending");
        assert!(evictable(&pod(pending)));
    }
}
