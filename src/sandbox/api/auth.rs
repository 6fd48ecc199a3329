//! `auth/v3`: self-built app credentials → tenant and app access tokens.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::world::{TokenKind, World};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            "tenant_access_token_internal",
            Method::POST,
            "/open-apis/auth/v3/tenant_access_token/internal",
            tenant_token,
        )
        .without_token(),
        Endpoint::new(
            "app_access_token_internal",
            Method::POST,
            "/open-apis/auth/v3/app_access_token/internal",
            app_token,
        )
        .without_token(),
    ]
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    app_secret: String,
}

/// The app id when the credentials belong to the seed app or a registered one.
fn check_credentials(call: &Call, world: &World) -> Result<String, ApiError> {
    let c: Credentials = serde_json::from_slice(&call.body)
        .map_err(|_| ApiError::new(400, codes::INVALID_PARAM, "invalid param"))?;
    if c.app_id.is_empty() || c.app_secret.is_empty() {
        return Err(ApiError::new(400, codes::INVALID_PARAM, "invalid param"));
    }
    let Some(secret) = world.app_secret(&c.app_id) else {
        return Err(ApiError::new(
            400,
            codes::INVALID_PARAM,
            "invalid param: app_id",
        ));
    };
    if c.app_secret != secret {
        return Err(ApiError::new(
            400,
            codes::APP_SECRET_INVALID,
            "app secret invalid",
        ));
    }
    Ok(c.app_id)
}

fn tenant_token(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let app_id = check_credentials(call, world)?;
    let o = call.options;
    let (token, expire) = world.issue_token(
        &app_id,
        TokenKind::Tenant,
        o.token_ttl_secs,
        o.token_renew_below_secs,
    );
    let mut m = Map::new();
    m.insert("tenant_access_token".into(), json!(token));
    m.insert("expire".into(), json!(expire));
    Ok(Reply::TopLevel(m))
}

fn app_token(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let app_id = check_credentials(call, world)?;
    let o = call.options;
    let (app, expire) = world.issue_token(
        &app_id,
        TokenKind::App,
        o.token_ttl_secs,
        o.token_renew_below_secs,
    );
    let (tenant, _) = world.issue_token(
        &app_id,
        TokenKind::Tenant,
        o.token_ttl_secs,
        o.token_renew_below_secs,
    );
    let mut m = Map::new();
    m.insert("app_access_token".into(), json!(app));
    m.insert("expire".into(), json!(expire));
    m.insert("tenant_access_token".into(), json!(tenant));
    Ok(Reply::TopLevel(m))
}
