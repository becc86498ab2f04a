//! The `kubernetes` executor: the scale subresource of one workload.

use async_trait::async_trait;
use ballast_executor::{Description, Executor, ExecutorError};
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::Api;
use kube::api::PostParams;
use kube::core::DynamicObject;

use crate::config::KubernetesTarget;
use crate::error::classify;

/// Reads and sets `spec.replicas` of one workload's scale subresource (`autoscaling/v1`
/// `Scale`): a Deployment, StatefulSet, ReplicaSet, ReplicationController or custom resource.
#[derive(Clone)]
pub struct KubernetesExecutor {
    api: Api<DynamicObject>,
    name: String,
    display: String,
}

impl std::fmt::Debug for KubernetesExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesExecutor")
            .field("target", &self.display)
            .finish_non_exhaustive()
    }
}

impl KubernetesExecutor {
    /// Connects to the cluster `target` names (its `kubeconfig` and `context`, or what
    /// `kubectl` would find). A target with problems, or a configuration that cannot be
    /// read, is a permanent error. Makes no request: a missing workload shows on the first
    /// `current` or `scale`.
    pub async fn connect(target: &KubernetesTarget) -> Result<KubernetesExecutor, ExecutorError> {
        check(target)?;
        let client =
            crate::client::connect(target.kubeconfig.as_deref(), target.context.as_deref()).await?;
        KubernetesExecutor::with_client(client, target)
    }

    /// An executor for `target` that talks through `client` (its `kubeconfig` and `context`
    /// are not read). A target with problems is a permanent error.
    pub fn with_client(
        client: kube::Client,
        target: &KubernetesTarget,
    ) -> Result<KubernetesExecutor, ExecutorError> {
        check(target)?;
        let resource = target.api_resource();
        Ok(KubernetesExecutor {
            api: Api::namespaced_with(client, &target.namespace, &resource),
            name: target.name.clone(),
            display: target.display(),
        })
    }

    async fn read(&self) -> Result<Scale, ExecutorError> {
        self.api
            .get_scale(&self.name)
            .await
            .map_err(|e| classify(&format!("read the scale of {}", self.display), e))
    }

    fn replicas(&self, scale: &Scale) -> Result<u32, ExecutorError> {
        // `spec.replicas` is omitted when it is zero (`omitempty`).
        let n = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        u32::try_from(n).map_err(|_| {
            ExecutorError::Permanent(format!("{}: spec.replicas is {n}", self.display))
        })
    }
}

fn check(target: &KubernetesTarget) -> Result<(), ExecutorError> {
    let problems = target.check();
    if problems.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Err(ExecutorError::Permanent(text.join("; ")))
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn describe(&self) -> Description {
        Description::new("kubernetes", self.display.clone())
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        let scale = self.read().await?;
        self.replicas(&scale)
    }

    /// Reads the scale and, unless it already asks for `to`, replaces it carrying the
    /// `resourceVersion` it read: a change by someone else in between is a 409 conflict
    /// (transient), never a lost update.
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let replicas = i32::try_from(to).map_err(|_| {
            ExecutorError::Permanent(format!("{}: {to} replicas is too many", self.display))
        })?;
        let mut scale = self.read().await?;
        if self.replicas(&scale)? == to {
            return Ok(to);
        }
        let from = self.replicas(&scale)?;
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let written = self
            .api
            .replace_scale(&self.name, &PostParams::default(), &scale)
            .await
            .map_err(|e| classify(&format!("scale {} to {to}", self.display), e))?;
        tracing::info!(target = %self.display, from, to, "kubernetes: scaled");
        self.replicas(&written)
    }
}
