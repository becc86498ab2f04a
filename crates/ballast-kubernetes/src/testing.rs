//! A loopback Kubernetes API server for tests (feature `testing`).
//!
//! It follows the Kubernetes API reference (kubernetes.io/docs/reference/kubernetes-api/)
//! for the part Ballast uses, with JSON bodies and `Status` errors as the API server sends
//! them:
//!
//! - the scale subresource (`autoscaling/v1` `Scale`) of any workload:
//!   `GET`, `PUT` and merge `PATCH` of `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/scale`
//!   (and `/api/v1/...` for the core group). Every write moves the object's
//!   `metadata.resourceVersion` on; a `PUT` or patch carrying another `resourceVersion`
//!   is refused with 409 `Conflict`; `spec.replicas` is left out when it is zero
//!   (`omitempty`), as the API server does.
//! - nodes: `GET` and merge `PATCH` of `/api/v1/nodes/{name}`.
//! - pods: `GET /api/v1/pods` and `/api/v1/namespaces/{ns}/pods` with a `fieldSelector`
//!   on `spec.nodeName`, `metadata.name` or `metadata.namespace`; `GET` of one pod.
//! - the Eviction API (`policy/v1`): `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`
//!   deletes the pod (201 `Status` `Success`), or answers 429 `TooManyRequests` with a
//!   `DisruptionBudget` cause while a test lets a disruption budget refuse.
//!
//! Unknown objects give 404 `NotFound`, objects a test marks forbidden give 403
//! `Forbidden`, and a test can make the next changing request fail once
//! ([`MockCluster::fail_next`]). Patches other than merge patches (JSON patch, apply) are
//! not implemented and give 415.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A workload with a scale subresource, as the mock holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `group/version`, or `v1` for the core group.
    pub api_version: String,
    /// The resource's plural (`deployments`).
    pub plural: String,
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectRef {
    /// Any resource.
    pub fn new(api_version: &str, plural: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_string(),
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// An `apps/v1` Deployment.
    pub fn deployment(namespace: &str, name: &str) -> ObjectRef {
        ObjectRef::new("apps/v1", "deployments", namespace, name)
    }

    /// An `apps/v1` StatefulSet.
    pub fn stateful_set(namespace: &str, name: &str) -> ObjectRef {
        ObjectRef::new("apps/v1", "statefulsets", namespace, name)
    }

    fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default()
    }

    /// `deployments.apps`, or `replicationcontrollers` for the core group.
    fn resource(&self) -> String {
        if self.group().is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group())
        }
    }
}

/// A failure the next changing request (`PUT`, `PATCH`, `POST`, `DELETE`) gets, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 409 `Conflict`, as when another writer changed the object first.
    Conflict,
    /// 403 `Forbidden`, as when RBAC does not allow the change.
    Forbidden,
    /// 503 `ServiceUnavailable`.
    Unavailable,
}

/// What a pod belongs to, which decides whether a drain evicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodOwner {
    /// No owner (a bare pod).
    None,
    /// A ReplicaSet (as a Deployment's pods are).
    ReplicaSet,
    /// A DaemonSet.
    DaemonSet,
    /// A static pod's mirror (annotation `kubernetes.io/config.mirror`).
    Mirror,
}

#[derive(Debug)]
struct Workload {
    replicas: u32,
    resource_version: u64,
    uid: String,
    forbidden: bool,
    change_after_next_read: Option<u32>,
}

#[derive(Debug)]
struct Budget {
    name: String,
    /// Refusals left; `None` refuses for ever.
    refusals: Option<u32>,
}

#[derive(Debug, Default)]
struct World {
    resource_version: u64,
    next_uid: u64,
    changes: u64,
    fault: Option<Fault>,
    workloads: BTreeMap<ObjectRef, Workload>,
    nodes: BTreeMap<String, Value>,
    pods: BTreeMap<(String, String), Value>,
    budgets: BTreeMap<(String, String), Budget>,
    evictions: Vec<String>,
}

impl World {
    fn next_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn next_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_uid)
    }
}

/// A loopback Kubernetes API server; stops when dropped.
#[derive(Debug)]
pub struct MockCluster {
    url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockCluster {
    /// Starts a server on a free loopback port.
    pub async fn start() -> MockCluster {
        let world = Arc::new(Mutex::new(World::default()));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let app = Router::new().fallback(handle).with_state(world.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("mock API server");
        });
        MockCluster { url, world, server }
    }

    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client for this server, with the settings `connect` gives real clusters and a
    /// short read timeout.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("the server's URL"));
        config.read_timeout = Some(Duration::from_secs(5));
        crate::client_from_config(config).expect("a client for the mock API server")
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("no panic while holding the lock")
    }

    /// Creates (or replaces) a workload with `replicas`.
    pub fn add_workload(&self, object: &ObjectRef, replicas: u32) {
        let mut w = self.world();
        let resource_version = w.next_version();
        let uid = w.next_uid();
        w.workloads.insert(
            object.clone(),
            Workload {
                replicas,
                resource_version,
                uid,
                forbidden: false,
                change_after_next_read: None,
            },
        );
    }

    /// The workload's `spec.replicas`, read behind the client's back.
    pub fn replicas(&self, object: &ObjectRef) -> Option<u32> {
        self.world().workloads.get(object).map(|w| w.replicas)
    }

    /// Changes the workload's replicas as another writer would (no request is counted).
    pub fn set_replicas(&self, object: &ObjectRef, replicas: u32) {
        let mut w = self.world();
        let version = w.next_version();
        let workload = w.workloads.get_mut(object).expect("a known workload");
        workload.replicas = replicas;
        workload.resource_version = version;
    }

    /// Right after the next read of the workload's scale is answered, another writer sets
    /// its replicas to `replicas`: a write based on that read then carries a stale
    /// `resourceVersion`.
    pub fn change_after_next_read(&self, object: &ObjectRef, replicas: u32) {
        let mut w = self.world();
        w.workloads
            .get_mut(object)
            .expect("a known workload")
            .change_after_next_read = Some(replicas);
    }

    /// Every request for the workload is refused with 403 `Forbidden` from now on.
    pub fn forbid(&self, object: &ObjectRef) {
        self.world()
            .workloads
            .get_mut(object)
            .expect("a known workload")
            .forbidden = true;
    }

    /// The next changing request fails with `fault`, once.
    pub fn fail_next(&self, fault: Fault) {
        self.world().fault = Some(fault);
    }

    /// How many changing requests (`PUT`, `PATCH`, `POST`, `DELETE`) the server received,
    /// refused ones included.
    pub fn changes(&self) -> u64 {
        self.world().changes
    }

    /// Registers a node whose `Ready` condition is `True`, `False`, or `Unknown` (`None`).
    pub fn add_node(&self, name: &str, ready: Option<bool>) {
        let mut w = self.world();
        let version = w.next_version();
        let uid = w.next_uid();
        let status = match ready {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        w.nodes.insert(
            name.to_string(),
            json!({
                "metadata": {
                    "name": name,
                    "uid": uid,
                    "resourceVersion": version.to_string(),
                    "labels": {"kubernetes.io/hostname": name},
                },
                "spec": {},
                "status": {
                    "conditions": [
                        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                        {"type": "Ready", "status": status, "reason": "KubeletReady"},
                    ],
                },
            }),
        );
    }

    /// Whether the node is cordoned (`spec.unschedulable`); `None` for an unknown node.
    pub fn unschedulable(&self, node: &str) -> Option<bool> {
        self.world().nodes.get(node).map(|n| {
            n.pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
    }

    /// Puts a running pod on `node`.
    pub fn add_pod(&self, namespace: &str, name: &str, node: &str, owner: PodOwner) {
        let mut w = self.world();
        let version = w.next_version();
        let uid = w.next_uid();
        let mut metadata = json!({
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": version.to_string(),
        });
        let owner_ref = |api_version: &str, kind: &str, owner: &str| {
            json!([{
                "apiVersion": api_version, "kind": kind, "name": owner,
                "uid": "00000000-0000-4000-8000-ffffffffffff",
                "controller": true, "blockOwnerDeletion": true,
            }])
        };
        match owner {
            PodOwner::None => {}
            PodOwner::ReplicaSet => {
                metadata["ownerReferences"] =
                    owner_ref("apps/v1", "ReplicaSet", &format!("{name}-rs"));
            }
            PodOwner::DaemonSet => {
                metadata["ownerReferences"] =
                    owner_ref("apps/v1", "DaemonSet", &format!("{name}-ds"));
            }
            PodOwner::Mirror => {
                metadata["annotations"] = json!({"kubernetes.io/config.mirror": "0123abcd"});
                metadata["ownerReferences"] = owner_ref("v1", "Node", node);
            }
        }
        w.pods.insert(
            (namespace.to_string(), name.to_string()),
            json!({
                "metadata": metadata,
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "main", "image": "registry.example/app:1"}],
                },
                "status": {"phase": "Running"},
            }),
        );
    }

    /// The pods on `node`, as `namespace/name`.
    pub fn pods_on(&self, node: &str) -> Vec<String> {
        self.world()
            .pods
            .iter()
            .filter(|(_, p)| p.pointer("/spec/nodeName") == Some(&json!(node)))
            .map(|((ns, name), _)| format!("{ns}/{name}"))
            .collect()
    }

    /// The disruption budget `budget` refuses the eviction of the pod `refusals` times
    /// (for ever with `None`) with 429 `TooManyRequests`.
    pub fn block_eviction(&self, namespace: &str, pod: &str, budget: &str, refusals: Option<u32>) {
        self.world().budgets.insert(
            (namespace.to_string(), pod.to_string()),
            Budget {
                name: budget.to_string(),
                refusals,
            },
        );
    }

    /// The pods evicted so far, as `namespace/name`, in order.
    pub fn evictions(&self) -> Vec<String> {
        self.world().evictions.clone()
    }
}

/// What a request path names.
#[derive(Debug)]
enum Route {
    Scale(ObjectRef),
    Node(String),
    Pods(Option<String>),
    Pod(String, String),
    Eviction(String, String),
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let s = |x: &&str| x.to_string();
    match parts.as_slice() {
        ["api", "v1", "nodes", name] => Some(Route::Node(s(name))),
        ["api", "v1", "pods"] => Some(Route::Pods(None)),
        ["api", "v1", "namespaces", ns, "pods"] => Some(Route::Pods(Some(s(ns)))),
        ["api", "v1", "namespaces", ns, "pods", name] => Some(Route::Pod(s(ns), s(name))),
        ["api", "v1", "namespaces", ns, "pods", name, "eviction"] => {
            Some(Route::Eviction(s(ns), s(name)))
        }
        ["api", version, "namespaces", ns, plural, name, "scale"] => {
            Some(Route::Scale(ObjectRef::new(version, plural, ns, name)))
        }
        [
            "apis",
            group,
            version,
            "namespaces",
            ns,
            plural,
            name,
            "scale",
        ] => Some(Route::Scale(ObjectRef::new(
            &format!("{group}/{version}"),
            plural,
            ns,
            name,
        ))),
        _ => None,
    }
}

/// A `Status` error as the API server sends it.
fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if !details.is_null() {
        body["details"] = details;
    }
    (code, axum::Json(body)).into_response()
}

fn not_found(resource: &str, group: &str, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{resource} \"{name}\" not found"),
        json!({"name": name, "group": group, "kind": resource.split('.').next()}),
    )
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, Value::Null)
}

fn verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::POST => "create",
        Method::DELETE => "delete",
        _ => "access",
    }
}

/// The resource, group and name a route's errors speak of, and its namespace.
fn subject(route: &Route) -> (String, String, String, Option<String>, String) {
    match route {
        Route::Scale(o) => (
            o.resource(),
            o.group().to_string(),
            o.name.clone(),
            Some(o.namespace.clone()),
            format!("{}/scale", o.plural),
        ),
        Route::Node(n) => (
            "nodes".into(),
            String::new(),
            n.clone(),
            None,
            "nodes".into(),
        ),
        Route::Pods(ns) => (
            "pods".into(),
            String::new(),
            String::new(),
            ns.clone(),
            "pods".into(),
        ),
        Route::Pod(ns, n) => (
            "pods".into(),
            String::new(),
            n.clone(),
            Some(ns.clone()),
            "pods".into(),
        ),
        Route::Eviction(ns, n) => (
            "pods".into(),
            String::new(),
            n.clone(),
            Some(ns.clone()),
            "pods/eviction".into(),
        ),
    }
}

fn forbidden(method: &Method, route: &Route) -> Response {
    let (resource, group, name, namespace, rbac_resource) = subject(route);
    let mut message = format!(
        "{resource} \"{name}\" is forbidden: User \"system:serviceaccount:ballast:ballast\" \
         cannot {} resource \"{rbac_resource}\" in API group \"{group}\"",
        verb(method)
    );
    if let Some(ns) = namespace {
        message.push_str(&format!(" in the namespace \"{ns}\""));
    }
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        message,
        json!({"name": name, "group": group, "kind": rbac_resource.split('/').next()}),
    )
}

fn conflict(route: &Route) -> Response {
    let (resource, group, name, _, _) = subject(route);
    status(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
             modified; please apply your changes to the latest version and try again"
        ),
        json!({"name": name, "group": group, "kind": resource.split('.').next()}),
    )
}

fn fault_response(fault: Fault, method: &Method, route: &Route) -> Response {
    match fault {
        Fault::Conflict => conflict(route),
        Fault::Forbidden => forbidden(method, route),
        Fault::Unavailable => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the server is currently unable to handle the request".to_string(),
            Value::Null,
        ),
    }
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut w = world.lock().expect("no panic while holding the lock");
    let Some(route) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".to_string(),
            Value::Null,
        );
    };
    let changing = matches!(
        method,
        Method::PUT | Method::PATCH | Method::POST | Method::DELETE
    );
    if changing {
        w.changes += 1;
        if let Some(fault) = w.fault.take() {
            return fault_response(fault, &method, &route);
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    match (&method, &route) {
        (&Method::GET, Route::Scale(o)) => get_scale(&mut w, o),
        (&Method::PUT, Route::Scale(o)) => {
            if content_type != "application/json" {
                return unsupported_media_type(&content_type);
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(scale) => write_scale(&mut w, &method, o, scale),
                Err(e) => bad_request(format!("invalid JSON body: {e}")),
            }
        }
        (&Method::PATCH, Route::Scale(o)) => {
            let patch = match read_merge_patch(&content_type, &body) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let Some(workload) = w.workloads.get(o) else {
                return not_found(&o.resource(), o.group(), &o.name);
            };
            if workload.forbidden {
                return forbidden(&method, &route);
            }
            let mut scale = scale_json(o, workload);
            merge(&mut scale, &patch);
            write_scale(&mut w, &method, o, scale)
        }
        (&Method::GET, Route::Node(name)) => match w.nodes.get(name) {
            Some(node) => object("v1", "Node", node.clone()),
            None => not_found("nodes", "", name),
        },
        (&Method::PATCH, Route::Node(name)) => {
            let patch = match read_merge_patch(&content_type, &body) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let version = w.next_version();
            match w.nodes.get_mut(name) {
                Some(node) => {
                    merge(node, &patch);
                    node["metadata"]["name"] = json!(name);
                    node["metadata"]["resourceVersion"] = json!(version.to_string());
                    object("v1", "Node", node.clone())
                }
                None => not_found("nodes", "", name),
            }
        }
        (&Method::GET, Route::Pods(namespace)) => list_pods(&w, namespace.as_deref(), &query),
        (&Method::GET, Route::Pod(ns, name)) => match w.pods.get(&(ns.clone(), name.clone())) {
            Some(pod) => object("v1", "Pod", pod.clone()),
            None => not_found("pods", "", name),
        },
        (&Method::POST, Route::Eviction(ns, name)) => {
            if content_type != "application/json" {
                return unsupported_media_type(&content_type);
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(eviction) => evict(&mut w, ns, name, &eviction),
                Err(e) => bad_request(format!("invalid JSON body: {e}")),
            }
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
            Value::Null,
        ),
    }
}

fn unsupported_media_type(content_type: &str) -> Response {
    status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format: {content_type}"),
        Value::Null,
    )
}

/// A merge patch body (`application/merge-patch+json`, or a strategic merge patch, which
/// is the same for the plain fields this server holds).
fn read_merge_patch(content_type: &str, body: &[u8]) -> Result<Value, Box<Response>> {
    if content_type != "application/merge-patch+json"
        && content_type != "application/strategic-merge-patch+json"
    {
        return Err(Box::new(unsupported_media_type(content_type)));
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(bad_request(format!("invalid JSON patch body: {e}"))))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().expect("an object");
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A single object with its `apiVersion` and `kind` (list items have neither).
fn object(api_version: &str, kind: &str, mut body: Value) -> Response {
    body["apiVersion"] = json!(api_version);
    body["kind"] = json!(kind);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn scale_json(o: &ObjectRef, workload: &Workload) -> Value {
    let mut spec = json!({});
    if workload.replicas > 0 {
        spec["replicas"] = json!(workload.replicas);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": o.name,
            "namespace": o.namespace,
            "uid": workload.uid,
            "resourceVersion": workload.resource_version.to_string(),
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": spec,
        "status": {"replicas": workload.replicas, "selector": format!("app={}", o.name)},
    })
}

fn get_scale(w: &mut World, o: &ObjectRef) -> Response {
    let Some(workload) = w.workloads.get(o) else {
        return not_found(&o.resource(), o.group(), &o.name);
    };
    if workload.forbidden {
        return forbidden(&Method::GET, &Route::Scale(o.clone()));
    }
    let answer = scale_json(o, workload);
    if let Some(replicas) = w
        .workloads
        .get_mut(o)
        .and_then(|wl| wl.change_after_next_read.take())
    {
        let version = w.next_version();
        let workload = w.workloads.get_mut(o).expect("just read");
        workload.replicas = replicas;
        workload.resource_version = version;
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// Applies a whole `Scale` (from a `PUT`, or the current one with a patch merged in).
fn write_scale(w: &mut World, method: &Method, o: &ObjectRef, scale: Value) -> Response {
    let Some(workload) = w.workloads.get(o) else {
        return not_found(&o.resource(), o.group(), &o.name);
    };
    if workload.forbidden {
        return forbidden(method, &Route::Scale(o.clone()));
    }
    if let Some(kind) = scale.get("kind").and_then(Value::as_str)
        && kind != "Scale"
    {
        return bad_request(format!(
            "kind {kind} does not match the expected kind Scale"
        ));
    }
    let name = scale.pointer("/metadata/name").and_then(Value::as_str);
    if name != Some(o.name.as_str()) {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            name.unwrap_or_default(),
            o.name
        ));
    }
    if let Some(ns) = scale.pointer("/metadata/namespace").and_then(Value::as_str)
        && ns != o.namespace
    {
        return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .to_string(),
        );
    }
    let version = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !version.is_empty() && version != workload.resource_version.to_string() {
        return conflict(&Route::Scale(o.clone()));
    }
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => n as u32,
            _ => {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!(
                        "Scale.autoscaling \"{}\" is invalid: spec.replicas: Invalid value: {v}: \
                         must be greater than or equal to 0",
                        o.name
                    ),
                    json!({"name": o.name, "group": "autoscaling", "kind": "Scale",
                           "causes": [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                       "message": format!("Invalid value: {v}: must be greater than or equal to 0")}]}),
                );
            }
        },
    };
    let next = w.next_version();
    let workload = w.workloads.get_mut(o).expect("checked above");
    if workload.replicas != replicas {
        workload.replicas = replicas;
        workload.resource_version = next;
    }
    (StatusCode::OK, axum::Json(scale_json(o, workload))).into_response()
}

fn list_pods(w: &World, namespace: Option<&str>, query: &HashMap<String, String>) -> Response {
    let mut terms = Vec::new();
    if let Some(selector) = query.get("fieldSelector").filter(|s| !s.is_empty()) {
        for term in selector.split(',') {
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, true)
            } else {
                return bad_request(format!("invalid field selector: {term}"));
            };
            let pointer = match field {
                "spec.nodeName" => "/spec/nodeName",
                "metadata.name" => "/metadata/name",
                "metadata.namespace" => "/metadata/namespace",
                "status.phase" => "/status/phase",
                other => return bad_request(format!("field label not supported: {other}")),
            };
            terms.push((pointer, value.to_string(), equal));
        }
    }
    let items: Vec<Value> = w
        .pods
        .iter()
        .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
        .filter(|(_, pod)| {
            terms.iter().all(|(pointer, value, equal)| {
                let actual = pod.pointer(pointer).and_then(Value::as_str).unwrap_or("");
                (actual == value) == *equal
            })
        })
        .map(|(_, pod)| pod.clone())
        .collect();
    let body = json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": w.resource_version.to_string()},
        "items": items,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn evict(w: &mut World, namespace: &str, name: &str, eviction: &Value) -> Response {
    if let Some(kind) = eviction.get("kind").and_then(Value::as_str)
        && kind != "Eviction"
    {
        return bad_request(format!(
            "kind {kind} does not match the expected kind Eviction"
        ));
    }
    if eviction.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return bad_request("name in URL does not match name in Eviction object".to_string());
    }
    if let Some(ns) = eviction
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        && ns != namespace
    {
        return bad_request(
            "namespace in URL does not match namespace in Eviction object".to_string(),
        );
    }
    let key = (namespace.to_string(), name.to_string());
    if !w.pods.contains_key(&key) {
        return not_found("pods", "", name);
    }
    if let Some(budget) = w.budgets.get_mut(&key) {
        let refuse = match &mut budget.refusals {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        };
        if refuse {
            return status(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.".to_string(),
                json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!(
                        "The disruption budget {} needs 1 healthy pods and has 1 currently",
                        budget.name
                    ),
                }]}),
            );
        }
    }
    w.pods.remove(&key);
    w.next_version();
    w.evictions.push(format!("{namespace}/{name}"));
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        })),
    )
        .into_response()
}
