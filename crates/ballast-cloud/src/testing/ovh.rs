//! A loopback OVHcloud API following the OVHcloud API v1 reference (the `/cloud` and
//! `/order/catalog` sections of `eu.api.ovh.com/console`) and its guide to signing
//! requests: `GET /1.0/auth/time` answers the server's Unix time; every `/cloud` call must
//! carry `X-Ovh-Application`, `X-Ovh-Consumer`, `X-Ovh-Timestamp` (within a minute of the
//! server's clock) and `X-Ovh-Signature` (`$1$` + hex SHA-1 of secret, consumer key,
//! method, full URL, body and timestamp joined with `+`), checked here, a bad one refused
//! with 403 `Client::Forbidden::InvalidSignature`; `GET /cloud/project/{sn}/flavor` with
//! `planCodes`, `vcpus` and `available` (in stock); a create of a flavor out of stock
//! refused with the generic `Client::BadRequest` class (OVHcloud documents no class of its
//! own for it), the flavor then listed `available: false`; `POST /cloud/project/{sn}/region/{region}/instance` answering an operation
//! that completes after a set number of polls of `GET /cloud/project/{sn}/operation/{id}`;
//! `GET /cloud/project/{sn}/instance` listing every instance (no pagination);
//! `DELETE /cloud/project/{sn}/instance/{id}`; the public catalogue
//! `GET /order/catalog/public/cloud` with prices in hundred-millionths; errors as
//! `{"class","message"}` with an `X-Ovh-QueryID` header; a 429 with `Retry-After` when
//! asked.
//!
//! Besides the API: `POST /hooks/drain` (the drain webhook), and a health endpoint per
//! server (see [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Fault, Faults, Health, Journal, query_get, query_pairs};
use crate::ovh::signature;

/// The application key the mock knows.
pub const APPLICATION_KEY: &str = "ovh-app-key-7kQ2";
/// The application secret the mock checks signatures with.
pub const APPLICATION_SECRET: &str = "ovh-app-secret-Zx81mP0q";
/// The consumer key the mock knows.
pub const CONSUMER_KEY: &str = "ovh-consumer-key-Lw3n9Rt5";
/// The project (`serviceName`).
pub const PROJECT: &str = "0c727a20aa144485b70c44dee9123b46";
/// The mock's region.
pub const REGION: &str = "GRA11";

#[derive(Debug, Clone)]
struct MInstance {
    id: String,
    name: String,
    status: &'static str,
    created: String,
    ip: IpAddr,
    flavor_id: String,
    user_data: Option<String>,
    ssh_key: Option<String>,
    polls_left: u32,
}

#[derive(Debug, Clone)]
struct MOperation {
    id: String,
    status: &'static str,
    polls_left: u32,
    instance: String,
    fails: bool,
}

#[derive(Debug)]
struct MockState {
    base: String,
    instances: BTreeMap<String, MInstance>,
    operations: BTreeMap<String, MOperation>,
    next_id: u64,
    clock: u64,
    polls: u32,
    faults: Faults,
    changes: u64,
    time_offset: i64,
    time_calls: u64,
    signed_ok: u64,
    /// Flavors (by name) out of stock.
    out_of_stock: BTreeSet<String>,
    /// Flavors that run out of stock at their next create.
    sell_out_on_create: BTreeSet<String>,
    rate_limited_until: Option<Instant>,
    health: Health,
}

/// The mock. Dropping it stops the server.
#[derive(Debug)]
pub struct OvhMock {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    journal: Journal,
    task: JoinHandle<()>,
}

impl Drop for OvhMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Mutex<MockState>>, Journal);

impl OvhMock {
    /// Starts the mock on a loopback port.
    pub async fn start() -> OvhMock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(MockState {
            base: format!("http://{addr}"),
            instances: BTreeMap::new(),
            operations: BTreeMap::new(),
            next_id: 1,
            clock: 0,
            polls: 1,
            faults: Faults::default(),
            changes: 0,
            time_offset: 0,
            time_calls: 0,
            signed_ok: 0,
            out_of_stock: BTreeSet::new(),
            sell_out_on_create: BTreeSet::new(),
            rate_limited_until: None,
            health: Health::new().await,
        }));
        let journal = Journal::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((state.clone(), journal.clone()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OvhMock {
            addr,
            state,
            journal,
            task,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().expect("no panic under the lock")
    }

    /// The API's base URL (`http://127.0.0.1:port/1.0`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/1.0", self.addr)
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

    /// How many calls of `/auth/time` arrived.
    pub fn time_calls(&self) -> u64 {
        self.lock().time_calls
    }

    /// How many signed calls were accepted.
    pub fn signed_ok(&self) -> u64 {
        self.lock().signed_ok
    }

    /// Sets the server's clock this many seconds ahead of the machine's.
    pub fn set_time_offset(&self, seconds: i64) {
        self.lock().time_offset = seconds;
    }

    /// How many polls an operation (or a deletion) takes (default 1).
    pub fn set_polls(&self, polls: u32) {
        self.lock().polls = polls;
    }

    /// Fails a create after letting `after` through.
    pub fn fail_create(&self, after: usize, fault: Fault) {
        self.lock().faults.create = Some((after, fault));
    }

    /// The next create's operation ends `in-error` and its instance in `ERROR`.
    pub fn fail_next_operation(&self) {
        self.lock().faults.action_error_next = true;
    }

    /// The next created instance never answers its health check.
    pub fn never_ready_next(&self) {
        self.lock().faults.never_ready_next = true;
    }

    /// The next request is answered 429 with `Retry-After`.
    pub fn rate_limit_once(&self, wait: Duration) {
        self.lock().faults.rate_limit_once = Some(wait);
    }

    /// Marks the flavor `name` in stock or not (`available` in the flavor list; a create
    /// of it is refused while out of stock).
    pub fn set_available(&self, name: &str, available: bool) {
        let mut s = self.lock();
        if available {
            s.out_of_stock.remove(name);
        } else {
            s.out_of_stock.insert(name.to_string());
        }
    }

    /// The flavor `name` runs out of stock at its next create, which is refused: the list
    /// said it was available when the group read it.
    pub fn sell_out_on_create(&self, name: &str) {
        self.lock().sell_out_on_create.insert(name.to_string());
    }

    /// The flavor name `instance` was created with.
    pub fn flavor(&self, instance: &str) -> Option<String> {
        let s = self.lock();
        let id = s
            .instances
            .values()
            .find(|m| m.name == instance)?
            .flavor_id
            .clone();
        flavors(&s)
            .as_array()?
            .iter()
            .find(|f| f["id"] == id.as_str())
            .and_then(|f| f["name"].as_str().map(str::to_string))
    }

    /// Removes every instance.
    pub fn reset(&self) {
        let mut s = self.lock();
        let names: Vec<String> = s.instances.values().map(|m| m.name.clone()).collect();
        for n in names {
            s.health.close(&n);
        }
        s.instances.clear();
        s.operations.clear();
        s.faults = Faults::default();
    }

    /// Adds an `ACTIVE`, healthy instance; returns its name.
    pub fn add_instance(&self, name: &str) -> String {
        let mut s = self.lock();
        s.clock += 1;
        let id = new_id(&mut s);
        let ip = s.health.address();
        s.health.open(name, ip);
        let m = MInstance {
            id: id.clone(),
            name: name.to_string(),
            status: "ACTIVE",
            created: created_at(s.clock),
            ip,
            flavor_id: "f1a2-b2-7".into(),
            user_data: None,
            ssh_key: None,
            polls_left: 0,
        };
        s.instances.insert(id, m);
        name.to_string()
    }

    /// The names of the instances starting with `prefix` that count (`BUILD` or `ACTIVE`).
    pub fn names(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .instances
            .values()
            .filter(|m| m.name.starts_with(prefix))
            .filter(|m| matches!(m.status, "BUILD" | "ACTIVE"))
            .map(|m| m.name.clone())
            .collect()
    }

    /// How many instances exist, whatever their status.
    pub fn all(&self) -> usize {
        self.lock().instances.len()
    }

    /// The user data and SSH key `name` was created with.
    pub fn created_with(&self, name: &str) -> Option<(Option<String>, Option<String>)> {
        self.lock()
            .instances
            .values()
            .find(|m| m.name == name)
            .map(|m| (m.user_data.clone(), m.ssh_key.clone()))
    }
}

fn new_id(s: &mut MockState) -> String {
    let n = s.next_id;
    s.next_id += 1;
    format!("{n:08x}-aaaa-4bbb-8ccc-{n:012x}")
}

fn created_at(clock: u64) -> String {
    chrono::DateTime::from_timestamp(1_767_225_600 + clock as i64 * 60, 0)
        .expect("a valid time")
        .to_rfc3339()
}

fn error(status: StatusCode, class: &str, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"class": class, "message": message})),
    )
        .into_response();
    r.headers_mut().insert(
        "x-ovh-queryid",
        "EU.ext-3.6a1b2c3d.12345.0000000000000000000000000000"
            .parse()
            .expect("header"),
    );
    r
}

fn instance_json(m: &MInstance) -> Value {
    let ips = if m.status == "ACTIVE" || m.status == "DELETING" {
        json!([{"ip": m.ip.to_string(), "type": "public", "version": 4, "networkId": "ext-net", "gatewayIp": null}])
    } else {
        json!([])
    };
    json!({
        "id": m.id,
        "name": m.name,
        "status": m.status,
        "region": REGION,
        "created": m.created,
        "flavorId": m.flavor_id,
        "imageId": "img-debian-12",
        "sshKeyId": m.ssh_key,
        "ipAddresses": ips,
        "planCode": "b2-7.consumption",
        "monthlyBilling": null,
        "operationIds": [],
    })
}

fn operation_json(o: &MOperation) -> Value {
    json!({
        "id": o.id,
        "action": "instance#create",
        "status": o.status,
        "progress": if o.status == "completed" { 100 } else { 40 },
        "regions": [REGION],
        "resourceId": if o.status == "completed" { json!(o.instance) } else { Value::Null },
        "startedAt": "2026-01-01T00:00:00Z",
        "completedAt": if o.status == "completed" { json!("2026-01-01T00:01:00Z") } else { Value::Null },
        "subOperations": [],
    })
}

fn flavors(s: &MockState) -> Value {
    let available = |name: &str| !s.out_of_stock.contains(name);
    json!([
        {"id": "f1a2-b2-7", "name": "b2-7", "region": REGION, "vcpus": 2, "ram": 7000, "disk": 50, "osType": "linux", "type": "ovh.ssd.eg", "available": available("b2-7"), "quota": 40, "planCodes": {"hourly": "b2-7.consumption", "monthly": "b2-7.monthly.postpaid"}},
        {"id": "f1a2-d2-4", "name": "d2-4", "region": REGION, "vcpus": 2, "ram": 4000, "disk": 50, "osType": "linux", "type": "ovh.d2", "available": available("d2-4"), "quota": 40, "planCodes": {"hourly": "d2-4.consumption", "monthly": null}},
        {"id": "f1a2-c3-8", "name": "c3-8", "region": REGION, "vcpus": 4, "ram": 8000, "disk": 100, "osType": "linux", "type": "ovh.c3", "available": available("c3-8"), "quota": 20, "planCodes": {"hourly": null, "monthly": null}},
    ])
}

fn catalogue() -> Value {
    let addon = |plan: &str, unit: &str, price: u64, cores: u32, memory: u32| {
        json!({
            "planCode": plan,
            "invoiceName": plan,
            "product": format!("publiccloud-instance-{}", plan.split('.').next().unwrap_or(plan)),
            "pricingType": "consumption",
            "pricings": [{
                "capacities": ["consumption"],
                "commitment": 0,
                "description": "Consumption",
                "interval": 1,
                "intervalUnit": unit,
                "mode": "consumption",
                "price": price,
                "tax": 0,
                "type": "consumption",
            }],
            "blobs": {"commercial": {"brick": "general-purpose"}, "technical": {"cpu": {"cores": cores}, "memory": {"size": memory}}},
        })
    };
    json!({
        "catalogId": 4567,
        "locale": {"currencyCode": "EUR", "subsidiary": "FR", "taxRate": 20},
        "plans": [{"planCode": "project.2018", "invoiceName": "Public Cloud Project"}],
        "addons": [
            addon("b2-7.consumption", "hour", 6_810_000, 2, 7),
            addon("b2-7.monthly.postpaid", "month", 2_904_000_000, 2, 7),
            addon("d2-4.consumption", "hour", 1_780_000, 2, 4),
            {"planCode": "snapshot.consumption", "product": "publiccloud-snapshot", "pricings": [{"intervalUnit": "hour", "price": 1000}]},
        ],
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Checks the four signature headers against the known keys; the reason for refusing.
fn verify(
    s: &MockState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Box<Response>> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(app), Some(consumer), Some(ts), Some(sig)) = (
        h("x-ovh-application"),
        h("x-ovh-consumer"),
        h("x-ovh-timestamp"),
        h("x-ovh-signature"),
    ) else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Client::Unauthorized",
            "You must login first",
        )));
    };
    if app != APPLICATION_KEY {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden::InvalidKey",
            "Invalid application key",
        )));
    }
    if consumer != CONSUMER_KEY {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden::InvalidCredential",
            "Invalid credential",
        )));
    }
    let Ok(ts) = ts.parse::<i64>() else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "Client::BadRequest",
            "Invalid timestamp",
        )));
    };
    let server_now = unix_now() + s.time_offset;
    if (ts - server_now).abs() > 60 {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "Client::BadRequest::QueryTimeDelta",
            "Query out of time",
        )));
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", s.base);
    let expected = signature(
        APPLICATION_SECRET,
        CONSUMER_KEY,
        method.as_str(),
        &url,
        &String::from_utf8_lossy(body),
        ts,
    );
    if sig != expected {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden::InvalidSignature",
            "Invalid signature",
        )));
    }
    Ok(())
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
        return StatusCode::NO_CONTENT.into_response();
    }
    let Some(rest) = path.strip_prefix("/1.0") else {
        return error(StatusCode::NOT_FOUND, "Client::NotFound", "no such path");
    };
    let mut s = state.lock().expect("no panic under the lock");
    if let Some(wait) = s.faults.rate_limit_once.take() {
        s.rate_limited_until = Some(Instant::now() + wait);
    }
    if let Some(until) = s.rate_limited_until {
        let now = Instant::now();
        if now < until {
            journal.push(format!("429 {method} {rest}"));
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Client::TooManyRequests",
                "Too many requests",
            );
            let secs = (until - now).as_secs_f64();
            r.headers_mut()
                .insert("retry-after", format!("{secs:.3}").parse().expect("header"));
            return r;
        }
        s.rate_limited_until = None;
    }
    let pairs = query_pairs(&uri);
    if method == Method::GET && rest == "/auth/time" {
        s.time_calls += 1;
        return axum::Json(json!(unix_now() + s.time_offset)).into_response();
    }
    if method == Method::GET && rest == "/order/catalog/public/cloud" {
        if query_get(&pairs, "ovhSubsidiary").as_deref() != Some("FR") {
            return error(
                StatusCode::BAD_REQUEST,
                "Client::BadRequest",
                "this mock has the FR catalogue only",
            );
        }
        return axum::Json(catalogue()).into_response();
    }
    if let Err(refused) = verify(&s, &method, &uri, &headers, &body) {
        journal.push(format!("refused {method} {rest}"));
        return *refused;
    }
    s.signed_ok += 1;
    let segments: Vec<String> = rest
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ["cloud", "project", project, tail @ ..] = seg.as_slice() else {
        return error(StatusCode::NOT_FOUND, "Client::NotFound", "no such route");
    };
    if *project != PROJECT {
        return error(
            StatusCode::NOT_FOUND,
            "Client::NotFound",
            &format!("This service does not exist: {project}"),
        );
    }
    match (&method, tail) {
        (&Method::GET, ["flavor"]) => axum::Json(flavors(&s)).into_response(),
        (&Method::GET, ["instance"]) => {
            let region = query_get(&pairs, "region");
            if region.as_deref().is_some_and(|r| r != REGION) {
                return axum::Json(json!([])).into_response();
            }
            let all: Vec<Value> = s.instances.values().map(instance_json).collect();
            axum::Json(Value::Array(all)).into_response()
        }
        (&Method::POST, ["region", region, "instance"]) => {
            s.changes += 1;
            if *region != REGION {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Client::BadRequest",
                    &format!("region {region} is not enabled in this project"),
                );
            }
            if let Some(fault) = s.faults.take_create() {
                journal.push("create refused");
                return match fault {
                    Fault::Transient => error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Server::ServiceUnavailable",
                        "The service is temporarily unavailable",
                    ),
                    Fault::Permanent => error(
                        StatusCode::FORBIDDEN,
                        "Client::Forbidden::QuotaExceeded",
                        "Quota exceeded for instances in this region",
                    ),
                };
            }
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::BAD_REQUEST, "Client::BadRequest", "bad JSON");
            };
            let name = req.get("name").and_then(Value::as_str).map(str::to_string);
            let flavor = req
                .pointer("/flavor/id")
                .and_then(Value::as_str)
                .map(str::to_string);
            let image = req.pointer("/bootFrom/imageId").and_then(Value::as_str);
            let (Some(name), Some(flavor_id), Some(_)) = (name, flavor, image) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Client::BadRequest",
                    "name, flavor.id and bootFrom.imageId are required",
                );
            };
            let Some(flavor_name) = flavors(&s)
                .as_array()
                .expect("an array")
                .iter()
                .find(|f| f["id"] == flavor_id.as_str())
                .and_then(|f| f["name"].as_str().map(str::to_string))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Client::BadRequest",
                    &format!("flavor {flavor_id} does not exist"),
                );
            };
            if s.sell_out_on_create.remove(&flavor_name) {
                s.out_of_stock.insert(flavor_name.clone());
            }
            if s.out_of_stock.contains(&flavor_name) {
                journal.push(format!("out of stock {flavor_name}"));
                return error(
                    StatusCode::BAD_REQUEST,
                    "Client::BadRequest",
                    &format!("flavor {flavor_name} is not available in region {REGION}"),
                );
            }
            s.clock += 1;
            let id = new_id(&mut s);
            let op = format!("op-{}", new_id(&mut s));
            let ip = s.health.address();
            if std::mem::take(&mut s.faults.never_ready_next) {
                s.health.set_unready(&name, true);
            }
            let fails = std::mem::take(&mut s.faults.action_error_next);
            let polls = s.polls;
            let m = MInstance {
                id: id.clone(),
                name: name.clone(),
                status: "BUILD",
                created: created_at(s.clock),
                ip,
                flavor_id,
                user_data: req
                    .get("userData")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                ssh_key: req
                    .pointer("/sshKey/name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                polls_left: 0,
            };
            s.instances.insert(id.clone(), m);
            let o = MOperation {
                id: op.clone(),
                status: "in-progress",
                polls_left: polls,
                instance: id,
                fails,
            };
            let body = operation_json(&o);
            s.operations.insert(op, o);
            journal.push(format!("create {name}"));
            axum::Json(body).into_response()
        }
        (&Method::GET, ["operation", id]) => {
            let Some(o) = s.operations.get_mut(*id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Client::NotFound",
                    "Operation not found",
                );
            };
            if o.status == "in-progress" {
                o.polls_left = o.polls_left.saturating_sub(1);
                if o.polls_left == 0 {
                    o.status = if o.fails { "in-error" } else { "completed" };
                }
            }
            let o = o.clone();
            if o.status != "in-progress"
                && let Some(m) = s.instances.get_mut(&o.instance)
                && m.status == "BUILD"
            {
                m.status = if o.fails { "ERROR" } else { "ACTIVE" };
                let (name, ip, active) = (m.name.clone(), m.ip, m.status == "ACTIVE");
                if active {
                    s.health.open(&name, ip);
                }
            }
            axum::Json(operation_json(&o)).into_response()
        }
        (&Method::GET, ["instance", id]) => {
            let Some(m) = s.instances.get_mut(*id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Client::NotFound",
                    "Instance not found",
                );
            };
            if m.status == "DELETING" {
                m.polls_left = m.polls_left.saturating_sub(1);
                if m.polls_left == 0 {
                    let name = m.name.clone();
                    s.instances.remove(*id);
                    s.health.close(&name);
                    s.health.set_unready(&name, false);
                    journal.push(format!("deleted {name}"));
                    return error(
                        StatusCode::NOT_FOUND,
                        "Client::NotFound",
                        "Instance not found",
                    );
                }
            }
            axum::Json(instance_json(m)).into_response()
        }
        (&Method::DELETE, ["instance", id]) => {
            s.changes += 1;
            let polls = s.polls;
            let Some(m) = s.instances.get_mut(*id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Client::NotFound",
                    "Instance not found",
                );
            };
            m.status = "DELETING";
            m.polls_left = polls;
            journal.push(format!("delete {}", m.name));
            axum::Json(Value::Null).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "Client::NotFound", "no such route"),
    }
}
