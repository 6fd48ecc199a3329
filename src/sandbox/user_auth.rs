//! User identity (reference part B): the device authorization flow (RFC 8628) on the
//! accounts host, the browser authorize page for the authorization-code flow with PKCE, the
//! v2 token endpoint with its three grants and single-use rotating refresh tokens, and
//! `GET /open-apis/authen/v1/user_info` for the `u-` tokens it issues.
//!
//! Routes (the accounts host is the sandbox base, the Lark twin under `/lark`, as for
//! registration):
//! - `POST /oauth/v1/device_authorization` (+ `/lark/…`): form, HTTP Basic app credentials.
//! - `POST /open-apis/authen/v2/oauth/device_authorization`: JSON, no Basic (variant 2, [U]).
//! - `GET|POST /oauth/v1/device/verify?flow_id=…&user_code=…`: the verification page.
//! - `GET /open-apis/authen/v1/authorize` (+ `/lark/…`): consent; `POST` is the page's click.
//! - `POST /open-apis/authen/v2/oauth/token`: form or JSON; top-level RFC 6749 answers.
//!
//! The OAuth answers are top-level JSON, not the `{code,msg,data}` envelope: success HTTP 200
//! with `code: 0`; documented errors with their HTTP status, numeric `code`, `error` and
//! `error_description`; the device-flow states as RFC 8628 HTTP 400 `{error,
//! error_description}` (their numeric code is unknown, [U], so none is sent).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::SandboxState;
use super::endpoint::{Call, Endpoint};
use super::envelope::{ApiError, Reply, codes};
use super::options::{Options, RegistrationOutcome, UserAuthorizeOutcome};
use super::registration::{escape, form, html, lock_world};
use super::seed::UserStatusSeed;
use super::world::{RecordedRequest, World, now_ms, random_hex};

pub const TOKEN_ENDPOINT: &str = "oauth_token_v2";
pub const DEVICE_ENDPOINT: &str = "device_authorization";
pub const AUTHORIZE_ENDPOINT: &str = "oauth_authorize";
pub const VERIFY_ENDPOINT: &str = "device_verify_page";

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Lark's absolute limit: 365 days after the user authorised, refreshing fails (20037).
const AUTHORIZATION_MAX_AGE_MS: u64 = 365 * 24 * 3600 * 1000;

/// The user-identity state inside [`World`].
#[derive(Debug, Default)]
pub struct UserAuth {
    /// Device flows by device_code.
    pub device: BTreeMap<String, DeviceFlow>,
    /// Authorization codes.
    pub codes: HashMap<String, AuthCode>,
    /// `u-` access tokens.
    pub access: HashMap<String, UserToken>,
    /// Refresh tokens, used and revoked ones kept so reuse answers 20073 / 20064.
    pub refresh: HashMap<String, RefreshToken>,
    /// Access tokens issued so far.
    pub issued: u64,
    /// Successful refresh_token grants.
    pub refreshes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceFlow {
    #[serde(skip)]
    pub device_code: String,
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_ms: u64,
    pub expires_at_ms: u64,
    pub polls: u32,
    pub state: DeviceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Approved {
        open_id: String,
    },
    Denied,
    Expired,
    /// Approved and its tokens handed out: the device_code is spent.
    Redeemed,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub open_id: String,
    pub expires_at_ms: u64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct UserToken {
    pub seq: u64,
    pub client_id: String,
    pub open_id: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshState {
    Live,
    Used { at_ms: u64 },
    Revoked,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub client_id: String,
    pub open_id: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: u64,
    /// When the user authorised (the 365-day limit counts from here).
    pub authorized_ms: u64,
    pub state: RefreshState,
}

/// What `GET /_sandbox/user_auth` and `SandboxState::user_auth_summary` report: counts and
/// flows, never a token, code or device_code.
#[derive(Debug, Clone, Serialize)]
pub struct UserAuthSummary {
    pub tokens_issued: u64,
    pub refreshes: u64,
    pub live_access_tokens: usize,
    pub live_refresh_tokens: usize,
    pub device_flows: Vec<DeviceFlow>,
}

impl UserAuth {
    pub fn summary(&self) -> UserAuthSummary {
        let now = now_ms();
        let mut flows: Vec<DeviceFlow> = self.device.values().cloned().collect();
        flows.sort_by_key(|f| f.created_ms);
        UserAuthSummary {
            tokens_issued: self.issued,
            refreshes: self.refreshes,
            live_access_tokens: self
                .access
                .values()
                .filter(|t| !t.revoked && t.expires_at_ms > now)
                .count(),
            live_refresh_tokens: self
                .refresh
                .values()
                .filter(|t| t.state == RefreshState::Live && t.expires_at_ms > now)
                .count(),
            device_flows: flows,
        }
    }

    /// Revokes the live refresh tokens of `open_id` (every user for `None`); returns how many.
    pub fn revoke_refresh_tokens(&mut self, open_id: Option<&str>) -> usize {
        let mut n = 0;
        for t in self.refresh.values_mut() {
            if t.state == RefreshState::Live && open_id.is_none_or(|o| o == t.open_id) {
                t.state = RefreshState::Revoked;
                n += 1;
            }
        }
        n
    }
}

// ---- small helpers ----------------------------------------------------------------------

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A JSON object body (strings only kept) or a form body, by Content-Type.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, ()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).map_err(|_| ())?;
        let o = v.as_object().ok_or(())?;
        Ok(o.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect())
    } else {
        Ok(form(body))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `redirect_uri` plus the given query pairs, keeping its own query (lark-mcp nests one)
/// and dropping a fragment (RFC 6749 §3.1.2 forbids one).
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let base = uri.split_once('#').map_or(uri, |(b, _)| b);
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

/// Keys whose values are credentials: blanked in the request log.
const SECRET_KEYS: &[&str] = &[
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "device_code",
];

fn logged(fields: &[(String, String)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| {
                let v = if SECRET_KEYS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.clone(), json!(v))
            })
            .collect(),
    )
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &SandboxState,
    method: &str,
    path: &str,
    query: &str,
    endpoint: &str,
    status: StatusCode,
    code: i64,
    body: Value,
) {
    let limit = state.options().record_limit;
    state.record(
        RecordedRequest {
            seq: 0,
            at_ms: now_ms(),
            method: method.into(),
            path: path.into(),
            query: query.into(),
            endpoint: endpoint.into(),
            token_seq: None,
            status: status.as_u16(),
            code,
            body: Some(body),
            faults: Vec::new(),
        },
        limit,
    );
}

/// A space-separated scope list.
fn split_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The approving user: `user_open_id` when set (an unknown one makes the token grant answer
/// 20008, an inactive one 20066), else the first active tenant manager (as registration),
/// else the first active user.
fn approving_user(world: &World, options: &Options) -> String {
    if let Some(id) = options.user_open_id.as_deref() {
        return id.to_string();
    }
    super::registration::approver(world).0
}

/// The scopes an authorization grants: the requested ones the app has enabled for user
/// identity (the server trims the rest), plus `offline_access` when requested.
fn grantable(world: &World, client_id: &str, requested: &[String]) -> Vec<String> {
    let app = world.app_scopes(Some(client_id));
    let mut out: Vec<String> = Vec::new();
    for s in requested {
        let ok = s == OFFLINE_ACCESS
            || app
                .iter()
                .any(|a| &a.scope == s && a.granted && a.token_types.iter().any(|t| t == "user"));
        if ok && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

// ---- the token endpoint's errors --------------------------------------------------------

struct TokenError {
    status: StatusCode,
    code: i64,
    error: &'static str,
    description: String,
}

/// An error of the documented table (reference B.2). The RFC `error` strings are [U] except
/// `server_error`; they follow RFC 6749 §5.2.
fn terr(code: i64) -> TokenError {
    let (error, description) = match code {
        20001 => (
            "invalid_request",
            "The request is missing a required parameter.",
        ),
        20002 => ("invalid_client", "The client secret is invalid."),
        20003 => (
            "invalid_grant",
            "The authorization code is not found. Please note that an authorization code can only be used once.",
        ),
        20004 => ("invalid_grant", "The authorization code has expired."),
        20008 => ("invalid_grant", "The user does not exist."),
        20024 => (
            "invalid_grant",
            "The provided authorization code or refresh token does not match the provided client ID.",
        ),
        20026 => (
            "invalid_grant",
            "The refresh token passed is invalid. Please check the value.",
        ),
        20036 => (
            "unsupported_grant_type",
            "The specified grant_type is not supported.",
        ),
        20037 => (
            "invalid_grant",
            "The refresh token passed has expired. Please generate a new one.",
        ),
        20048 => ("invalid_client", "The specified app does not exist."),
        20049 => ("invalid_grant", "PKCE code challenge failed."),
        20063 => (
            "invalid_request",
            "The request is malformed. Please check your request.",
        ),
        20064 => (
            "invalid_grant",
            "The refresh token has been revoked. Please note that a refresh token can only be used once.",
        ),
        20065 => (
            "invalid_grant",
            "The authorization code has been used. Please note that an authorization code can only be used once.",
        ),
        20066 => ("invalid_grant", "The user status is invalid."),
        20067 => (
            "invalid_scope",
            "The provided scope list contains duplicate scopes. Please ensure all scopes are unique.",
        ),
        20068 => (
            "invalid_scope",
            "The provided scope list contains scopes that are not permitted. Please ensure all scopes are allowed.",
        ),
        20070 => (
            "invalid_request",
            "Multiple authentication methods were provided. Please only use one to proceed.",
        ),
        20071 => (
            "invalid_grant",
            "The provided redirect URI does not match the one used during authorization.",
        ),
        20073 => (
            "invalid_grant",
            "The refresh token has been used. Please note that a refresh token can only be used once.",
        ),
        _ => (
            "server_error",
            "An unexpected server error occurred. Please retry your request.",
        ),
    };
    let status = if error == "server_error" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    TokenError {
        status,
        code: if error == "server_error" { 20050 } else { code },
        error,
        description: description.into(),
    }
}

/// RFC 8628 device-flow states: HTTP 400 `{error, error_description}`, no numeric code [U].
fn device_error(error: &'static str, description: &str) -> TokenError {
    TokenError {
        status: StatusCode::BAD_REQUEST,
        code: 0,
        error,
        description: description.into(),
    }
}

fn token_error_body(e: &TokenError) -> Value {
    let mut m = Map::new();
    if e.code != 0 {
        m.insert("code".into(), json!(e.code));
    }
    m.insert("error".into(), json!(e.error));
    m.insert("error_description".into(), json!(e.description));
    Value::Object(m)
}

// ---- PKCE -------------------------------------------------------------------------------

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 S256).
pub fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// SHA-256 (FIPS 180-4); only PKCE needs it, so no extra dependency.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

// ---- routes -----------------------------------------------------------------------------

pub fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route(
            "/oauth/v1/device_authorization",
            post(|s: State<Arc<SandboxState>>, h: HeaderMap, b: Bytes| {
                device_authorization(
                    s,
                    h,
                    b,
                    DeviceVariant::Accounts("/oauth/v1/device_authorization"),
                )
            }),
        )
        .route(
            "/lark/oauth/v1/device_authorization",
            post(|s: State<Arc<SandboxState>>, h: HeaderMap, b: Bytes| {
                device_authorization(
                    s,
                    h,
                    b,
                    DeviceVariant::Accounts("/lark/oauth/v1/device_authorization"),
                )
            }),
        )
        .route(
            "/open-apis/authen/v2/oauth/device_authorization",
            post(|s: State<Arc<SandboxState>>, h: HeaderMap, b: Bytes| {
                device_authorization(s, h, b, DeviceVariant::OpenApis)
            }),
        )
        .route(
            "/oauth/v1/device/verify",
            get(verify_page).post(verify_click),
        )
        .route(
            "/open-apis/authen/v1/authorize",
            get(|s: State<Arc<SandboxState>>, q: RawQuery| {
                authorize(s, q, "/open-apis/authen/v1/authorize")
            })
            .post(authorize_click),
        )
        .route(
            "/lark/open-apis/authen/v1/authorize",
            get(|s: State<Arc<SandboxState>>, q: RawQuery| {
                authorize(s, q, "/lark/open-apis/authen/v1/authorize")
            })
            .post(authorize_click),
        )
        .route("/open-apis/authen/v2/oauth/token", post(token))
        .with_state(state)
}

// ---- device authorization ---------------------------------------------------------------

#[derive(Clone, Copy)]
enum DeviceVariant {
    /// Variant 1: accounts host, form body, HTTP Basic app credentials.
    Accounts(&'static str),
    /// Variant 2: `/open-apis/authen/v2/oauth/device_authorization`, JSON, no Basic.
    OpenApis,
}

/// `Authorization: Basic base64(app_id:app_secret)`, decoded.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = raw.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"error": error, "error_description": description}),
    )
}

async fn device_authorization(
    State(state): State<Arc<SandboxState>>,
    headers: HeaderMap,
    body: Bytes,
    variant: DeviceVariant,
) -> Response {
    let options = state.options();
    if matches!(variant, DeviceVariant::OpenApis) && !options.user_device_authorization_v2 {
        let e = ApiError::new(404, codes::NOT_FOUND_PATH, "resource not find");
        return super::envelope::render_error(e, &super::envelope::new_log_id(), &[]);
    }
    if matches!(variant, DeviceVariant::Accounts(_)) && !options.user_device_flow_enabled {
        let (status, answer) = oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the device flow is not enabled for this app",
        );
        return json_response(status, &answer);
    }
    let base = state.base_url();
    let fields = match variant {
        DeviceVariant::Accounts(_) => Ok(form(&body)),
        DeviceVariant::OpenApis => body_fields(&headers, &body),
    };
    let (status, answer) = match fields {
        Err(()) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not a JSON object",
        ),
        Ok(ref f) => {
            let mut world = lock_world(&state);
            begin_device(&mut world, &headers, f, variant, &options, &base)
        }
    };
    let path = match variant {
        DeviceVariant::Accounts(p) => p,
        DeviceVariant::OpenApis => "/open-apis/authen/v2/oauth/device_authorization",
    };
    let logged_body = fields.as_deref().map(logged).unwrap_or(Value::Null);
    record(
        &state,
        "POST",
        path,
        "",
        DEVICE_ENDPOINT,
        status,
        answer["code"].as_i64().unwrap_or(0),
        logged_body,
    );
    json_response(status, &answer)
}

fn begin_device(
    world: &mut World,
    headers: &HeaderMap,
    f: &[(String, String)],
    variant: DeviceVariant,
    options: &Options,
    base: &str,
) -> (StatusCode, Value) {
    let Some(client_id) = field(f, "client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    match variant {
        DeviceVariant::Accounts(_) => {
            let Some((id, secret)) = basic_credentials(headers) else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication (HTTP Basic) is required",
                );
            };
            if id != client_id || world.app_secret(&id) != Some(secret.as_str()) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
            }
        }
        DeviceVariant::OpenApis => {
            if world.app_secret(client_id).is_none() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    "The specified app does not exist.",
                );
            }
        }
    }
    let requested = split_scopes(field(f, "scope").unwrap_or(""));
    let scopes = grantable(world, client_id, &requested);
    let device_code = random_hex(40);
    let user_code = new_user_code(world);
    let now = now_ms();
    let expires_in = options.user_device_expires_in_secs;
    let interval = options.user_device_interval_secs;
    let flow_id = random_hex(16);
    world.user_auth.device.insert(
        device_code.clone(),
        DeviceFlow {
            device_code: device_code.clone(),
            user_code: user_code.clone(),
            client_id: client_id.to_string(),
            scopes,
            created_ms: now,
            expires_at_ms: now.saturating_add(expires_in.saturating_mul(1000)),
            polls: 0,
            state: DeviceState::Pending,
        },
    );
    let uri = format!("{base}/oauth/v1/device/verify");
    let complete = with_query(&uri, &[("flow_id", &flow_id), ("user_code", &user_code)]);
    let mut answer = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": complete,
        "expires_in": expires_in,
        "interval": interval,
    });
    if matches!(variant, DeviceVariant::OpenApis) {
        answer["code"] = json!(0);
    }
    (StatusCode::OK, answer)
}

/// `XXXX-XXXX` from unambiguous letters, unique among device flows.
fn new_user_code(world: &World) -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    loop {
        let mut code: String = (0..8)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        code.insert(4, '-');
        if !world.user_auth.device.values().any(|r| r.user_code == code) {
            return code;
        }
    }
}

// ---- the device verification page -------------------------------------------------------

fn flow_by_user_code<'a>(world: &'a mut World, user_code: &str) -> Option<&'a mut DeviceFlow> {
    if user_code.is_empty() {
        return None;
    }
    world
        .user_auth
        .device
        .values_mut()
        .find(|f| f.user_code.eq_ignore_ascii_case(user_code))
}

fn scope_list(scopes: &[String]) -> String {
    let mut s = String::from("<ul class=\"scopes\">\n");
    if scopes.is_empty() {
        s.push_str("<li class=\"none\">none</li>\n");
    }
    for x in scopes {
        s.push_str(&format!("<li>{}</li>\n", escape(x)));
    }
    s.push_str("</ul>\n");
    s
}

fn app_name(world: &World, client_id: &str) -> String {
    if client_id == world.app.app_id {
        return world.app.app_name.clone();
    }
    world
        .apps
        .iter()
        .find(|a| a.app_id == client_id)
        .map(|a| a.app_name.clone())
        .unwrap_or_else(|| client_id.to_string())
}

fn user_name(world: &World, open_id: &str) -> String {
    world
        .user_by_open_id(open_id)
        .map(|u| u.name.clone())
        .unwrap_or_else(|| open_id.to_string())
}

fn render_device(world: &World, flow: &DeviceFlow, options: &Options) -> String {
    let user = user_name(world, &approving_user(world, options));
    let mut b = format!(
        "<h1>Authorize {}</h1>\n<p class=\"client-id\">{}</p>\n<p class=\"user\">Signed in as {}</p>\n<p class=\"user-code\">{}</p>\n<h2>Requested permissions</h2>\n",
        escape(&app_name(world, &flow.client_id)),
        escape(&flow.client_id),
        escape(&user),
        escape(&flow.user_code),
    );
    b.push_str(&scope_list(&flow.scopes));
    match &flow.state {
        DeviceState::Pending => b.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/v1/device/verify\">\n<input type=\"hidden\" name=\"user_code\" value=\"{}\">\n<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>\n",
            escape(&flow.user_code)
        )),
        DeviceState::Approved { .. } | DeviceState::Redeemed => {
            b.push_str("<p class=\"decision\">Approved. Return to your app.</p>\n")
        }
        DeviceState::Denied => b.push_str("<p class=\"decision\">Denied.</p>\n"),
        DeviceState::Expired => b.push_str("<p class=\"decision\">Expired.</p>\n"),
    }
    b
}

fn invalid_link() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Invalid link",
        "<h1>This link is invalid</h1>\n<p>Start the sign-in again from your app.</p>\n",
    )
}

fn expired_link() -> Response {
    html(
        StatusCode::GONE,
        "Link expired",
        "<h1>This link has expired</h1>\n<p>Start the sign-in again from your app.</p>\n",
    )
}

async fn verify_page(State(state): State<Arc<SandboxState>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let params = form(q.as_bytes());
    let options = state.options();
    let resp = {
        let mut world = lock_world(&state);
        let user_code = field(&params, "user_code").unwrap_or("").to_string();
        let now = now_ms();
        match flow_by_user_code(&mut world, &user_code) {
            None => invalid_link(),
            Some(f) if now >= f.expires_at_ms || f.state == DeviceState::Expired => expired_link(),
            Some(f) => {
                let f = f.clone();
                html(
                    StatusCode::OK,
                    "Authorize",
                    &render_device(&world, &f, &options),
                )
            }
        }
    };
    record(
        &state,
        "GET",
        "/oauth/v1/device/verify",
        &q,
        VERIFY_ENDPOINT,
        resp.status(),
        0,
        Value::Null,
    );
    resp
}

async fn verify_click(State(state): State<Arc<SandboxState>>, body: Bytes) -> Response {
    let params = form(&body);
    let user_code = field(&params, "user_code").unwrap_or("").to_string();
    let decision = field(&params, "decision").unwrap_or("").to_string();
    let options = state.options();
    let resp = {
        let mut world = lock_world(&state);
        let approver = approving_user(&world, &options);
        let now = now_ms();
        match flow_by_user_code(&mut world, &user_code) {
            None => invalid_link(),
            Some(f) if now >= f.expires_at_ms || f.state == DeviceState::Expired => expired_link(),
            Some(f) => {
                let mut bad = false;
                if f.state == DeviceState::Pending {
                    match decision.as_str() {
                        "approve" => f.state = DeviceState::Approved { open_id: approver },
                        "deny" => f.state = DeviceState::Denied,
                        _ => bad = true,
                    }
                }
                if bad {
                    html(
                        StatusCode::BAD_REQUEST,
                        "Bad request",
                        "<h1>decision must be approve or deny</h1>\n",
                    )
                } else {
                    let f = f.clone();
                    html(
                        StatusCode::OK,
                        "Authorize",
                        &render_device(&world, &f, &options),
                    )
                }
            }
        }
    };
    record(
        &state,
        "POST",
        "/oauth/v1/device/verify",
        "",
        VERIFY_ENDPOINT,
        resp.status(),
        0,
        json!({"user_code": user_code, "decision": decision}),
    );
    resp
}

// ---- the authorize page (authorization code + PKCE) -------------------------------------

fn error_page(status: StatusCode, msg: &str) -> Response {
    html(
        status,
        "Authorization failed",
        &format!(
            "<h1>Authorization failed</h1>\n<p class=\"error\">{}</p>\n",
            escape(msg)
        ),
    )
}

/// Validates the authorize query: either an error page (no trustworthy redirect), a redirect
/// carrying an error, or the request to decide.
enum AuthorizeCheck {
    Page(Response),
    Redirect(String),
    Ok(AuthorizeRequest),
}

#[derive(Clone)]
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
}

fn check_authorize(world: &World, params: &[(String, String)]) -> AuthorizeCheck {
    let Some(client_id) = field(params, "client_id") else {
        return AuthorizeCheck::Page(error_page(StatusCode::BAD_REQUEST, "client_id is required"));
    };
    if world.app_secret(client_id).is_none() {
        return AuthorizeCheck::Page(error_page(
            StatusCode::BAD_REQUEST,
            "The specified app does not exist.",
        ));
    }
    let Some(redirect_uri) = field(params, "redirect_uri") else {
        return AuthorizeCheck::Page(error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is required",
        ));
    };
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return AuthorizeCheck::Page(error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri must be an http(s) URL",
        ));
    }
    let state = field(params, "state").map(str::to_string);
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = state.as_deref() {
            pairs.push(("state", s));
        }
        AuthorizeCheck::Redirect(with_query(redirect_uri, &pairs))
    };
    if let Some(rt) = field(params, "response_type")
        && rt != "code"
    {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let challenge = field(params, "code_challenge").map(str::to_string);
    match (challenge.as_deref(), field(params, "code_challenge_method")) {
        (None, None) => {}
        (Some(c), Some("S256")) if c.len() == 43 => {}
        (Some(_), Some("S256")) => {
            return fail("invalid_request", "code_challenge must be 43 characters");
        }
        (Some(_), _) => {
            return fail("invalid_request", "code_challenge_method must be S256");
        }
        (None, Some(_)) => return fail("invalid_request", "code_challenge is required"),
    }
    let requested = split_scopes(field(params, "scope").unwrap_or(""));
    AuthorizeCheck::Ok(AuthorizeRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scopes: grantable(world, client_id, &requested),
        state,
        code_challenge: challenge,
    })
}

/// Issues a code for the approving user; the redirect location.
fn approve_code(world: &mut World, req: &AuthorizeRequest, options: &Options) -> String {
    let code = random_hex(32);
    let open_id = approving_user(world, options);
    world.user_auth.codes.insert(
        code.clone(),
        AuthCode {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            code_challenge: req.code_challenge.clone(),
            open_id,
            expires_at_ms: now_ms().saturating_add(options.user_code_ttl_secs.saturating_mul(1000)),
            used: false,
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        pairs.push(("state", s));
    }
    with_query(&req.redirect_uri, &pairs)
}

fn deny_location(req: &AuthorizeRequest) -> String {
    let mut pairs = vec![("error", "access_denied")];
    if let Some(s) = req.state.as_deref() {
        pairs.push(("state", s));
    }
    with_query(&req.redirect_uri, &pairs)
}

fn render_consent(world: &World, req: &AuthorizeRequest, options: &Options, query: &str) -> String {
    let user = user_name(world, &approving_user(world, options));
    let mut b = format!(
        "<h1>Authorize {}</h1>\n<p class=\"client-id\">{}</p>\n<p class=\"user\">Signed in as {}</p>\n<h2>Requested permissions</h2>\n",
        escape(&app_name(world, &req.client_id)),
        escape(&req.client_id),
        escape(&user),
    );
    b.push_str(&scope_list(&req.scopes));
    b.push_str(&format!(
        "<form method=\"post\" action=\"/open-apis/authen/v1/authorize\">\n<input type=\"hidden\" name=\"query\" value=\"{}\">\n<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>\n",
        escape(query)
    ));
    b
}

async fn authorize(
    State(state): State<Arc<SandboxState>>,
    RawQuery(q): RawQuery,
    path: &'static str,
) -> Response {
    let q = q.unwrap_or_default();
    let params = form(q.as_bytes());
    let options = state.options();
    let resp = {
        let mut world = lock_world(&state);
        match check_authorize(&world, &params) {
            AuthorizeCheck::Page(p) => p,
            AuthorizeCheck::Redirect(loc) => redirect(&loc),
            AuthorizeCheck::Ok(req) => match options.user_authorize_outcome {
                UserAuthorizeOutcome::Approve => {
                    redirect(&approve_code(&mut world, &req, &options))
                }
                UserAuthorizeOutcome::Deny => redirect(&deny_location(&req)),
                UserAuthorizeOutcome::Page => html(
                    StatusCode::OK,
                    "Authorize",
                    &render_consent(&world, &req, &options, &q),
                ),
            },
        }
    };
    // The authorize query carries no credential (the challenge is a hash).
    record(
        &state,
        "GET",
        path,
        &q,
        AUTHORIZE_ENDPOINT,
        resp.status(),
        0,
        Value::Null,
    );
    resp
}

/// `POST /open-apis/authen/v1/authorize` (`query`, `decision`): the consent page's click.
async fn authorize_click(State(state): State<Arc<SandboxState>>, body: Bytes) -> Response {
    let fields = form(&body);
    let query = field(&fields, "query").unwrap_or("").to_string();
    let decision = field(&fields, "decision").unwrap_or("").to_string();
    let params = form(query.as_bytes());
    let options = state.options();
    let resp = {
        let mut world = lock_world(&state);
        match check_authorize(&world, &params) {
            AuthorizeCheck::Page(p) => p,
            AuthorizeCheck::Redirect(loc) => redirect(&loc),
            AuthorizeCheck::Ok(req) => match decision.as_str() {
                "approve" => redirect(&approve_code(&mut world, &req, &options)),
                "deny" => redirect(&deny_location(&req)),
                _ => error_page(StatusCode::BAD_REQUEST, "decision must be approve or deny"),
            },
        }
    };
    record(
        &state,
        "POST",
        "/open-apis/authen/v1/authorize",
        "",
        AUTHORIZE_ENDPOINT,
        resp.status(),
        0,
        json!({"decision": decision}),
    );
    resp
}

// ---- the token endpoint -----------------------------------------------------------------

/// The token endpoint, with the faults of `/_sandbox/faults` applied as on `/open-apis`:
/// `latency`, `rate_limit`, `server_error` and `drop` (`phase: after` applies the grant
/// first — a refresh token is spent though the client never sees its successor) and
/// `lark_error`, answered in this endpoint's shape (`code`, `error`, `error_description`).
async fn token(
    State(state): State<Arc<SandboxState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use super::faults::{FaultAction, Phase, triggered};
    use super::pipeline::{dropped_connection, rate_limited, server_error};

    const PATH: &str = "/open-apis/authen/v2/oauth/token";
    let options = state.options();
    let log_id = super::envelope::new_log_id();
    let actions = {
        let mut rules = state.faults.lock().unwrap_or_else(|e| e.into_inner());
        triggered(&mut rules, "POST", PATH)
    };
    let mut delay = options.latency_ms;
    for a in &actions {
        if let FaultAction::Latency { ms } = a {
            delay += ms;
        }
    }
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let fields = body_fields(&headers, &body);
    let logged_body = fields.as_deref().map(logged).unwrap_or(Value::Null);
    let finish = |resp: Response, code: i64| {
        record(
            &state,
            "POST",
            PATH,
            "",
            TOKEN_ENDPOINT,
            resp.status(),
            code,
            logged_body.clone(),
        );
        with_log_id(resp, &log_id)
    };
    for a in &actions {
        match a {
            FaultAction::RateLimit {
                status,
                reset_secs,
                limit,
            } => {
                let e = rate_limited(*status, *limit, *reset_secs);
                let code = e.code;
                return finish(super::envelope::render_error(e, &log_id, &[]), code);
            }
            FaultAction::ServerError {
                status,
                phase: Phase::Before,
            } => return finish(server_error(*status, &log_id), -1),
            FaultAction::Drop {
                phase: Phase::Before,
            } => return finish(dropped_connection(), -1),
            FaultAction::LarkError { code, msg, status } => {
                let mut e = terr(*code);
                e.code = *code;
                e.description = msg.clone();
                e.status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
                return finish(json_response(e.status, &token_error_body(&e)), *code);
            }
            _ => {}
        }
    }
    let result = match &fields {
        Err(()) => Err(terr(20063)),
        Ok(f) => {
            let mut world = lock_world(&state);
            grant(&mut world, &headers, f, &options)
        }
    };
    for a in &actions {
        match a {
            FaultAction::ServerError {
                status,
                phase: Phase::After,
            } => return finish(server_error(*status, &log_id), -1),
            FaultAction::Drop {
                phase: Phase::After,
            } => return finish(dropped_connection(), -1),
            _ => {}
        }
    }
    match result {
        Ok(v) => finish(json_response(StatusCode::OK, &v), 0),
        Err(e) => {
            let code = e.code;
            finish(json_response(e.status, &token_error_body(&e)), code)
        }
    }
}

/// `X-Tt-Logid`, as every answer of the open platform host carries.
fn with_log_id(mut resp: Response, log_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(log_id) {
        resp.headers_mut().insert(super::envelope::LOGID_HEADER, v);
    }
    resp
}

/// Client authentication: `client_id` + `client_secret` in the body, or HTTP Basic alone;
/// both at once is 20070.
fn client(
    world: &World,
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<String, TokenError> {
    let basic = basic_credentials(headers);
    let body_secret = field(f, "client_secret");
    if basic.is_some() && body_secret.is_some() {
        return Err(terr(20070));
    }
    let (id, secret) = match (basic, field(f, "client_id"), body_secret) {
        (Some((id, secret)), _, None) => (id, secret),
        (None, Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
        _ => return Err(terr(20001)),
    };
    match world.app_secret(&id) {
        None => Err(terr(20048)),
        Some(s) if s != secret => Err(terr(20002)),
        Some(_) => Ok(id),
    }
}

fn grant(
    world: &mut World,
    headers: &HeaderMap,
    f: &[(String, String)],
    options: &Options,
) -> Result<Value, TokenError> {
    let Some(grant_type) = field(f, "grant_type") else {
        return Err(terr(20001));
    };
    let client_id = client(world, headers, f)?;
    match grant_type {
        "authorization_code" => code_grant(world, &client_id, f, options),
        "refresh_token" => refresh_grant(world, &client_id, f, options),
        DEVICE_GRANT => device_grant(world, &client_id, f, options),
        _ => Err(terr(20036)),
    }
}

/// The optional `scope` narrowing: unique (20067) and a subset of what was granted (20068).
fn narrow(granted: &[String], f: &[(String, String)]) -> Result<Vec<String>, TokenError> {
    let Some(s) = field(f, "scope") else {
        return Ok(granted.to_vec());
    };
    let asked = split_scopes(s);
    let mut out: Vec<String> = Vec::new();
    for a in asked {
        if out.contains(&a) {
            return Err(terr(20067));
        }
        if !granted.contains(&a) {
            return Err(terr(20068));
        }
        out.push(a);
    }
    Ok(out)
}

/// The user must exist (20008) and be active (20066).
fn check_user(world: &World, open_id: &str) -> Result<(), TokenError> {
    match world.user_by_open_id(open_id) {
        None => Err(terr(20008)),
        Some(u) if u.status != UserStatusSeed::Active => Err(terr(20066)),
        Some(_) => Ok(()),
    }
}

/// Mints an access token, and a refresh token when `offline_access` is among the scopes.
fn issue(
    world: &mut World,
    client_id: &str,
    open_id: &str,
    scopes: Vec<String>,
    authorized_ms: u64,
    options: &Options,
) -> Value {
    let now = now_ms();
    let seq = world.next_token_seq();
    let access = format!("u-{}{}", random_hex(32), random_hex(16).to_uppercase());
    let ttl = options.user_token_ttl_secs;
    world.user_auth.access.insert(
        access.clone(),
        UserToken {
            seq,
            client_id: client_id.into(),
            open_id: open_id.into(),
            scopes: scopes.clone(),
            expires_at_ms: now.saturating_add(ttl.saturating_mul(1000)),
            revoked: false,
        },
    );
    world.user_auth.issued += 1;
    let mut m = Map::new();
    m.insert("code".into(), json!(0));
    m.insert("access_token".into(), json!(access));
    m.insert("expires_in".into(), json!(ttl));
    if scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        let limit = authorized_ms.saturating_add(AUTHORIZATION_MAX_AGE_MS);
        let expires = now
            .saturating_add(options.user_refresh_ttl_secs.saturating_mul(1000))
            .min(limit);
        let refresh = format!("ur-{}{}", random_hex(32), random_hex(16).to_uppercase());
        world.user_auth.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client_id: client_id.into(),
                open_id: open_id.into(),
                scopes: scopes.clone(),
                expires_at_ms: expires,
                authorized_ms,
                state: RefreshState::Live,
            },
        );
        m.insert("refresh_token".into(), json!(refresh));
        m.insert(
            "refresh_token_expires_in".into(),
            json!(expires.saturating_sub(now) / 1000),
        );
    }
    m.insert("token_type".into(), json!("Bearer"));
    m.insert("scope".into(), json!(scopes.join(" ")));
    Value::Object(m)
}

fn code_grant(
    world: &mut World,
    client_id: &str,
    f: &[(String, String)],
    options: &Options,
) -> Result<Value, TokenError> {
    let Some(code) = field(f, "code") else {
        return Err(terr(20001));
    };
    let now = now_ms();
    let Some(c) = world.user_auth.codes.get(code).cloned() else {
        return Err(terr(20003));
    };
    if c.client_id != client_id {
        return Err(terr(20024));
    }
    if c.used {
        return Err(terr(20065));
    }
    if now >= c.expires_at_ms {
        return Err(terr(20004));
    }
    if let Some(uri) = field(f, "redirect_uri")
        && uri != c.redirect_uri
    {
        return Err(terr(20071));
    }
    if let Some(challenge) = &c.code_challenge {
        match field(f, "code_verifier") {
            Some(v) if verifier_well_formed(v) && &s256_challenge(v) == challenge => {}
            _ => return Err(terr(20049)),
        }
    }
    let scopes = narrow(&c.scopes, f)?;
    check_user(world, &c.open_id)?;
    if let Some(c) = world.user_auth.codes.get_mut(code) {
        c.used = true;
    }
    Ok(issue(world, client_id, &c.open_id, scopes, now, options))
}

fn refresh_grant(
    world: &mut World,
    client_id: &str,
    f: &[(String, String)],
    options: &Options,
) -> Result<Value, TokenError> {
    let Some(value) = field(f, "refresh_token") else {
        return Err(terr(20001));
    };
    let now = now_ms();
    let Some(t) = world.user_auth.refresh.get(value).cloned() else {
        return Err(terr(20026));
    };
    if t.client_id != client_id {
        return Err(terr(20024));
    }
    match t.state {
        RefreshState::Revoked => return Err(terr(20064)),
        RefreshState::Used { at_ms } => {
            let grace = options.user_refresh_reuse_grace_secs.saturating_mul(1000);
            if grace == 0 || now.saturating_sub(at_ms) >= grace {
                return Err(terr(20073));
            }
        }
        RefreshState::Live => {}
    }
    if now >= t.expires_at_ms {
        return Err(terr(20037));
    }
    let scopes = narrow(&t.scopes, f)?;
    check_user(world, &t.open_id)?;
    if let Some(r) = world.user_auth.refresh.get_mut(value)
        && r.state == RefreshState::Live
    {
        r.state = RefreshState::Used { at_ms: now };
    }
    world.user_auth.refreshes += 1;
    Ok(issue(
        world,
        client_id,
        &t.open_id,
        scopes,
        t.authorized_ms,
        options,
    ))
}

fn device_grant(
    world: &mut World,
    client_id: &str,
    f: &[(String, String)],
    options: &Options,
) -> Result<Value, TokenError> {
    let Some(code) = field(f, "device_code") else {
        return Err(terr(20001));
    };
    let now = now_ms();
    let approver = approving_user(world, options);
    let Some(flow) = world.user_auth.device.get_mut(code) else {
        return Err(device_error("invalid_grant", "device_code is invalid"));
    };
    if flow.client_id != client_id {
        return Err(terr(20024));
    }
    flow.polls = flow.polls.saturating_add(1);
    let expired = || device_error("expired_token", "the device_code has expired");
    let denied = || device_error("access_denied", "the user denied the authorization");
    if now >= flow.expires_at_ms {
        if flow.state == DeviceState::Pending {
            flow.state = DeviceState::Expired;
        }
        return Err(expired());
    }
    match &flow.state {
        DeviceState::Approved { .. } => {}
        DeviceState::Denied => return Err(denied()),
        DeviceState::Expired => return Err(expired()),
        DeviceState::Redeemed => {
            return Err(device_error(
                "invalid_grant",
                "the device_code has already been used",
            ));
        }
        DeviceState::Pending => {
            let slow = options.user_device_slow_down_polls;
            if flow.polls <= slow {
                return Err(device_error(
                    "slow_down",
                    "polling too frequently, slow down",
                ));
            }
            let after = options.user_device_approve_after_polls;
            if after == 0 || flow.polls - slow < after {
                return Err(device_error(
                    "authorization_pending",
                    "the user has not yet completed authorization",
                ));
            }
            match options.user_device_outcome {
                RegistrationOutcome::Approve => {
                    flow.state = DeviceState::Approved { open_id: approver }
                }
                RegistrationOutcome::Deny => {
                    flow.state = DeviceState::Denied;
                    return Err(denied());
                }
                RegistrationOutcome::Expire => {
                    flow.state = DeviceState::Expired;
                    return Err(expired());
                }
            }
        }
    }
    let DeviceState::Approved { open_id } = flow.state.clone() else {
        return Err(terr(20050));
    };
    let scopes = flow.scopes.clone();
    check_user(world, &open_id)?;
    if let Some(flow) = world.user_auth.device.get_mut(code) {
        flow.state = DeviceState::Redeemed;
    }
    Ok(issue(world, client_id, &open_id, scopes, now, options))
}

// ---- /open-apis endpoints for user tokens -----------------------------------------------

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            "get_user_info_me",
            axum::http::Method::GET,
            "/open-apis/authen/v1/user_info",
            user_info,
        ),
        Endpoint::new(
            "search_users",
            axum::http::Method::GET,
            "/open-apis/search/v1/user",
            search_users,
        ),
    ]
}

fn avatar(open_id: &str) -> Value {
    let base = format!("https://s3-imfile.feishucdn.com/static-resource/v1/v3_{open_id}");
    json!({
        "avatar_72": format!("{base}~?image_size=72x72"),
        "avatar_240": format!("{base}~?image_size=240x240"),
        "avatar_640": format!("{base}~?image_size=640x640"),
        "avatar_origin": format!("{base}~?image_size=noop"),
    })
}

/// `GET /open-apis/search/v1/user` (user token only): users whose name, English name or
/// email contains `query` (case-insensitive); resigned and not-yet-joined users are never
/// found. `page_size` 1–200, default 20.
fn search_users(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let query = call.required_query("query")?.trim().to_lowercase();
    let page = call.page(20, 200, &format!("search_users|{query}"))?;
    let hit = |v: &str| v.to_lowercase().contains(&query);
    let users: Vec<Value> = world
        .users
        .iter()
        .filter(|u| matches!(u.status, UserStatusSeed::Active | UserStatusSeed::Frozen))
        .filter(|u| {
            !query.is_empty()
                && (hit(&u.name)
                    || u.en_name.as_deref().is_some_and(hit)
                    || u.email.as_deref().is_some_and(hit))
        })
        .map(|u| {
            json!({
                "name": u.name,
                "open_id": u.open_id,
                "user_id": u.user_id,
                "department_ids": u.departments,
                "avatar": avatar(&u.open_id),
            })
        })
        .collect();
    Ok(Reply::Data(page.slice(&users).into_data("users")))
}

/// `GET /open-apis/authen/v1/user_info`: the user the token belongs to.
fn user_info(_call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let open_id = world.caller_user.clone().unwrap_or_default();
    let Some(u) = world.user_by_open_id(&open_id) else {
        return Err(ApiError::new(
            400,
            codes::USER_TOKEN_INVALID,
            "Invalid access token for authorization. Please make a request with token attached.",
        ));
    };
    let base = format!(
        "https://s3-imfile.feishucdn.com/static-resource/v1/v3_{}",
        u.open_id
    );
    let opt = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    Ok(Reply::Data(json!({
        "name": u.name,
        "en_name": opt(&u.en_name),
        "avatar_url": format!("{base}~?image_size=noop"),
        "avatar_thumb": format!("{base}~?image_size=72x72"),
        "avatar_middle": format!("{base}~?image_size=240x240"),
        "avatar_big": format!("{base}~?image_size=640x640"),
        "open_id": u.open_id,
        "union_id": u.union_id,
        "user_id": u.user_id,
        "email": opt(&u.email),
        "enterprise_email": opt(&u.enterprise_email),
        "mobile": opt(&u.mobile),
        "tenant_key": world.app.tenant_key,
        "employee_no": opt(&u.employee_no),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vectors() {
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn rfc7636_example_challenge() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn redirects_keep_the_redirect_uris_own_query() {
        assert_eq!(
            with_query(
                "http://localhost:3000/callback?redirect_uri=x",
                &[("code", "a b")]
            ),
            "http://localhost:3000/callback?redirect_uri=x&code=a+b"
        );
        assert_eq!(
            with_query("http://127.0.0.1:9/cb#frag", &[("error", "access_denied")]),
            "http://127.0.0.1:9/cb?error=access_denied"
        );
    }
}
