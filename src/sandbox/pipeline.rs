//! What happens around every `/open-apis` handler: log id, injected faults, the gateway's
//! rate limit, token and scope checks, then the handler, then faults that strike after a
//! write was applied, and finally the request log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::SandboxState;
use super::endpoint::{Auth, Call, Endpoint};
use super::envelope::{ApiError, LOGID_HEADER, codes, new_log_id, render_error, render_reply};
use super::faults::{FaultAction, Phase, triggered};
use super::world::{RecordedRequest, TokenKind, World, now_ms};

pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub params: HashMap<String, String>,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The axum handler shared by every endpoint.
pub async fn handle(
    State((state, ep)): State<(Arc<SandboxState>, &'static Endpoint)>,
    method: Method,
    uri: axum::http::Uri,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // axum's own rejections (a path parameter that is not UTF-8, a body over the size
    // limit) must still be Lark envelopes with a log id, like every other answer.
    let (Path(params), body) = match (params, body) {
        (Ok(p), Ok(b)) => (p, b),
        (Err(e), _) => return rejected("path", e.status().as_u16(), e.body_text()),
        (_, Err(e)) => return rejected("body", e.status().as_u16(), e.body_text()),
    };
    let incoming = Incoming {
        method,
        path: uri.path().to_string(),
        params,
        query,
        headers,
        body,
    };
    run(&state, ep, incoming).await
}

fn rejected(field: &str, status: u16, why: String) -> Response {
    let mut e = ApiError::field(field, "", why);
    e.status = status;
    render_error(e, &new_log_id(), &[])
}

enum Outcome {
    Ok(Response, i64),
    Dropped,
}

async fn run(state: &SandboxState, ep: &'static Endpoint, req: Incoming) -> Response {
    let log_id = new_log_id();
    let options = state.options();
    let actions = {
        let mut rules = state.faults.lock().unwrap_or_else(|e| e.into_inner());
        triggered(&mut rules, req.method.as_str(), &req.path)
    };
    let mut fault_names: Vec<String> = Vec::new();
    let mut delay = options.latency_ms;
    for a in &actions {
        if let FaultAction::Latency { ms } = a {
            delay += ms;
            fault_names.push("latency".into());
        }
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let mut token_seq = None;
    let outcome = 'outcome: {
        // Gateway-level failures strike before the request reaches the API.
        for a in &actions {
            match a {
                FaultAction::RateLimit {
                    status,
                    reset_secs,
                    limit,
                } => {
                    fault_names.push("rate_limit".into());
                    let e = rate_limited(*status, *limit, *reset_secs);
                    break 'outcome Outcome::Ok(render_error(e, &log_id, &[]), codes::RATE_LIMITED);
                }
                FaultAction::ServerError {
                    status,
                    phase: Phase::Before,
                } => {
                    fault_names.push("server_error".into());
                    break 'outcome Outcome::Ok(server_error(*status, &log_id), -1);
                }
                FaultAction::Drop {
                    phase: Phase::Before,
                } => {
                    fault_names.push("drop".into());
                    break 'outcome Outcome::Dropped;
                }
                FaultAction::LarkError { code, msg, status } => {
                    fault_names.push("lark_error".into());
                    let e = ApiError::new(*status, *code, msg.clone());
                    break 'outcome Outcome::Ok(render_error(e, &log_id, &[]), *code);
                }
                _ => {}
            }
        }
        if options.qps_limit_per_endpoint > 0
            && !state.admit_endpoint_call(ep.name, options.qps_limit_per_endpoint)
        {
            fault_names.push("qps_limit".into());
            let e = rate_limited(429, options.qps_limit_per_endpoint as u64, 1);
            break 'outcome Outcome::Ok(render_error(e, &log_id, &[]), codes::RATE_LIMITED);
        }

        let result = {
            let mut world = state.world.lock().unwrap_or_else(|e| e.into_inner());
            // Scope checks and handlers answer for the app the token was issued to.
            world.caller = None;
            world.caller_user = None;
            let checked = match ep.auth {
                Auth::None => Ok(()),
                Auth::Tenant => {
                    match authorize(&world, ep, &req.headers, options.auth_error_status) {
                        Ok(Caller::Tenant { seq, app_id }) => {
                            token_seq = Some(seq);
                            world.caller = Some(app_id);
                            check_scopes(&world, ep, options.scope_error_status)
                        }
                        Ok(Caller::User {
                            seq,
                            app_id,
                            open_id,
                            scopes,
                        }) => {
                            token_seq = Some(seq);
                            world.caller = Some(app_id);
                            world.caller_user = Some(open_id);
                            check_user_scopes(&world, ep, &scopes, options.scope_error_status)
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            let result = checked.and_then(|_| {
                let mut call = Call {
                    endpoint: ep.name,
                    path: req.params,
                    query: parse_query(req.query.as_deref()),
                    body: req.body.clone(),
                    content_type: req
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    options: &options,
                    now_ms: now_ms(),
                };
                (ep.handler)(&mut call, &mut world)
            });
            world.caller = None;
            world.caller_user = None;
            result
        };

        // Faults that strike after the API applied the request: the client cannot tell
        // whether its write happened, which is what retries must be safe against.
        for a in &actions {
            match a {
                FaultAction::ServerError {
                    status,
                    phase: Phase::After,
                } => {
                    fault_names.push("server_error_after".into());
                    break 'outcome Outcome::Ok(server_error(*status, &log_id), -1);
                }
                FaultAction::Drop {
                    phase: Phase::After,
                } => {
                    fault_names.push("drop_after".into());
                    break 'outcome Outcome::Dropped;
                }
                _ => {}
            }
        }
        match result {
            Ok(reply) => Outcome::Ok(render_reply(reply, &log_id), 0),
            Err(e) => {
                let code = e.code;
                Outcome::Ok(render_error(e, &log_id, &options.http200_codes), code)
            }
        }
    };

    let (response, status, code) = match outcome {
        Outcome::Ok(resp, code) => {
            let status = resp.status().as_u16();
            (resp, status, code)
        }
        Outcome::Dropped => (dropped_connection(), 0, -1),
    };
    state.record(
        RecordedRequest {
            seq: 0,
            at_ms: now_ms(),
            method: req.method.to_string(),
            path: req.path,
            query: req.query.unwrap_or_default(),
            endpoint: ep.name.to_string(),
            token_seq,
            status,
            code,
            body: recorded_body(&req.body),
            faults: fault_names,
        },
        options.record_limit,
    );
    response
}

pub(crate) fn rate_limited(status: u16, limit: u64, reset_secs: u64) -> ApiError {
    let mut e = ApiError::new(
        status,
        codes::RATE_LIMITED,
        "request trigger frequency limit",
    );
    e.headers.push(("x-ogw-ratelimit-limit", limit.to_string()));
    e.headers
        .push(("x-ogw-ratelimit-reset", reset_secs.to_string()));
    e
}

/// Gateway errors are not Lark envelopes: clients must cope with a non-JSON body.
pub(crate) fn server_error(status: u16, log_id: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(format!(
        "<html><body><h1>{code}</h1></body></html>"
    )));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    if let Ok(v) = HeaderValue::from_str(log_id) {
        resp.headers_mut().insert(LOGID_HEADER, v);
    }
    resp
}

/// A response whose body fails at once: hyper aborts the connection, so the client sees
/// a transport error instead of an answer.
pub(crate) fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("64"));
    resp
}

/// Who a valid token speaks for.
enum Caller {
    Tenant {
        seq: u64,
        app_id: String,
    },
    /// A user_access_token (`u-`): the user and the scopes they granted.
    User {
        seq: u64,
        app_id: String,
        open_id: String,
        scopes: Vec<String>,
    },
}

const INVALID_TOKEN_MSG: &str =
    "Invalid access token for authorization. Please make a request with token attached.";

/// Checks the bearer token and that the endpoint accepts its type (the token_types column
/// of `lark-endpoints.tsv`): a tenant token on a user-only API is 99991663, a user token on
/// a tenant-only API 99991668 "user access token not support", an expired user token 99991677.
fn authorize(
    world: &World,
    ep: &Endpoint,
    headers: &HeaderMap,
    status: u16,
) -> Result<Caller, ApiError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    // `raw` is trimmed, so "Bearer " with no token arrives as a bare "Bearer": that is an
    // empty token (99991661), not a malformed one.
    let token = if raw.eq_ignore_ascii_case("bearer") {
        ""
    } else {
        raw.strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim()
    };
    if token.is_empty() {
        return Err(ApiError::new(
            status,
            codes::TOKEN_MISSING,
            "Missing access token for authorization. Please make a request with token attached.",
        ));
    }
    if !token.starts_with("t-") && !token.starts_with("u-") {
        return Err(ApiError::new(
            status,
            codes::TOKEN_MALFORMED,
            "Invalid token: must start with t-/u-",
        ));
    }
    let now = now_ms();
    if token.starts_with("u-") {
        let invalid = |msg: &str| ApiError::new(status, codes::USER_TOKEN_INVALID, msg);
        let Some(t) = world.user_auth.access.get(token) else {
            return Err(invalid(INVALID_TOKEN_MSG));
        };
        if t.revoked {
            return Err(invalid(INVALID_TOKEN_MSG));
        }
        if t.expires_at_ms <= now {
            return Err(ApiError::new(
                status,
                codes::USER_TOKEN_EXPIRED,
                "token expire",
            ));
        }
        if !super::scopes::accepts(ep.name, "user") {
            return Err(invalid("user access token not support"));
        }
        return Ok(Caller::User {
            seq: t.seq,
            app_id: t.client_id.clone(),
            open_id: t.open_id.clone(),
            scopes: t.scopes.clone(),
        });
    }
    match world.tokens.get(token) {
        Some(t) if t.kind == TokenKind::Tenant && !t.revoked && t.expires_at_ms > now => {
            if !super::scopes::accepts(ep.name, "tenant") {
                return Err(ApiError::new(
                    status,
                    codes::TOKEN_INVALID,
                    INVALID_TOKEN_MSG,
                ));
            }
            Ok(Caller::Tenant {
                seq: t.seq,
                app_id: t.app_id.clone(),
            })
        }
        _ => Err(ApiError::new(
            status,
            codes::TOKEN_INVALID,
            INVALID_TOKEN_MSG,
        )),
    }
}

const SEND_AS_USER: &[&str] = &["im:message", "im:message.send_as_user"];

/// A user token: the app must have one of the endpoint's scopes enabled for user identity
/// (else 99991672, as for tenant tokens) and the user must have granted one of them to this
/// token (else 99991679 with `action_privilege_required` violations).
fn check_user_scopes(
    world: &World,
    ep: &Endpoint,
    granted: &[String],
    status: u16,
) -> Result<(), ApiError> {
    // Sending as the user needs both of these on top of the any-of (lark-endpoints.tsv).
    if ep.name == "send_message" || ep.name == "reply_message" {
        for one in SEND_AS_USER {
            user_scope(world, std::slice::from_ref(one), granted, status)?;
        }
    }
    user_scope(world, ep.scopes, granted, status)
}

/// One any-of list for a user token.
fn user_scope(
    world: &World,
    scopes: &[&str],
    granted: &[String],
    status: u16,
) -> Result<(), ApiError> {
    if scopes.is_empty() {
        return Ok(());
    }
    let app = world.app_scopes(world.caller.as_deref());
    let enabled = scopes.iter().any(|s| {
        app.iter()
            .any(|a| a.scope == *s && a.granted && a.token_types.iter().any(|t| t == "user"))
    });
    if !enabled {
        return Err(scope_missing(world, scopes, status));
    }
    if scopes.iter().any(|s| granted.iter().any(|g| g == s)) {
        return Ok(());
    }
    let list = scopes.join(", ");
    let violations: Vec<Value> = scopes
        .iter()
        .map(|s| json!({"type": "action_privilege_required", "subject": s}))
        .collect();
    Err(ApiError::new(
        status,
        codes::USER_SCOPE_MISSING,
        format!(
            "Unauthorized. You do not have permission to perform the requested operation on the resource. Please request user re-authorization and try again. required one of these privileges: [{list}]. 应用未获取所需的用户授权：[{list}]"
        ),
    )
    .with_error("permission_violations", json!(violations))
    .with_error(
        "troubleshooter",
        json!("排查建议查看(Troubleshooting suggestions): https://open.feishu.cn/search?from=openapi&q=99991679"),
    ))
}

/// 99991672 shaped exactly as Lark sends it: one violation and one help per any-of scope.
fn check_scopes(world: &World, ep: &Endpoint, status: u16) -> Result<(), ApiError> {
    if ep.scopes.is_empty() || world.has_any_scope(ep.scopes) {
        return Ok(());
    }
    Err(scope_missing(world, ep.scopes, status))
}

fn scope_missing(world: &World, scopes: &[&str], status: u16) -> ApiError {
    let list = scopes.join(",");
    let violations: Vec<Value> = scopes
        .iter()
        .map(|s| json!({"type": "action_scope_required", "subject": s}))
        .collect();
    ApiError::new(
        status,
        codes::SCOPE_MISSING,
        format!("Access denied. One of the following scopes is required: [{list}]"),
    )
    .with_error(
        "message",
        json!("Refer to the documentation to fix the error: https://open.feishu.cn/document/uAjLw4CM/ugTN1YjL4UTN24CO1UjN/trouble-shooting/how-to-fix-the-99991672-error"),
    )
    .with_error("permission_violations", json!(violations))
    .with_error(
        "helps",
        json!([{
            "url": format!("https://open.feishu.cn/app/{}/auth?q={list}&op_from=openapi", world.caller_app().app_id),
            "description": format!("Learn more about scopes and how to add them: [{list}]"),
        }]),
    )
}

pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|r| {
        form_urlencoded::parse(r.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The request body for the log, with credentials blanked out.
fn recorded_body(body: &Bytes) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    if let Some(obj) = v.as_object_mut() {
        for key in [
            "app_secret",
            "app_access_token",
            "client_secret",
            "refresh_token",
        ] {
            if obj.contains_key(key) {
                obj.insert(key.into(), json!("<redacted>"));
            }
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_handles_repeats_plus_and_bad_escapes() {
        let q = parse_query(Some("user_ids=a&user_ids=b%2Fc&q=x+y&bad=%zz&tail=%4"));
        assert_eq!(q[0], ("user_ids".into(), "a".into()));
        assert_eq!(q[1], ("user_ids".into(), "b/c".into()));
        assert_eq!(q[2], ("q".into(), "x y".into()));
        assert_eq!(q[3], ("bad".into(), "%zz".into()));
        assert_eq!(q[4], ("tail".into(), "%4".into()));
    }
}
