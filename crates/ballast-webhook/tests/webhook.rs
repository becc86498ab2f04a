//! The webhook executor against a loopback axum receiver. The receiver follows this crate's
//! own published protocol (the crate docs, "The protocol" and "Signatures"): it verifies
//! every request with the documented recipe (timestamp window, HMAC-SHA256 over
//! `"<timestamp>.<body>"`, constant-time comparison) and answers 401 with a message when it
//! fails, keeps a count, answers `{"current": n}`, and can fail its next POST on request.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_executor::{Executor, ExecutorError};
use ballast_webhook::{WebhookConfig, WebhookExecutor};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;

const SECRET: &str = "hunter2-ballast-test-secret";

struct Receiver {
    secret: Vec<u8>,
    count: Mutex<u32>,
    posts: AtomicU64,
    fail: Mutex<Option<Failure>>,
    /// The headers and JSON body of the last POST that passed verification.
    last: Mutex<Option<(HeaderMap, Value)>>,
}

impl Receiver {
    fn new(secret: &str, count: u32) -> Arc<Receiver> {
        Arc::new(Receiver {
            secret: secret.as_bytes().to_vec(),
            count: Mutex::new(count),
            posts: AtomicU64::new(0),
            fail: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    fn count(&self) -> u32 {
        *self.count.lock().expect("not poisoned")
    }
}

fn rejected(why: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"message": why}))).into_response()
}

/// The crate docs' verification recipe: the timestamp it verified, or why it failed.
fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<u64, &'static str> {
    let text = headers
        .get("X-Ballast-Timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing X-Ballast-Timestamp")?;
    let timestamp: u64 = text.parse().map_err(|_| "bad timestamp")?;
    if unix_now().abs_diff(timestamp) > 300 {
        return Err("timestamp outside the five-minute window");
    }
    let signature = headers
        .get("X-Ballast-Signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or("missing or malformed X-Ballast-Signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(text.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| "signature does not match")?;
    Ok(timestamp)
}

async fn read(State(r): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if let Err(why) = verify(&r.secret, &headers, b"") {
        return rejected(why);
    }
    Json(json!({"current": r.count()})).into_response()
}

async fn write(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let timestamp = match verify(&r.secret, &headers, &body) {
        Ok(t) => t,
        Err(why) => return rejected(why),
    };
    r.posts.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    if request["timestamp"].as_u64() != Some(timestamp) {
        return rejected("the body's timestamp is not the signed one");
    }
    match r.fail.lock().expect("not poisoned").take() {
        Some(Failure::Transient) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"message": "busy, try again"})),
            )
                .into_response();
        }
        Some(Failure::Permanent) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": "pool `web` does not exist"})),
            )
                .into_response();
        }
        None => {}
    }
    let Some(desired) = request["desired"].as_u64() else {
        return (StatusCode::BAD_REQUEST, "no desired count").into_response();
    };
    *r.count.lock().expect("not poisoned") = desired as u32;
    *r.last.lock().expect("not poisoned") = Some((headers, request));
    Json(json!({"current": desired})).into_response()
}

async fn serve(receiver: Arc<Receiver>) -> SocketAddr {
    let app = axum::Router::new()
        .route("/scale", get(read).post(write))
        .route("/count", get(read))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// An executor whose secret is `secret`, read from a file in `dir`.
fn executor(dir: &Path, secret: &str, block: Value) -> WebhookExecutor {
    let file = dir.join("secret");
    std::fs::write(&file, format!("{secret}\n")).expect("written");
    let mut block = block;
    block["type"] = json!("webhook");
    block["secret_file"] = json!(file);
    let config = WebhookConfig::from_target(block.as_object().expect("an object")).expect("parsed");
    WebhookExecutor::new("web", &config).expect("a valid block")
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "the secret leaked into: {text}");
}

struct World {
    dir: tempfile::TempDir,
    receiver: Option<Arc<Receiver>>,
}

impl World {
    fn receiver(&self) -> &Receiver {
        self.receiver.as_ref().expect("started")
    }
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        let receiver = Receiver::new(SECRET, initial);
        let addr = serve(receiver.clone()).await;
        self.receiver = Some(receiver);
        Arc::new(executor(
            self.dir.path(),
            SECRET,
            json!({"url": format!("http://{addr}/scale"), "timeout": "2s"}),
        ))
    }

    async fn observed(&self) -> u32 {
        self.receiver().count()
    }

    async fn changes(&self) -> Option<u64> {
        Some(self.receiver().posts.load(Ordering::SeqCst))
    }

    async fn fail_next(&self, failure: Failure) -> bool {
        *self.receiver().fail.lock().expect("not poisoned") = Some(failure);
        true
    }
}

#[tokio::test]
async fn the_webhook_executor_conforms() {
    let mut world = World {
        dir: tempfile::tempdir().expect("a temporary directory"),
        receiver: None,
    };
    conformance::run(&mut world).await;
}

#[tokio::test]
async fn a_post_carries_the_documented_body_and_headers_and_current_url_is_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let receiver = Receiver::new(SECRET, 1);
    let addr = serve(receiver.clone()).await;
    let e = executor(
        dir.path(),
        SECRET,
        json!({
            "url": format!("http://{addr}/scale?token=in-the-query"),
            "current_url": format!("http://{addr}/count"),
            "headers": {"X-Tenant": "shop"},
        }),
    );
    assert_eq!(e.current().await, Ok(1));
    assert_eq!(e.scale(3).await, Ok(3));
    assert_eq!(receiver.count(), 3);
    let (headers, body) = receiver
        .last
        .lock()
        .expect("not poisoned")
        .clone()
        .expect("a POST");
    assert_eq!(headers["x-tenant"], "shop");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["policy"], "web");
    assert_eq!(body["desired"], 3);
    assert!(unix_now().abs_diff(body["timestamp"].as_u64().expect("a number")) < 60);
    let id = uuid::Uuid::parse_str(body["id"].as_str().expect("a string")).expect("a UUID");
    assert_eq!(id.get_version_num(), 4);
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "only the documented fields: {keys:?}");

    assert_eq!(e.scale(2).await, Ok(2));
    let (_, second) = receiver
        .last
        .lock()
        .expect("not poisoned")
        .clone()
        .expect("a POST");
    assert_ne!(second["id"], body["id"], "each request has its own id");
    assert_eq!(receiver.posts.load(Ordering::SeqCst), 2);

    let d = e.describe();
    assert_eq!(d.kind, "webhook");
    assert!(!d.target.contains("in-the-query"), "{}", d.target);
}

#[tokio::test]
async fn a_wrong_secret_is_permanent_with_the_receivers_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let receiver = Receiver::new("the-receivers-secret", 2);
    let addr = serve(receiver.clone()).await;
    let e = executor(
        dir.path(),
        SECRET,
        json!({"url": format!("http://{addr}/scale")}),
    );
    let error = e.scale(5).await.expect_err("rejected");
    match &error {
        ExecutorError::Permanent(m) => {
            assert!(m.contains("401"), "{m}");
            assert!(m.contains("signature does not match"), "{m}");
        }
        other => panic!("a wrong secret reported as {other:?}"),
    }
    assert_eq!(receiver.count(), 2, "nothing changed");
    assert_no_secret(&error.to_string());
    assert_no_secret(&format!("{error:?}"));
    assert_no_secret(&format!("{e:?}"));
    assert!(format!("{e:?}").contains("***"), "{e:?}");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_is_transient_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    // Accepts connections and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let e = executor(
        dir.path(),
        SECRET,
        json!({"url": format!("http://{addr}/scale"), "timeout": "300ms"}),
    );
    let began = Instant::now();
    let error = e.scale(4).await.expect_err("no answer");
    let took = began.elapsed();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.message().contains("no answer within 300ms"),
        "{error}"
    );
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "gave up late: {took:?}");
    assert_no_secret(&error.to_string());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("an address")
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let e = executor(
        dir.path(),
        SECRET,
        json!({"url": format!("http://{addr}/scale")}),
    );
    let error = e.current().await.expect_err("refused");
    assert!(error.is_transient(), "{error:?}");
    assert!(error.message().contains(&addr.to_string()), "{error}");
    assert!(error.message().contains("Connection refused"), "{error}");
    assert!(
        !error.message().contains("token"),
        "the query is not shown: {error}"
    );
    assert_no_secret(&error.to_string());
}

#[test]
fn a_missing_secret_env_variable_is_a_problem_naming_target_secret_env() {
    let block = json!({
        "type": "webhook",
        "url": "http://127.0.0.1:9/scale",
        "secret_env": "BALLAST_WEBHOOK_TEST_SURELY_UNSET",
    });
    let block = block.as_object().expect("an object");
    let problems = ballast_webhook::check(block);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "target.secret_env");
    assert!(
        problems[0]
            .reason
            .contains("BALLAST_WEBHOOK_TEST_SURELY_UNSET"),
        "{}",
        problems[0]
    );
    let e = WebhookExecutor::from_target("web", block).expect_err("no secret");
    let e = ExecutorError::from(e);
    assert!(!e.is_transient());
    assert!(e.message().contains("target.secret_env"), "{e}");
}

#[test]
fn a_valid_block_has_no_problems_and_its_secret_stays_hidden() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("secret");
    std::fs::write(&file, SECRET).expect("written");
    let block = json!({"type": "webhook", "url": "http://127.0.0.1:9/scale", "secret_file": file});
    let block = block.as_object().expect("an object");
    assert_eq!(ballast_webhook::check(block), []);
    let e = WebhookExecutor::from_target("web", block).expect("valid");
    assert_no_secret(&format!("{e:?}"));
    let config = WebhookConfig::from_target(block).expect("parsed");
    assert_no_secret(&format!("{config:?}"));
}
