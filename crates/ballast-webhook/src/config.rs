//! The `target` block of a webhook, as the policy writes it, and its checks.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use ballast_executor::{TargetProblem, parse_target};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Deserialize;

use crate::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The request timeout when the block names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers the executor sets itself; `headers` may not set them.
const RESERVED_HEADERS: &[&str] = &[
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

/// The `type` of a webhook target: always `webhook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WebhookType {
    /// `type: webhook`.
    #[serde(rename = "webhook")]
    Webhook,
}

/// A policy's `target` block for a webhook. It holds where the secret is, never the secret.
///
/// ```yaml
/// target:
///   type: webhook
///   url: http://scaler.internal:8080/ballast/scale
///   current_url: http://scaler.internal:8080/ballast/count   # default: GET on `url`
///   secret_env: SCALER_WEBHOOK_SECRET                        # or secret_file: /run/secrets/scaler
///   timeout: 5s                                              # default 10s
///   headers: { X-Tenant: shop }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `webhook`.
    #[serde(rename = "type")]
    pub kind: WebhookType,
    /// Where the desired count is POSTed (`http://` only: see the crate docs).
    pub url: String,
    /// Where the current count is read with GET; `url` when absent.
    #[serde(default)]
    pub current_url: Option<String>,
    /// The name of the environment variable that holds the HMAC secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file that holds the HMAC secret (trailing whitespace, such as the final newline, is
    /// not part of it). Exactly one of `secret_env` and `secret_file` is set.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How long one request may take, answer included (`10s` when absent).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Extra headers sent with every request. Not for secrets: they are part of the policy,
    /// which is stored and shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The HMAC key. Its `Debug` prints `***`, it has no `Display`, and its memory is zeroed
/// when dropped.
pub(crate) struct Secret(SecretSlice<u8>);

impl Secret {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A checked configuration, ready to use.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub url: Url,
    pub current_url: Url,
    pub secret: Secret,
    pub timeout: Duration,
    pub headers: HeaderMap,
}

impl WebhookConfig {
    /// Parses a `target` block (shape only; [`check`] also looks at URLs, headers and the
    /// secret).
    pub fn from_target(
        target: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<WebhookConfig, TargetProblem> {
        parse_target(target)
    }

    /// What is wrong with this configuration beyond its shape, the secret's presence
    /// included (read from this process's environment or the file). Messages name the
    /// variable or file, never the secret.
    pub fn problems(&self) -> Vec<TargetProblem> {
        self.resolve(&|name| std::env::var_os(name))
            .err()
            .unwrap_or_default()
    }

    /// Checks everything and reads the secret, looking environment variables up with `env`.
    pub(crate) fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Resolved, Vec<TargetProblem>> {
        let mut problems = Vec::new();
        let url = http_url("url", &self.url)
            .map_err(|p| problems.push(p))
            .ok();
        let current_url = match &self.current_url {
            Some(u) => http_url("current_url", u)
                .map_err(|p| problems.push(p))
                .ok(),
            None => url.clone(),
        };
        let secret = self.secret(env).map_err(|p| problems.push(p)).ok();
        let timeout = self.timeout().map_err(|p| problems.push(p)).ok();
        let headers = self.headers().map_err(|p| problems.extend(p)).ok();
        match (url, current_url, secret, timeout, headers) {
            (Some(url), Some(current_url), Some(secret), Some(timeout), Some(headers))
                if problems.is_empty() =>
            {
                Ok(Resolved {
                    url,
                    current_url,
                    secret,
                    timeout,
                    headers,
                })
            }
            _ => Err(problems),
        }
    }

    fn secret(&self, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Secret, TargetProblem> {
        let bytes = match (&self.secret_env, &self.secret_file) {
            (Some(_), Some(_)) => {
                return Err(TargetProblem::at(
                    "secret_file",
                    "set either secret_env or secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(TargetProblem::at(
                    "secret_env",
                    "required (or secret_file): the name of the environment variable that \
                     holds the HMAC secret",
                ));
            }
            (Some(name), None) => {
                if name.is_empty() || name.contains(['=', '\0']) {
                    return Err(TargetProblem::at(
                        "secret_env",
                        format!("`{name}` is not an environment variable's name"),
                    ));
                }
                match env(name) {
                    Some(value) => value.into_vec(),
                    None => {
                        return Err(TargetProblem::at(
                            "secret_env",
                            format!("the environment variable `{name}` is not set"),
                        ));
                    }
                }
            }
            (None, Some(path)) => match std::fs::read(path) {
                Ok(mut bytes) => {
                    let kept = bytes.trim_ascii_end().len();
                    bytes.truncate(kept);
                    bytes
                }
                Err(e) => {
                    return Err(TargetProblem::at(
                        "secret_file",
                        format!("cannot read `{}`: {e}", path.display()),
                    ));
                }
            },
        };
        if bytes.is_empty() {
            let (field, source) = match &self.secret_env {
                Some(name) => ("secret_env", format!("the environment variable `{name}`")),
                None => ("secret_file", "the file".to_string()),
            };
            return Err(TargetProblem::at(
                field,
                format!("{source} holds an empty secret"),
            ));
        }
        Ok(Secret(SecretSlice::from(bytes)))
    }

    fn timeout(&self) -> Result<Duration, TargetProblem> {
        let Some(text) = &self.timeout else {
            return Ok(DEFAULT_TIMEOUT);
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => Err(TargetProblem::at("timeout", "must be more than zero")),
            Ok(d) => Ok(d),
            Err(e) => Err(TargetProblem::at(
                "timeout",
                format!("`{text}` is not a duration such as `10s` or `500ms`: {e}"),
            )),
        }
    }

    fn headers(&self) -> Result<HeaderMap, Vec<TargetProblem>> {
        let mut problems = Vec::new();
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
                problems.push(TargetProblem::at(&field, "not a valid header name"));
                continue;
            };
            if RESERVED_HEADERS.contains(&parsed.as_str()) {
                problems.push(TargetProblem::at(&field, "set by the executor itself"));
                continue;
            }
            match HeaderValue::from_str(value) {
                Ok(v) => {
                    headers.insert(parsed, v);
                }
                Err(_) => problems.push(TargetProblem::at(
                    &field,
                    "not a valid header value (visible ASCII only)",
                )),
            }
        }
        if problems.is_empty() {
            Ok(headers)
        } else {
            Err(problems)
        }
    }
}

/// Parses and checks a `target` block of `type: webhook`: every problem, each with its
/// `target.<field>` path. Reads the secret's variable or file to see that it is there.
pub fn check(target: &serde_json::Map<String, serde_json::Value>) -> Vec<TargetProblem> {
    match WebhookConfig::from_target(target) {
        Ok(config) => config.problems(),
        Err(problem) => vec![problem],
    }
}

fn http_url(field: &str, text: &str) -> Result<Url, TargetProblem> {
    let url = Url::parse(text)
        .map_err(|e| TargetProblem::at(field, format!("`{text}` is not a URL: {e}")))?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => Err(TargetProblem::at(
            field,
            "https is not supported yet (this build has no TLS stack): use http:// on a \
             trusted network, or a local TLS-terminating proxy",
        )),
        other => Err(TargetProblem::at(
            field,
            format!("the scheme `{other}` is not supported: use http://"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> WebhookConfig {
        WebhookConfig::from_target(v.as_object().expect("an object")).expect("parsed")
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn paths(problems: &[TargetProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn the_secret_comes_from_the_named_environment_variable() {
        let c = config(serde_json::json!({
            "type": "webhook", "url": "http://127.0.0.1:9/scale", "secret_env": "HOOK_SECRET",
        }));
        let r = c
            .resolve(&|name| (name == "HOOK_SECRET").then(|| "s3cret".into()))
            .expect("valid");
        assert_eq!(r.secret.bytes(), b"s3cret");
        assert_eq!(r.current_url, r.url, "current_url defaults to url");
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
        assert_eq!(format!("{:?}", r.secret), "***");
        assert!(!format!("{r:?}").contains("s3cret"));

        let p = c.resolve(&no_env).expect_err("unset");
        assert_eq!(paths(&p), ["target.secret_env"]);
        assert!(p[0].reason.contains("HOOK_SECRET"), "{}", p[0]);
        let p = c.resolve(&|_| Some(OsString::new())).expect_err("empty");
        assert!(p[0].reason.contains("empty"), "{}", p[0]);
    }

    #[test]
    fn a_secret_file_loses_its_final_newline() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("secret");
        std::fs::write(&file, "abc def\n").expect("written");
        let c = config(serde_json::json!({
            "type": "webhook", "url": "http://127.0.0.1:9/", "secret_file": file,
        }));
        assert_eq!(
            c.resolve(&no_env).expect("valid").secret.bytes(),
            b"abc def"
        );
        let c = config(serde_json::json!({
            "type": "webhook", "url": "http://127.0.0.1:9/",
            "secret_file": dir.path().join("missing"),
        }));
        assert_eq!(
            paths(&c.resolve(&no_env).expect_err("missing")),
            ["target.secret_file"]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let c = config(serde_json::json!({
            "type": "webhook",
            "url": "https://hooks.example.com/scale",
            "current_url": "not a url",
            "timeout": "soon",
            "headers": {"X-Ballast-Signature": "x", "Bad Name": "x", "X-Ok": "line\nbreak"},
        }));
        let p = c.resolve(&no_env).expect_err("invalid");
        assert_eq!(
            paths(&p),
            [
                "target.url",
                "target.current_url",
                "target.secret_env",
                "target.timeout",
                "target.headers.Bad Name",
                "target.headers.X-Ballast-Signature",
                "target.headers.X-Ok",
            ],
            "{p:?}"
        );
        assert!(p[0].reason.contains("https"), "{}", p[0]);
        assert!(p[3].reason.contains("soon"), "{}", p[3]);
    }

    #[test]
    fn both_secret_sources_at_once_is_a_problem() {
        let c = config(serde_json::json!({
            "type": "webhook", "url": "http://127.0.0.1:9/",
            "secret_env": "A", "secret_file": "/nonexistent",
        }));
        assert_eq!(
            paths(&c.resolve(&|_| Some("x".into())).expect_err("both")),
            ["target.secret_file"]
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = WebhookConfig::from_target(
            serde_json::json!({"type": "webhook", "url": "http://x/", "secret": "oops"})
                .as_object()
                .expect("an object"),
        )
        .expect_err("unknown field");
        assert_eq!(e.path, "target.secret");
        assert!(!e.reason.contains("oops"), "the value is not echoed: {e}");
    }
}
