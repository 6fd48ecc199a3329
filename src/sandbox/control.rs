//! The control path (`/_sandbox/…`, outside `/open-apis/`): inspection and fault
//! injection for tests that run the sandbox in another process. Plain JSON, no envelope.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SandboxState;
use super::faults::FaultRule;
use super::options::Options;

type S = State<Arc<SandboxState>>;

pub fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/counters", get(counters))
        .route(
            "/faults",
            get(faults)
                .put(set_faults)
                .post(add_fault)
                .delete(clear_faults),
        )
        .route("/options", get(options).patch(patch_options))
        .route("/tokens/revoke", post(revoke))
        .route("/scopes", put(set_scopes).get(scopes))
        .route("/messages", get(messages))
        .route("/chats", get(chats))
        .route("/apps", get(apps))
        .route("/registrations", get(registrations))
        .route("/user_auth", get(user_auth))
        .route("/user_auth/revoke", post(revoke_user_refresh))
        .route("/incoming", post(super::longconn::incoming))
        .route("/ws", get(super::longconn::summary))
        .route("/ws/disconnect", post(super::longconn::disconnect))
        .with_state(state)
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

#[derive(Deserialize)]
struct RequestFilter {
    endpoint: Option<String>,
    since: Option<u64>,
}

async fn requests(State(s): S, Query(f): Query<RequestFilter>) -> Json<Value> {
    let list: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| f.endpoint.as_deref().is_none_or(|e| r.endpoint == e))
        .filter(|r| f.since.is_none_or(|n| r.seq > n))
        .collect();
    Json(json!(list))
}

async fn clear_requests(State(s): S) -> StatusCode {
    s.clear_requests();
    StatusCode::NO_CONTENT
}

async fn counters(State(s): S) -> Json<Value> {
    Json(json!(s.counters()))
}

async fn faults(State(s): S) -> Json<Value> {
    Json(json!(s.faults()))
}

async fn set_faults(State(s): S, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Vec<FaultRule>>(&body) {
        Ok(rules) => {
            s.set_faults(rules);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("invalid fault list: {e}")),
    }
}

async fn add_fault(State(s): S, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            s.add_fault(rule);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("invalid fault rule: {e}")),
    }
}

async fn clear_faults(State(s): S) -> StatusCode {
    s.set_faults(Vec::new());
    StatusCode::NO_CONTENT
}

async fn options(State(s): S) -> Json<Value> {
    Json(json!(s.options()))
}

/// Merges the given fields into the current options.
async fn patch_options(State(s): S, body: axum::body::Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("options patch must be a JSON object".into()),
    };
    let mut current = json!(s.options());
    if let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            cur.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<Options>(current) {
        Ok(o) => {
            s.set_options(o.clone());
            Json(json!(o)).into_response()
        }
        Err(e) => bad_request(format!("invalid options: {e}")),
    }
}

#[derive(Deserialize, Default)]
struct Revoke {
    /// Issue number of one token; every token when absent.
    seq: Option<u64>,
}

async fn revoke(State(s): S, body: axum::body::Bytes) -> Response {
    let r: Revoke = if body.is_empty() {
        Revoke::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid revoke request: {e}")),
        }
    };
    Json(json!({"revoked": s.revoke_tokens(r.seq)})).into_response()
}

#[derive(Deserialize)]
struct ScopeChange {
    #[serde(default)]
    grant: Vec<String>,
    #[serde(default)]
    revoke: Vec<String>,
}

async fn set_scopes(State(s): S, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ScopeChange>(&body) {
        Ok(c) => {
            s.set_scopes(&c.grant, &c.revoke);
            scopes(State(s)).await.into_response()
        }
        Err(e) => bad_request(format!("invalid scope change: {e}")),
    }
}

async fn scopes(State(s): S) -> Json<Value> {
    let world = s.world.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!(world.scopes))
}

#[derive(Deserialize)]
struct ChatFilter {
    chat_id: Option<String>,
}

async fn messages(State(s): S, Query(f): Query<ChatFilter>) -> Json<Value> {
    Json(json!(s.messages(f.chat_id.as_deref())))
}

async fn chats(State(s): S) -> Json<Value> {
    Json(json!(s.chats()))
}

/// Apps created by one-click registration (secrets left out).
async fn apps(State(s): S) -> Json<Value> {
    Json(json!(s.registered_apps()))
}

/// One-click registrations: requested name and addons, polls, state (device codes left out).
async fn registrations(State(s): S) -> Json<Value> {
    Json(json!(s.registrations()))
}

/// User identity: tokens issued, refreshes, live tokens, device flows (no credentials).
async fn user_auth(State(s): S) -> Json<Value> {
    Json(json!(s.user_auth_summary()))
}

#[derive(Deserialize, Default)]
struct RevokeUser {
    /// The user whose refresh tokens are revoked; every user when absent.
    open_id: Option<String>,
}

/// `POST /_sandbox/user_auth/revoke [{"open_id": …}]`: the next use of a revoked refresh
/// token answers 20064.
async fn revoke_user_refresh(State(s): S, body: axum::body::Bytes) -> Response {
    let r: RevokeUser = if body.is_empty() {
        RevokeUser::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid revoke request: {e}")),
        }
    };
    Json(json!({"revoked": s.revoke_user_refresh_tokens(r.open_id.as_deref())})).into_response()
}
