//! The `keda` executor: publishes a policy's desired count on the [`KedaBoard`], where the
//! gRPC service hands it to KEDA.

use std::fmt;

use async_trait::async_trait;
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem, parse_target};
use serde::Deserialize;

use crate::board::KedaBoard;

/// A policy's `target` block for KEDA:
///
/// ```yaml
/// target:
///   type: keda
///   scaled_object: shop/web   # optional, for descriptions and logs only
/// ```
///
/// The ScaledObject finds the policy by its trigger's `policy` metadata, not by this block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KedaTarget {
    /// Always `keda`.
    #[serde(rename = "type")]
    pub kind: KedaKind,
    /// The ScaledObject that follows the policy, as `namespace/name`.
    #[serde(default)]
    pub scaled_object: Option<ScaledObjectName>,
}

impl KedaTarget {
    /// Parses a policy's `target` block; a problem names its field (`target.scaled_object`).
    pub fn from_target(
        target: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<KedaTarget, TargetProblem> {
        parse_target(target)
    }
}

/// The `type` of a [`KedaTarget`]: only `keda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KedaKind {
    /// `type: keda`.
    Keda,
}

/// A ScaledObject's `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ScaledObjectName {
    /// The namespace.
    pub namespace: String,
    /// The ScaledObject's name.
    pub name: String,
}

impl TryFrom<String> for ScaledObjectName {
    type Error = String;

    fn try_from(text: String) -> Result<ScaledObjectName, String> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(ScaledObjectName {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "`{text}` is not `namespace/name` (for example `default/web`)"
            )),
        }
    }
}

impl fmt::Display for ScaledObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The executor of one policy whose target is a KEDA ScaledObject. It does not talk to
/// Kubernetes: it publishes the count on the board, and KEDA's HPA follows it through the
/// external scaler protocol ([`crate::serve`]).
#[derive(Debug)]
pub struct KedaExecutor {
    board: KedaBoard,
    policy: String,
    target: KedaTarget,
}

impl KedaExecutor {
    /// An executor for `policy` publishing on `board`, starting at `initial` (what Ballast
    /// decided last, so a restart keeps the count), which it publishes at once.
    pub fn new(
        board: KedaBoard,
        policy: impl Into<String>,
        target: KedaTarget,
        initial: u32,
    ) -> KedaExecutor {
        let policy = policy.into();
        board.publish(&policy, initial);
        KedaExecutor {
            board,
            policy,
            target,
        }
    }

    /// Parses the policy's `target` block ([`KedaTarget::from_target`]) and builds the
    /// executor ([`KedaExecutor::new`]).
    pub fn from_target(
        board: KedaBoard,
        policy: impl Into<String>,
        target: &serde_json::Map<String, serde_json::Value>,
        initial: u32,
    ) -> Result<KedaExecutor, TargetProblem> {
        let target = KedaTarget::from_target(target)?;
        Ok(KedaExecutor::new(board, policy, target, initial))
    }

    /// The policy this executor publishes for.
    pub fn policy(&self) -> &str {
        &self.policy
    }
}

#[async_trait]
impl Executor for KedaExecutor {
    fn describe(&self) -> Description {
        let target = match &self.target.scaled_object {
            Some(so) => format!("scaledobject {so} for policy {}", self.policy),
            None => format!("scaledobject for policy {}", self.policy),
        };
        Description::new("keda", target)
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        self.board
            .get(&self.policy)
            .map(|p| p.desired)
            .ok_or_else(|| {
                ExecutorError::Permanent(format!(
                    "policy `{}` was taken off the KEDA board",
                    self.policy
                ))
            })
    }

    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        if self.board.publish(&self.policy, to) {
            tracing::info!(policy = %self.policy, to, "keda: published a new desired count");
        }
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("an object").clone()
    }

    #[test]
    fn the_target_block_parses_with_or_without_a_scaled_object() {
        let t = KedaTarget::from_target(&map(json!({"type": "keda"}))).expect("valid");
        assert_eq!(t.scaled_object, None);
        let t = KedaTarget::from_target(&map(json!({"type": "keda", "scaled_object": "shop/web"})))
            .expect("valid");
        let so = t.scaled_object.expect("given");
        assert_eq!((so.namespace.as_str(), so.name.as_str()), ("shop", "web"));
    }

    #[test]
    fn a_bad_target_block_names_the_field() {
        let problem = |v| KedaTarget::from_target(&map(v)).unwrap_err();

        let p = problem(json!({"type": "keda", "scaledobject": "a/b"}));
        assert_eq!(p.path, "target.scaledobject");
        assert!(p.reason.contains("unknown field"), "{p}");

        for bad in ["web", "/web", "shop/", "a/b/c"] {
            let p = problem(json!({"type": "keda", "scaled_object": bad}));
            assert_eq!(p.path, "target.scaled_object", "{bad}");
            assert!(p.reason.contains("namespace/name"), "{p}");
        }

        let p = problem(json!({"type": "keda", "scaled_object": 3}));
        assert_eq!(p.path, "target.scaled_object");

        let p = problem(json!({"type": "kubernetes"}));
        assert_eq!(p.path, "target.type");
        assert!(p.reason.contains("keda"), "{p}");

        let p = problem(json!({"scaled_object": "a/b"}));
        assert_eq!(p.path, "target.type");
        assert!(p.reason.contains("missing field"), "{p}");
    }

    #[tokio::test]
    async fn the_executor_publishes_its_initial_count_and_describes_itself() {
        let board = KedaBoard::new();
        let target = map(json!({"type": "keda", "scaled_object": "shop/web"}));
        let e = KedaExecutor::from_target(board.clone(), "web", &target, 4).expect("valid");
        assert_eq!(board.get("web").map(|p| p.desired), Some(4));
        assert_eq!(e.current().await, Ok(4));
        let d = e.describe();
        assert_eq!(d.kind, "keda");
        assert_eq!(d.target, "scaledobject shop/web for policy web");

        let plain = KedaExecutor::new(
            board.clone(),
            "api",
            KedaTarget {
                kind: KedaKind::Keda,
                scaled_object: None,
            },
            0,
        );
        assert_eq!(plain.describe().target, "scaledobject for policy api");
        assert!(!board.get("api").expect("published").active());
    }

    #[tokio::test]
    async fn current_fails_permanently_once_the_policy_is_off_the_board() {
        let board = KedaBoard::new();
        let e = KedaExecutor::from_target(board.clone(), "web", &map(json!({"type": "keda"})), 2)
            .expect("valid");
        board.remove("web");
        let err = e.current().await.unwrap_err();
        assert!(!err.is_transient());
        assert!(err.message().contains("web"), "{err}");
        // Scaling publishes it again.
        assert_eq!(e.scale(3).await, Ok(3));
        assert_eq!(e.current().await, Ok(3));
    }
}
