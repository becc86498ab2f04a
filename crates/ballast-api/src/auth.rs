//! API tokens. A token is shown once when created; only its SHA-256 is stored. Each route
//! names the scope it needs: `viewer` reads, `operator` also evaluates and acts, `admin` also
//! changes policies and tokens.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ballast_store::{Scope, TokenRecord};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Tokens start with this, so they are easy to find in a leaked file.
pub const TOKEN_PREFIX: &str = "blst_";

/// A new random token and its hash.
pub fn new_token() -> (String, String) {
    let token = format!(
        "{TOKEN_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    );
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller, authenticated, with at least the scope `S` asks for.
#[derive(Debug, Clone)]
pub struct Caller<S> {
    /// The token used.
    pub token: TokenRecord,
    _scope: std::marker::PhantomData<S>,
}

impl<S> Caller<S> {
    /// Who acted, as history records it.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token.name)
    }
}

/// A scope a route needs.
pub trait Needs {
    /// The scope.
    const SCOPE: Scope;
}

/// Read access.
#[derive(Debug, Clone, Copy)]
pub struct Viewer;
/// Evaluate and act.
#[derive(Debug, Clone, Copy)]
pub struct Operator;
/// Policies and tokens.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl Needs for Viewer {
    const SCOPE: Scope = Scope::Viewer;
}
impl Needs for Operator {
    const SCOPE: Scope = Scope::Operator;
}
impl Needs for Admin {
    const SCOPE: Scope = Scope::Admin;
}

impl<S: Needs + Send + Sync> FromRequestParts<AppState> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this route needs a token: send `Authorization: Bearer <token>`".to_owned(),
                )
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <token>`".to_owned(),
                )
            })?;
        let record = state
            .store()
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown token".to_owned()))?;
        if record.scope < S::SCOPE {
            return Err(ApiError::Forbidden(format!(
                "this route needs the `{}` scope; the token `{}` has `{}`",
                S::SCOPE.as_str(),
                record.name,
                record.scope.as_str()
            )));
        }
        Ok(Caller {
            token: record,
            _scope: std::marker::PhantomData,
        })
    }
}
