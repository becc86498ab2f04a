//! Generated bad input against creating, replacing and evaluating policies, in process
//! (`router(state).oneshot(request)` on a SQLite store), with `proptest`.
//!
//! Bodies are random JSON, the documentation's example policy with fields given wrong types,
//! huge or odd values, deep nesting, invalid UTF-8, random bytes, or a body past the size
//! limit; content types and tokens vary too. Whatever comes in: no 5xx (nor a panic), only
//! the statuses the API documents, every 4xx a JSON body naming its problem, and a rejected
//! create or update leaves the policies and the history exactly as they were. Whatever is
//! accepted reads back as answered and can be evaluated.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ballast_api::{AppState, MAX_BODY_BYTES, router, router_and_doc};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_store::{HistoryKind, Scope, Store};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const EXAMPLE: &str = r#"{"name":"cdc-worker-autoscaling","target_type":"cdc-worker",
 "target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,
 "cooldown_seconds":300,"scale_to_zero":false,
 "scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],
 "scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],
 "schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}"#;

/// Every status these routes may answer with (besides 2xx).
const ALLOWED: &[u16] = &[400, 401, 403, 404, 409, 413, 415, 422, 428];

/// Fields of a policy, top-level and nested, that the semi-valid bodies change.
const FIELDS: &[&str] = &[
    "name",
    "description",
    "target_type",
    "target_id",
    "target",
    "target.type",
    "enabled",
    "dry_run",
    "evaluation_interval",
    "min_replicas",
    "max_replicas",
    "cooldown_seconds",
    "scale_up_cooldown",
    "scale_down_cooldown",
    "metrics",
    "metrics.lag.query",
    "metrics.lag.per_replica",
    "metrics.lag.on_empty",
    "metrics.lag.max_staleness",
    "scale_up_rules",
    "scale_up_rules.0",
    "scale_up_rules.0.metric",
    "scale_up_rules.0.operator",
    "scale_up_rules.0.threshold",
    "scale_up_rules.0.duration",
    "scale_up_rules.0.scale_by",
    "scale_down_rules.0.threshold",
    "scale_down_rules.0.duration",
    "scale_down_rules.0.scale_by",
    "target_tracking",
    "target_tracking.metric",
    "target_tracking.target",
    "target_tracking.tolerance",
    "schedules",
    "schedules.0.cron_expression",
    "schedules.0.desired_replicas",
    "schedules.0.timezone",
    "stabilization.scale_up",
    "stabilization.scale_down",
    "rate_limits.scale_up.max_step",
    "rate_limits.scale_up.max_percent",
    "rate_limits.scale_up.period",
    "rate_limits.scale_down.period",
    "max_hourly_cost",
    "price_per_replica_hour",
    "on_metric_error",
    "on_metric_error.fallback",
    "scale_to_zero",
    "scale_to_zero.enabled",
    "scale_to_zero.metric",
    "scale_to_zero.activation_threshold",
    "scale_to_zero.idle",
    "version",
    "id",
    "unknown_field",
];

/// The kind of body sent.
#[derive(Debug, Clone)]
enum BodyKind {
    /// Any JSON value.
    Json(Value),
    /// The example under a name of its own, with fields set (created where missing) or
    /// removed (`None`).
    Mutated(u32, Vec<(&'static str, Option<Value>)>),
    /// `[[[...]]]` or `{"a":{"a":...}}` this deep.
    Deep(usize, bool),
    /// The example with a string's bytes replaced by invalid UTF-8.
    BadUtf8(Vec<u8>),
    /// Any bytes.
    Bytes(Vec<u8>),
    /// Past the size limit.
    TooLarge,
    /// Nothing at all.
    Empty,
}

/// What the request does.
#[derive(Debug, Clone)]
enum Route {
    Create,
    /// Replace, with this `If-Match`.
    Update(IfMatch, PolicyRef),
    Evaluate(PolicyRef),
}

/// Which policy a path names.
#[derive(Debug, Clone)]
enum PolicyRef {
    Seeded,
    Unknown,
    Garbage(String),
}

#[derive(Debug, Clone)]
enum IfMatch {
    Current,
    Stale,
    Missing,
    Text(String),
}

#[derive(Debug, Clone)]
enum Token {
    Admin,
    Viewer,
    Operator,
    None,
    Wrong(String),
}

#[derive(Debug, Clone)]
struct Case {
    route: Route,
    body: BodyKind,
    content_type: Option<&'static str>,
    token: Token,
}

/// Values chosen to hit edges: huge and tiny numbers, odd durations, cron lines and names.
fn edge_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(9_223_372_036_854_775_806_u64)),
        Just(json!(4_294_967_296_u64)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(1e12)),
        Just(json!(1.000_001e12)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(0.5)),
        Just(json!(-0.0)),
        Just(json!("999999999999y")),
        Just(json!("200000000y")),
        Just(json!("100000y")),
        Just(json!("-5m")),
        Just(json!("0s")),
        Just(json!("1ns")),
        Just(json!("")),
        Just(json!(" ")),
        Just(json!("* * * * * * *")),
        Just(json!("0 0 31 2 *")),
        Just(json!("@yearly")),
        Just(json!("Mars/Olympus_Mons")),
        Just(json!("hold")),
        Just(json!("log")),
        Just(json!("gt")),
        Just(json!("sum(rate(x[5m])) by (")),
        Just(json!("x".repeat(10_000))),
        Just(json!("ünïcödé \u{0} \u{202e}")),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
        Just(json!([[]])),
        Just(json!({"type": "log"})),
        Just(json!({"fallback": u64::MAX})),
        Just(json!({"query": "up", "max_staleness": "999999999999y"})),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(|s| json!(s)),
    ]
}

/// A duration as a policy may write it, from nothing to far too long.
fn duration() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "0s",
            "1ns",
            "1s",
            "5m",
            "1h30m",
            "100000y",
            "200000000y",
            "292000000y",
            "999999999999y",
        ])
        .prop_map(|d| json!(d)),
        (0.0..=1e12f64).prop_map(|s| json!(s)),
        any::<u64>().prop_map(|s| json!(s)),
    ]
}

/// A finite number of any size.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL,
        prop::sample::select(vec![1e-300, 1e300, f64::MAX, f64::MIN_POSITIVE, -1e300]),
    ]
    .prop_map(|f| json!(f))
}

/// Fields set to values of the right type that may still be extreme: these bodies are
/// often accepted, and then evaluated.
fn tweak() -> impl Strategy<Value = (&'static str, Value)> {
    let metric = "philotes_cdc_lag_seconds";
    prop_oneof![
        any::<u64>().prop_map(|n| ("cooldown_seconds", json!(n))),
        (0..4u32).prop_map(|n| ("min_replicas", json!(n))),
        any::<u32>().prop_map(|n| ("max_replicas", json!(n))),
        number().prop_map(|v| ("scale_up_rules.0.threshold", v)),
        any::<i64>().prop_map(|n| ("scale_up_rules.0.scale_by", json!(n))),
        any::<i64>().prop_map(|n| ("scale_down_rules.0.scale_by", json!(n))),
        duration().prop_map(|v| ("scale_up_rules.0.duration", v)),
        duration().prop_map(|v| ("scale_down_rules.0.duration", v)),
        duration().prop_map(|v| ("scale_up_cooldown", v)),
        duration().prop_map(|v| ("scale_down_cooldown", v)),
        duration().prop_map(|v| ("evaluation_interval", v)),
        duration().prop_map(|v| ("stabilization.scale_up", v)),
        duration().prop_map(|v| ("stabilization.scale_down", v)),
        duration().prop_map(|v| ("rate_limits.scale_up.period", v)),
        duration().prop_map(|v| ("rate_limits.scale_down.period", v)),
        any::<u32>().prop_map(|n| ("rate_limits.scale_up.max_step", json!(n))),
        number().prop_map(|v| ("rate_limits.scale_down.max_percent", v)),
        any::<u32>().prop_map(|n| ("schedules.0.desired_replicas", json!(n))),
        number().prop_map(|v| ("max_hourly_cost", v)),
        number().prop_map(|v| ("price_per_replica_hour", v)),
        any::<u32>().prop_map(|n| ("on_metric_error", json!({"fallback": n}))),
        (number(), number()).prop_map(move |(t, tol)| (
            "target_tracking",
            json!({"metric": metric, "target": t, "tolerance": tol})
        )),
        (number(), duration()).prop_map(move |(t, idle)| (
            "scale_to_zero",
            json!({"enabled": true, "metric": metric, "activation_threshold": t, "idle": idle})
        )),
        duration().prop_map(move |d| (
            "metrics",
            json!({"lag": {"query": metric, "max_staleness": d}})
        )),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        edge_value(),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(FIELDS).prop_map(str::to_owned),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body_kind() -> impl Strategy<Value = BodyKind> {
    let change = (
        prop::sample::select(FIELDS),
        prop_oneof![4 => edge_value().prop_map(Some), 2 => any_json().prop_map(Some), 1 => Just(None)],
    );
    let tweaks = prop::collection::vec(tweak().prop_map(|(f, v)| (f, Some(v))), 1..5);
    prop_oneof![
        6 => (any::<u32>(), tweaks).prop_map(|(n, t)| BodyKind::Mutated(n, t)),
        4 => (any::<u32>(), prop::collection::vec(change, 1..4))
            .prop_map(|(n, c)| BodyKind::Mutated(n, c)),
        3 => any_json().prop_map(BodyKind::Json),
        1 => (1..2000usize, any::<bool>()).prop_map(|(d, o)| BodyKind::Deep(d, o)),
        1 => prop::collection::vec(0x80u8..=0xff, 1..4).prop_map(BodyKind::BadUtf8),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(BodyKind::Bytes),
        1 => Just(BodyKind::TooLarge),
        1 => Just(BodyKind::Empty),
    ]
}

fn policy_ref() -> impl Strategy<Value = PolicyRef> {
    prop_oneof![
        6 => Just(PolicyRef::Seeded),
        1 => Just(PolicyRef::Unknown),
        1 => prop_oneof![
            Just("not-an-id".to_owned()),
            Just("%ff%fe".to_owned()),
            Just("..".to_owned()),
            "[a-zA-Z0-9%._~-]{1,40}",
        ]
        .prop_map(PolicyRef::Garbage),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let if_match = prop_oneof![
        4 => Just(IfMatch::Current),
        1 => Just(IfMatch::Stale),
        2 => Just(IfMatch::Missing),
        1 => prop_oneof![
            Just("null".to_owned()),
            Just("W/\"1\"".to_owned()),
            Just("\"99999999999999999999\"".to_owned()),
            Just("-1".to_owned()),
            "[ -~]{0,12}",
        ]
        .prop_map(IfMatch::Text),
    ];
    let route = prop_oneof![
        3 => Just(Route::Create),
        3 => (if_match, policy_ref()).prop_map(|(m, p)| Route::Update(m, p)),
        1 => policy_ref().prop_map(Route::Evaluate),
    ];
    let content_type = prop::sample::select(vec![
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("\u{7f}not a type"),
        None,
    ]);
    let token = prop_oneof![
        12 => Just(Token::Admin),
        1 => Just(Token::Viewer),
        1 => Just(Token::Operator),
        1 => Just(Token::None),
        1 => prop_oneof![Just("blst_wrong".to_owned()), "[ -~]{0,20}"].prop_map(Token::Wrong),
    ];
    (route, body_kind(), content_type, token).prop_map(|(route, body, content_type, token)| Case {
        route,
        body,
        content_type,
        token,
    })
}

/// Sets (or removes) the value at a dotted path, creating objects and arrays on the way.
fn set_path(target: &mut Value, path: &str, value: Option<Value>) {
    let mut parts = path.split('.').peekable();
    let mut at = target;
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if let Ok(index) = part.parse::<usize>() {
            if !at.is_array() {
                *at = Value::Array(Vec::new());
            }
            let items = at.as_array_mut().unwrap();
            while items.len() <= index {
                items.push(Value::Object(Map::new()));
            }
            if last {
                match value {
                    Some(v) => items[index] = v,
                    None => {
                        items.remove(index);
                    }
                }
                return;
            }
            at = &mut items[index];
        } else {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let object = at.as_object_mut().unwrap();
            if last {
                match value {
                    Some(v) => {
                        object.insert(part.to_owned(), v);
                    }
                    None => {
                        object.remove(part);
                    }
                }
                return;
            }
            at = object
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
}

fn body_bytes(kind: &BodyKind) -> Vec<u8> {
    match kind {
        BodyKind::Json(v) => v.to_string().into_bytes(),
        BodyKind::Mutated(unique, changes) => {
            let mut v: Value = serde_json::from_str(EXAMPLE).unwrap();
            v["name"] = json!(format!("fuzz-{unique}"));
            for (path, value) in changes {
                set_path(&mut v, path, value.clone());
            }
            v.to_string().into_bytes()
        }
        BodyKind::Deep(depth, object) => {
            let (open, close) = if *object {
                ("{\"a\":", "}")
            } else {
                ("[", "]")
            };
            format!("{}1{}", open.repeat(*depth), close.repeat(*depth)).into_bytes()
        }
        BodyKind::BadUtf8(bad) => {
            let text = EXAMPLE.replace("cdc-worker-autoscaling", "\u{1}MARK\u{1}");
            let (head, tail) = text.split_once("\u{1}MARK\u{1}").unwrap();
            let mut bytes = head.as_bytes().to_vec();
            bytes.extend_from_slice(bad);
            bytes.extend_from_slice(tail.as_bytes());
            bytes
        }
        BodyKind::Bytes(b) => b.clone(),
        BodyKind::TooLarge => {
            format!("{{\"name\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES + 1)).into_bytes()
        }
        BodyKind::Empty => Vec::new(),
    }
}

struct Api {
    app: axum::Router,
    admin: String,
    operator: String,
    viewer: String,
    seeded: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ballast.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let mut tokens = Vec::new();
    for (name, scope) in [
        ("admin", Scope::Admin),
        ("operator", Scope::Operator),
        ("viewer", Scope::Viewer),
    ] {
        let (token, hash) = ballast_api::auth::new_token();
        store
            .create_token(name, scope, &hash, "test")
            .await
            .unwrap();
        tokens.push(token);
    }
    let engine = Arc::new(Engine::new(
        store,
        None,
        Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig::default(),
    ));
    let mut api = Api {
        app: router(AppState { engine }),
        viewer: tokens.pop().unwrap(),
        operator: tokens.pop().unwrap(),
        admin: tokens.pop().unwrap(),
        seeded: String::new(),
        _dir: dir,
    };
    let (status, created) = api
        .send(
            "POST",
            "/api/v1/scaling/policies",
            &Token::Admin,
            &[(header::CONTENT_TYPE.as_str(), "application/json")],
            EXAMPLE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    api.seeded = created["id"].as_str().unwrap().to_owned();
    api
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &Token,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        let bearer = match token {
            Token::Admin => Some(self.admin.clone()),
            Token::Operator => Some(self.operator.clone()),
            Token::Viewer => Some(self.viewer.clone()),
            Token::Wrong(t) => Some(t.clone()),
            Token::None => None,
        };
        if let Some(t) = bearer
            && let Ok(value) = header::HeaderValue::from_str(&format!("Bearer {t}"))
        {
            req = req.header(header::AUTHORIZATION, value);
        }
        for (name, value) in headers {
            if let Ok(value) = header::HeaderValue::from_str(value) {
                req = req.header(*name, value);
            }
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send("GET", path, &Token::Admin, &[], Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Every policy, and the newest history entry: what a rejected write must not change.
    async fn snapshot(&self) -> (Value, Value) {
        (
            self.get("/api/v1/scaling/policies").await,
            self.get("/api/v1/scaling/history?limit=1").await,
        )
    }

    fn path_of(&self, policy: &PolicyRef) -> String {
        let id = match policy {
            PolicyRef::Seeded => self.seeded.clone(),
            PolicyRef::Unknown => "00000000-0000-4000-8000-000000000000".to_owned(),
            PolicyRef::Garbage(g) => g.clone(),
        };
        format!("/api/v1/scaling/policies/{id}")
    }
}

/// A 4xx body names its problem: a code, a message, and for 422 every problem's path.
fn names_a_problem(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    let error = &body["error"];
    prop_assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{status}: no error code in {body}"
    );
    prop_assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{status}: no message in {body}"
    );
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let problems = error["problems"].as_array();
        prop_assert!(
            problems.is_some_and(|p| !p.is_empty()
                && p.iter()
                    .all(|p| p["path"].is_string() && p["message"].as_str().is_some())),
            "422 without its problems: {body}"
        );
    }
    Ok(())
}

async fn check(api: &Api, case: &Case) -> Result<(), TestCaseError> {
    let before = api.snapshot().await;
    let current_version = before.0["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == api.seeded.as_str())
        .map(|p| p["version"].as_i64().unwrap());
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(ct) = case.content_type {
        headers.push((header::CONTENT_TYPE.as_str(), ct.to_owned()));
    }
    let (method, path, writes) = match &case.route {
        Route::Create => ("POST", "/api/v1/scaling/policies".to_owned(), true),
        Route::Update(if_match, policy) => {
            let version = current_version.unwrap_or(1);
            match if_match {
                IfMatch::Current => headers.push(("if-match", format!("\"{version}\""))),
                IfMatch::Stale => headers.push(("if-match", format!("\"{}\"", version - 1))),
                IfMatch::Missing => {}
                IfMatch::Text(t) => headers.push(("if-match", t.clone())),
            }
            ("PUT", api.path_of(policy), true)
        }
        Route::Evaluate(policy) => ("POST", format!("{}/evaluate", api.path_of(policy)), false),
    };
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = api
        .send(
            method,
            &path,
            &case.token,
            &header_refs,
            body_bytes(&case.body),
        )
        .await;
    prop_assert!(
        status.is_success() || ALLOWED.contains(&status.as_u16()),
        "{method} {path} answered {status}: {body}"
    );
    if status.is_client_error() {
        names_a_problem(status, &body)?;
    }
    if writes && !status.is_success() {
        let after = api.snapshot().await;
        prop_assert_eq!(
            &after,
            &before,
            "a rejected {} ({}) changed the store",
            method,
            status
        );
    }
    if writes && status.is_success() {
        // What was accepted reads back as answered, and can be evaluated.
        let id = body["id"].as_str().unwrap();
        let read = api.get(&format!("/api/v1/scaling/policies/{id}")).await;
        prop_assert_eq!(&read, &body);
        let (status, evaluation) = api
            .send(
                "POST",
                &format!("/api/v1/scaling/policies/{id}/evaluate"),
                &Token::Admin,
                &[],
                Vec::new(),
            )
            .await;
        prop_assert_eq!(status, StatusCode::OK, "evaluate: {}", evaluation);
        prop_assert_eq!(&evaluation["decision"]["dry_run"], &json!(true));
    }
    Ok(())
}

#[test]
fn bad_bodies_never_fail_the_server_nor_change_the_store() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = rt.block_on(api());
    // 600 cases take about ten seconds; PROPTEST_CASES asks for more (or fewer).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(600);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| rt.block_on(check(&api, &case)));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The document lists history's `kind` values by hand (a pattern must be a literal); they
/// must be the store's.
#[tokio::test]
async fn the_documented_history_kinds_are_the_stores() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let engine = Arc::new(Engine::new(
        store,
        None,
        Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig::default(),
    ));
    let (_, doc) = router_and_doc(AppState { engine });
    let doc = serde_json::to_value(&doc).unwrap();
    let params = doc["paths"]["/api/v1/scaling/history"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let kind = params.iter().find(|p| p["name"] == "kind").unwrap();
    let pattern = kind["schema"]["pattern"].as_str().unwrap();
    let listed = pattern
        .strip_prefix("^(")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap();
    let listed: Vec<&str> = listed.split('|').collect();
    assert_eq!(listed, HistoryKind::NAMES);
}
