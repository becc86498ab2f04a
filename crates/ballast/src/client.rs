//! A small client of the Ballast REST API, for the `policy` and `history` commands.

use anyhow::Context;
use ballast_core::{Decision, PolicySpec};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;

/// Where the server is and how to authenticate; shared by every command that calls the API.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The Ballast server's base URL.
    #[arg(
        long,
        env = "BALLAST_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// An API token (create one with `ballast token create`).
    #[arg(long, env = "BALLAST_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

/// Fields the server adds to a policy; everything else is the policy as written.
const SERVER_FIELDS: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
];

/// A policy as stored on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub version: i64,
    pub spec: PolicySpec,
}

impl Stored {
    fn from_value(mut value: Value) -> anyhow::Result<Stored> {
        let object = value
            .as_object_mut()
            .context("the server sent a policy that is not a JSON object")?;
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .context("the server sent a policy without an id")?
            .to_owned();
        let version = object
            .get("version")
            .and_then(Value::as_i64)
            .context("the server sent a policy without a version")?;
        for key in SERVER_FIELDS {
            object.remove(*key);
        }
        let spec = serde_json::from_value(value)
            .context("the server sent a policy this client cannot read")?;
        Ok(Stored { id, version, spec })
    }
}

/// The result of `POST /policies/{id}/evaluate`.
#[derive(Debug, Deserialize)]
pub struct Evaluation {
    pub history_id: i64,
    pub decision: Decision,
}

/// One history entry, as the API sends it.
#[derive(Debug, Deserialize)]
pub struct Entry {
    pub at: String,
    pub kind: String,
    pub policy_name: Option<String>,
    pub action: Option<String>,
    pub from_replicas: Option<i64>,
    pub to_replicas: Option<i64>,
    pub reason: String,
    pub outcome: Option<String>,
}

/// A page of history.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    message: String,
    #[serde(default)]
    problems: Vec<ProblemBody>,
}

#[derive(Debug, Deserialize)]
struct ProblemBody {
    path: String,
    message: String,
}

/// The API client.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

const POLICIES: &str = "/api/v1/scaling/policies";

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            base: args.server.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
            http,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends a request; a transport failure names the server, an error status becomes an
    /// error with the server's message and every problem path.
    async fn send(&self, builder: RequestBuilder) -> anyhow::Result<Response> {
        let response = builder.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                anyhow::anyhow!(
                    "cannot reach the Ballast server at {}: {e}\n\
                     is it running? Start it with `ballast serve`, or point --server \
                     (BALLAST_SERVER) at it",
                    self.base
                )
            } else {
                anyhow::anyhow!("request to the Ballast server at {} failed: {e}", self.base)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(api_error(status, &text))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        builder: RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = self.send(builder).await?;
        response
            .json()
            .await
            .with_context(|| format!("the server at {} sent an unexpected answer", self.base))
    }

    /// Every policy, by name.
    pub async fn list(&self) -> anyhow::Result<Vec<Stored>> {
        #[derive(Deserialize)]
        struct List {
            policies: Vec<Value>,
        }
        let list: List = self.json(self.request(Method::GET, POLICIES)).await?;
        list.policies.into_iter().map(Stored::from_value).collect()
    }

    /// The policy of that name.
    pub async fn find(&self, name: &str) -> anyhow::Result<Stored> {
        self.list()
            .await?
            .into_iter()
            .find(|p| p.spec.name == name)
            .with_context(|| format!("no policy named `{name}` on {}", self.base))
    }

    pub async fn create(&self, spec: &PolicySpec) -> anyhow::Result<Stored> {
        let value: Value = self
            .json(self.request(Method::POST, POLICIES).json(spec))
            .await?;
        Stored::from_value(value)
    }

    pub async fn update(
        &self,
        id: &str,
        version: i64,
        spec: &PolicySpec,
    ) -> anyhow::Result<Stored> {
        let value: Value = self
            .json(
                self.request(Method::PUT, &format!("{POLICIES}/{id}"))
                    .header(reqwest::header::IF_MATCH, format!("\"{version}\""))
                    .json(spec),
            )
            .await?;
        Stored::from_value(value)
    }

    pub async fn delete(&self, id: &str, version: i64) -> anyhow::Result<()> {
        self.send(
            self.request(Method::DELETE, &format!("{POLICIES}/{id}"))
                .header(reqwest::header::IF_MATCH, format!("\"{version}\"")),
        )
        .await?;
        Ok(())
    }

    pub async fn evaluate(&self, id: &str) -> anyhow::Result<Evaluation> {
        self.json(self.request(Method::POST, &format!("{POLICIES}/{id}/evaluate")))
            .await
    }

    /// The predictive policy's forecaster, as `GET .../{id}/forecast` answers it.
    pub async fn forecast(&self, id: &str) -> anyhow::Result<Value> {
        self.json(self.request(Method::GET, &format!("{POLICIES}/{id}/forecast")))
            .await
    }

    /// One page of history with these query parameters.
    pub async fn history(&self, query: &[(&str, String)]) -> anyhow::Result<Page> {
        self.json(
            self.request(Method::GET, "/api/v1/scaling/history")
                .query(query),
        )
        .await
    }
}

/// The server's error body as a message: its message, then each problem with its path.
fn api_error(status: StatusCode, text: &str) -> anyhow::Error {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => {
            let mut message = format!("the server refused ({status}): {}", body.error.message);
            if body.error.code == "unauthorized" {
                message.push_str("\npass a token with --token or BALLAST_TOKEN");
            }
            for p in &body.error.problems {
                if p.path.is_empty() {
                    message.push_str(&format!("\n  {}", p.message));
                } else {
                    message.push_str(&format!("\n  {}: {}", p.path, p.message));
                }
            }
            anyhow::anyhow!(message)
        }
        Err(_) if text.trim().is_empty() => anyhow::anyhow!("the server answered {status}"),
        Err(_) => anyhow::anyhow!("the server answered {status}: {}", text.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_is_shown_with_its_message_and_every_problem_path() {
        let text = r#"{"error":{"code":"validation_failed","message":"the policy is invalid",
            "problems":[{"path":"max_replicas","message":"must be at least 1"},
                        {"path":"","message":"whole"}]}}"#;
        let shown = api_error(StatusCode::UNPROCESSABLE_ENTITY, text).to_string();
        assert!(shown.contains("the policy is invalid"), "{shown}");
        assert!(
            shown.contains("\n  max_replicas: must be at least 1"),
            "{shown}"
        );
        assert!(shown.contains("\n  whole"), "{shown}");
    }

    #[test]
    fn a_body_that_is_not_an_error_body_is_shown_as_it_is() {
        let shown = api_error(StatusCode::BAD_GATEWAY, "upstream down").to_string();
        assert!(
            shown.contains("502") && shown.contains("upstream down"),
            "{shown}"
        );
    }
}
