//! The `webhook` executor: for anything the other executors do not cover, Ballast POSTs the
//! desired count to a URL, signed with a shared secret, and reads the current count back.
//!
//! ```yaml
//! target:
//!   type: webhook
//!   url: http://scaler.internal:8080/ballast/scale
//!   current_url: http://scaler.internal:8080/ballast/count   # default: GET on `url`
//!   secret_env: SCALER_WEBHOOK_SECRET                        # or secret_file: /run/secrets/scaler
//!   timeout: 5s                                              # default 10s
//!   headers: { X-Tenant: shop }                              # extra, not secret
//! ```
//!
//! # The protocol
//!
//! **Reading the count.** `GET current_url` (or `url`). The receiver answers `200` with
//! `{"current": <n>}`, the count it runs now.
//!
//! **Setting the count.** Ballast first reads the current count and sends nothing when it
//! already equals the desired one. Otherwise `POST url` with `Content-Type:
//! application/json` and the body
//!
//! ```json
//! {"policy": "web", "desired": 5, "timestamp": 1767225600, "id": "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"}
//! ```
//!
//! where `timestamp` is the Unix time in seconds and `id` a fresh UUID v4 per request, to
//! recognise a delivery seen before. The receiver answers `2xx`, optionally with
//! `{"current": <n>}` (the count reached, which `scale` then returns; without it, the
//! desired count is taken as reached). The count is absolute, so applying a request twice is
//! harmless.
//!
//! **Answers.** `2xx` is success. `408`, `409`, `425`, `429`, `5xx`, a timeout and a failed
//! connection are transient (Ballast retries with backoff). Any other status (other `4xx`,
//! and `3xx`: redirects are not followed) is permanent, and the error carries the answer's
//! message: the `message` or `error` field of a JSON body, or else the body's text.
//!
//! # Signatures
//!
//! Every request, GET included, carries two headers:
//!
//! - `X-Ballast-Timestamp: <unix seconds>`
//! - `X-Ballast-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256, keyed with the
//!   shared secret's bytes, of the timestamp (as the decimal text of the header), a `.`,
//!   and the raw request body (empty for GET): `HMAC(secret, "<timestamp>.<body>")`.
//!
//! To verify a request, a receiver:
//!
//! 1. reads the raw body bytes, before parsing them;
//! 2. rejects the request when `X-Ballast-Timestamp` is more than five minutes away from its
//!    own clock (and, for a POST, when the body's `timestamp` differs from the header);
//! 3. computes `HMAC-SHA256(secret, timestamp + "." + body)` and compares its hex with the
//!    part of `X-Ballast-Signature` after `sha256=`, in constant time;
//! 4. answers `401` with `{"message": "..."}` when any check fails.
//!
//! In Python:
//!
//! ```python
//! import hashlib, hmac, time
//!
//! def verify(secret: bytes, headers, body: bytes) -> bool:
//!     ts = headers["X-Ballast-Timestamp"]
//!     if abs(time.time() - int(ts)) > 300:
//!         return False
//!     expected = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
//!     return hmac.compare_digest("sha256=" + expected, headers["X-Ballast-Signature"])
//! ```
//!
//! The secret comes from the environment variable `secret_env` or the file `secret_file`.
//! It is never logged, stored or printed: `Debug` shows `***`, and error messages name the
//! variable or file only. URLs in error messages lose their query string and user info.
//!
//! # Plain HTTP only
//!
//! Like the Prometheus source, this build has no TLS stack, so `url` must be `http://`: use
//! it on a trusted network, or through a local TLS-terminating proxy. The signature proves
//! who sent a request and that it was not changed; it does not hide the (non-secret) count.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use sha2::Sha256;

mod config;

pub use config::{DEFAULT_TIMEOUT, WebhookConfig, WebhookType, check};

use config::Secret;

/// The header carrying the request's signature (`sha256=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-ballast-signature";
/// The header carrying the Unix time the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-ballast-timestamp";

/// The most of an answer's body that is read.
const MAX_BODY: usize = 64 * 1024;
/// The most of an answer's text that goes into an error message.
const MAX_MESSAGE: usize = 300;

/// Why a webhook executor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The `target` block has problems.
    #[error("invalid target: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidTarget {
        /// Every problem, each with its `target.<field>` path.
        problems: Vec<TargetProblem>,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl From<WebhookError> for ExecutorError {
    fn from(e: WebhookError) -> ExecutorError {
        ExecutorError::Permanent(e.to_string())
    }
}

/// Sets and reads a count through a signed webhook; see the crate docs for the protocol.
pub struct WebhookExecutor {
    policy: String,
    url: Url,
    current_url: Url,
    secret: Secret,
    headers: HeaderMap,
    timeout: Duration,
    client: reqwest::Client,
}

/// The body of a scale request.
#[derive(Serialize)]
struct ScaleRequest<'a> {
    policy: &'a str,
    desired: u32,
    timestamp: u64,
    id: String,
}

impl WebhookExecutor {
    /// The executor for the policy `policy`, reading the secret now (from this process's
    /// environment or the file).
    pub fn new(policy: &str, config: &WebhookConfig) -> Result<WebhookExecutor, WebhookError> {
        let resolved = config
            .resolve(&|name| std::env::var_os(name))
            .map_err(|problems| WebhookError::InvalidTarget { problems })?;
        let client = reqwest::Client::builder()
            .timeout(resolved.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookExecutor {
            policy: policy.to_string(),
            url: resolved.url,
            current_url: resolved.current_url,
            secret: resolved.secret,
            headers: resolved.headers,
            timeout: resolved.timeout,
            client,
        })
    }

    /// Parses a policy's `target` block and builds its executor.
    pub fn from_target(
        policy: &str,
        target: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<WebhookExecutor, WebhookError> {
        let config = WebhookConfig::from_target(target)
            .map_err(|p| WebhookError::InvalidTarget { problems: vec![p] })?;
        WebhookExecutor::new(policy, &config)
    }

    /// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
    fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.bytes())
            .expect("HMAC takes keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Sends one signed request and returns the body of a `2xx` answer.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        timestamp: u64,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ExecutorError> {
        let shown = shown(url);
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .headers(self.headers.clone())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, self.sign(timestamp, &body));
        if method == Method::POST {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.request_failed(&method, &shown, e))?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_failed(&method, &shown, e))?
        {
            answer.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - answer.len())]);
            if answer.len() >= MAX_BODY {
                break;
            }
        }
        if status.is_success() {
            return Ok(answer);
        }
        let mut message = format!("{method} {shown} answered {status}");
        let detail = answer_message(&answer);
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(&detail);
        }
        Err(if transient_status(status) {
            ExecutorError::Transient(message)
        } else {
            ExecutorError::Permanent(message)
        })
    }

    fn request_failed(&self, method: &Method, shown: &str, e: reqwest::Error) -> ExecutorError {
        // reqwest's message repeats the whole URL, query included: ours is shown instead.
        let e = e.without_url();
        if e.is_timeout() {
            return ExecutorError::Transient(format!(
                "{method} {shown}: no answer within {}",
                humantime::format_duration(self.timeout)
            ));
        }
        let mut causes = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            let text = err.to_string();
            if causes.last() != Some(&text) {
                causes.push(text);
            }
            source = err.source();
        }
        let message = format!("{method} {shown}: {}", causes.join(": "));
        if e.is_builder() {
            ExecutorError::Permanent(message)
        } else {
            ExecutorError::Transient(message)
        }
    }
}

#[async_trait]
impl Executor for WebhookExecutor {
    fn describe(&self) -> Description {
        Description::new("webhook", format!("webhook {}", shown(&self.url)))
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        let answer = self
            .call(Method::GET, &self.current_url, unix_now(), Vec::new())
            .await?;
        reported_count(&answer).ok_or_else(|| {
            ExecutorError::Permanent(format!(
                "GET {} answered without a count: expected {{\"current\": n}}, got `{}`",
                shown(&self.current_url),
                snippet(&answer)
            ))
        })
    }

    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let from = self.current().await?;
        if from == to {
            return Ok(to);
        }
        let timestamp = unix_now();
        let id = uuid::Uuid::new_v4().to_string();
        let body = serde_json::to_vec(&ScaleRequest {
            policy: &self.policy,
            desired: to,
            timestamp,
            id: id.clone(),
        })
        .expect("a plain struct serializes");
        let answer = self.call(Method::POST, &self.url, timestamp, body).await?;
        let reached = reported_count(&answer).unwrap_or(to);
        tracing::info!(policy = %self.policy, from, to, reached, %id, "webhook executor: scale");
        Ok(reached)
    }
}

impl std::fmt::Debug for WebhookExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookExecutor")
            .field("policy", &self.policy)
            .field("url", &shown(&self.url))
            .field("current_url", &shown(&self.current_url))
            .field("secret", &self.secret)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether an answer's status is worth retrying: 408, 409, 425, 429 and every 5xx.
fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 425 | 429) || status.is_server_error()
}

/// The `current` count of a JSON answer, when it has one.
fn reported_count(answer: &[u8]) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_slice(answer).ok()?;
    u32::try_from(value.get("current")?.as_u64()?).ok()
}

/// What an error answer says: its JSON `message` or `error` (a string, or an object with a
/// `message`), or else its text, shortened.
fn answer_message(answer: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(answer) {
        for key in ["message", "error"] {
            match value.get(key) {
                Some(serde_json::Value::String(s)) => return shorten(s),
                Some(inner) => {
                    if let Some(s) = inner.get("message").and_then(|m| m.as_str()) {
                        return shorten(s);
                    }
                }
                None => {}
            }
        }
    }
    snippet(answer)
}

fn snippet(answer: &[u8]) -> String {
    shorten(String::from_utf8_lossy(answer).trim())
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A URL as it may appear in logs and errors: without user info, query or fragment (which
/// may hold credentials).
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    // Both fail only for URLs that cannot have user info, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_the_documented_classes() {
        for code in [408, 409, 425, 429, 500, 502, 503, 504] {
            assert!(
                transient_status(StatusCode::from_u16(code).expect("a status")),
                "{code}"
            );
        }
        for code in [301, 400, 401, 403, 404, 410, 422] {
            assert!(
                !transient_status(StatusCode::from_u16(code).expect("a status")),
                "{code}"
            );
        }
    }

    #[test]
    fn an_error_answer_gives_its_message() {
        assert_eq!(
            answer_message(br#"{"message": "no such pool"}"#),
            "no such pool"
        );
        assert_eq!(answer_message(br#"{"error": "quota"}"#), "quota");
        assert_eq!(
            answer_message(br#"{"error": {"code": 7, "message": "locked"}}"#),
            "locked"
        );
        assert_eq!(answer_message(b"  plain text\n"), "plain text");
        assert_eq!(answer_message(b""), "");
        let long = "x".repeat(1000);
        assert_eq!(
            answer_message(long.as_bytes()).chars().count(),
            MAX_MESSAGE + 1
        );
    }

    #[test]
    fn counts_are_read_from_current() {
        assert_eq!(reported_count(br#"{"current": 4}"#), Some(4));
        assert_eq!(reported_count(br#"{"current": -1}"#), None);
        assert_eq!(reported_count(br#"{"replicas": 4}"#), None);
        assert_eq!(reported_count(b"ok"), None);
    }

    #[test]
    fn urls_in_messages_lose_credentials() {
        let url = Url::parse("http://user:pw@host:8080/scale?token=abc#x").expect("a URL");
        assert_eq!(shown(&url), "http://host:8080/scale");
    }
}
