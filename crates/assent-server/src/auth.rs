//! Bearer-token authentication. Tenant API keys are random 256-bit strings, stored only as
//! their SHA-256 (a slow password hash buys nothing for keys with that much entropy); the
//! operator token is compared in constant time.

use assent_store::Tenant;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source is fatal for key generation; never fall back to a weak key.
        panic!("the operating system's random source is unavailable");
    }
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether two secrets are equal, in time that depends on neither: compared as SHA-256
/// digests, so their lengths do not show either.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// The tenant whose API key the request carries.
pub struct TenantAuth(pub Tenant);

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        match app.store.tenant_by_api_key(&hash_api_key(key)).await? {
            Some(t) => Ok(TenantAuth(t)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The operator, by `ASSENT_ADMIN_TOKEN`; without that token the operator API is off.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = app.config.admin_token.as_deref() else {
            return Err(ApiError::unauthorized());
        };
        match bearer(parts) {
            Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(Operator),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let a = random_token("ak_");
        assert_ne!(a, random_token("ak_"));
        assert!(a.len() > 40);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), a);
        assert!(constant_time_eq(b"x", b"x") && !constant_time_eq(b"x", b"y"));
    }
}
