//! One small HTTP/1 client for the providers, the health checks and the drain hooks: hyper
//! over rustls on ring (the TLS stack kube already brings), with the system's root
//! certificates. Rate limits are honoured here; each provider turns the other failures
//! into its own error messages.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ballast_executor::ExecutorError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A request, rebuilt for every attempt (an OVHcloud signature covers its timestamp).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Content type and bytes.
    pub body: Option<(&'static str, Vec<u8>)>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header whose value is secret: hyper keeps it out of its own debug output.
    pub fn secret_header(
        mut self,
        name: &'static str,
        value: &str,
    ) -> Result<Request, ExecutorError> {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ExecutorError::Permanent(format!(
                "the credential for {name} is not a valid header value"
            ))
        })?;
        v.set_sensitive(true);
        self.headers.push((HeaderName::from_static(name), v));
        Ok(self)
    }

    pub fn json(mut self, value: &serde_json::Value) -> Request {
        self.body = Some(("application/json", value.to_string().into_bytes()));
        self
    }

    pub fn text(mut self, content_type: &'static str, text: &str) -> Request {
        self.body = Some((content_type, text.as_bytes().to_vec()));
        self
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ExecutorError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ExecutorError::Transient(format!("{what}: unexpected answer: {e}")))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Which header says how long a 429 asks to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateLimitHeader {
    /// `RateLimit-Reset`: the Unix time at which the limit has room again (Hetzner).
    ResetAt,
    /// `Retry-After`: seconds to wait (Scaleway, OVHcloud).
    RetryAfter,
}

impl RateLimitHeader {
    /// How long the answer asks to wait, if it says.
    pub fn wait(self, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
        let read = |name: &str| -> Option<f64> {
            headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok()
        };
        match self {
            RateLimitHeader::ResetAt => {
                let reset = read("ratelimit-reset")?;
                let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
                Duration::try_from_secs_f64((reset - now).max(0.0)).ok()
            }
            RateLimitHeader::RetryAfter => {
                Duration::try_from_secs_f64(read("retry-after")?.max(0.0)).ok()
            }
        }
    }
}

/// Whether an HTTP status is worth retrying: timeouts, conflicts, locks, rate limits and
/// server errors are; other client errors are not.
pub(crate) fn classify(status: StatusCode, message: String) -> ExecutorError {
    let transient =
        status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 423 | 425 | 429);
    if transient {
        ExecutorError::Transient(message)
    } else {
        ExecutorError::Permanent(message)
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Http {
    /// A client whose every request (answer included) must finish within `timeout`.
    pub fn new(timeout: Duration) -> Result<Http, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        // Without system certificates https fails to verify; plain http (tests, in-cluster
        // hooks) still works, so this is not fatal here.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Http { client, timeout })
    }

    /// Sends one request. A connection failure or a timeout is transient; the status is the
    /// caller's to judge. `who` names the provider in messages.
    pub async fn send(&self, who: &str, req: &Request) -> Result<Response, ExecutorError> {
        let what = format!("{who}: {} {}", req.method, strip_query(&req.url));
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(&req.url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("ballast/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let body = match &req.body {
            Some((content_type, bytes)) => {
                builder = builder.header(http::header::CONTENT_TYPE, *content_type);
                Full::new(Bytes::from(bytes.clone()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| ExecutorError::Permanent(format!("{what}: bad request: {e}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| {
                    ExecutorError::Transient(format!("{what}: {}", error_chain(&e)))
                })?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ExecutorError::Transient(format!("{what}: reading the answer: {e}")))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ExecutorError::Transient(format!(
                "{what}: no answer within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }

    /// Sends the request built by `make`, waiting out rate limits: on a 429 it sleeps as long
    /// as `header` says (at most `max_wait`, and at most three times) and tries again. A
    /// longer wait is a transient error saying how long the provider asked for.
    pub async fn send_with_backoff(
        &self,
        who: &str,
        header: RateLimitHeader,
        max_wait: Duration,
        make: impl Fn() -> Result<Request, ExecutorError>,
    ) -> Result<Response, ExecutorError> {
        let mut tries = 0;
        loop {
            let req = make()?;
            let response = self.send(who, &req).await?;
            if response.status != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response);
            }
            tries += 1;
            let asked = header.wait(&response.headers, SystemTime::now());
            let wait = asked.unwrap_or(Duration::from_secs(1));
            let what = format!("{who}: {} {}", req.method, strip_query(&req.url));
            if wait > max_wait || tries > 3 {
                return Err(ExecutorError::Transient(format!(
                    "{what}: rate limited (429); the provider asks to wait {} (this call waits at most {}, {} tries)",
                    humantime::format_duration(round(wait)),
                    humantime::format_duration(max_wait),
                    tries
                )));
            }
            tracing::info!(
                provider = who,
                wait_ms = wait.as_millis() as u64,
                "rate limited; waiting"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// The URL without its query (which may be long, never secret, but not useful in errors).
pub(crate) fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Percent-encodes one query value.
pub(crate) fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_give_the_wait() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("1003"));
        assert_eq!(
            RateLimitHeader::ResetAt.wait(&h, now),
            Some(Duration::from_secs(3))
        );
        h.insert("ratelimit-reset", HeaderValue::from_static("900"));
        assert_eq!(RateLimitHeader::ResetAt.wait(&h, now), Some(Duration::ZERO));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(
            RateLimitHeader::RetryAfter.wait(&h, now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(RateLimitHeader::ResetAt.wait(&h, now), None);
    }

    #[test]
    fn statuses_are_classified() {
        for s in [500, 502, 503, 409, 423, 429, 408] {
            assert!(
                classify(StatusCode::from_u16(s).unwrap(), "x".into()).is_transient(),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(
                !classify(StatusCode::from_u16(s).unwrap(), "x".into()).is_transient(),
                "{s}"
            );
        }
    }
}
