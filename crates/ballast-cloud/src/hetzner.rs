//! Hetzner Cloud (`docs.hetzner.cloud`): servers labelled with the group, created with
//! `POST /servers`, followed through `GET /actions/{id}`, deleted with `DELETE
//! /servers/{id}`; prices, CPU counts and per-location deprecations from
//! `GET /server_types`. A create refused with `resource_unavailable` (412) or
//! `placement_error` (422) means the type cannot be placed at the location now: sold out.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{ExecutorError, TargetProblem};
use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::GROUP_LABEL;
use crate::choice::{Availability, Offer};
use crate::config::{Credentials, GroupConfig};
use crate::group::{CreateError, NewServer, Price, Progress, Provider, Server, ServerState};
use crate::http::{Http, RateLimitHeader, Request, Response, classify, enc};
use crate::prices::PriceRow;

/// The public endpoint.
pub const ENDPOINT: &str = "https://api.hetzner.cloud/v1";
/// Hetzner's largest page.
const PER_PAGE: u32 = 50;

/// An authenticated client of the Hetzner Cloud API.
pub(crate) struct Api {
    http: Http,
    base: String,
    token: SecretString,
    max_wait: Duration,
}

impl Api {
    pub(crate) fn new(
        endpoint: Option<&str>,
        token: SecretString,
        timeout: Duration,
        max_wait: Duration,
    ) -> Result<Api, String> {
        Ok(Api {
            http: Http::new(timeout)?,
            base: endpoint
                .unwrap_or(ENDPOINT)
                .trim_end_matches('/')
                .to_string(),
            token,
            max_wait,
        })
    }

    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Response, ExecutorError> {
        let response = self.send(method.clone(), path_and_query, body).await?;
        if response.status.is_success() {
            return Ok(response);
        }
        Err(error(&method, path_and_query, &response))
    }

    /// One call whose status the caller judges (rate limits are waited out here).
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Response, ExecutorError> {
        let url = format!("{}{path_and_query}", self.base);
        self.http
            .send_with_backoff("hetzner", RateLimitHeader::ResetAt, self.max_wait, || {
                let mut req = Request::new(method.clone(), url.clone()).secret_header(
                    "authorization",
                    &format!("Bearer {}", self.token.expose_secret()),
                )?;
                if let Some(b) = &body {
                    req = req.json(b);
                }
                Ok(req)
            })
            .await
    }

    async fn server_types(&self, name: Option<&str>) -> Result<Vec<ServerType>, ExecutorError> {
        let filter = name
            .map(|n| format!("&name={}", enc(n)))
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let r = self
                .call(
                    Method::GET,
                    &format!("/server_types?page={page}&per_page={PER_PAGE}{filter}"),
                    None,
                )
                .await?;
            let list: ServerTypeList = r.parse("hetzner: GET /server_types")?;
            out.extend(list.server_types);
            match list
                .meta
                .and_then(|m| m.pagination)
                .and_then(|p| p.next_page)
            {
                Some(next) if next > page => page = next,
                _ => return Ok(out),
            }
        }
    }

    /// Every server type's hourly price per location (only `location`'s when given).
    pub(crate) async fn price_rows(
        &self,
        location: Option<&str>,
    ) -> Result<Vec<PriceRow>, ExecutorError> {
        let mut rows = Vec::new();
        for t in self.server_types(None).await? {
            for p in &t.prices {
                if location.is_some_and(|l| l != p.location) {
                    continue;
                }
                if let Ok(hourly) = p.price_hourly.gross.parse::<f64>() {
                    rows.push(PriceRow {
                        server_type: t.name.clone(),
                        location: p.location.clone(),
                        hourly,
                        currency: CURRENCY.to_string(),
                        cpus: t.cores,
                        memory_gb: t.memory,
                    });
                }
            }
        }
        Ok(rows)
    }
}

/// A node group's view of Hetzner Cloud: the servers labelled `ballast/group=<group>`.
pub struct Hetzner {
    api: Api,
    group: String,
    server_types: Vec<String>,
    image: String,
    location: String,
    ssh_keys: Vec<String>,
}

impl fmt::Debug for Hetzner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hetzner")
            .field("endpoint", &self.api.base)
            .field("token", &"***")
            .field("group", &self.group)
            .field("server_types", &self.server_types)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Hetzner {
    /// The provider for a group's `target` block, with its credentials.
    pub fn from_config(
        config: &GroupConfig,
        credentials: Credentials,
    ) -> Result<Hetzner, TargetProblem> {
        let Credentials::Hetzner { token } = credentials else {
            return Err(TargetProblem::at("type", "hetzner needs HCLOUD_TOKEN"));
        };
        let api = Api::new(
            config.endpoint.as_deref(),
            token,
            config.timeouts.request.0,
            config.timeouts.rate_limit_wait.0,
        )
        .map_err(|e| TargetProblem::at("endpoint", e))?;
        Ok(Hetzner {
            api,
            group: config.group.clone(),
            server_types: config.server_type_names(),
            image: config.image.clone(),
            location: config.location.clone().unwrap_or_default(),
            ssh_keys: config.ssh_keys.clone(),
        })
    }

    fn selector(&self) -> String {
        enc(&format!("{GROUP_LABEL}={}", self.group))
    }

    async fn servers(&self, extra: &str) -> Result<Vec<Server>, ExecutorError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let r = self
                .api
                .call(
                    Method::GET,
                    &format!(
                        "/servers?label_selector={}{extra}&page={page}&per_page={PER_PAGE}",
                        self.selector()
                    ),
                    None,
                )
                .await?;
            let list: ServerList = r.parse("hetzner: GET /servers")?;
            out.extend(list.servers.into_iter().map(HServer::into_server));
            match list
                .meta
                .and_then(|m| m.pagination)
                .and_then(|p| p.next_page)
            {
                Some(next) if next > page => page = next,
                _ => return Ok(out),
            }
        }
    }
}

/// Hetzner Cloud bills in euros (the `currency` of `GET /pricing`).
const CURRENCY: &str = "EUR";

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    code: String,
    message: String,
}

/// The `error.code` of an error answer.
fn error_code(r: &Response) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(&r.body)
        .ok()
        .map(|b| b.error.code)
}

fn error(method: &Method, path: &str, r: &Response) -> ExecutorError {
    let path = crate::http::strip_query(path);
    let detail = match serde_json::from_slice::<ErrorBody>(&r.body) {
        Ok(b) => format!("{}: {}", b.error.code, b.error.message),
        Err(_) => String::from_utf8_lossy(&r.body).chars().take(200).collect(),
    };
    classify(
        r.status,
        format!("hetzner: {method} {path}: {detail} ({})", r.status.as_u16()),
    )
}

#[derive(Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    next_page: Option<u32>,
}

#[derive(Deserialize)]
struct ServerList {
    servers: Vec<HServer>,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct HServer {
    id: u64,
    name: String,
    status: String,
    created: Option<String>,
    public_net: Option<PublicNet>,
    #[serde(default)]
    private_net: Vec<PrivateNet>,
}

#[derive(Deserialize)]
struct PublicNet {
    ipv4: Option<Ip>,
}

#[derive(Deserialize)]
struct Ip {
    ip: String,
}

#[derive(Deserialize)]
struct PrivateNet {
    ip: Option<String>,
}

impl HServer {
    fn into_server(self) -> Server {
        let state = match self.status.as_str() {
            "initializing" | "starting" => ServerState::Starting,
            "running" => ServerState::Running,
            "off" | "unknown" => ServerState::Failed,
            // deleting, stopping, migrating, rebuilding: not counted while it lasts.
            _ => ServerState::Stopping,
        };
        let ip = self
            .public_net
            .and_then(|n| n.ipv4)
            .and_then(|i| i.ip.parse().ok())
            .or_else(|| {
                self.private_net
                    .iter()
                    .find_map(|n| n.ip.as_deref()?.parse().ok())
            });
        Server {
            id: self.id.to_string(),
            name: self.name,
            state,
            created: self
                .created
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok()),
            ip,
        }
    }
}

#[derive(Deserialize)]
struct ActionBody {
    action: Action,
}

#[derive(Deserialize)]
struct Action {
    id: u64,
    command: Option<String>,
    status: String,
    error: Option<ActionError>,
}

#[derive(Deserialize)]
struct ActionError {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Created {
    action: Action,
    #[serde(default)]
    next_actions: Vec<Action>,
}

#[derive(Deserialize)]
struct ServerTypeList {
    server_types: Vec<ServerType>,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct ServerType {
    name: String,
    cores: Option<f64>,
    memory: Option<f64>,
    #[serde(default)]
    prices: Vec<LocationPrice>,
    /// The whole type's deprecation (older answers; superseded by the per-location one).
    deprecation: Option<Deprecation>,
    /// Where the type is offered, each with its own deprecation (newer answers).
    locations: Option<Vec<TypeLocation>>,
}

#[derive(Deserialize)]
struct TypeLocation {
    name: String,
    deprecation: Option<Deprecation>,
}

#[derive(Deserialize)]
struct Deprecation {
    unavailable_after: Option<String>,
}

impl ServerType {
    /// The type as offered at `location` at time `now`: a type absent from the location
    /// (from its `locations`, or without a price there in answers without `locations`) is
    /// not offered; one whose deprecation's `unavailable_after` has passed is withdrawn; one
    /// with a deprecation still ahead can be created but is being withdrawn.
    fn offer_at(&self, location: &str, now: chrono::DateTime<chrono::Utc>) -> Offer {
        let price = self
            .prices
            .iter()
            .find(|p| p.location == location)
            .and_then(|p| p.price_hourly.gross.parse::<f64>().ok())
            .map(|hourly| Price {
                hourly,
                currency: CURRENCY.to_string(),
            });
        let deprecation = match &self.locations {
            Some(list) => match list.iter().find(|l| l.name == location) {
                Some(l) => l.deprecation.as_ref(),
                None => {
                    return Offer::not_offered(&self.name, format!("not offered at {location}"));
                }
            },
            None if price.is_none() => {
                return Offer::not_offered(&self.name, format!("not sold at {location}"));
            }
            None => self.deprecation.as_ref(),
        };
        let availability = match deprecation {
            None => Availability::Available,
            Some(d) => {
                let after = d
                    .unavailable_after
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                match after {
                    Some(t) if t <= now => Availability::NotOffered(format!(
                        "withdrawn at {location} since {}",
                        t.to_rfc3339()
                    )),
                    Some(t) => Availability::Withdrawing(format!(
                        "deprecated at {location}, orderable until {}",
                        t.to_rfc3339()
                    )),
                    None => Availability::Withdrawing(format!("deprecated at {location}")),
                }
            }
        };
        Offer {
            server_type: self.name.clone(),
            price,
            cpus: self.cores,
            availability,
        }
    }
}

#[derive(Deserialize)]
struct LocationPrice {
    location: String,
    price_hourly: Amount,
}

#[derive(Deserialize)]
struct Amount {
    gross: String,
}

/// The actions a create or delete started, followed until all have succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions(pub Vec<u64>);

#[async_trait]
impl Provider for Hetzner {
    type Pending = Actions;

    fn kind(&self) -> &'static str {
        "hetzner"
    }

    fn target(&self) -> String {
        format!(
            "group {} ({}) at {}",
            self.group,
            self.server_types.join(", "),
            self.location
        )
    }

    fn place(&self) -> &str {
        &self.location
    }

    async fn list(&self) -> Result<Vec<Server>, ExecutorError> {
        self.servers("").await
    }

    async fn find(&self, name: &str) -> Result<Option<Server>, ExecutorError> {
        let found = self.servers(&format!("&name={}", enc(name))).await?;
        Ok(found.into_iter().find(|s| s.name == name))
    }

    async fn create(&self, new: &NewServer) -> Result<Actions, CreateError> {
        let mut body = json!({
            "name": new.name,
            "server_type": new.server_type,
            "image": self.image,
            "location": self.location,
            "labels": new.labels,
            "start_after_create": true,
        });
        if !self.ssh_keys.is_empty() {
            body["ssh_keys"] = json!(self.ssh_keys);
        }
        if let Some(u) = &new.user_data {
            body["user_data"] = json!(u);
        }
        let r = self.api.send(Method::POST, "/servers", Some(body)).await?;
        if !r.status.is_success() {
            let e = error(&Method::POST, "/servers", &r);
            return Err(match error_code(&r).as_deref() {
                Some("resource_unavailable" | "placement_error") => {
                    CreateError::SoldOut(e.message().to_string())
                }
                _ => CreateError::Failed(e),
            });
        }
        let created: Created = r.parse("hetzner: POST /servers")?;
        let mut ids = vec![created.action.id];
        ids.extend(created.next_actions.iter().map(|a| a.id));
        Ok(Actions(ids))
    }

    async fn poll(&self, pending: &Actions) -> Result<Progress, ExecutorError> {
        let mut all_done = true;
        for id in &pending.0 {
            let r = self
                .api
                .call(Method::GET, &format!("/actions/{id}"), None)
                .await?;
            let a: ActionBody = r.parse("hetzner: GET /actions")?;
            match a.action.status.as_str() {
                "success" => {}
                "error" => {
                    let command = a.action.command.unwrap_or_else(|| "action".into());
                    let why = a
                        .action
                        .error
                        .map(|e| format!("{}: {}", e.code, e.message))
                        .unwrap_or_else(|| "no reason given".into());
                    return Ok(Progress::Failed(format!(
                        "hetzner action {} ({command}) ended in error: {why}",
                        a.action.id
                    )));
                }
                _ => all_done = false,
            }
        }
        Ok(if all_done {
            Progress::Done
        } else {
            Progress::Running
        })
    }

    async fn delete(&self, server: &Server) -> Result<Actions, ExecutorError> {
        match self
            .api
            .call(Method::DELETE, &format!("/servers/{}", server.id), None)
            .await
        {
            Ok(r) => {
                let a: ActionBody = r.parse("hetzner: DELETE /servers")?;
                Ok(Actions(vec![a.action.id]))
            }
            // Already gone: nothing to wait for.
            Err(ExecutorError::Permanent(m)) if m.contains("not_found") => Ok(Actions(Vec::new())),
            Err(e) => Err(e),
        }
    }

    async fn offers(&self, server_types: &[String]) -> Result<Vec<Offer>, ExecutorError> {
        let all = match server_types {
            [one] => self.api.server_types(Some(one)).await?,
            _ => self.api.server_types(None).await?,
        };
        let now = chrono::Utc::now();
        Ok(server_types
            .iter()
            .map(|name| match all.iter().find(|t| &t.name == name) {
                Some(t) => t.offer_at(&self.location, now),
                None => Offer::not_offered(name, "hetzner lists no such server type"),
            })
            .collect())
    }
}
