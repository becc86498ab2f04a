//! Ballast's REST API (axum). Only this crate knows JSON-over-HTTP shapes; routes and the
//! OpenAPI document are registered together, so the document cannot leave a route out.

pub mod auth;
pub mod error;
pub mod forecast;
pub mod history;
pub mod policies;
pub mod pushed;
pub mod tokens;

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ballast_runtime::Engine;
use ballast_store::Store;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest request body accepted (413 beyond it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine (it owns the store, the metric source and the executors).
    pub engine: Arc<Engine>,
}

impl AppState {
    /// The store.
    pub fn store(&self) -> &Store {
        self.engine.store()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ballast",
        description = "Autoscaling policies, dry runs and the history of every decision."
    ),
    modifiers(&TokenAuth),
    tags(
        (name = "policies", description = "Scaling policies"),
        (name = "history", description = "The audit log"),
        (name = "tokens", description = "API tokens"),
        (name = "metrics", description = "Pushed metrics"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and the OpenAPI document, built together.
pub fn router_and_doc(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(policies::create, policies::list))
        .routes(routes!(policies::get, policies::update, policies::delete))
        .routes(routes!(policies::evaluate))
        .routes(routes!(forecast::forecast))
        .routes(routes!(history::history))
        .routes(routes!(pushed::push))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::delete))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .split_for_parts();
    let document = doc.clone();
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { Json(document) }
            }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    (router, doc)
}

/// The router.
pub fn router(state: AppState) -> axum::Router {
    router_and_doc(state).0
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound("no such route".to_owned())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// What `/readyz` checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`, or why not.
    pub store: String,
    /// `ok`, `not configured`, or why not.
    pub prometheus: String,
}

/// Readiness: the store and Prometheus are reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; says which dependency failed", body = Readiness),
    ))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let store = match state.store().ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let prometheus = match state.engine.source() {
        None => "not configured".to_owned(),
        Some(source) => match source.ready().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
    };
    let ready = store == "ok" && (prometheus == "ok" || prometheus == "not configured");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { store, prometheus }))
}

/// Ballast's own metrics, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.engine.telemetry().render(),
    )
}
