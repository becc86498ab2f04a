//! A loopback Hetzner Cloud API following the Hetzner Cloud API reference
//! (`docs.hetzner.cloud`): `Authorization: Bearer` checked on every call; `GET /v1/servers`
//! with `label_selector` (`k=v`, `k!=v`, `k`, `!k`, comma for AND), `name`, `page` and
//! `per_page` (at most 50) answered with `meta.pagination`; `POST /v1/servers` answering 201
//! with `server`, `action` (`create_server`) and `next_actions` (`start_server`); `GET
//! /v1/actions/{id}` whose actions finish after a set number of polls; `DELETE
//! /v1/servers/{id}` answering a `delete_server` action; `GET /v1/server_types` with
//! `prices` per location and `locations` each carrying its `deprecation`
//! (`announced`, `unavailable_after`; a location is no longer listed once its
//! `unavailable_after` has passed); a create of a type not offered at the location refused
//! with `invalid_input`, of a sold-out type with `resource_unavailable` (412) or
//! `placement_error` (422); errors as `{"error":{"code","message","details"}}`; and a 429
//! with `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` when asked.
//!
//! Besides the API: `POST /hooks/drain` (the drain webhook), and a health endpoint per
//! server (see [`super`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Fault, Faults, Health, Journal, query_get, query_pairs, serve};

/// The token the mock accepts.
pub const TOKEN: &str = "hcloud-test-token-0123456789";

#[derive(Debug, Clone)]
struct MServer {
    id: u64,
    name: String,
    status: &'static str,
    created: String,
    labels: BTreeMap<String, String>,
    ip: IpAddr,
    server_type: String,
    location: String,
    user_data: Option<String>,
    actions: Vec<u64>,
}

#[derive(Debug, Clone)]
struct MAction {
    id: u64,
    command: &'static str,
    status: &'static str,
    polls_left: u32,
    server: u64,
    fails: bool,
}

#[derive(Debug)]
struct MockState {
    servers: BTreeMap<u64, MServer>,
    actions: BTreeMap<u64, MAction>,
    next_id: u64,
    clock: u64,
    action_polls: u32,
    faults: Faults,
    changes: u64,
    server_list_pages: u64,
    server_types_fail: u32,
    /// `unavailable_after` of each deprecated (server type, location).
    deprecations: BTreeMap<(String, String), String>,
    /// Sold-out server types, with the error code a create of one is refused with.
    sold_out: BTreeMap<String, &'static str>,
    rate_limited_until: Option<f64>,
    health: Health,
}

/// The mock. Dropping it stops the server.
#[derive(Debug)]
pub struct HetznerMock {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    journal: Journal,
    task: JoinHandle<()>,
}

impl Drop for HetznerMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Mutex<MockState>>, Journal);

impl HetznerMock {
    /// Starts the mock on a loopback port.
    pub async fn start() -> HetznerMock {
        let state = Arc::new(Mutex::new(MockState {
            servers: BTreeMap::new(),
            actions: BTreeMap::new(),
            next_id: 1000,
            clock: 0,
            action_polls: 1,
            faults: Faults::default(),
            changes: 0,
            server_list_pages: 0,
            server_types_fail: 0,
            deprecations: BTreeMap::new(),
            sold_out: BTreeMap::new(),
            rate_limited_until: None,
            health: Health::new().await,
        }));
        let journal = Journal::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((state.clone(), journal.clone()));
        let (addr, task) = serve(app).await;
        HetznerMock {
            addr,
            state,
            journal,
            task,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().expect("no panic under the lock")
    }

    /// The API's base URL (`http://127.0.0.1:port/v1`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1", self.addr)
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

    /// How many changing requests (creates and deletes) arrived.
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// How many pages of `GET /v1/servers` were served.
    pub fn server_list_pages(&self) -> u64 {
        self.lock().server_list_pages
    }

    /// How many polls an action takes to finish (default 1).
    pub fn set_action_polls(&self, polls: u32) {
        self.lock().action_polls = polls;
    }

    /// Fails a create after letting `after` through.
    pub fn fail_create(&self, after: usize, fault: Fault) {
        self.lock().faults.create = Some((after, fault));
    }

    /// The next created server's create action ends in error.
    pub fn fail_next_action(&self) {
        self.lock().faults.action_error_next = true;
    }

    /// The next created server never answers its health check.
    pub fn never_ready_next(&self) {
        self.lock().faults.never_ready_next = true;
    }

    /// The next API request is answered 429 with a reset `wait` from now; requests before
    /// the reset are refused again.
    pub fn rate_limit_once(&self, wait: Duration) {
        self.lock().faults.rate_limit_once = Some(wait);
    }

    /// The next `count` reads of `GET /v1/server_types` are answered 503.
    pub fn fail_server_types(&self, count: u32) {
        self.lock().server_types_fail = count;
    }

    /// The drain webhook answers 500.
    pub fn fail_drains(&self, fail: bool) {
        self.lock().faults.drain_fails = fail;
    }

    /// Deprecates `server_type` at `location`, orderable until `unavailable_after` (RFC
    /// 3339); once that has passed the location is no longer listed for the type.
    pub fn deprecate(&self, server_type: &str, location: &str, unavailable_after: &str) {
        self.lock().deprecations.insert(
            (server_type.to_string(), location.to_string()),
            unavailable_after.to_string(),
        );
    }

    /// Creates of `server_type` are refused as Hetzner refuses a type it cannot place now:
    /// 412 `resource_unavailable`, or with `placement` 422 `placement_error`. `None` sells
    /// it again.
    pub fn sell_out(&self, server_type: &str, sold_out: Option<SoldOut>) {
        let mut s = self.lock();
        match sold_out {
            Some(SoldOut::Unavailable) => {
                s.sold_out
                    .insert(server_type.to_string(), "resource_unavailable");
            }
            Some(SoldOut::Placement) => {
                s.sold_out
                    .insert(server_type.to_string(), "placement_error");
            }
            None => {
                s.sold_out.remove(server_type);
            }
        }
    }

    /// The server type `name` was created with.
    pub fn server_type(&self, name: &str) -> Option<String> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .map(|m| m.server_type.clone())
    }

    /// Removes every server.
    pub fn reset(&self) {
        let mut s = self.lock();
        let names: Vec<String> = s.servers.values().map(|m| m.name.clone()).collect();
        for n in names {
            s.health.close(&n);
        }
        s.servers.clear();
        s.actions.clear();
        s.faults = Faults::default();
    }

    /// Adds a running, healthy server with these labels, as if created long ago; returns
    /// its name.
    pub fn add_server(&self, name: &str, labels: &[(&str, &str)]) -> String {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.clock += 1;
        let ip = s.health.address();
        s.health.open(name, ip);
        let server = MServer {
            id,
            name: name.to_string(),
            status: "running",
            created: created_at(s.clock),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ip,
            server_type: "cx22".into(),
            location: "fsn1".into(),
            user_data: None,
            actions: Vec::new(),
        };
        s.servers.insert(id, server);
        name.to_string()
    }

    /// The servers carrying `label=value` that count (not being deleted), by name.
    pub fn names(&self, label: &str, value: &str) -> Vec<String> {
        self.lock()
            .servers
            .values()
            .filter(|m| m.labels.get(label).map(String::as_str) == Some(value))
            .filter(|m| m.status != "deleting")
            .map(|m| m.name.clone())
            .collect()
    }

    /// How many servers carry `label=value` and count.
    pub fn count(&self, label: &str, value: &str) -> u32 {
        self.names(label, value).len() as u32
    }

    /// The user data `name` was created with.
    pub fn user_data(&self, name: &str) -> Option<String> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .and_then(|m| m.user_data.clone())
    }

    /// The labels of `name`.
    pub fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.lock()
            .servers
            .values()
            .find(|m| m.name == name)
            .map(|m| m.labels.clone())
    }
}

/// How a sold-out server type's create is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoldOut {
    /// 412 `resource_unavailable`.
    Unavailable,
    /// 422 `placement_error`.
    Placement,
}

fn created_at(clock: u64) -> String {
    // One minute apart per server, so "newest" is well defined.
    let t = chrono::DateTime::from_timestamp(1_767_225_600 + clock as i64 * 60, 0)
        .expect("a valid time");
    t.to_rfc3339()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message, "details": {}}})),
    )
        .into_response()
}

fn server_json(m: &MServer) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "status": m.status,
        "created": m.created,
        "labels": m.labels,
        "public_net": {
            "ipv4": {"ip": m.ip.to_string(), "blocked": false, "dns_ptr": "static.example"},
            "ipv6": null,
            "floating_ips": [],
            "firewalls": []
        },
        "private_net": [],
        "server_type": {"name": m.server_type},
        "datacenter": {"location": {"name": m.location}},
        "image": {"name": "ubuntu-24.04"},
    })
}

fn action_json(a: &MAction) -> Value {
    json!({
        "id": a.id,
        "command": a.command,
        "status": a.status,
        "progress": if a.status == "running" { 50 } else { 100 },
        "started": "2026-01-01T00:00:00+00:00",
        "finished": if a.status == "running" { Value::Null } else { json!("2026-01-01T00:01:00+00:00") },
        "resources": [{"id": a.server, "type": "server"}],
        "error": if a.status == "error" {
            json!({"code": "action_failed", "message": "creating the server failed on the host"})
        } else {
            Value::Null
        },
    })
}

/// A label selector term: `k=v`, `k==v`, `k!=v`, `k`, `!k`.
fn matches_selector(labels: &BTreeMap<String, String>, selector: &str) -> Result<bool, String> {
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let ok = if let Some((k, v)) = term.split_once("!=") {
            labels.get(k.trim()).map(String::as_str) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.get(k.trim()).map(String::as_str) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            !labels.contains_key(k.trim())
        } else if term.contains(' ') || term.contains('(') {
            return Err(format!("unsupported label selector term {term:?}"));
        } else {
            labels.contains_key(term)
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One page of `items` and its `meta`; a bad parameter's message.
fn page(items: Vec<Value>, pairs: &[(String, String)]) -> Result<(Vec<Value>, Value), String> {
    let page: usize = query_get(pairs, "page")
        .map(|p| p.parse())
        .transpose()
        .map_err(|_| "page must be a number".to_string())?
        .unwrap_or(1)
        .max(1);
    let per_page: usize = query_get(pairs, "per_page")
        .map(|p| p.parse())
        .transpose()
        .map_err(|_| "per_page must be a number".to_string())?
        .unwrap_or(25)
        .clamp(1, 50);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let meta = json!({"pagination": {
        "page": page,
        "per_page": per_page,
        "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
        "next_page": if page < last { json!(page + 1) } else { Value::Null },
        "last_page": last,
        "total_entries": total,
    }});
    Ok((slice, meta))
}

/// The catalogue: each type's prices and locations, the deprecations applied (a location
/// past its `unavailable_after` is left out of both).
fn server_types(s: &MockState) -> Vec<Value> {
    let now = chrono::Utc::now();
    let t = |id: u32, name: &str, cores: u32, memory: f64, prices: &[(&str, &str, &str)]| {
        let deprecation = |loc: &str| -> Option<(String, bool)> {
            let after = s.deprecations.get(&(name.to_string(), loc.to_string()))?;
            let gone = chrono::DateTime::parse_from_rfc3339(after).is_ok_and(|t| t <= now);
            Some((after.clone(), gone))
        };
        let prices: Vec<&(&str, &str, &str)> = prices
            .iter()
            .filter(|(loc, _, _)| !deprecation(loc).is_some_and(|(_, gone)| gone))
            .collect();
        let locations: Vec<Value> = prices
            .iter()
            .enumerate()
            .map(|(i, (loc, _, _))| {
                json!({
                    "id": i + 1,
                    "name": loc,
                    "deprecation": deprecation(loc).map(|(after, _)| json!({
                        "announced": "2026-01-01T00:00:00+00:00",
                        "unavailable_after": after,
                    })),
                })
            })
            .collect();
        json!({
            "id": id,
            "name": name,
            "description": name.to_uppercase(),
            "cores": cores,
            "memory": memory,
            "disk": 40,
            "deprecated": false,
            "prices": prices.iter().map(|(loc, net, gross)| json!({
                "location": loc,
                "price_hourly": {"net": net, "gross": gross},
                "price_monthly": {"net": "3.7900000000", "gross": "4.5101000000"},
                "included_traffic": 21990232555520u64,
                "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"},
            })).collect::<Vec<_>>(),
            "storage_type": "local",
            "cpu_type": "shared",
            "architecture": "x86",
            "locations": locations,
        })
    };
    vec![
        t(
            1,
            "cx22",
            2,
            4.0,
            &[
                ("fsn1", "0.0060000000", "0.0071400000"),
                ("nbg1", "0.0060000000", "0.0071400000"),
            ],
        ),
        t(
            2,
            "cx32",
            4,
            8.0,
            &[("fsn1", "0.0110000000", "0.0130900000")],
        ),
        t(
            3,
            "cpx11",
            2,
            2.0,
            &[("ash", "0.0070000000", "0.0083300000")],
        ),
    ]
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
    let Some(rest) = path.strip_prefix("/v1") else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such path");
    };
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unable to authenticate",
        );
    }
    let mut s = state.lock().expect("no panic under the lock");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    if let Some(wait) = s.faults.rate_limit_once.take() {
        s.rate_limited_until = Some((now + wait.as_secs_f64()).ceil());
    }
    if let Some(until) = s.rate_limited_until {
        if now < until {
            journal.push(format!("429 {method} {rest}"));
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "limit of 3600 requests per hour reached",
            );
            let h = r.headers_mut();
            h.insert("ratelimit-limit", "3600".parse().expect("header"));
            h.insert("ratelimit-remaining", "0".parse().expect("header"));
            h.insert(
                "ratelimit-reset",
                format!("{}", until as u64).parse().expect("header"),
            );
            return r;
        }
        s.rate_limited_until = None;
    }
    let pairs = query_pairs(&uri);
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["servers"]) => {
            let selector = query_get(&pairs, "label_selector").unwrap_or_default();
            let name = query_get(&pairs, "name");
            let mut items = Vec::new();
            for m in s.servers.values() {
                match matches_selector(&m.labels, &selector) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_input", &e),
                }
                if name.as_ref().is_some_and(|n| n != &m.name) {
                    continue;
                }
                items.push(server_json(m));
            }
            s.server_list_pages += 1;
            match page(items, &pairs) {
                Ok((servers, meta)) => {
                    axum::Json(json!({"servers": servers, "meta": meta})).into_response()
                }
                Err(m) => error(StatusCode::BAD_REQUEST, "invalid_input", &m),
            }
        }
        (&Method::POST, ["servers"]) => {
            s.changes += 1;
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "json_error",
                    "the body is not valid JSON",
                );
            };
            if let Some(fault) = s.faults.take_create() {
                journal.push("create refused");
                return match fault {
                    Fault::Transient => error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the service is temporarily unavailable",
                    ),
                    Fault::Permanent => error(
                        StatusCode::FORBIDDEN,
                        "resource_limit_exceeded",
                        "server limit of the project exceeded",
                    ),
                };
            }
            let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(name), Some(server_type), Some(_image)) =
                (field("name"), field("server_type"), field("image"))
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    "name, server_type and image are required",
                );
            };
            let location = field("location").unwrap_or_else(|| "fsn1".into());
            let offered = server_types(&s).iter().any(|t| {
                t["name"] == server_type.as_str()
                    && t["locations"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|l| l["name"] == location.as_str()))
            });
            if !offered {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    &format!("server type {server_type} is not available at location {location}"),
                );
            }
            if let Some(code) = s.sold_out.get(&server_type).copied() {
                journal.push(format!("sold out {server_type}"));
                return if code == "placement_error" {
                    error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        code,
                        "an error during the placement occurred",
                    )
                } else {
                    error(
                        StatusCode::PRECONDITION_FAILED,
                        code,
                        &format!(
                            "server type {server_type} is currently unavailable at {location}"
                        ),
                    )
                };
            }
            if s.servers.values().any(|m| m.name == name) {
                return error(
                    StatusCode::CONFLICT,
                    "uniqueness_error",
                    "server name is already used",
                );
            }
            let user_data = field("user_data");
            if user_data.as_ref().is_some_and(|u| u.len() > 32 * 1024) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    "user_data is longer than 32 KiB",
                );
            }
            let labels: BTreeMap<String, String> = req
                .get("labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            let id = s.next_id;
            let (create, start) = (id + 1, id + 2);
            s.next_id += 3;
            s.clock += 1;
            let ip = s.health.address();
            if std::mem::take(&mut s.faults.never_ready_next) {
                s.health.set_unready(&name, true);
            }
            let fails = std::mem::take(&mut s.faults.action_error_next);
            let polls = s.action_polls;
            let server = MServer {
                id,
                name: name.clone(),
                status: "initializing",
                created: created_at(s.clock),
                labels,
                ip,
                server_type,
                location,
                user_data,
                actions: vec![create, start],
            };
            let action = |aid, command| MAction {
                id: aid,
                command,
                status: "running",
                polls_left: polls,
                server: id,
                fails: fails && command == "create_server",
            };
            s.actions.insert(create, action(create, "create_server"));
            s.actions.insert(start, action(start, "start_server"));
            let body = json!({
                "server": server_json(&server),
                "action": action_json(&s.actions[&create]),
                "next_actions": [action_json(&s.actions[&start])],
                "root_password": null,
            });
            s.servers.insert(id, server);
            journal.push(format!("create {name}"));
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        (&Method::GET, ["actions", id]) => {
            let Some(id) = id.parse::<u64>().ok() else {
                return error(StatusCode::BAD_REQUEST, "invalid_input", "bad id");
            };
            let Some(a) = s.actions.get_mut(&id) else {
                return error(StatusCode::NOT_FOUND, "not_found", "action not found");
            };
            if a.status == "running" {
                a.polls_left = a.polls_left.saturating_sub(1);
                if a.polls_left == 0 {
                    a.status = if a.fails { "error" } else { "success" };
                }
            }
            let a = a.clone();
            settle(&mut s, &journal, a.server);
            axum::Json(json!({"action": action_json(&a)})).into_response()
        }
        (&Method::DELETE, ["servers", id]) => {
            s.changes += 1;
            let Some(id) = id.parse::<u64>().ok() else {
                return error(StatusCode::BAD_REQUEST, "invalid_input", "bad id");
            };
            let Some(m) = s.servers.get_mut(&id) else {
                return error(StatusCode::NOT_FOUND, "not_found", "server not found");
            };
            m.status = "deleting";
            let name = m.name.clone();
            let aid = s.next_id;
            s.next_id += 1;
            let polls = s.action_polls;
            let a = MAction {
                id: aid,
                command: "delete_server",
                status: "running",
                polls_left: polls,
                server: id,
                fails: false,
            };
            let body = json!({"action": action_json(&a)});
            s.actions.insert(aid, a);
            if let Some(m) = s.servers.get_mut(&id) {
                m.actions.push(aid);
            }
            journal.push(format!("delete {name}"));
            axum::Json(body).into_response()
        }
        (&Method::GET, ["server_types"]) => {
            if s.server_types_fail > 0 {
                s.server_types_fail -= 1;
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable",
                );
            }
            let name = query_get(&pairs, "name");
            let items: Vec<Value> = server_types(&s)
                .into_iter()
                .filter(|t| name.as_deref().is_none_or(|n| t["name"] == n))
                .collect();
            match page(items, &pairs) {
                Ok((types, meta)) => {
                    axum::Json(json!({"server_types": types, "meta": meta})).into_response()
                }
                Err(m) => error(StatusCode::BAD_REQUEST, "invalid_input", &m),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}

/// Applies finished actions to their server: running once created and started, gone once
/// deleted.
fn settle(s: &mut MockState, journal: &Journal, server: u64) {
    let Some(m) = s.servers.get(&server) else {
        return;
    };
    let statuses: Vec<(&'static str, &'static str)> = m
        .actions
        .iter()
        .filter_map(|a| s.actions.get(a))
        .map(|a| (a.command, a.status))
        .collect();
    let done = |c: &str| {
        statuses
            .iter()
            .any(|(cmd, st)| *cmd == c && *st == "success")
    };
    let name = m.name.clone();
    let ip = m.ip;
    if done("delete_server") {
        s.servers.remove(&server);
        s.health.close(&name);
        s.health.set_unready(&name, false);
        journal.push(format!("deleted {name}"));
        return;
    }
    if m.status == "deleting" {
        return;
    }
    let status = if done("create_server") && done("start_server") {
        "running"
    } else if done("create_server") {
        "starting"
    } else {
        "initializing"
    };
    if status == "running" && m.status != "running" {
        s.health.open(&name, ip);
    }
    if let Some(m) = s.servers.get_mut(&server) {
        m.status = status;
    }
}
