//! A loopback Scaleway Instance API v1 following Scaleway's Instance API reference
//! (`www.scaleway.com/en/developers/api/instance/`): `X-Auth-Token` checked on every call;
//! zone in the path; `GET /instance/v1/zones/{zone}/servers` with `tags`, `name`, `page`
//! and `per_page` (at most 100) and the total in `X-Total-Count`; `POST .../servers`
//! creating a `stopped` server with a root volume; `PATCH
//! .../servers/{id}/user_data/{key}` (`text/plain`); `POST .../servers/{id}/action` with
//! `poweron` (from `stopped`) or `terminate` (from `running`) answering a `task`; the state
//! moving on after a set number of `GET .../servers/{id}` polls; `DELETE .../servers/{id}`
//! (stopped only) and `DELETE .../volumes/{id}`; `GET .../products/servers` with
//! `hourly_price`, `ncpus`, `ram` and `end_of_service`; `GET
//! .../products/servers/availability` with each commercial type's `availability`
//! (`available`, `scarce`, `shortage`), paginated with `total_count`; a create of a type in
//! `shortage`, or the `poweron` of a type sold out meanwhile, refused with an error of type
//! `out_of_stock` (as the SDKs parse it: `{"type": "out_of_stock", "resource": ...}`);
//! errors as `{"message","type","resource","fields"}`; and a 429 with `Retry-After` when
//! asked.
//!
//! Besides the API: `POST /hooks/drain` (the drain webhook), and a health endpoint per
//! server (see [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Fault, Faults, Health, Journal, query_get, query_pairs, serve};

/// The secret key the mock accepts.
pub const SECRET_KEY: &str = "scw-secret-0000-1111-2222-333344445555";
/// The project id servers must be created in.
pub const PROJECT: &str = "11111111-2222-3333-4444-555555555555";
/// The mock's zone.
pub const ZONE: &str = "fr-par-1";

#[derive(Debug, Clone)]
struct MServer {
    id: String,
    name: String,
    state: &'static str,
    state_detail: String,
    created: String,
    tags: Vec<String>,
    ip: IpAddr,
    commercial_type: String,
    user_data: Option<String>,
    volume: String,
    polls_left: u32,
    boot_fails: bool,
}

#[derive(Debug)]
struct MockState {
    servers: BTreeMap<String, MServer>,
    volumes: Vec<String>,
    next_id: u64,
    clock: u64,
    polls: u32,
    faults: Faults,
    fail_poweron_next: bool,
    changes: u64,
    list_pages: u64,
    /// Stock per commercial type (`available` when not set).
    stock: BTreeMap<String, &'static str>,
    end_of_service: BTreeSet<String>,
    /// Types whose create is refused as out of stock although the listing says available
    /// (stock ran out after the listing was read).
    sold_out_at_create: BTreeSet<String>,
    /// Types whose `poweron` is refused as out of stock although the listing says
    /// available (stock ran out between the create and the start).
    sold_out_at_poweron: BTreeSet<String>,
    rate_limited_until: Option<Instant>,
    health: Health,
}

/// The mock. Dropping it stops the server.
#[derive(Debug)]
pub struct ScalewayMock {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    journal: Journal,
    task: JoinHandle<()>,
}

impl Drop for ScalewayMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Mutex<MockState>>, Journal);

impl ScalewayMock {
    /// Starts the mock on a loopback port.
    pub async fn start() -> ScalewayMock {
        let state = Arc::new(Mutex::new(MockState {
            servers: BTreeMap::new(),
            volumes: Vec::new(),
            next_id: 1,
            clock: 0,
            polls: 1,
            faults: Faults::default(),
            fail_poweron_next: false,
            changes: 0,
            list_pages: 0,
            stock: BTreeMap::new(),
            end_of_service: BTreeSet::new(),
            sold_out_at_create: BTreeSet::new(),
            sold_out_at_poweron: BTreeSet::new(),
            rate_limited_until: None,
            health: Health::new().await,
        }));
        let journal = Journal::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((state.clone(), journal.clone()));
        let (addr, task) = serve(app).await;
        ScalewayMock {
            addr,
            state,
            journal,
            task,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().expect("no panic under the lock")
    }

    /// The API's base URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The drain webhook's URL.
    pub fn drain_url(&self) -> String {
        format!("http://{}/hooks/drain", self.addr)
    }

    /// A readiness URL template reaching each server's health endpoint.
    pub fn health_template(&self) -> String {
        format!("http://{{ip}}:{}/healthz", self.lock().health.port())
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// How many changing requests arrived.
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// How many pages of the server list were served.
    pub fn list_pages(&self) -> u64 {
        self.lock().list_pages
    }

    /// How many polls of a server a state change takes (default 1).
    pub fn set_polls(&self, polls: u32) {
        self.lock().polls = polls;
    }

    /// Fails a create after letting `after` through.
    pub fn fail_create(&self, after: usize, fault: Fault) {
        self.lock().faults.create = Some((after, fault));
    }

    /// The next `poweron` is answered 503 (the server was created already).
    pub fn fail_next_poweron(&self) {
        self.lock().fail_poweron_next = true;
    }

    /// The next created server fails to boot (back to `stopped` with a `state_detail`).
    pub fn fail_next_boot(&self) {
        self.lock().faults.action_error_next = true;
    }

    /// The next created server never answers its health check.
    pub fn never_ready_next(&self) {
        self.lock().faults.never_ready_next = true;
    }

    /// The next API request is answered 429 with `Retry-After`; requests before then are
    /// refused again.
    pub fn rate_limit_once(&self, wait: Duration) {
        self.lock().faults.rate_limit_once = Some(wait);
    }

    /// The drain webhook answers 500.
    pub fn fail_drains(&self, fail: bool) {
        self.lock().faults.drain_fails = fail;
    }

    /// Sets the stock of `commercial_type`: `available`, `scarce` or `shortage` (a create
    /// is then refused as out of stock).
    pub fn set_stock(&self, commercial_type: &str, availability: &'static str) {
        self.lock()
            .stock
            .insert(commercial_type.to_string(), availability);
    }

    /// Marks `commercial_type` as having reached end of service.
    pub fn end_of_service(&self, commercial_type: &str) {
        self.lock()
            .end_of_service
            .insert(commercial_type.to_string());
    }

    /// A create of `commercial_type` is refused as out of stock while the availability
    /// listing still says it is available.
    pub fn sell_out_at_create(&self, commercial_type: &str) {
        self.lock()
            .sold_out_at_create
            .insert(commercial_type.to_string());
    }

    /// The `poweron` of a server of `commercial_type` is refused as out of stock while the
    /// availability listing still says it is available.
    pub fn sell_out_at_poweron(&self, commercial_type: &str) {
        self.lock()
            .sold_out_at_poweron
            .insert(commercial_type.to_string());
    }

    /// The commercial type `name` was created with.
    pub fn server_type(&self, name: &str) -> Option<String> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .map(|m| m.commercial_type.clone())
    }

    /// Removes every server.
    pub fn reset(&self) {
        let mut s = self.lock();
        let names: Vec<String> = s.servers.values().map(|m| m.name.clone()).collect();
        for n in names {
            s.health.close(&n);
        }
        s.servers.clear();
        s.volumes.clear();
        s.faults = Faults::default();
        s.fail_poweron_next = false;
    }

    /// Adds a running, healthy server with these tags; returns its name.
    pub fn add_server(&self, name: &str, tags: &[&str]) -> String {
        let mut s = self.lock();
        s.clock += 1;
        let id = new_id(&mut s);
        let volume = new_id(&mut s);
        s.volumes.push(volume.clone());
        let ip = s.health.address();
        s.health.open(name, ip);
        let server = MServer {
            id: id.clone(),
            name: name.to_string(),
            state: "running",
            state_detail: String::new(),
            created: created_at(s.clock),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ip,
            commercial_type: "DEV1-S".into(),
            user_data: None,
            volume,
            polls_left: 0,
            boot_fails: false,
        };
        s.servers.insert(id, server);
        name.to_string()
    }

    /// The names of the servers carrying `tag` that count (starting or running).
    pub fn names(&self, tag: &str) -> Vec<String> {
        self.lock()
            .servers
            .values()
            .filter(|m| m.tags.iter().any(|t| t == tag))
            .filter(|m| matches!(m.state, "running" | "starting"))
            .map(|m| m.name.clone())
            .collect()
    }

    /// How many servers exist at all, whatever their state.
    pub fn all(&self) -> usize {
        self.lock().servers.len()
    }

    /// How many volumes exist.
    pub fn volumes(&self) -> usize {
        self.lock().volumes.len()
    }

    /// The cloud-init user data of `name`.
    pub fn user_data(&self, name: &str) -> Option<String> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .and_then(|m| m.user_data.clone())
    }

    /// The tags of `name`.
    pub fn tags(&self, name: &str) -> Option<Vec<String>> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .map(|m| m.tags.clone())
    }
}

fn new_id(s: &mut MockState) -> String {
    let n = s.next_id;
    s.next_id += 1;
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

fn created_at(clock: u64) -> String {
    let t = chrono::DateTime::from_timestamp(1_767_225_600 + clock as i64 * 60, 0)
        .expect("a valid time");
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "type": kind})),
    )
        .into_response()
}

fn out_of_stock(commercial_type: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({
            "message": format!("{commercial_type} is out of stock in {ZONE}"),
            "type": "out_of_stock",
            "resource": "instance_server",
        })),
    )
        .into_response()
}

fn not_found(resource: &str, id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "message": format!("resource is not found"),
            "type": "not_found",
            "resource": resource,
            "resource_id": id,
        })),
    )
        .into_response()
}

fn server_json(m: &MServer) -> Value {
    let has_ip = matches!(m.state, "running" | "starting" | "stopping");
    json!({
        "id": m.id,
        "name": m.name,
        "state": m.state,
        "state_detail": m.state_detail,
        "creation_date": m.created,
        "modification_date": m.created,
        "commercial_type": m.commercial_type,
        "tags": m.tags,
        "project": PROJECT,
        "zone": ZONE,
        "public_ip": if has_ip { json!({"id": format!("ip-{}", m.id), "address": m.ip.to_string(), "dynamic": true}) } else { Value::Null },
        "public_ips": if has_ip { json!([{"id": format!("ip-{}", m.id), "address": m.ip.to_string()}]) } else { json!([]) },
        "private_ip": null,
        "volumes": {"0": {"id": m.volume, "volume_type": "l_ssd", "size": 20000000000u64}},
        "allowed_actions": match m.state {
            "running" => json!(["poweroff", "terminate", "reboot", "stop_in_place", "backup"]),
            "stopped" => json!(["poweron", "backup"]),
            _ => json!([]),
        },
    })
}

fn task_json(id: &str, action: &str, server: &str) -> Value {
    json!({"task": {
        "id": id,
        "description": format!("server_{action}"),
        "status": "pending",
        "href_from": format!("/servers/{server}/action"),
        "href_result": format!("/servers/{server}"),
        "progress": 0,
        "started_at": "2026-01-01T00:00:00.000000+00:00",
        "terminated_at": null,
        "zone": ZONE,
    }})
}

fn products(s: &MockState) -> Value {
    let gib = 1_073_741_824u64;
    let eos = |t: &str| s.end_of_service.contains(t);
    json!({"servers": {
        "DEV1-S": {"hourly_price": 0.0088, "monthly_price": 6.424, "ncpus": 2, "ram": 2 * gib, "arch": "x86_64", "baremetal": false, "end_of_service": eos("DEV1-S"), "alt_names": []},
        "DEV1-M": {"hourly_price": 0.0198, "monthly_price": 14.454, "ncpus": 3, "ram": 4 * gib, "arch": "x86_64", "baremetal": false, "end_of_service": eos("DEV1-M"), "alt_names": []},
        "GP1-XS": {"hourly_price": 0.091, "monthly_price": 66.43, "ncpus": 4, "ram": 16 * gib, "arch": "x86_64", "baremetal": false, "end_of_service": eos("GP1-XS"), "alt_names": []},
    }})
}

fn availability(s: &MockState) -> Vec<(String, Value)> {
    let p = products(s);
    p["servers"]
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| {
                    let a = s.stock.get(k).copied().unwrap_or("available");
                    (k.clone(), json!({"availability": a}))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(
    State((state, journal)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/hooks/drain" && method == Method::POST {
        let node = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("node")?.as_str().map(str::to_string))
            .unwrap_or_default();
        journal.push(format!("drain {node}"));
        let fails = state.lock().expect("no panic").faults.drain_fails;
        return if fails {
            (StatusCode::INTERNAL_SERVER_ERROR, "drain failed").into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        };
    }
    let authorized = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == SECRET_KEY);
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "message": "authentication is denied",
                "method": "api_key",
                "reason": "invalid_argument",
                "type": "denied_authentication",
            })),
        )
            .into_response();
    }
    let mut s = state.lock().expect("no panic under the lock");
    if let Some(wait) = s.faults.rate_limit_once.take() {
        s.rate_limited_until = Some(Instant::now() + wait);
    }
    if let Some(until) = s.rate_limited_until {
        let now = Instant::now();
        if now < until {
            journal.push(format!("429 {method} {path}"));
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "rate limit exceeded",
            );
            let secs = (until - now).as_secs_f64();
            // Whole seconds, as the header is usually written, unless below one.
            let value = if secs >= 1.0 {
                format!("{}", secs.ceil() as u64)
            } else {
                format!("{secs:.3}")
            };
            r.headers_mut()
                .insert("retry-after", value.parse().expect("header"));
            return r;
        }
        s.rate_limited_until = None;
    }
    let Some(rest) = path.strip_prefix(&format!("/instance/v1/zones/{ZONE}/")) else {
        return error(StatusCode::NOT_FOUND, "not_found", "unknown zone or path");
    };
    let pairs = query_pairs(&uri);
    let segments: Vec<String> = rest.split('/').map(str::to_string).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, seg.as_slice()) {
        (&Method::GET, ["servers"]) => {
            let per_page: usize = query_get(&pairs, "per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(50);
            if !(1..=100).contains(&per_page) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "message": "invalid argument(s)",
                        "type": "invalid_arguments",
                        "fields": {"per_page": ["value must be between 1 and 100"]},
                    })),
                )
                    .into_response();
            }
            let page: usize = query_get(&pairs, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let wanted: Vec<String> = query_get(&pairs, "tags")
                .map(|t| t.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let name = query_get(&pairs, "name");
            let matching: Vec<Value> = s
                .servers
                .values()
                .filter(|m| wanted.iter().all(|w| m.tags.contains(w)))
                .filter(|m| name.as_ref().is_none_or(|n| m.name.contains(n.as_str())))
                .map(server_json)
                .collect();
            let total = matching.len();
            let items: Vec<Value> = matching
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            s.list_pages += 1;
            let mut r = axum::Json(json!({"servers": items})).into_response();
            r.headers_mut()
                .insert("x-total-count", total.to_string().parse().expect("header"));
            r
        }
        (&Method::POST, ["servers"]) => {
            s.changes += 1;
            if let Some(fault) = s.faults.take_create() {
                journal.push("create refused");
                return match fault {
                    Fault::Transient => error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "service_unavailable",
                        "service is temporarily unavailable",
                    ),
                    Fault::Permanent => error(
                        StatusCode::FORBIDDEN,
                        "quotas_exceeded",
                        "Quotas exceeded: instances_servers has reached its quota",
                    ),
                };
            }
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::BAD_REQUEST, "invalid_request_error", "bad JSON");
            };
            let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(name), Some(commercial_type), Some(_image), Some(project)) = (
                field("name"),
                field("commercial_type"),
                field("image"),
                field("project"),
            ) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_arguments",
                    "name, commercial_type, image and project are required",
                );
            };
            if project != PROJECT {
                return error(
                    StatusCode::FORBIDDEN,
                    "permissions_denied",
                    "insufficient permissions for this project",
                );
            }
            if s.stock.get(&commercial_type).copied() == Some("shortage")
                || s.sold_out_at_create.contains(&commercial_type)
            {
                journal.push(format!("out of stock {commercial_type}"));
                return out_of_stock(&commercial_type);
            }
            let tags: Vec<String> = req
                .get("tags")
                .and_then(|t| serde_json::from_value(t.clone()).ok())
                .unwrap_or_default();
            s.clock += 1;
            let id = new_id(&mut s);
            let volume = new_id(&mut s);
            s.volumes.push(volume.clone());
            let ip = s.health.address();
            if std::mem::take(&mut s.faults.never_ready_next) {
                s.health.set_unready(&name, true);
            }
            let boot_fails = std::mem::take(&mut s.faults.action_error_next);
            let m = MServer {
                id: id.clone(),
                name: name.clone(),
                state: "stopped",
                state_detail: String::new(),
                created: created_at(s.clock),
                tags,
                ip,
                commercial_type,
                user_data: None,
                volume,
                polls_left: 0,
                boot_fails,
            };
            let body = json!({"server": server_json(&m)});
            s.servers.insert(id, m);
            journal.push(format!("create {name}"));
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        (&Method::PATCH, ["servers", id, "user_data", key]) => {
            s.changes += 1;
            let is_text = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain"));
            if !is_text {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "user data must be sent as text/plain",
                );
            }
            let Some(m) = s.servers.get_mut(*id) else {
                return not_found("instance_server", id);
            };
            if *key == "cloud-init" {
                m.user_data = Some(String::from_utf8_lossy(&body).into_owned());
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::POST, ["servers", id, "action"]) => {
            s.changes += 1;
            let action = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("action")?.as_str().map(str::to_string))
                .unwrap_or_default();
            if action == "poweron" && std::mem::take(&mut s.fail_poweron_next) {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "no capacity to start the server right now",
                );
            }
            let polls = s.polls;
            let sold_out = s
                .servers
                .get(*id)
                .map(|m| m.commercial_type.clone())
                .filter(|t| action == "poweron" && s.sold_out_at_poweron.contains(t));
            if let Some(t) = sold_out {
                journal.push(format!("out of stock {t}"));
                return out_of_stock(&t);
            }
            let Some(m) = s.servers.get_mut(*id) else {
                return not_found("instance_server", id);
            };
            let allowed = match (action.as_str(), m.state) {
                ("poweron", "stopped") => {
                    m.state = "starting";
                    true
                }
                ("terminate", "running") => {
                    m.state = "stopping";
                    true
                }
                _ => false,
            };
            if !allowed {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!(
                        "server should be in a state allowing {action}, not {}",
                        m.state
                    ),
                );
            }
            m.polls_left = polls;
            let name = m.name.clone();
            if action == "terminate" {
                journal.push(format!("delete {name}"));
            }
            let task = format!("task-{id}-{action}");
            (
                StatusCode::ACCEPTED,
                axum::Json(task_json(&task, &action, id)),
            )
                .into_response()
        }
        (&Method::GET, ["servers", id]) => {
            let Some(m) = s.servers.get_mut(*id) else {
                return not_found("instance_server", id);
            };
            if matches!(m.state, "starting" | "stopping") {
                m.polls_left = m.polls_left.saturating_sub(1);
            }
            let (state, polls_left, name, ip, boot_fails) =
                (m.state, m.polls_left, m.name.clone(), m.ip, m.boot_fails);
            if polls_left == 0 {
                match state {
                    "starting" if boot_fails => {
                        let m = s.servers.get_mut(*id).expect("present");
                        m.state = "stopped";
                        m.state_detail = "booting failed: hypervisor error".into();
                    }
                    "starting" => {
                        s.servers.get_mut(*id).expect("present").state = "running";
                        s.health.open(&name, ip);
                    }
                    "stopping" => {
                        if let Some(m) = s.servers.remove(*id) {
                            s.volumes.retain(|v| *v != m.volume);
                        }
                        s.health.close(&name);
                        s.health.set_unready(&name, false);
                        journal.push(format!("deleted {name}"));
                        return not_found("instance_server", id);
                    }
                    _ => {}
                }
            }
            let m = &s.servers[*id];
            axum::Json(json!({"server": server_json(m)})).into_response()
        }
        (&Method::DELETE, ["servers", id]) => {
            s.changes += 1;
            let Some(m) = s.servers.get(*id) else {
                return not_found("instance_server", id);
            };
            if m.state != "stopped" {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "server should be stopped",
                );
            }
            let name = m.name.clone();
            s.servers.remove(*id);
            s.health.close(&name);
            s.health.set_unready(&name, false);
            journal.push(format!("delete {name}"));
            journal.push(format!("deleted {name}"));
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::DELETE, ["volumes", id]) => {
            s.changes += 1;
            if s.servers.values().any(|m| m.volume == *id) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "volume is attached to a server",
                );
            }
            let before = s.volumes.len();
            s.volumes.retain(|v| v.as_str() != *id);
            if s.volumes.len() == before {
                return not_found("instance_volume", id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, ["products", "servers", "availability"]) => {
            let all = availability(&s);
            let total = all.len();
            let per_page: usize = query_get(&pairs, "per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(50)
                .clamp(1, 100);
            let page: usize = query_get(&pairs, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let servers: serde_json::Map<String, Value> = all
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            let mut r =
                axum::Json(json!({"servers": servers, "total_count": total})).into_response();
            r.headers_mut()
                .insert("x-total-count", total.to_string().parse().expect("header"));
            r
        }
        (&Method::GET, ["products", "servers"]) => {
            let p = products(&s);
            let n = p["servers"].as_object().map_or(0, |m| m.len());
            let page: usize = query_get(&pairs, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1);
            let body = if page == 1 { p } else { json!({"servers": {}}) };
            let mut r = axum::Json(body).into_response();
            r.headers_mut()
                .insert("x-total-count", n.to_string().parse().expect("header"));
            r
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}
