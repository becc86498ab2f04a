//! From a policy's `target` block to its executor. The block's `type` names the executor
//! (`log` when the block is absent); the rest are that executor's own fields.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ballast_executor::{Executor, ExecutorError, LogExecutor, TargetProblem, target_type};

/// A policy's `target` block.
pub type TargetBlock = serde_json::Map<String, serde_json::Value>;

/// Builds executors from `target` blocks.
#[async_trait]
pub trait ExecutorFactory: Send + Sync + Debug {
    /// What is wrong with a target block, each problem with its `target.<field>` path.
    fn check(&self, target: Option<&TargetBlock>) -> Vec<TargetProblem>;

    /// The executor for the policy `policy`; `last_known` is the count Ballast decided
    /// last (the starting count of executors that keep it themselves).
    async fn build(
        &self,
        policy: &str,
        target: Option<&TargetBlock>,
        last_known: u32,
    ) -> Result<Box<dyn Executor>, ExecutorError>;

    /// The policy `policy` was deleted, renamed or given another target: release what its
    /// executor left behind outside itself (its entry on the KEDA board).
    fn forget(&self, _policy: &str) {}
}

/// The executors this build of Ballast knows.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Where executors keep local state (the process pool's records).
    pub data_dir: Option<PathBuf>,
    /// The desired counts KEDA reads over the external scaler protocol.
    pub keda: ballast_keda::KedaBoard,
    /// Prometheus, for the per-node metric of cloud node groups (`node_metric`).
    pub prometheus: Option<ballast_sources::prometheus::PrometheusSource>,
}

/// The executor types, for messages.
pub const TYPES: &[&str] = &[
    "log",
    "kubernetes",
    "keda",
    "process",
    "webhook",
    "hetzner",
    "scaleway",
    "ovh",
];

#[async_trait]
impl ExecutorFactory for Targets {
    fn check(&self, target: Option<&TargetBlock>) -> Vec<TargetProblem> {
        match target_type(target) {
            "log" => match target {
                Some(t) => ballast_executor::parse_target::<LogTarget>(t)
                    .err()
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            },
            "kubernetes" => match target {
                Some(t) => ballast_kubernetes::check(t),
                None => Vec::new(),
            },
            "keda" => match target {
                Some(t) => ballast_keda::KedaTarget::from_target(t)
                    .err()
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            },
            "process" => target.map(ballast_process::check).unwrap_or_default(),
            "webhook" => target.map(ballast_webhook::check).unwrap_or_default(),
            "hetzner" | "scaleway" | "ovh" => target.map(ballast_cloud::check).unwrap_or_default(),
            other => vec![TargetProblem::at(
                "type",
                format!("unknown executor `{other}`; known: {}", TYPES.join(", ")),
            )],
        }
    }

    fn forget(&self, policy: &str) {
        self.keda.remove(policy);
    }

    async fn build(
        &self,
        policy: &str,
        target: Option<&TargetBlock>,
        last_known: u32,
    ) -> Result<Box<dyn Executor>, ExecutorError> {
        if let Some(problem) = self.check(target).into_iter().next() {
            return Err(ExecutorError::Permanent(problem.to_string()));
        }
        let empty = TargetBlock::new();
        let block = target.unwrap_or(&empty);
        let invalid = |p: Vec<TargetProblem>| {
            let text: Vec<String> = p.iter().map(ToString::to_string).collect();
            ExecutorError::Permanent(text.join("; "))
        };
        match target_type(target) {
            "log" => Ok(Box::new(LogExecutor::new(policy, last_known))),
            "kubernetes" => {
                let config = ballast_kubernetes::KubernetesTarget::parse(block).map_err(invalid)?;
                Ok(Box::new(
                    ballast_kubernetes::KubernetesExecutor::connect(&config).await?,
                ))
            }
            "keda" => Ok(Box::new(
                ballast_keda::KedaExecutor::from_target(
                    self.keda.clone(),
                    policy,
                    block,
                    last_known,
                )
                .map_err(|p| invalid(vec![p]))?,
            )),
            "process" => {
                let config = ballast_process::ProcessConfig::from_target(block).map_err(invalid)?;
                let dir = self
                    .data_dir
                    .clone()
                    .unwrap_or_else(std::env::temp_dir)
                    .join("processes");
                let pool = ballast_process::ProcessPool::start(
                    policy,
                    config,
                    &dir,
                    ballast_process::Recovery::Adopt,
                )
                .await
                .map_err(ExecutorError::from)?;
                Ok(Box::new(OwnedPool(pool)))
            }
            "webhook" => Ok(Box::new(
                ballast_webhook::WebhookExecutor::from_target(policy, block)
                    .map_err(ExecutorError::from)?,
            )),
            "hetzner" | "scaleway" | "ovh" => {
                let config = ballast_cloud::parse(block).map_err(|p| invalid(vec![p]))?;
                // The Kubernetes node lifecycle, when readiness or drain asks for it.
                let wants = |key: &str| {
                    block
                        .get(key)
                        .is_some_and(|v| v.get("kubernetes").is_some())
                };
                let kubernetes: Option<Arc<dyn ballast_executor::NodeLifecycle>> =
                    if wants("readiness") || wants("drain") {
                        Some(Arc::new(
                            ballast_kubernetes::KubernetesNodes::connect(None, None).await?,
                        ))
                    } else {
                        None
                    };
                let node_metric: Option<Arc<dyn ballast_cloud::NodeMetric>> =
                    match (&config.node_metric, &self.prometheus) {
                        (Some(query), Some(source)) => Some(Arc::new(PrometheusNodeMetric {
                            source: source.clone(),
                            query: query.clone(),
                        })),
                        (Some(_), None) => {
                            return Err(ExecutorError::Permanent(
                                "target.node_metric: no Prometheus is configured to evaluate it"
                                    .to_owned(),
                            ));
                        }
                        (None, _) => None,
                    };
                let platform = ballast_cloud::Platform {
                    kubernetes,
                    node_metric,
                };
                let group = ballast_cloud::build(&config, platform)
                    .await
                    .map_err(|p| invalid(vec![p]))?;
                Ok(Box::new(group))
            }
            other => Err(ExecutorError::Permanent(format!(
                "unknown executor `{other}`"
            ))),
        }
    }
}

/// The `log` executor's block: nothing but its type.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LogTarget {
    r#type: String,
}

/// A process pool that the policy owns: released, it stops its processes.
#[derive(Debug)]
struct OwnedPool(ballast_process::ProcessPool);

#[async_trait]
impl Executor for OwnedPool {
    fn describe(&self) -> ballast_executor::Description {
        self.0.describe()
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        self.0.current().await
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        self.0.scale(to).await
    }
    async fn release(&self) -> Result<(), ExecutorError> {
        self.0.scale(0).await.map(|_| ())
    }
}

/// The label that names a node in a group's `node_metric` series.
pub const NODE_LABEL: &str = "node";

/// A cloud node group's `node_metric`: a PromQL expression with one series per server,
/// its name in the `node` label (use `label_replace` to move it there).
#[derive(Debug)]
struct PrometheusNodeMetric {
    source: ballast_sources::prometheus::PrometheusSource,
    query: String,
}

#[async_trait]
impl ballast_cloud::NodeMetric for PrometheusNodeMetric {
    async fn values(&self) -> Result<std::collections::HashMap<String, f64>, ExecutorError> {
        self.source
            .by_label(&self.query, chrono::Utc::now(), NODE_LABEL)
            .await
            .map_err(|e| ExecutorError::Transient(format!("node_metric: {e}")))
    }
}
