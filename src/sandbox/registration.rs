//! One-click app registration, the accounts side of Lark (reference A): the device-flow
//! endpoint `POST /oauth/v1/app/registration` (accounts.feishu.cn) and its Lark twin
//! `POST /lark/oauth/v1/app/registration` (accounts.larksuite.com), sharing one
//! device_code state, plus the verification page `GET|POST /page/launcher` a user "scans".
//!
//! These answer plain OAuth-style JSON, not the `/open-apis` envelope: success is HTTP 200
//! with the credentials, every error HTTP 400 `{"error", "error_description"}` (RFC 8628).
//! How a registration ends is dialled by the `registration_*` options; an approved one
//! creates an app in the world (or adds scopes to the app named by `clientID`), whose
//! credentials then get tokens and whose scopes the `/open-apis` endpoints enforce.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::{Value, json};

use super::SandboxState;
use super::options::{Options, RegistrationOutcome};
use super::seed::{ScopeSeed, UserStatusSeed};
use super::world::{RecordedRequest, RegisteredApp, World, now_ms, random_hex};

/// The request-log endpoint names.
pub const ENDPOINT: &str = "app_registration";
pub const PAGE_ENDPOINT: &str = "app_registration_page";

/// Largest decoded `addons` JSON accepted (a gzip bomb must not exhaust memory).
const ADDONS_MAX_BYTES: u64 = 64 * 1024;

/// Which accounts host a poll reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `accounts.feishu.cn`: `/oauth/v1/app/registration`.
    Feishu,
    /// `accounts.larksuite.com`: `/lark/oauth/v1/app/registration`.
    Lark,
}

/// One `begin`, as tests inspect it (`SandboxState::registrations`).
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// The poll credential; kept out of inspection output.
    #[serde(skip)]
    pub device_code: String,
    /// Also the page's `ticket`.
    pub user_code: String,
    pub created_ms: u64,
    pub expires_at_ms: u64,
    pub interval_secs: u64,
    /// Polls received on either host.
    pub polls: u32,
    /// Verification page visits.
    pub page_visits: u32,
    /// `request_user_info` of `begin`, split on spaces.
    pub request_user_info: Vec<String>,
    /// What the latest page visit asked for.
    pub requested: Requested,
    pub state: RegistrationState,
}

/// The query the client appended to `verification_uri_complete`, as the page read it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Requested {
    pub name: Option<String>,
    pub desc: Option<String>,
    /// `clientID`: update this app instead of creating one.
    pub client_id: Option<String>,
    /// `createOnly=true` (only the literal `true`): create even when `clientID` is given.
    pub create_only: bool,
    pub avatars: Vec<String>,
    pub source: Option<String>,
    /// The decoded, valid `addons`.
    pub addons: Option<Addons>,
    /// Why an `addons` parameter was ignored (the real page discards it silently).
    pub addons_ignored: Option<String>,
}

/// A decoded `addons` payload (reference A.7).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Addons {
    pub preset: Option<bool>,
    pub tenant_scopes: Vec<String>,
    pub user_scopes: Vec<String>,
    pub tenant_events: Vec<String>,
    pub user_events: Vec<String>,
    pub callbacks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RegistrationState {
    Pending,
    Approved {
        app_id: String,
        tenant_brand: String,
        open_id: String,
        /// An existing app (`clientID`) was updated rather than a new one created.
        updated: bool,
    },
    Denied,
    Expired,
}

pub fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route(
            "/oauth/v1/app/registration",
            post(|s: State<Arc<SandboxState>>, body: Bytes| accounts(s, Host::Feishu, body)),
        )
        .route(
            "/lark/oauth/v1/app/registration",
            post(|s: State<Arc<SandboxState>>, body: Bytes| accounts(s, Host::Lark, body)),
        )
        .route("/page/launcher", get(page).post(decide))
        .with_state(state)
}

pub(super) fn lock_world(state: &SandboxState) -> std::sync::MutexGuard<'_, World> {
    state.world.lock().unwrap_or_else(|e| e.into_inner())
}

/// A form-urlencoded body as pairs (both accounts flows post forms).
pub(super) fn form(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn oauth_error(error: &str, description: impl Into<String>) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"error": error, "error_description": description.into()}),
    )
}

fn record(
    state: &SandboxState,
    method: &str,
    path: &str,
    query: &str,
    endpoint: &str,
    status: StatusCode,
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
            code: 0,
            body: Some(body),
            faults: Vec::new(),
        },
        limit,
    );
}

// ---- the accounts endpoint --------------------------------------------------------------

async fn accounts(State(state): State<Arc<SandboxState>>, host: Host, body: Bytes) -> Response {
    let form = form(&body);
    let options = state.options();
    let base = state.base_url();
    let (status, answer) = {
        let mut world = lock_world(&state);
        match field(&form, "action").unwrap_or("") {
            "init" => (
                StatusCode::OK,
                json!({"supported_auth_methods": ["client_secret"]}),
            ),
            "begin" => begin(&mut world, &form, &options, &base),
            "poll" => poll(&mut world, &form, &options, host, now_ms()),
            "" => oauth_error("invalid_request", "action is required"),
            other => oauth_error("invalid_request", format!("unsupported action: {other}")),
        }
    };
    // The log keeps the form, without the device_code (the poll credential).
    let logged: serde_json::Map<String, Value> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "device_code" {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.clone(), json!(v))
        })
        .collect();
    let path = match host {
        Host::Feishu => "/oauth/v1/app/registration",
        Host::Lark => "/lark/oauth/v1/app/registration",
    };
    record(
        &state,
        "POST",
        path,
        "",
        ENDPOINT,
        status,
        Value::Object(logged),
    );
    json_response(status, &answer)
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

fn begin(
    world: &mut World,
    form: &[(String, String)],
    options: &Options,
    base: &str,
) -> (StatusCode, Value) {
    match field(form, "archetype") {
        Some("PersonalAgent") => {}
        None | Some("") => return oauth_error("invalid_request", "archetype is required"),
        Some(a) => return oauth_error("invalid_request", format!("unsupported archetype: {a}")),
    }
    match field(form, "auth_method") {
        Some("client_secret") => {}
        None | Some("") => return oauth_error("invalid_request", "auth_method is required"),
        Some(m) => {
            return oauth_error("invalid_request", format!("unsupported auth_method: {m}"));
        }
    }
    // PY/NODE/GO send `open_id`, lark-cli `open_id tenant_brand`.
    let user_info: Vec<String> = field(form, "request_user_info")
        .unwrap_or("open_id")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(bad) = user_info
        .iter()
        .find(|i| !["open_id", "tenant_brand"].contains(&i.as_str()))
    {
        return oauth_error(
            "invalid_request",
            format!("unsupported request_user_info: {bad}"),
        );
    }
    let device_code = random_hex(40);
    let user_code = new_user_code(world);
    let now = now_ms();
    let expires_in = options.registration_expires_in_secs;
    let interval = options.registration_interval_secs;
    world.registrations.insert(
        device_code.clone(),
        Registration {
            device_code: device_code.clone(),
            user_code: user_code.clone(),
            created_ms: now,
            expires_at_ms: now.saturating_add(expires_in.saturating_mul(1000)),
            interval_secs: interval,
            polls: 0,
            page_visits: 0,
            request_user_info: user_info,
            requested: Requested::default(),
            state: RegistrationState::Pending,
        },
    );
    let uri = format!("{base}/page/launcher");
    (
        StatusCode::OK,
        json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": format!("{uri}?ticket={user_code}"),
            "interval": interval,
            "expires_in": expires_in,
        }),
    )
}

/// `XXXX-XXXX` from letters that cannot be misread; unique among live registrations.
fn new_user_code(world: &World) -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    loop {
        let mut code: String = (0..8)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        code.insert(4, '-');
        if !world.registrations.values().any(|r| r.user_code == code) {
            return code;
        }
    }
}

fn poll(
    world: &mut World,
    form: &[(String, String)],
    options: &Options,
    host: Host,
    now: u64,
) -> (StatusCode, Value) {
    let code = match field(form, "device_code") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => return oauth_error("invalid_request", "device_code is required"),
    };
    let Some(reg) = world.registrations.get_mut(&code) else {
        return oauth_error("invalid_grant", "device_code is invalid");
    };
    reg.polls = reg.polls.saturating_add(1);
    if now >= reg.expires_at_ms {
        if reg.state == RegistrationState::Pending {
            reg.state = RegistrationState::Expired;
        }
        return expired();
    }
    match reg.state {
        RegistrationState::Approved { .. } => return success(world, &code, host),
        RegistrationState::Denied => return denied(),
        RegistrationState::Expired => return expired(),
        RegistrationState::Pending => {}
    }
    let slow = options.registration_slow_down_polls;
    if reg.polls <= slow {
        return oauth_error("slow_down", "polling too frequently, slow down");
    }
    let after = options.registration_approve_after_polls;
    if after == 0 || reg.polls - slow < after {
        return oauth_error(
            "authorization_pending",
            "the user has not yet approved the registration",
        );
    }
    match options.registration_outcome {
        RegistrationOutcome::Approve => {
            approve(world, &code, options);
            success(world, &code, host)
        }
        RegistrationOutcome::Deny => {
            reg.state = RegistrationState::Denied;
            denied()
        }
        RegistrationOutcome::Expire => {
            reg.state = RegistrationState::Expired;
            expired()
        }
    }
}

fn denied() -> (StatusCode, Value) {
    oauth_error("access_denied", "the user denied the registration")
}

fn expired() -> (StatusCode, Value) {
    oauth_error("expired_token", "the registration has expired")
}

/// HTTP 200 with the credentials. A Lark-brand registration gets an empty secret from the
/// Feishu host: only the Lark host hands it out (reference A.5).
fn success(world: &World, code: &str, host: Host) -> (StatusCode, Value) {
    let Some(RegistrationState::Approved {
        app_id,
        tenant_brand,
        open_id,
        ..
    }) = world.registrations.get(code).map(|r| &r.state)
    else {
        return oauth_error("invalid_grant", "device_code is invalid");
    };
    let secret = if tenant_brand == "lark" && host == Host::Feishu {
        ""
    } else {
        world.app_secret(app_id).unwrap_or("")
    };
    (
        StatusCode::OK,
        json!({
            "client_id": app_id,
            "client_secret": secret,
            "user_info": {"open_id": open_id, "tenant_brand": tenant_brand},
        }),
    )
}

/// The user who scans and approves: the first active tenant manager, else the first active user.
pub(crate) fn approver(world: &World) -> (String, String) {
    let active = |u: &&super::seed::UserSeed| u.status == UserStatusSeed::Active;
    world
        .users
        .iter()
        .filter(active)
        .find(|u| u.is_tenant_manager)
        .or_else(|| world.users.iter().find(active))
        .map(|u| (u.open_id.clone(), u.name.clone()))
        .unwrap_or_else(|| ("ou_".to_string() + &random_hex(32), "Sandbox User".into()))
}

fn grant(list: &mut Vec<ScopeSeed>, scope: &str, token_type: &str) {
    match list.iter_mut().find(|s| s.scope == scope) {
        Some(s) => {
            s.granted = true;
            if !s.token_types.iter().any(|t| t == token_type) {
                s.token_types.push(token_type.into());
            }
        }
        None => list.push(ScopeSeed {
            scope: scope.into(),
            token_types: vec![token_type.into()],
            granted: true,
        }),
    }
}

fn merge(into: &mut Vec<String>, items: &[String]) {
    for i in items {
        if !into.contains(i) {
            into.push(i.clone());
        }
    }
}

/// Decides a pending registration for the user: creates the app, or adds the requested
/// scopes to the app named by `clientID` (additive only, like the platform).
fn approve(world: &mut World, code: &str, options: &Options) {
    let Some(requested) = world
        .registrations
        .get(code)
        .filter(|r| r.state == RegistrationState::Pending)
        .map(|r| r.requested.clone())
    else {
        return;
    };
    let (open_id, user_name) = approver(world);
    let addons = requested.addons.clone().unwrap_or_default();
    // Unknown item names are dropped, as the real page drops them.
    let known =
        |s: &&String| super::scopes::is_known(s) || world.scopes.iter().any(|x| &x.scope == *s);
    let tenant: Vec<String> = addons.tenant_scopes.iter().filter(known).cloned().collect();
    let user: Vec<String> = addons.user_scopes.iter().filter(known).cloned().collect();
    let mut events = addons.tenant_events.clone();
    merge(&mut events, &addons.user_events);
    let fill = |s: &str| s.replace("{user}", &user_name);

    let target = if requested.create_only {
        None
    } else {
        requested
            .client_id
            .clone()
            .filter(|id| world.app_secret(id).is_some())
    };
    let (app_id, updated) = match target {
        Some(id) if id == world.app.app_id => {
            for s in &tenant {
                grant(&mut world.scopes, s, "tenant");
            }
            for s in &user {
                grant(&mut world.scopes, s, "user");
            }
            (id, true)
        }
        Some(id) => {
            if let Some(app) = world.apps.iter_mut().find(|a| a.app_id == id) {
                for s in &tenant {
                    grant(&mut app.scopes, s, "tenant");
                }
                for s in &user {
                    grant(&mut app.scopes, s, "user");
                }
                merge(&mut app.events, &events);
                merge(&mut app.callbacks, &addons.callbacks);
            }
            (id, true)
        }
        None => {
            let app_id = format!("cli_{}", random_hex(16));
            let mut scopes = Vec::new();
            for s in options.registration_base_scopes.iter().chain(&tenant) {
                grant(&mut scopes, s, "tenant");
            }
            for s in &user {
                grant(&mut scopes, s, "user");
            }
            world.apps.push(RegisteredApp {
                app_id: app_id.clone(),
                app_secret: new_secret(),
                app_name: requested
                    .name
                    .as_deref()
                    .map(fill)
                    .unwrap_or_else(|| format!("{user_name}'s agent")),
                description: requested.desc.as_deref().map(fill).unwrap_or_default(),
                bot_open_id: format!("ou_{}", random_hex(32)),
                scopes,
                events,
                callbacks: addons.callbacks.clone(),
                tenant_brand: options.registration_brand.as_str().into(),
                owner_open_id: open_id.clone(),
                created_ms: now_ms(),
            });
            (app_id, false)
        }
    };
    if let Some(reg) = world.registrations.get_mut(code) {
        reg.state = RegistrationState::Approved {
            app_id,
            tenant_brand: options.registration_brand.as_str().into(),
            open_id,
            updated,
        };
    }
}

/// 32 characters like Lark's app secrets.
fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        fastrand::fill(&mut bytes);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

// ---- addons -----------------------------------------------------------------------------

/// Decodes `addons` the way the page does: pad, url-safe base64, gunzip, JSON, then the
/// allowed shape (reference A.7). `Err` says why the payload is ignored.
pub fn decode_addons(encoded: &str) -> Result<Addons, String> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let gz = ENGINE
        .decode(encoded.trim())
        .map_err(|e| format!("not url-safe base64: {e}"))?;
    let mut json_bytes = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .take(ADDONS_MAX_BYTES + 1)
        .read_to_end(&mut json_bytes)
        .map_err(|e| format!("not gzip: {e}"))?;
    if json_bytes.len() as u64 > ADDONS_MAX_BYTES {
        return Err(format!("larger than {ADDONS_MAX_BYTES} bytes"));
    }
    let v: Value = serde_json::from_slice(&json_bytes).map_err(|e| format!("not JSON: {e}"))?;
    addons_from_json(&v)
}

fn object_with<'a>(
    v: &'a Value,
    allowed: &[&str],
    what: &str,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{what} must be an object"))?;
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown key {what}.{k}"));
    }
    Ok(o)
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| format!("{what} must be a list"))?;
    items
        .iter()
        .map(|i| match i.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(format!("{what} must hold non-empty strings")),
        })
        .collect()
}

fn addons_from_json(v: &Value) -> Result<Addons, String> {
    let o = object_with(v, &["preset", "scopes", "events", "callbacks"], "addons")?;
    let mut a = Addons::default();
    match o.get("preset") {
        None => {}
        Some(Value::Bool(b)) => a.preset = Some(*b),
        Some(_) => return Err("preset must be a boolean".into()),
    }
    if let Some(s) = o.get("scopes") {
        let s = object_with(s, &["tenant", "user"], "scopes")?;
        a.tenant_scopes = strings(s.get("tenant"), "scopes.tenant")?;
        a.user_scopes = strings(s.get("user"), "scopes.user")?;
    }
    if let Some(e) = o.get("events") {
        let e = object_with(e, &["items"], "events")?;
        if let Some(items) = e.get("items") {
            let items = object_with(items, &["tenant", "user"], "events.items")?;
            a.tenant_events = strings(items.get("tenant"), "events.items.tenant")?;
            a.user_events = strings(items.get("user"), "events.items.user")?;
        }
    }
    if let Some(c) = o.get("callbacks") {
        let c = object_with(c, &["items"], "callbacks")?;
        a.callbacks = strings(c.get("items"), "callbacks.items")?;
    }
    let total = a.tenant_scopes.len()
        + a.user_scopes.len()
        + a.tenant_events.len()
        + a.user_events.len()
        + a.callbacks.len();
    if total == 0 && a.preset != Some(false) {
        return Err("addons must contain at least one scope, event or callback".into());
    }
    Ok(a)
}

// ---- the verification page --------------------------------------------------------------

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small HTML page (the confirmation pages of both accounts flows).
pub(super) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    );
    let mut resp = Response::new(Body::from(page));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn invalid_ticket() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Invalid link",
        "<h1>This link is invalid</h1>\n<p>Start the registration again from your app.</p>\n",
    )
}

fn expired_page() -> Response {
    html(
        StatusCode::GONE,
        "Link expired",
        "<h1>This link has expired</h1>\n<p>Start the registration again from your app.</p>\n",
    )
}

fn list(title: &str, class: &str, items: &[String], world: &World, check_scopes: bool) -> String {
    let mut s = format!("<h2>{}</h2>\n<ul class=\"{class}\">\n", escape(title));
    if items.is_empty() {
        s.push_str("<li class=\"none\">none</li>\n");
    }
    for i in items {
        let known = !check_scopes
            || super::scopes::is_known(i)
            || world.scopes.iter().any(|x| &x.scope == i);
        if known {
            s.push_str(&format!("<li>{}</li>\n", escape(i)));
        } else {
            s.push_str(&format!(
                "<li class=\"dropped\">{} (unknown: dropped)</li>\n",
                escape(i)
            ));
        }
    }
    s.push_str("</ul>\n");
    s
}

fn render(world: &World, reg: &Registration) -> String {
    let (_, user_name) = approver(world);
    let r = &reg.requested;
    let fill = |s: &str| s.replace("{user}", &user_name);
    let update = (!r.create_only)
        .then_some(r.client_id.as_deref())
        .flatten()
        .filter(|id| world.app_secret(id).is_some());
    let mut b = String::new();
    match (update, r.client_id.as_deref()) {
        (Some(id), _) => b.push_str(&format!(
            "<h1>Update app <span class=\"client-id\">{}</span></h1>\n",
            escape(id)
        )),
        (None, Some(id)) if !r.create_only => b.push_str(&format!(
            "<h1>Create an app</h1>\n<p class=\"note\">App {} is unknown: approving creates a new app.</p>\n",
            escape(id)
        )),
        _ => b.push_str("<h1>Create an app</h1>\n"),
    }
    let name = r
        .name
        .as_deref()
        .map(fill)
        .unwrap_or_else(|| format!("{user_name}'s agent"));
    b.push_str(&format!("<p class=\"app-name\">{}</p>\n", escape(&name)));
    if let Some(d) = &r.desc {
        b.push_str(&format!("<p class=\"app-desc\">{}</p>\n", escape(&fill(d))));
    }
    if let Some(s) = &r.source {
        b.push_str(&format!(
            "<p class=\"source\">Requested by {}</p>\n",
            escape(s)
        ));
    }
    for a in &r.avatars {
        b.push_str(&format!(
            "<img class=\"avatar\" src=\"{}\" alt=\"\">\n",
            escape(a)
        ));
    }
    b.push_str(&format!(
        "<p class=\"user\">Signed in as {}</p>\n",
        escape(&user_name)
    ));
    if let Some(why) = &r.addons_ignored {
        b.push_str(&format!(
            "<p class=\"addons-ignored\">The requested extra configuration was ignored ({}).</p>\n",
            escape(why)
        ));
    }
    let a = r.addons.clone().unwrap_or_default();
    b.push_str("<section class=\"addons\">\n");
    b.push_str(&list(
        "Tenant scopes",
        "tenant-scopes",
        &a.tenant_scopes,
        world,
        true,
    ));
    b.push_str(&list(
        "User scopes",
        "user-scopes",
        &a.user_scopes,
        world,
        true,
    ));
    b.push_str(&list(
        "Tenant events",
        "tenant-events",
        &a.tenant_events,
        world,
        false,
    ));
    b.push_str(&list(
        "User events",
        "user-events",
        &a.user_events,
        world,
        false,
    ));
    b.push_str(&list("Callbacks", "callbacks", &a.callbacks, world, false));
    b.push_str("</section>\n");
    match &reg.state {
        RegistrationState::Pending => b.push_str(&format!(
            "<form method=\"post\" action=\"/page/launcher\">\n<input type=\"hidden\" name=\"ticket\" value=\"{}\">\n<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>\n",
            escape(&reg.user_code)
        )),
        RegistrationState::Approved { app_id, .. } => b.push_str(&format!(
            "<p class=\"decision\">Approved: app {}. Return to your app.</p>\n",
            escape(app_id)
        )),
        RegistrationState::Denied => b.push_str("<p class=\"decision\">Denied.</p>\n"),
        RegistrationState::Expired => b.push_str("<p class=\"decision\">Expired.</p>\n"),
    }
    b
}

/// `GET /page/launcher?ticket=…&…`: records what the client asked for and shows it.
async fn page(State(state): State<Arc<SandboxState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let params = form(query.as_bytes());
    let (status, resp) = {
        let mut world = lock_world(&state);
        show(&mut world, &params)
    };
    record(
        &state,
        "GET",
        "/page/launcher",
        &query,
        PAGE_ENDPOINT,
        status,
        Value::Null,
    );
    resp
}

fn find_by_ticket<'a>(world: &'a mut World, ticket: &str) -> Option<&'a mut Registration> {
    if ticket.is_empty() {
        return None;
    }
    world
        .registrations
        .values_mut()
        .find(|r| r.user_code == ticket)
}

fn show(world: &mut World, params: &[(String, String)]) -> (StatusCode, Response) {
    let ticket = field(params, "ticket").unwrap_or("");
    let now = now_ms();
    let Some(reg) = find_by_ticket(world, ticket) else {
        return (StatusCode::NOT_FOUND, invalid_ticket());
    };
    reg.page_visits = reg.page_visits.saturating_add(1);
    if now >= reg.expires_at_ms || reg.state == RegistrationState::Expired {
        return (StatusCode::GONE, expired_page());
    }
    if reg.state == RegistrationState::Pending {
        // A later visit replaces what an earlier one asked for.
        let nonempty = |k: &str| {
            field(params, k)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut r = Requested {
            name: nonempty("name"),
            desc: nonempty("desc"),
            client_id: nonempty("clientID"),
            create_only: field(params, "createOnly") == Some("true"),
            avatars: params
                .iter()
                .filter(|(k, v)| k == "avatar" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            source: nonempty("source"),
            addons: None,
            addons_ignored: None,
        };
        if let Some(encoded) = field(params, "addons") {
            match decode_addons(encoded) {
                Ok(a) => r.addons = Some(a),
                Err(why) => r.addons_ignored = Some(why),
            }
        }
        reg.requested = r;
    }
    let reg = reg.clone();
    let title = if reg.requested.client_id.is_some() && !reg.requested.create_only {
        "Update app"
    } else {
        "Create app"
    };
    (
        StatusCode::OK,
        html(StatusCode::OK, title, &render(world, &reg)),
    )
}

/// `POST /page/launcher` (`ticket`, `decision=approve|deny`): the user's click.
async fn decide(State(state): State<Arc<SandboxState>>, body: Bytes) -> Response {
    let params = form(&body);
    let ticket = field(&params, "ticket").unwrap_or("").to_string();
    let decision = field(&params, "decision").unwrap_or("").to_string();
    let options = state.options();
    let (status, resp) = {
        let mut world = lock_world(&state);
        click(&mut world, &ticket, &decision, &options)
    };
    record(
        &state,
        "POST",
        "/page/launcher",
        "",
        PAGE_ENDPOINT,
        status,
        json!({"ticket": ticket, "decision": decision}),
    );
    resp
}

fn click(
    world: &mut World,
    ticket: &str,
    decision: &str,
    options: &Options,
) -> (StatusCode, Response) {
    let now = now_ms();
    let Some(reg) = find_by_ticket(world, ticket) else {
        return (StatusCode::NOT_FOUND, invalid_ticket());
    };
    if now >= reg.expires_at_ms || reg.state == RegistrationState::Expired {
        return (StatusCode::GONE, expired_page());
    }
    let code = reg.device_code.clone();
    if reg.state == RegistrationState::Pending {
        match decision {
            "approve" => approve(world, &code, options),
            "deny" => reg.state = RegistrationState::Denied,
            _ => {
                let resp = html(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "<h1>decision must be approve or deny</h1>\n",
                );
                return (StatusCode::BAD_REQUEST, resp);
            }
        }
    }
    let Some(reg) = world.registrations.get(&code).cloned() else {
        return (StatusCode::NOT_FOUND, invalid_ticket());
    };
    (
        StatusCode::OK,
        html(StatusCode::OK, "Registration", &render(world, &reg)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encode(v: &Value) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(v.to_string().as_bytes()).unwrap_or_default();
        let bytes = gz.finish().unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn the_reference_example_decodes() {
        let a = decode_addons(
            "H4sIAAAAAAACA6tWKk7OL0gtVrKqVipJzUvMK1GyilbKzLXKTS0uTkxPtSpOzUuJTyyOT8ovUYqtrQUAgA4mvDAAAAA",
        );
        assert_eq!(
            a.map(|a| a.tenant_scopes),
            Ok(vec!["im:message:send_as_bot".to_string()])
        );
    }

    #[test]
    fn shape_violations_are_reasons_to_ignore() {
        for bad in [
            json!({"scopes": {"tenant": ["a"]}, "extra": 1}),
            json!({"scopes": {"tenant": [""]}}),
            json!({"scopes": {"tenant": "a"}}),
            json!({"preset": 1, "scopes": {"tenant": ["a"]}}),
            json!({}),
            json!({"preset": true}),
            json!({"events": {"tenant": ["x"]}}),
            json!([1]),
        ] {
            assert!(decode_addons(&encode(&bad)).is_err(), "{bad}");
        }
        assert!(decode_addons("not base64!").is_err());
        assert!(decode_addons("aGVsbG8").is_err()); // base64 of "hello", not gzip
        let minimal = decode_addons(&encode(&json!({"preset": false})));
        assert_eq!(minimal.map(|a| a.preset), Ok(Some(false)));
        let full = decode_addons(&encode(&json!({
            "scopes": {"user": ["u"]},
            "events": {"items": {"tenant": ["e1"], "user": ["e2"]}},
            "callbacks": {"items": ["c"]},
        })));
        assert!(full.is_ok_and(|a| a.user_events == ["e2"] && a.callbacks == ["c"]));
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
