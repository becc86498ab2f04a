//! Scaleway Instance API v1 (`https://api.scaleway.com/instance/v1/zones/{zone}/...`):
//! servers tagged `ballast/group=<group>`, created stopped with `POST /servers`, given their
//! cloud-init through `PATCH /servers/{id}/user_data/cloud-init`, started with the
//! `poweron` action and followed through their `state`; removed with the `terminate`
//! action (or `DELETE` with their volumes when stopped); prices, CPU counts and end of
//! service from `GET /products/servers`, stock from `GET /products/servers/availability`
//! (`available`, `scarce`, `shortage`). An error of type `out_of_stock` (on the create or
//! on the `poweron` that follows it) means the commercial type is sold out in the zone.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{ExecutorError, TargetProblem};
use http::{Method, StatusCode};
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
pub const ENDPOINT: &str = "https://api.scaleway.com";
/// Scaleway's largest page.
const PER_PAGE: usize = 100;
/// Scaleway prices in euros.
const CURRENCY: &str = "EUR";

/// What a request body is.
enum Body {
    Json(serde_json::Value),
    Text(String),
}

/// An authenticated client of the Scaleway Instance API.
pub(crate) struct Api {
    http: Http,
    base: String,
    secret_key: SecretString,
    max_wait: Duration,
}

impl Api {
    pub(crate) fn new(
        endpoint: Option<&str>,
        secret_key: SecretString,
        timeout: Duration,
        max_wait: Duration,
    ) -> Result<Api, String> {
        Ok(Api {
            http: Http::new(timeout)?,
            base: endpoint
                .unwrap_or(ENDPOINT)
                .trim_end_matches('/')
                .to_string(),
            secret_key,
            max_wait,
        })
    }

    /// One call; any status but 2xx is an error carrying Scaleway's message.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
    ) -> Result<Response, ExecutorError> {
        let r = self.raw(method.clone(), path_and_query, body).await?;
        if r.status.is_success() {
            Ok(r)
        } else {
            Err(error(&method, path_and_query, &r))
        }
    }

    /// One call whose status the caller judges.
    async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
    ) -> Result<Response, ExecutorError> {
        let url = format!("{}{path_and_query}", self.base);
        self.http
            .send_with_backoff(
                "scaleway",
                RateLimitHeader::RetryAfter,
                self.max_wait,
                || {
                    let mut req = Request::new(method.clone(), url.clone())
                        .secret_header("x-auth-token", self.secret_key.expose_secret())?;
                    match &body {
                        Some(Body::Json(v)) => req = req.json(v),
                        Some(Body::Text(t)) => req = req.text("text/plain", t),
                        None => {}
                    }
                    Ok(req)
                },
            )
            .await
    }

    /// Every page of a list: `per_page` at most 100, the total in `X-Total-Count`.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
        what: &str,
        mut take: impl FnMut(T) -> usize,
    ) -> Result<(), ExecutorError> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut page = 1;
        let mut seen = 0usize;
        loop {
            let r = self
                .call(
                    Method::GET,
                    &format!("{path_and_query}{sep}page={page}&per_page={PER_PAGE}"),
                    None,
                )
                .await?;
            let total: Option<usize> = r.header("x-total-count").and_then(|v| v.parse().ok());
            let got = take(r.parse(what)?);
            seen += got;
            if got == 0 || total.is_none_or(|t| seen >= t) {
                return Ok(());
            }
            page += 1;
        }
    }

    /// Every commercial type of `zone`'s catalogue.
    async fn products(&self, zone: &str) -> Result<BTreeMap<String, ProductType>, ExecutorError> {
        let mut out = BTreeMap::new();
        self.pages(
            &format!("/instance/v1/zones/{}/products/servers", enc(zone)),
            "scaleway: GET /products/servers",
            |p: Products| {
                let n = p.servers.len();
                out.extend(p.servers);
                n
            },
        )
        .await?;
        Ok(out)
    }

    /// Every commercial type's stock in `zone` (`available`, `scarce` or `shortage`).
    async fn availability(&self, zone: &str) -> Result<BTreeMap<String, String>, ExecutorError> {
        let mut out = BTreeMap::new();
        self.pages(
            &format!(
                "/instance/v1/zones/{}/products/servers/availability",
                enc(zone)
            ),
            "scaleway: GET /products/servers/availability",
            |p: Stock| {
                let n = p.servers.len();
                out.extend(p.servers.into_iter().map(|(k, v)| (k, v.availability)));
                n
            },
        )
        .await?;
        Ok(out)
    }

    /// Every commercial type's hourly price in `zone`.
    pub(crate) async fn price_rows(&self, zone: &str) -> Result<Vec<PriceRow>, ExecutorError> {
        Ok(self
            .products(zone)
            .await?
            .into_iter()
            .filter_map(|(name, t)| {
                Some(PriceRow {
                    server_type: name,
                    location: zone.to_string(),
                    hourly: t.hourly_price?,
                    currency: CURRENCY.to_string(),
                    cpus: t.ncpus,
                    memory_gb: t.ram.map(|b| b / 1_073_741_824.0),
                })
            })
            .collect())
    }
}

/// Whether an error answer says the resource is out of stock (`"type": "out_of_stock"`).
fn out_of_stock(r: &Response) -> bool {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_slice::<Body>(&r.body)
        .ok()
        .and_then(|b| b.kind)
        .is_some_and(|k| k == "out_of_stock")
}

fn error(method: &Method, path: &str, r: &Response) -> ExecutorError {
    #[derive(Deserialize)]
    struct Body {
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        fields: Option<BTreeMap<String, Vec<String>>>,
    }
    let path = crate::http::strip_query(path);
    let detail = match serde_json::from_slice::<Body>(&r.body) {
        Ok(b) => {
            let mut d = format!(
                "{}: {}",
                b.kind.as_deref().unwrap_or("error"),
                b.message.as_deref().unwrap_or("no message")
            );
            for (field, problems) in b.fields.unwrap_or_default() {
                d.push_str(&format!(" ({field}: {})", problems.join(", ")));
            }
            d
        }
        Err(_) => String::from_utf8_lossy(&r.body).chars().take(200).collect(),
    };
    classify(
        r.status,
        format!(
            "scaleway: {method} {path}: {detail} ({})",
            r.status.as_u16()
        ),
    )
}

#[derive(Deserialize)]
struct Products {
    servers: BTreeMap<String, ProductType>,
}

#[derive(Deserialize)]
struct ProductType {
    hourly_price: Option<f64>,
    ncpus: Option<f64>,
    ram: Option<f64>,
    #[serde(default)]
    end_of_service: bool,
}

#[derive(Deserialize)]
struct Stock {
    servers: BTreeMap<String, StockLevel>,
}

#[derive(Deserialize)]
struct StockLevel {
    availability: String,
}

#[derive(Deserialize)]
struct ServerList {
    servers: Vec<SServer>,
}

#[derive(Deserialize)]
struct ServerBody {
    server: SServer,
}

#[derive(Deserialize)]
struct SServer {
    id: String,
    name: String,
    state: String,
    #[serde(default)]
    state_detail: String,
    creation_date: Option<String>,
    public_ip: Option<Address>,
    #[serde(default)]
    public_ips: Vec<Address>,
    private_ip: Option<String>,
    #[serde(default)]
    volumes: BTreeMap<String, Volume>,
}

#[derive(Deserialize)]
struct Address {
    address: String,
}

#[derive(Deserialize)]
struct Volume {
    id: String,
}

impl SServer {
    fn to_server(&self) -> Server {
        let state = match self.state.as_str() {
            "running" => ServerState::Running,
            "starting" => ServerState::Starting,
            // Made but never started (an interrupted create), or stopped: not serving.
            "stopped" | "stopped in place" => ServerState::Failed,
            // stopping, locked: not counted while it lasts.
            _ => ServerState::Stopping,
        };
        let ip = self
            .public_ip
            .iter()
            .chain(self.public_ips.iter())
            .find_map(|a| a.address.parse().ok())
            .or_else(|| self.private_ip.as_deref()?.parse().ok());
        Server {
            id: self.id.clone(),
            name: self.name.clone(),
            state,
            created: self
                .creation_date
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()),
            ip,
        }
    }
}

/// What a create or delete waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The server (by id) to be running.
    Running(String),
    /// The server (by id) to be gone.
    Gone(String),
}

/// A node group's view of Scaleway Instances: the servers tagged `ballast/group=<group>`
/// in one zone.
pub struct Scaleway {
    api: Api,
    project: String,
    group: String,
    server_types: Vec<String>,
    image: String,
    zone: String,
}

impl fmt::Debug for Scaleway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scaleway")
            .field("endpoint", &self.api.base)
            .field("secret_key", &"***")
            .field("project", &self.project)
            .field("group", &self.group)
            .field("server_types", &self.server_types)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl Scaleway {
    /// The provider for a group's `target` block, with its credentials.
    pub fn from_config(
        config: &GroupConfig,
        credentials: Credentials,
    ) -> Result<Scaleway, TargetProblem> {
        let Credentials::Scaleway {
            secret_key,
            project,
        } = credentials
        else {
            return Err(TargetProblem::at(
                "type",
                "scaleway needs SCW_SECRET_KEY and a project",
            ));
        };
        let api = Api::new(
            config.endpoint.as_deref(),
            secret_key,
            config.timeouts.request.0,
            config.timeouts.rate_limit_wait.0,
        )
        .map_err(|e| TargetProblem::at("endpoint", e))?;
        Ok(Scaleway {
            api,
            project,
            group: config.group.clone(),
            server_types: config.server_type_names(),
            image: config.image.clone(),
            zone: config.zone.clone().unwrap_or_default(),
        })
    }

    fn servers_path(&self) -> String {
        format!("/instance/v1/zones/{}/servers", enc(&self.zone))
    }

    fn tag(&self) -> String {
        format!("{GROUP_LABEL}={}", self.group)
    }

    async fn servers(&self, extra: &str) -> Result<Vec<SServer>, ExecutorError> {
        let mut out = Vec::new();
        self.api
            .pages(
                &format!("{}?tags={}{extra}", self.servers_path(), enc(&self.tag())),
                "scaleway: GET /servers",
                |l: ServerList| {
                    let n = l.servers.len();
                    out.extend(l.servers);
                    n
                },
            )
            .await?;
        Ok(out)
    }

    async fn get(&self, id: &str) -> Result<Option<SServer>, ExecutorError> {
        let path = format!("{}/{}", self.servers_path(), enc(id));
        let r = self.api.raw(Method::GET, &path, None).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(error(&Method::GET, &path, &r));
        }
        Ok(Some(
            r.parse::<ServerBody>("scaleway: GET /servers/{id}")?.server,
        ))
    }

    async fn action(&self, id: &str, action: &str) -> Result<(), ExecutorError> {
        self.api
            .call(
                Method::POST,
                &format!("{}/{}/action", self.servers_path(), enc(id)),
                Some(Body::Json(json!({"action": action}))),
            )
            .await
            .map(|_| ())
    }

    /// Removes a server that was never started, with its volumes.
    async fn remove_stopped(&self, server: &SServer) -> Result<(), ExecutorError> {
        let path = format!("{}/{}", self.servers_path(), enc(&server.id));
        let r = self.api.raw(Method::DELETE, &path, None).await?;
        if !r.status.is_success() && r.status != StatusCode::NOT_FOUND {
            return Err(error(&Method::DELETE, &path, &r));
        }
        for v in server.volumes.values() {
            let path = format!(
                "/instance/v1/zones/{}/volumes/{}",
                enc(&self.zone),
                enc(&v.id)
            );
            let r = self.api.raw(Method::DELETE, &path, None).await?;
            if !r.status.is_success() && r.status != StatusCode::NOT_FOUND {
                return Err(error(&Method::DELETE, &path, &r));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for Scaleway {
    type Pending = Wait;

    fn kind(&self) -> &'static str {
        "scaleway"
    }

    fn target(&self) -> String {
        format!(
            "group {} ({}) at {}",
            self.group,
            self.server_types.join(", "),
            self.zone
        )
    }

    fn place(&self) -> &str {
        &self.zone
    }

    async fn list(&self) -> Result<Vec<Server>, ExecutorError> {
        Ok(self
            .servers("")
            .await?
            .iter()
            .map(SServer::to_server)
            .collect())
    }

    async fn find(&self, name: &str) -> Result<Option<Server>, ExecutorError> {
        let found = self.servers(&format!("&name={}", enc(name))).await?;
        Ok(found
            .iter()
            .find(|s| s.name == name)
            .map(SServer::to_server))
    }

    async fn create(&self, new: &NewServer) -> Result<Wait, CreateError> {
        let tags: Vec<String> = new.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let body = json!({
            "name": new.name,
            "commercial_type": new.server_type,
            "image": self.image,
            "project": self.project,
            "tags": tags,
            "dynamic_ip_required": true,
        });
        let path = self.servers_path();
        let r = self
            .api
            .raw(Method::POST, &path, Some(Body::Json(body)))
            .await?;
        if !r.status.is_success() {
            let e = error(&Method::POST, &path, &r);
            return Err(if out_of_stock(&r) {
                CreateError::SoldOut(e.message().to_string())
            } else {
                CreateError::Failed(e)
            });
        }
        let server = r.parse::<ServerBody>("scaleway: POST /servers")?.server;
        // The server exists from here on: a failure must not leave it behind.
        let rest = async {
            if let Some(user_data) = &new.user_data {
                self.api
                    .call(
                        Method::PATCH,
                        &format!(
                            "{}/{}/user_data/cloud-init",
                            self.servers_path(),
                            enc(&server.id)
                        ),
                        Some(Body::Text(user_data.clone())),
                    )
                    .await?;
            }
            // Stock is taken when the server is powered on: this is where a sold-out type
            // is refused when the create itself went through.
            let path = format!("{}/{}/action", self.servers_path(), enc(&server.id));
            let r = self
                .api
                .raw(
                    Method::POST,
                    &path,
                    Some(Body::Json(json!({"action": "poweron"}))),
                )
                .await?;
            if r.status.is_success() {
                Ok(())
            } else if out_of_stock(&r) {
                Err(CreateError::SoldOut(
                    error(&Method::POST, &path, &r).message().to_string(),
                ))
            } else {
                Err(CreateError::Failed(error(&Method::POST, &path, &r)))
            }
        };
        match rest.await {
            Ok(()) => Ok(Wait::Running(server.id)),
            Err(e) => {
                let cleanup = match self.remove_stopped(&server).await {
                    Ok(()) => "the half-made server was deleted".to_string(),
                    Err(c) => format!("deleting the half-made server failed too: {}", c.message()),
                };
                Err(match e {
                    CreateError::SoldOut(m) => CreateError::SoldOut(format!("{m}; {cleanup}")),
                    CreateError::Failed(e) => {
                        let message = format!("{}; {cleanup}", e.message());
                        CreateError::Failed(if e.is_transient() {
                            ExecutorError::Transient(message)
                        } else {
                            ExecutorError::Permanent(message)
                        })
                    }
                })
            }
        }
    }

    async fn poll(&self, pending: &Wait) -> Result<Progress, ExecutorError> {
        match pending {
            Wait::Running(id) => Ok(match self.get(id).await? {
                None => Progress::Failed(format!("server {id} disappeared while starting")),
                Some(s) if s.state == "running" => Progress::Done,
                Some(s) if s.state.starts_with("stopped") && !s.state_detail.is_empty() => {
                    Progress::Failed(format!(
                        "scaleway server {} {}: {}",
                        s.name, s.state, s.state_detail
                    ))
                }
                Some(_) => Progress::Running,
            }),
            Wait::Gone(id) => Ok(match self.get(id).await? {
                None => Progress::Done,
                Some(_) => Progress::Running,
            }),
        }
    }

    async fn delete(&self, server: &Server) -> Result<Wait, ExecutorError> {
        let Some(s) = self.get(&server.id).await? else {
            return Ok(Wait::Gone(server.id.clone()));
        };
        if s.state.starts_with("stopped") {
            self.remove_stopped(&s).await?;
        } else {
            // terminate: stop, then delete the server with its volumes.
            self.action(&s.id, "terminate").await?;
        }
        Ok(Wait::Gone(server.id.clone()))
    }

    async fn offers(&self, server_types: &[String]) -> Result<Vec<Offer>, ExecutorError> {
        let products = self.api.products(&self.zone).await?;
        let stock = self.api.availability(&self.zone).await?;
        let zone = &self.zone;
        Ok(server_types
            .iter()
            .map(|name| {
                let Some(p) = products.get(name) else {
                    return Offer::not_offered(name, format!("scaleway sells no {name} in {zone}"));
                };
                let availability = if p.end_of_service {
                    Availability::NotOffered("it has reached end of service".into())
                } else {
                    match stock.get(name).map(String::as_str) {
                        Some("shortage") => {
                            Availability::SoldOut(format!("out of stock in {zone}"))
                        }
                        // `scarce` is low stock: still orderable.
                        _ => Availability::Available,
                    }
                };
                Offer {
                    server_type: name.clone(),
                    price: p.hourly_price.map(|hourly| Price {
                        hourly,
                        currency: CURRENCY.to_string(),
                    }),
                    cpus: p.ncpus,
                    availability,
                }
            })
            .collect())
    }
}
