//! The shared executor conformance suite, run against a loopback server that follows the
//! Kubernetes API reference for the scale subresource (`autoscaling/v1` `Scale`; see
//! `ballast_kubernetes::testing`).

use std::sync::Arc;

use async_trait::async_trait;
use ballast_executor::Executor;
use ballast_executor::conformance::{Failure, Harness, run};
use ballast_kubernetes::testing::{Fault, MockCluster, ObjectRef};
use ballast_kubernetes::{KubernetesExecutor, KubernetesTarget};

struct World {
    cluster: MockCluster,
    kind: &'static str,
    api_version: &'static str,
    plural: &'static str,
    started: u32,
}

impl World {
    async fn new(kind: &'static str, api_version: &'static str, plural: &'static str) -> World {
        World {
            cluster: MockCluster::start().await,
            kind,
            api_version,
            plural,
            started: 0,
        }
    }

    fn object(&self) -> ObjectRef {
        ObjectRef::new(
            self.api_version,
            self.plural,
            "apps",
            &format!("web-{}", self.started),
        )
    }
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        self.started += 1;
        let object = self.object();
        self.cluster.add_workload(&object, initial);
        let block = serde_json::json!({
            "type": "kubernetes",
            "kind": self.kind,
            "api_version": self.api_version,
            "plural": self.plural,
            "name": object.name,
            "namespace": "apps",
        });
        let target = KubernetesTarget::parse(block.as_object().expect("an object")).expect("valid");
        Arc::new(
            KubernetesExecutor::with_client(self.cluster.client(), &target).expect("an executor"),
        )
    }

    async fn observed(&self) -> u32 {
        self.cluster.replicas(&self.object()).expect("the workload")
    }

    async fn changes(&self) -> Option<u64> {
        Some(self.cluster.changes())
    }

    async fn fail_next(&self, failure: Failure) -> bool {
        self.cluster.fail_next(match failure {
            Failure::Transient => Fault::Conflict,
            Failure::Permanent => Fault::Forbidden,
        });
        true
    }
}

#[tokio::test]
async fn a_deployment_conforms() {
    run(&mut World::new("Deployment", "apps/v1", "deployments").await).await;
}

#[tokio::test]
async fn a_stateful_set_conforms() {
    run(&mut World::new("StatefulSet", "apps/v1", "statefulsets").await).await;
}

#[tokio::test]
async fn a_custom_resource_with_a_scale_subresource_conforms() {
    run(&mut World::new("Worker", "queues.example.com/v1beta1", "workers").await).await;
}
