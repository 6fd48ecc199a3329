//! One-click app registration against the in-process sandbox, over HTTP, as Lark's clients
//! drive it (reference A): `init`/`begin`/`poll` on both accounts hosts, the verification
//! page, the outcomes the options dial, and the app an approval creates.

mod common;

use std::io::Write;

use base64::Engine;
use common::{APP_ID, APP_SECRET, Resp, Sbx};
use lark_mcp_server::sandbox::options::{RegistrationBrand, RegistrationOutcome};
use lark_mcp_server::sandbox::{Options, RegistrationState};
use serde_json::{Value, json};

const FEISHU: &str = "/oauth/v1/app/registration";
const LARK: &str = "/lark/oauth/v1/app/registration";
const SELF_MANAGE: &str = "application:application:self_manage";
const CONTACT_BASE: &str = "contact:contact.base:readonly";

/// What PY/NODE do: compact JSON → gzip → url-safe base64 without padding.
fn encode_addons(v: &Value) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(v.to_string().as_bytes()).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn form(s: &Sbx, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    s.execute(
        s.http
            .post(s.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

async fn begin(s: &Sbx) -> Value {
    let r = form(
        s,
        FEISHU,
        &[
            ("action", "begin"),
            ("archetype", "PersonalAgent"),
            ("auth_method", "client_secret"),
            ("request_user_info", "open_id"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

async fn poll(s: &Sbx, path: &str, device_code: &str) -> Resp {
    form(s, path, &[("action", "poll"), ("device_code", device_code)]).await
}

#[track_caller]
fn assert_error(r: &Resp, error: &str) {
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some(error)),
        "{}",
        r.text
    );
    assert!(r.json["error_description"].is_string(), "{}", r.text);
}

fn device_code(b: &Value) -> &str {
    b["device_code"].as_str().expect("device_code")
}

/// GET of the verification URL plus what a client appends.
async fn visit(s: &Sbx, b: &Value, extra: &[(&str, &str)]) -> Resp {
    let url = b["verification_uri_complete"].as_str().expect("uri");
    s.execute(s.http.get(url).query(extra)).await
}

async fn click(s: &Sbx, ticket: &str, decision: &str) -> Resp {
    form(
        s,
        "/page/launcher",
        &[("ticket", ticket), ("decision", decision)],
    )
    .await
}

fn opts(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options::default();
    f(&mut o);
    o
}

async fn tenant_token(s: &Sbx, app_id: &str, secret: &str) -> String {
    let r = s.tenant_token_with(app_id, secret).await;
    assert_eq!((r.status, r.code()), (200, 0), "{}", r.text);
    r.json["tenant_access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

#[tokio::test]
async fn init_and_begin_answer_the_documented_fields() {
    let s = Sbx::start().await;
    let r = form(&s, FEISHU, &[("action", "init")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({"supported_auth_methods": ["client_secret"]}));
    let r = form(&s, LARK, &[("action", "init")]).await;
    assert_eq!(r.json, json!({"supported_auth_methods": ["client_secret"]}));

    let b = begin(&s).await;
    let ticket = b["user_code"].as_str().expect("user_code");
    assert_eq!(
        b["verification_uri_complete"],
        json!(format!("{}/page/launcher?ticket={ticket}", s.base))
    );
    assert_eq!(
        b["verification_uri"],
        json!(format!("{}/page/launcher", s.base))
    );
    assert_eq!(
        (b["interval"].as_u64(), b["expires_in"].as_u64()),
        (Some(1), Some(600))
    );
    assert!(b.get("expire_in").is_none());
    assert!(!device_code(&b).is_empty());

    // lark-cli's request_user_info is accepted too.
    let r = form(
        &s,
        FEISHU,
        &[
            ("action", "begin"),
            ("archetype", "PersonalAgent"),
            ("auth_method", "client_secret"),
            ("request_user_info", "open_id tenant_brand"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    for fields in [
        vec![("action", "begin"), ("archetype", "PersonalAgent")],
        vec![
            ("action", "begin"),
            ("archetype", "PersonalAgent"),
            ("auth_method", "private_key_jwt"),
        ],
        vec![("action", "begin"), ("auth_method", "client_secret")],
        vec![("action", "nope")],
        vec![],
    ] {
        let r = form(&s, FEISHU, &fields).await;
        assert_error(&r, "invalid_request");
    }
    assert_error(&poll(&s, FEISHU, "no-such-code").await, "invalid_grant");
    assert_error(
        &form(&s, FEISHU, &[("action", "poll")]).await,
        "invalid_request",
    );
}

#[tokio::test]
async fn an_approved_registration_creates_an_app_with_base_and_requested_scopes_only() {
    let s = Sbx::with_options(opts(|o| {
        o.registration_approve_after_polls = 3;
        o.registration_base_scopes = vec![SELF_MANAGE.into()];
    }))
    .await;
    let b = begin(&s).await;
    let code = device_code(&b);
    assert_error(&poll(&s, FEISHU, code).await, "authorization_pending");

    let addons = encode_addons(&json!({
        "scopes": {"tenant": [CONTACT_BASE, "no:such:scope"], "user": ["contact:user.id:readonly"]},
        "events": {"items": {"tenant": ["im.message.receive_v1"]}},
    }));
    let page = visit(
        &s,
        &b,
        &[
            ("from", "sdk"),
            ("tp", "sdk"),
            ("source", "python-sdk"),
            ("name", "{user}的应用"),
            ("desc", "demo app"),
            ("addons", &addons),
        ],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let user = &s.state().registrations()[0];
    assert_eq!(user.polls, 1);
    let t = &page.text;
    for needle in [
        "的应用",
        "demo app",
        CONTACT_BASE,
        "contact:user.id:readonly",
        "im.message.receive_v1",
        "no:such:scope (unknown: dropped)",
        "value=\"approve\"",
        "value=\"deny\"",
        "Create an app",
    ] {
        assert!(t.contains(needle), "page lacks {needle}: {t}");
    }
    assert!(!t.contains("{user}"), "{t}");
    let reg = &s.state().registrations()[0];
    let addons = reg.requested.addons.as_ref().expect("addons decoded");
    assert_eq!(addons.tenant_scopes, [CONTACT_BASE, "no:such:scope"]);
    assert_eq!(reg.requested.name.as_deref(), Some("{user}的应用"));

    assert_error(&poll(&s, FEISHU, code).await, "authorization_pending");
    let ok = poll(&s, FEISHU, code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let app_id = ok.json["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let secret = ok.json["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert!(app_id.starts_with("cli_") && app_id.len() == 20, "{app_id}");
    assert!(app_id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!secret.is_empty());
    assert_eq!(ok.json["user_info"]["tenant_brand"], "feishu");
    assert!(
        ok.json["user_info"]["open_id"]
            .as_str()
            .is_some_and(|o| o.starts_with("ou_"))
    );
    // Polling again repeats the answer; the log never holds the device code.
    assert_eq!(poll(&s, FEISHU, code).await.json, ok.json);
    let logged = s.state().requests();
    assert!(logged.iter().any(|r| r.endpoint == "app_registration"));
    assert!(
        !serde_json::to_string(&logged)
            .unwrap_or_default()
            .contains(code)
    );

    let apps = s.state().registered_apps();
    assert_eq!(apps.len(), 1);
    assert!(apps[0].app_name.ends_with("的应用") && !apps[0].app_name.contains("{user}"));
    assert_eq!(apps[0].events, ["im.message.receive_v1"]);
    assert_eq!(
        s.state().granted_scopes(&app_id),
        [SELF_MANAGE, CONTACT_BASE]
    );
    assert_eq!(s.state().registrations()[0].polls, 4);

    // Its credentials get tokens; the app endpoints describe it, not the seed app.
    let token = tenant_token(&s, &app_id, &secret).await;
    let r = s
        .post(
            "",
            common::APP_TOKEN_PATH,
            &[],
            &json!({"app_id": app_id, "app_secret": secret}),
        )
        .await;
    assert_eq!((r.status, r.code()), (200, 0), "{}", r.text);
    let me = s
        .get(
            &token,
            "/open-apis/application/v6/applications/me",
            &[("lang", "en_us")],
        )
        .await;
    let app = &me.ok()["app"];
    assert_eq!(app["app_id"], json!(app_id));
    let mut tenant: Vec<&str> = app["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter(|s| {
            s["token_types"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("tenant")))
        })
        .filter_map(|s| s["scope"].as_str())
        .collect();
    tenant.sort();
    assert_eq!(tenant, [SELF_MANAGE, CONTACT_BASE]);
    let list = s.get(&token, "/open-apis/application/v6/scopes", &[]).await;
    let mut names: Vec<(String, String)> = list.ok()["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|s| {
            (
                s["scope_name"].as_str().unwrap_or("").to_string(),
                s["scope_type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (SELF_MANAGE.to_string(), "tenant".to_string()),
            (CONTACT_BASE.to_string(), "tenant".to_string()),
            ("contact:user.id:readonly".to_string(), "user".to_string()),
        ]
    );
    let bot = s.get(&token, "/open-apis/bot/v3/info", &[]).await;
    assert_eq!(bot.json["bot"]["app_name"], apps[0].app_name.as_str());

    // Scope enforcement is per app: the new one may read users, not chats…
    let users = s
        .get(
            &token,
            "/open-apis/contact/v3/users/batch",
            &[("user_ids", common::ZHANG_WEI)],
        )
        .await;
    users.ok();
    let chats = s.get(&token, "/open-apis/im/v1/chats", &[]).await;
    chats.err(400, 99991672);
    assert!(
        chats.text.contains(&app_id),
        "help link names the calling app: {}",
        chats.text
    );
    // …while the seed app is unaffected.
    let seed_token = s.token().await;
    assert_ne!(seed_token, token);
    s.get(&seed_token, "/open-apis/im/v1/chats", &[]).await.ok();
    let seed_me = s
        .get(
            &seed_token,
            "/open-apis/application/v6/applications/me",
            &[("lang", "en_us")],
        )
        .await;
    assert_eq!(seed_me.ok()["app"]["app_id"], APP_ID);
    // The old secret of the seed app still works, a wrong one for the new app does not.
    tenant_token(&s, APP_ID, APP_SECRET).await;
    let bad = s.tenant_token_with(&app_id, APP_SECRET).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[tokio::test]
async fn the_outcome_option_denies_or_expires_on_the_deciding_poll() {
    let s = Sbx::with_options(opts(|o| o.registration_outcome = RegistrationOutcome::Deny)).await;
    let b = begin(&s).await;
    assert_error(
        &poll(&s, FEISHU, device_code(&b)).await,
        "authorization_pending",
    );
    assert_error(&poll(&s, FEISHU, device_code(&b)).await, "access_denied");
    assert_error(&poll(&s, FEISHU, device_code(&b)).await, "access_denied");
    assert!(s.state().registered_apps().is_empty());
    assert_eq!(
        s.state().registrations()[0].state,
        RegistrationState::Denied
    );

    let s = Sbx::with_options(opts(|o| {
        o.registration_outcome = RegistrationOutcome::Expire;
        o.registration_approve_after_polls = 1;
    }))
    .await;
    let b = begin(&s).await;
    assert_error(&poll(&s, FEISHU, device_code(&b)).await, "expired_token");
    assert_eq!(visit(&s, &b, &[]).await.status, 410);
}

#[tokio::test]
async fn a_registration_expires_when_its_deadline_passes() {
    let s = Sbx::with_options(opts(|o| {
        o.registration_expires_in_secs = 1;
        o.registration_approve_after_polls = 0;
    }))
    .await;
    let b = begin(&s).await;
    assert_eq!(b["expires_in"], 1);
    assert_error(
        &poll(&s, FEISHU, device_code(&b)).await,
        "authorization_pending",
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_error(&poll(&s, FEISHU, device_code(&b)).await, "expired_token");
    let ticket = b["user_code"].as_str().expect("ticket");
    assert_eq!(click(&s, ticket, "approve").await.status, 410);
    assert!(s.state().registered_apps().is_empty());
}

#[tokio::test]
async fn the_first_polls_answer_slow_down() {
    let s = Sbx::with_options(opts(|o| {
        o.registration_slow_down_polls = 2;
        o.registration_interval_secs = 5;
    }))
    .await;
    let b = begin(&s).await;
    assert_eq!(b["interval"], 5);
    let code = device_code(&b);
    assert_error(&poll(&s, FEISHU, code).await, "slow_down");
    assert_error(&poll(&s, FEISHU, code).await, "slow_down");
    assert_error(&poll(&s, FEISHU, code).await, "authorization_pending");
    assert_eq!(poll(&s, FEISHU, code).await.status, 200);
}

#[tokio::test]
async fn a_lark_tenant_gets_its_secret_only_from_the_lark_host() {
    let s = Sbx::with_options(opts(|o| o.registration_brand = RegistrationBrand::Lark)).await;
    // The Python SDK's order: success first, so the Feishu answer (empty secret) is not
    // success; it switches to the Lark host on tenant_brand and re-polls at once.
    let b = begin(&s).await;
    let code = device_code(&b);
    assert_error(&poll(&s, FEISHU, code).await, "authorization_pending");
    let feishu = poll(&s, FEISHU, code).await;
    assert_eq!(feishu.status, 200, "{}", feishu.text);
    assert_eq!(feishu.json["client_secret"], "");
    assert_eq!(feishu.json["user_info"]["tenant_brand"], "lark");
    let app_id = feishu.json["client_id"].as_str().expect("client_id");
    assert!(app_id.starts_with("cli_"));
    let lark = poll(&s, LARK, code).await;
    assert_eq!(lark.status, 200, "{}", lark.text);
    assert_eq!(lark.json["client_id"], app_id);
    assert_eq!(lark.json["user_info"]["tenant_brand"], "lark");
    let secret = lark.json["client_secret"].as_str().expect("secret");
    assert!(!secret.is_empty());
    tenant_token(&s, app_id, secret).await;

    // Node/Go order: brand first, switching on the first answer naming lark; the Lark host
    // shares the device_code, pending included.
    let b = begin(&s).await;
    let code = device_code(&b);
    assert_error(&poll(&s, LARK, code).await, "authorization_pending");
    let lark = poll(&s, LARK, code).await;
    assert_eq!(lark.status, 200, "{}", lark.text);
    assert!(
        lark.json["client_secret"]
            .as_str()
            .is_some_and(|x| !x.is_empty())
    );
    assert_eq!(s.state().registered_apps().len(), 2);
    assert!(
        s.state()
            .registered_apps()
            .iter()
            .all(|a| a.tenant_brand == "lark")
    );
}

#[tokio::test]
async fn with_no_automatic_decision_only_a_click_approves_or_denies() {
    let s = Sbx::with_options(opts(|o| o.registration_approve_after_polls = 0)).await;
    let b = begin(&s).await;
    let code = device_code(&b);
    for _ in 0..4 {
        assert_error(&poll(&s, FEISHU, code).await, "authorization_pending");
    }
    let addons = encode_addons(&json!({"scopes": {"tenant": [CONTACT_BASE]}}));
    assert_eq!(visit(&s, &b, &[("addons", &addons)]).await.status, 200);
    let ticket = b["user_code"].as_str().expect("ticket");
    let clicked = click(&s, ticket, "approve").await;
    assert_eq!(clicked.status, 200, "{}", clicked.text);
    assert!(clicked.text.contains("Approved"), "{}", clicked.text);
    let ok = poll(&s, FEISHU, code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let app_id = ok.json["client_id"].as_str().expect("client_id");
    assert_eq!(s.state().granted_scopes(app_id), [CONTACT_BASE]);

    let b = begin(&s).await;
    let ticket = b["user_code"].as_str().expect("ticket");
    assert_eq!(click(&s, ticket, "maybe").await.status, 400);
    assert_eq!(click(&s, ticket, "deny").await.status, 200);
    assert_error(&poll(&s, FEISHU, device_code(&b)).await, "access_denied");
    assert_eq!(click(&s, "NOPE-NOPE", "approve").await.status, 404);
    assert_eq!(s.state().registered_apps().len(), 1);
}

#[tokio::test]
async fn client_id_updates_a_known_app_additively() {
    let mut seed = common::seed();
    seed.scopes.retain(|x| !x.scope.starts_with("im:chat"));
    let s = Sbx::with(seed, opts(|o| o.registration_approve_after_polls = 1)).await;
    let seed_token = s.token().await;
    s.get(&seed_token, "/open-apis/im/v1/chats", &[])
        .await
        .err(400, 99991672);
    let before = s.state().granted_scopes(APP_ID);

    let b = begin(&s).await;
    let addons = encode_addons(&json!({"scopes": {"tenant": ["im:chat:readonly"]}}));
    let page = visit(&s, &b, &[("addons", &addons), ("clientID", APP_ID)]).await;
    assert!(
        page.text
            .contains(&format!("Update app <span class=\"client-id\">{APP_ID}")),
        "{}",
        page.text
    );
    let ok = poll(&s, FEISHU, device_code(&b)).await;
    assert_eq!(
        (
            ok.json["client_id"].as_str(),
            ok.json["client_secret"].as_str()
        ),
        (Some(APP_ID), Some(APP_SECRET))
    );
    assert!(s.state().registered_apps().is_empty());
    let after = s.state().granted_scopes(APP_ID);
    assert!(before.iter().all(|x| after.contains(x)));
    assert!(after.contains(&"im:chat:readonly".to_string()));
    s.get(&seed_token, "/open-apis/im/v1/chats", &[]).await.ok();

    // createOnly=true wins over clientID.
    let b = begin(&s).await;
    visit(&s, &b, &[("clientID", APP_ID), ("createOnly", "true")]).await;
    let ok = poll(&s, FEISHU, device_code(&b)).await;
    assert_ne!(ok.json["client_id"], APP_ID);
    assert_eq!(s.state().registered_apps().len(), 1);
}

#[tokio::test]
async fn invalid_addons_are_ignored_and_shown_as_such() {
    let s = Sbx::with_options(opts(|o| o.registration_approve_after_polls = 1)).await;
    let b = begin(&s).await;
    let bad = encode_addons(&json!({"scopes": {"tenant": [CONTACT_BASE]}, "request_url": "x"}));
    let page = visit(&s, &b, &[("addons", &bad)]).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("addons-ignored"), "{}", page.text);
    assert!(!page.text.contains(CONTACT_BASE), "{}", page.text);
    // A later visit overrides the earlier one.
    visit(&s, &b, &[("addons", "%%%not-base64")]).await;
    let reg = &s.state().registrations()[0];
    assert!(reg.requested.addons.is_none() && reg.requested.addons_ignored.is_some());
    assert_eq!(reg.page_visits, 2);
    let ok = poll(&s, FEISHU, device_code(&b)).await;
    let app_id = ok.json["client_id"].as_str().expect("client_id");
    assert!(s.state().granted_scopes(app_id).is_empty());
}

#[tokio::test]
async fn the_page_escapes_everything_it_echoes() {
    let s = Sbx::start().await;
    let b = begin(&s).await;
    let addons = encode_addons(&json!({"scopes": {"tenant": ["<script>alert(1)</script>"]}}));
    let page = visit(
        &s,
        &b,
        &[
            ("name", "<b>\"x\"</b>"),
            ("desc", "<img src=x onerror=alert(1)>"),
            ("source", "'&'"),
            ("clientID", "<i>"),
            ("avatar", "\"><script>"),
            ("addons", &addons),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    let t = &page.text;
    assert!(
        !t.contains("<script>")
            && !t.contains("<b>")
            && !t.contains("<img src=x")
            && !t.contains("<i>"),
        "{t}"
    );
    assert!(t.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;"), "{t}");
    assert!(t.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{t}");
    assert!(t.contains("&#39;&amp;&#39;"), "{t}");
    let unknown = s
        .execute(
            s.http
                .get(s.url("/page/launcher"))
                .query(&[("ticket", "<x>")]),
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(!unknown.text.contains("<x>"));
}

#[tokio::test]
async fn options_patch_sets_the_registration_knobs() {
    let s = Sbx::start().await;
    let r = s
        .execute(
            s.http
                .patch(s.url("/_sandbox/options"))
                .json(&json!({"registration_brand": "lark", "registration_outcome": "deny", "registration_base_scopes": [SELF_MANAGE]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let o = s.state().options();
    assert_eq!(o.registration_brand, RegistrationBrand::Lark);
    assert_eq!(o.registration_outcome, RegistrationOutcome::Deny);
    let bad = s
        .execute(
            s.http
                .patch(s.url("/_sandbox/options"))
                .json(&json!({"registration_brand": "larksuite"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let b = begin(&s).await;
    let regs = s
        .execute(s.http.get(s.url("/_sandbox/registrations")))
        .await;
    assert_eq!(regs.json[0]["user_code"], b["user_code"]);
    assert!(!regs.text.contains(device_code(&b)));
    assert_eq!(
        s.execute(s.http.get(s.url("/_sandbox/apps"))).await.json,
        json!([])
    );
}
