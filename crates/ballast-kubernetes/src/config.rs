//! The `kubernetes` target block: which workload to scale and how to reach its cluster.

use std::path::PathBuf;

use ballast_executor::{TargetProblem, parse_target};
use kube::core::ApiResource;
use serde::Deserialize;

/// A policy's `target` block for the `kubernetes` executor:
///
/// ```yaml
/// target:
///   type: kubernetes
///   kind: Deployment          # default; also StatefulSet, ReplicaSet, ReplicationController,
///                             # or any kind with a scale subresource given `api_version` and `plural`
///   name: web                 # required
///   namespace: default        # default
///   kubeconfig: /etc/ballast/kubeconfig   # optional; with `context`, optional too
///   context: production
/// ```
///
/// Without `kubeconfig` and `context` the cluster is found as `kubectl` would: the
/// `KUBECONFIG` variable or `~/.kube/config`, else the in-cluster service account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// The executor's name; always `kubernetes`.
    #[serde(rename = "type", default)]
    pub executor: ExecutorType,
    /// The workload's kind (`Deployment`, `StatefulSet`, ...).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// `group/version` (or `version` for the core group); defaults by kind.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The resource's plural name in URLs (`deployments`); defaults by kind.
    #[serde(default)]
    pub plural: Option<String>,
    /// The workload's name.
    pub name: String,
    /// The workload's namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// A kubeconfig file to read instead of the default one.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use instead of the current one.
    #[serde(default)]
    pub context: Option<String>,
}

/// The `type` of a `kubernetes` target block: the one value `kubernetes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ExecutorType {
    /// `kubernetes`.
    #[default]
    #[serde(rename = "kubernetes")]
    Kubernetes,
}

fn default_kind() -> String {
    "Deployment".to_string()
}

fn default_namespace() -> String {
    "default".to_string()
}

/// The kinds whose `api_version` and `plural` need not be written.
const KNOWN_KINDS: [(&str, &str, &str); 4] = [
    ("Deployment", "apps/v1", "deployments"),
    ("StatefulSet", "apps/v1", "statefulsets"),
    ("ReplicaSet", "apps/v1", "replicasets"),
    ("ReplicationController", "v1", "replicationcontrollers"),
];

fn known_kind(kind: &str) -> Option<(&'static str, &'static str)> {
    KNOWN_KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, api_version, plural)| (*api_version, *plural))
}

impl KubernetesTarget {
    /// Parses a policy's `target` block and checks it: every problem, each with its field
    /// path (`target.namespace`). A block that does not parse gives that one problem.
    pub fn parse(
        target: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<KubernetesTarget, Vec<TargetProblem>> {
        let parsed: KubernetesTarget = parse_target(target).map_err(|p| vec![p])?;
        let problems = parsed.check();
        if problems.is_empty() {
            Ok(parsed)
        } else {
            Err(problems)
        }
    }

    /// The problems a parsed block still has: an empty or malformed name, a namespace that
    /// is not a DNS-1123 label, a kind without a default `api_version` or `plural` that
    /// names none, empty paths and contexts.
    pub fn check(&self) -> Vec<TargetProblem> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(TargetProblem::at("name", "must not be empty"));
        } else if let Err(reason) = dns1123_subdomain(&self.name) {
            problems.push(TargetProblem::at(
                "name",
                format!("`{}` is not a valid object name: {reason}", self.name),
            ));
        }
        if let Err(reason) = dns1123_label(&self.namespace) {
            problems.push(TargetProblem::at(
                "namespace",
                format!(
                    "`{}` is not a valid namespace (a DNS-1123 label): {reason}",
                    self.namespace
                ),
            ));
        }
        if self.kind.is_empty() {
            problems.push(TargetProblem::at("kind", "must not be empty"));
        } else if known_kind(&self.kind).is_none() {
            let hint = KNOWN_KINDS
                .iter()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(&self.kind))
                .map(|(k, _, _)| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            if self.api_version.is_none() {
                problems.push(TargetProblem::at(
                    "api_version",
                    format!(
                        "required for kind `{}`{hint}: only {} have a default",
                        self.kind,
                        known_kind_names()
                    ),
                ));
            }
            if self.plural.is_none() {
                problems.push(TargetProblem::at(
                    "plural",
                    format!(
                        "required for kind `{}`{hint}: only {} have a default",
                        self.kind,
                        known_kind_names()
                    ),
                ));
            }
        }
        if let Some(api_version) = &self.api_version
            && let Err(reason) = check_api_version(api_version)
        {
            problems.push(TargetProblem::at(
                "api_version",
                format!("`{api_version}` {reason}"),
            ));
        }
        if let Some(plural) = &self.plural
            && let Err(reason) = dns1123_label(plural)
        {
            problems.push(TargetProblem::at(
                "plural",
                format!("`{plural}` is not a resource name (a DNS-1123 label): {reason}"),
            ));
        }
        if self
            .kubeconfig
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(TargetProblem::at("kubeconfig", "must not be empty"));
        }
        if self.context.as_ref().is_some_and(|c| c.is_empty()) {
            problems.push(TargetProblem::at("context", "must not be empty"));
        }
        problems
    }

    /// The API resource the target names: group, version, kind and plural, with the
    /// defaults of a known kind filled in. Call on a target whose [`check`](Self::check)
    /// found nothing.
    pub fn api_resource(&self) -> ApiResource {
        let known = known_kind(&self.kind);
        let api_version = self
            .api_version
            .clone()
            .or_else(|| known.map(|(v, _)| v.to_string()))
            .unwrap_or_default();
        let plural = self
            .plural
            .clone()
            .or_else(|| known.map(|(_, p)| p.to_string()))
            .unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), api_version.clone()),
        };
        ApiResource {
            group,
            version,
            api_version,
            kind: self.kind.clone(),
            plural,
        }
    }

    /// The target in `kubectl`'s words: `deployments.apps/default/web`
    /// (`replicationcontrollers/default/web` for the core group).
    pub fn display(&self) -> String {
        let r = self.api_resource();
        if r.group.is_empty() {
            format!("{}/{}/{}", r.plural, self.namespace, self.name)
        } else {
            format!("{}.{}/{}/{}", r.plural, r.group, self.namespace, self.name)
        }
    }
}

/// Every problem of a policy's `target` block for the `kubernetes` executor; empty when it
/// is fine.
pub fn check(target: &serde_json::Map<String, serde_json::Value>) -> Vec<TargetProblem> {
    KubernetesTarget::parse(target).err().unwrap_or_default()
}

fn known_kind_names() -> String {
    let names: Vec<String> = KNOWN_KINDS
        .iter()
        .map(|(k, _, _)| format!("`{k}`"))
        .collect();
    names.join(", ")
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and `-`, starting and ending
/// with a letter or digit (namespaces, resource plurals).
fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_string());
    }
    if s.len() > 63 {
        return Err(format!("{} characters, at most 63", s.len()));
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.chars().all(|c| ok(c) || c == '-') {
        return Err("only lowercase letters, digits and `-` are allowed".to_string());
    }
    if !s.starts_with(ok) || !s.ends_with(ok) {
        return Err("must start and end with a lowercase letter or digit".to_string());
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated labels of lowercase
/// letters, digits and `-` (the names of workloads and most custom resources).
fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("{} characters, at most 253", s.len()));
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.chars().all(|c| ok(c) || c == '-' || c == '.') {
        return Err("only lowercase letters, digits, `-` and `.` are allowed".to_string());
    }
    if !s.starts_with(ok) || !s.ends_with(ok) {
        return Err("must start and end with a lowercase letter or digit".to_string());
    }
    Ok(())
}

fn check_api_version(s: &str) -> Result<(), String> {
    let (group, version) = match s.split_once('/') {
        Some((group, version)) => (Some(group), version),
        None => (None, s),
    };
    if let Some(group) = group
        && (group.is_empty() || dns1123_subdomain(group).is_err())
    {
        return Err("has no valid API group before the `/`".to_string());
    }
    if version.is_empty() || version.contains('/') || dns1123_label(version).is_err() {
        return Err("is not `group/version` or `version` (like `apps/v1`)".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("an object").clone()
    }

    fn paths(problems: &[TargetProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn a_minimal_block_gets_the_deployment_defaults() {
        let t = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes",
            "name": "web",
        })))
        .expect("valid");
        assert_eq!(t.kind, "Deployment");
        assert_eq!(t.namespace, "default");
        assert_eq!(t.kubeconfig, None);
        assert_eq!(t.context, None);
        let r = t.api_resource();
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.plural.as_str()),
            ("apps", "v1", "deployments")
        );
        assert_eq!(t.display(), "deployments.apps/default/web");
    }

    #[test]
    fn known_kinds_and_custom_resources_resolve_to_their_resources() {
        let t = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "kind": "StatefulSet", "name": "db", "namespace": "data",
        })))
        .expect("valid");
        assert_eq!(t.display(), "statefulsets.apps/data/db");
        let t = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "kind": "ReplicationController", "name": "old",
        })))
        .expect("valid");
        assert_eq!(t.api_resource().group, "");
        assert_eq!(t.display(), "replicationcontrollers/default/old");
        let t = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "kind": "Worker", "api_version": "queues.example.com/v1beta1",
            "plural": "workers", "name": "mail",
        })))
        .expect("valid");
        let r = t.api_resource();
        assert_eq!(r.group, "queues.example.com");
        assert_eq!(r.version, "v1beta1");
        assert_eq!(r.api_version, "queues.example.com/v1beta1");
        assert_eq!(t.display(), "workers.queues.example.com/default/mail");
    }

    #[test]
    fn a_block_with_a_mistake_names_the_field() {
        let e =
            KubernetesTarget::parse(&map(serde_json::json!({"type": "kubernetes"}))).unwrap_err();
        assert_eq!(paths(&e), ["target.name"]);
        assert!(e[0].reason.contains("missing field"), "{}", e[0]);

        let e = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "name": "web", "namepsace": "prod",
        })))
        .unwrap_err();
        assert_eq!(paths(&e), ["target.namepsace"]);
        assert!(e[0].reason.contains("unknown field"), "{}", e[0]);

        let e = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "name": "web", "namespace": 7,
        })))
        .unwrap_err();
        assert_eq!(paths(&e), ["target.namespace"]);

        let e = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetes", "name": "web", "kubeconfig": ["a"],
        })))
        .unwrap_err();
        assert_eq!(paths(&e), ["target.kubeconfig"]);

        let e = KubernetesTarget::parse(&map(serde_json::json!({
            "type": "kubernetis", "name": "web",
        })))
        .unwrap_err();
        assert_eq!(paths(&e), ["target.type"]);
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let e = check(&map(serde_json::json!({
            "type": "kubernetes", "kind": "Worker", "name": "", "namespace": "Prod_1",
            "context": "",
        })));
        assert_eq!(
            paths(&e),
            [
                "target.name",
                "target.namespace",
                "target.api_version",
                "target.plural",
                "target.context"
            ],
            "{e:?}"
        );
        assert_eq!(e[0].reason, "must not be empty");
        assert!(e[1].reason.contains("DNS-1123 label"), "{}", e[1]);
        assert!(e[3].reason.contains("`Worker`"), "{}", e[3]);
    }

    #[test]
    fn a_kind_in_the_wrong_case_gets_a_hint() {
        let e = check(&map(serde_json::json!({
            "type": "kubernetes", "kind": "deployment", "name": "web",
        })));
        assert_eq!(paths(&e), ["target.api_version", "target.plural"]);
        assert!(
            e[1].reason.contains("did you mean `Deployment`"),
            "{}",
            e[1]
        );
    }

    #[test]
    fn names_namespaces_and_api_versions_follow_kubernetes_rules() {
        let bad = |field: &str, value: &str| {
            let mut block = map(serde_json::json!({
                "type": "kubernetes", "kind": "Worker", "api_version": "example.com/v1",
                "plural": "workers", "name": "web",
            }));
            block.insert(field.to_string(), serde_json::json!(value));
            paths(&check(&block)).join(",")
        };
        assert_eq!(bad("name", "web.v2"), "");
        assert_eq!(bad("name", "Web"), "target.name");
        assert_eq!(bad("name", "a/b"), "target.name");
        assert_eq!(bad("namespace", "kube-system"), "");
        assert_eq!(bad("namespace", "-x"), "target.namespace");
        assert_eq!(bad("namespace", &"n".repeat(64)), "target.namespace");
        assert_eq!(bad("api_version", "v1"), "");
        assert_eq!(bad("api_version", "apps/"), "target.api_version");
        assert_eq!(bad("api_version", "/v1"), "target.api_version");
        assert_eq!(bad("api_version", "a/b/c"), "target.api_version");
        assert_eq!(bad("plural", "Workers"), "target.plural");
    }
}
