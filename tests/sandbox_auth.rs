//! Auth, log ids and scopes, over real loopback HTTP against an in-process sandbox.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use lark_mcp_server::sandbox::Options;
use serde_json::{Value, json};

const BOT_INFO: &str = "/open-apis/bot/v3/info";

// ---- tenant and app tokens ----------------------------------------------------------------

#[tokio::test]
async fn tenant_token_is_at_top_level_without_data() {
    let s = Sbx::start().await;
    let r = s.tenant_token_with(APP_ID, APP_SECRET).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.code(), 0);
    assert_eq!(r.json["msg"], "ok");
    let token = r.json["tenant_access_token"].as_str().expect("token");
    assert!(token.starts_with("t-"), "{token}");
    assert_eq!(r.json["expire"], 7200);
    assert!(r.json.get("data").is_none(), "no data wrapper: {}", r.text);
    // The token it gave works.
    s.get(token, BOT_INFO, &[]).await.ok();
}

#[tokio::test]
async fn same_token_is_reissued_while_enough_lifetime_remains() {
    let s = Sbx::with_options(short_token_options(3, 2)).await;
    let first = s.tenant_token_with(APP_ID, APP_SECRET).await;
    // `expire` is whole seconds left, rounded down: a moment later 2.9x s left reads as 2.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = s.tenant_token_with(APP_ID, APP_SECRET).await;
    assert_eq!(first.code(), 0);
    assert_eq!(second.code(), 0);
    assert_eq!(
        first.json["tenant_access_token"], second.json["tenant_access_token"],
        "a token with >= renew threshold left is handed out again"
    );
    let (e1, e2) = (
        first.json["expire"].as_u64().unwrap(),
        second.json["expire"].as_u64().unwrap(),
    );
    assert_eq!(e1, 3);
    assert_eq!(e2, 2, "expire counts down: {e1} then {e2}");
}

#[tokio::test]
async fn new_token_under_renew_threshold_while_old_one_still_works() {
    let s = Sbx::with_options(short_token_options(3, 2)).await;
    let old = s.token().await;
    // 1.2 s later less than 2 s remain: a new token, the old one alive for ~1.8 s more.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = s.tenant_token_with(APP_ID, APP_SECRET).await;
    assert_eq!(r.code(), 0);
    let new = r.json["tenant_access_token"].as_str().unwrap().to_string();
    assert_ne!(new, old, "under the threshold a new token is minted");
    assert_eq!(r.json["expire"], 3, "a new token has the full lifetime");
    s.get(&old, BOT_INFO, &[]).await.ok();
    s.get(&new, BOT_INFO, &[]).await.ok();
    let seqs: Vec<Option<u64>> = s
        .state()
        .requests()
        .iter()
        .filter(|q| q.endpoint == "bot_info")
        .map(|q| q.token_seq)
        .collect();
    assert_eq!(
        seqs,
        vec![Some(1), Some(2)],
        "both tokens authorised a call"
    );
}

#[tokio::test]
async fn app_access_token_endpoint_returns_app_and_tenant_tokens() {
    let s = Sbx::start().await;
    let r = s
        .post(
            "",
            APP_TOKEN_PATH,
            &[],
            &json!({"app_id": APP_ID, "app_secret": APP_SECRET}),
        )
        .await;
    assert_eq!((r.status, r.code()), (200, 0), "{}", r.text);
    assert!(r.json.get("data").is_none());
    assert!(
        r.json["app_access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(r.json["expire"], 7200);
    let tenant = r.json["tenant_access_token"]
        .as_str()
        .expect("tenant token");
    assert!(tenant.starts_with("t-"));
    s.get(tenant, BOT_INFO, &[]).await.ok();
    // The tenant endpoint hands out the same live tenant token.
    assert_eq!(s.token().await, tenant);
}

#[tokio::test]
async fn wrong_app_secret_is_10014() {
    let s = Sbx::start().await;
    let r = s.tenant_token_with(APP_ID, "sbx_wrong").await;
    r.err(400, 10014);
    assert!(r.json.get("tenant_access_token").is_none());
    s.post(
        "",
        APP_TOKEN_PATH,
        &[],
        &json!({"app_id": APP_ID, "app_secret": "nope"}),
    )
    .await
    .err(400, 10014);
}

#[tokio::test]
async fn wrong_app_id_is_10003() {
    let s = Sbx::start().await;
    s.tenant_token_with("cli_0000000000000000", APP_SECRET)
        .await
        .err(400, 10003);
    s.post("", TENANT_TOKEN_PATH, &[], &json!({}))
        .await
        .err(400, 10003);
}

// ---- token checks on API calls ------------------------------------------------------------

#[tokio::test]
async fn missing_authorization_is_99991661() {
    let s = Sbx::start().await;
    let r = s.get("", BOT_INFO, &[]).await;
    r.err(400, 99991661);
}

#[tokio::test]
async fn malformed_bearer_token_is_99991671() {
    let s = Sbx::start().await;
    let r = s.get("abc", BOT_INFO, &[]).await;
    r.err(400, 99991671);
    assert_eq!(r.json["msg"], "Invalid token: must start with t-/u-");
}

#[tokio::test]
async fn unknown_tenant_token_is_99991663() {
    let s = Sbx::start().await;
    s.token().await;
    s.get("t-g1044ffffffffffffffffffffffffffffffffff", BOT_INFO, &[])
        .await
        .err(400, 99991663);
}

#[tokio::test]
async fn expired_token_is_99991663() {
    let s = Sbx::with_options(short_token_options(1, 0)).await;
    let token = s.token().await;
    s.get(&token, BOT_INFO, &[]).await.ok();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.get(&token, BOT_INFO, &[]).await.err(400, 99991663);
    // The token endpoint now mints a different, working token.
    let fresh = s.token().await;
    assert_ne!(fresh, token);
    s.get(&fresh, BOT_INFO, &[]).await.ok();
}

#[tokio::test]
async fn revoked_token_is_99991663() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.get(&token, BOT_INFO, &[]).await.ok();
    assert_eq!(s.state().revoke_tokens(None), 1);
    s.get(&token, BOT_INFO, &[]).await.err(400, 99991663);
    let fresh = s.token().await;
    assert_ne!(fresh, token, "a revoked token is never handed out again");
    s.get(&fresh, BOT_INFO, &[]).await.ok();
    // Revoking one token by its issue number leaves nothing else affected.
    assert_eq!(s.state().revoke_tokens(Some(1)), 0, "seq 1 already revoked");
    assert_eq!(s.state().revoke_tokens(Some(2)), 1);
    s.get(&fresh, BOT_INFO, &[]).await.err(400, 99991663);
}

#[tokio::test]
async fn auth_error_status_is_configurable() {
    let s = Sbx::with_options(Options {
        auth_error_status: 401,
        ..Default::default()
    })
    .await;
    s.get("", BOT_INFO, &[]).await.err(401, 99991661);
    s.get("t-unknown", BOT_INFO, &[]).await.err(401, 99991663);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_requests_share_one_token() {
    let s = Sbx::start().await;
    let calls = (0..16).map(|_| s.tenant_token_with(APP_ID, APP_SECRET));
    let tokens: HashSet<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.json["tenant_access_token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
}

// ---- log ids ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_a_log_id_and_errors_repeat_it() {
    let s = Sbx::start().await;
    let token_resp = s.tenant_token_with(APP_ID, APP_SECRET).await;
    let token = token_resp.json["tenant_access_token"].as_str().unwrap();
    let ok = s.get(token, BOT_INFO, &[]).await;
    ok.ok();
    let missing_token = s.get("", BOT_INFO, &[]).await;
    missing_token.err(400, 99991661);
    let unknown_path = s
        .get(token, "/open-apis/contact/v3/nowhere/at/all", &[])
        .await;
    unknown_path.err(404, 99991201);
    // The image upload endpoint is POST only.
    let wrong_method = s.get(token, "/open-apis/im/v1/images", &[]).await;
    wrong_method.err(405, 99991301);
    let bad_secret = s.tenant_token_with(APP_ID, "x").await;
    bad_secret.err(400, 10014);

    let all = [
        &token_resp,
        &ok,
        &missing_token,
        &unknown_path,
        &wrong_method,
        &bad_secret,
    ];
    let ids: HashSet<&str> = all.iter().map(|r| r.log_id()).collect();
    assert_eq!(ids.len(), all.len(), "log ids are unique: {ids:?}");
    for id in ids {
        assert_eq!(id.len(), 30, "{id}");
        assert!(id[..14].bytes().all(|b| b.is_ascii_digit()), "{id}");
    }
    assert_eq!(
        missing_token.json["error"]["troubleshooter"]
            .as_str()
            .map(|t| t.contains(missing_token.log_id())),
        Some(true)
    );
}

// ---- scopes ----------------------------------------------------------------------------------

#[tokio::test]
async fn missing_scope_is_99991672_with_violations_and_help() {
    let s = Sbx::with_seed(seed_without_scope("contact:user.id:readonly")).await;
    let token = s.token().await;
    let r = s
        .post(
            &token,
            BATCH_GET_ID_PATH,
            &[],
            &json!({"emails": [ZHANG_WEI_EMAIL]}),
        )
        .await;
    let error = r.err(400, 99991672);
    assert_eq!(
        r.json["msg"],
        "Access denied. One of the following scopes is required: [contact:user.id:readonly]"
    );
    assert_eq!(
        error["permission_violations"],
        json!([{"type": "action_scope_required", "subject": "contact:user.id:readonly"}])
    );
    assert_eq!(
        error["helps"][0]["url"],
        "https://open.feishu.cn/app/cli_a5f2c8e91b3d4007/auth?q=contact:user.id:readonly&op_from=openapi"
    );
    assert_eq!(s.state().count("lookup_user_by_email_or_mobile"), 1);
}

#[tokio::test]
async fn any_of_scopes_give_one_violation_each() {
    let s = Sbx::start().await;
    s.state()
        .set_scopes(&[], &["contact:contact.base:readonly".to_string()]);
    let token = s.token().await;
    let r = s
        .get(
            &token,
            &format!("/open-apis/contact/v3/users/{ZHANG_WEI}"),
            &[],
        )
        .await;
    let error = r.err(400, 99991672);
    let subjects: Vec<&str> = error["permission_violations"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|v| assert_eq!(v["type"], "action_scope_required"))
        .map(|v| v["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "contact:contact.base:readonly",
            "contact:contact:access_as_app",
            "contact:contact:readonly",
            "contact:contact:readonly_as_app",
        ]
    );
    let msg = r.json["msg"].as_str().unwrap();
    assert!(msg.starts_with("Access denied. One of the following scopes is required: ["));
    assert!(subjects.iter().all(|sub| msg.contains(sub)), "{msg}");
}

#[tokio::test]
async fn granting_a_scope_at_run_time_lifts_99991672() {
    let s = Sbx::with_seed(seed_without_scope("contact:user.id:readonly")).await;
    let token = s.token().await;
    let body = json!({"emails": [ZHANG_WEI_EMAIL]});
    s.post(&token, BATCH_GET_ID_PATH, &[], &body)
        .await
        .err(400, 99991672);
    s.state()
        .set_scopes(&["contact:user.id:readonly".to_string()], &[]);
    let data = s
        .post(&token, BATCH_GET_ID_PATH, &[], &body)
        .await
        .ok()
        .clone();
    assert_eq!(data["user_list"][0]["user_id"], ZHANG_WEI);
    s.state()
        .set_scopes(&[], &["contact:user.id:readonly".to_string()]);
    s.post(&token, BATCH_GET_ID_PATH, &[], &body)
        .await
        .err(400, 99991672);
}

#[tokio::test]
async fn scope_enabled_only_for_user_tokens_is_missing_for_the_tenant_token() {
    let mut seed = seed();
    let scope = seed
        .scopes
        .iter_mut()
        .find(|x| x.scope == "contact:user.id:readonly")
        .unwrap();
    scope.token_types = vec!["user".into()];
    let s = Sbx::with_seed(seed).await;
    let token = s.token().await;
    s.post(
        &token,
        BATCH_GET_ID_PATH,
        &[],
        &json!({"emails": [ZHANG_WEI_EMAIL]}),
    )
    .await
    .err(400, 99991672);
}

#[tokio::test]
async fn scope_error_status_is_configurable() {
    let s = Sbx::with(
        seed_without_scope("contact:user.id:readonly"),
        Options {
            scope_error_status: 403,
            ..Default::default()
        },
    )
    .await;
    let token = s.token().await;
    s.post(
        &token,
        BATCH_GET_ID_PATH,
        &[],
        &json!({"emails": [ZHANG_WEI_EMAIL]}),
    )
    .await
    .err(403, 99991672);
}

#[tokio::test]
async fn application_info_lists_granted_scopes_with_token_types() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            "/open-apis/application/v6/applications/me",
            &[("lang", "en_us")],
        )
        .await;
    let app = &r.ok()["app"];
    assert_eq!(app["app_id"], APP_ID);
    assert_eq!(app["primary_language"], "en_us");
    let scopes = app["scopes"].as_array().unwrap();
    let granted = seed().scopes.iter().filter(|x| x.granted).count();
    assert_eq!(scopes.len(), granted);
    let find = |name: &str| scopes.iter().find(|x| x["scope"] == name).cloned();
    assert_eq!(
        find("contact:user.id:readonly").unwrap()["token_types"],
        json!(["tenant"])
    );
    assert_eq!(
        find("im:message").unwrap()["token_types"],
        json!(["tenant", "user"])
    );
    assert!(
        find("contact:user.employee:readonly").is_none(),
        "not granted"
    );
    // The app id itself works as well as `me`.
    s.get(
        &token,
        &format!("/open-apis/application/v6/applications/{APP_ID}"),
        &[("lang", "zh_cn")],
    )
    .await
    .ok();
}

#[tokio::test]
async fn application_info_requires_lang() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(&token, "/open-apis/application/v6/applications/me", &[])
        .await;
    assert_eq!(r.violated_field(), "lang");
    let r = s
        .get(
            &token,
            "/open-apis/application/v6/applications/me",
            &[("lang", "fr_fr")],
        )
        .await;
    assert_eq!(r.violated_field(), "lang");
}

#[tokio::test]
async fn scope_grant_status_lists_granted_and_pending_scopes() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, "/open-apis/application/v6/scopes", &[]).await;
    let scopes = r.ok()["scopes"].as_array().unwrap().clone();
    let status_of = |name: &str, kind: &str| -> Option<Value> {
        scopes
            .iter()
            .find(|x| x["scope_name"] == name && x["scope_type"] == kind)
            .map(|x| x["grant_status"].clone())
    };
    assert_eq!(
        status_of("contact:user.id:readonly", "tenant"),
        Some(json!(1))
    );
    assert_eq!(status_of("contact:user.id:readonly", "user"), None);
    assert_eq!(
        status_of("contact:user.employee:readonly", "tenant"),
        Some(json!(2))
    );
    assert_eq!(status_of("im:message.urgent", "user"), Some(json!(2)));
    let expected: usize = seed().scopes.iter().map(|x| x.token_types.len()).sum();
    assert_eq!(scopes.len(), expected);
}

#[tokio::test]
async fn bot_info_is_a_top_level_bot_object() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, BOT_INFO, &[]).await;
    assert_eq!((r.status, r.code()), (200, 0));
    assert!(r.json.get("data").is_none(), "{}", r.text);
    let bot = &r.json["bot"];
    assert_eq!(bot["open_id"], seed().app.bot_open_id);
    assert_eq!(bot["app_name"], "Northwind Assistant");
    assert_eq!(bot["activate_status"], 2);
    assert!(bot["ip_white_list"].is_array());
}

#[tokio::test]
async fn empty_bearer_token_is_99991661() {
    let s = Sbx::start().await;
    for value in ["Bearer ", "Bearer", "bearer  "] {
        let rb = s.http.get(s.url(BOT_INFO)).header("authorization", value);
        s.execute(rb).await.err(400, 99991661);
    }
}

#[tokio::test]
async fn malformed_paths_and_oversized_bodies_still_get_envelopes() {
    let s = Sbx::start().await;
    let token = s.token().await;
    // A path parameter that is not UTF-8.
    let r = s
        .get(&token, "/open-apis/contact/v3/users/%FF%FE", &[])
        .await;
    assert_eq!(r.violated_field(), "path");
    // A body over the sandbox's 2 MB request limit.
    let big = Sbx::text_body(RANDOM_CHAT, &"a".repeat(3 * 1024 * 1024));
    let r = s
        .post(
            &token,
            MESSAGES_PATH,
            &[("receive_id_type", "chat_id")],
            &big,
        )
        .await;
    r.err(413, 99992402);
    assert_eq!(
        s.state().messages(Some(RANDOM_CHAT)).len(),
        seed()
            .messages
            .iter()
            .filter(|m| m.chat_id == RANDOM_CHAT)
            .count()
    );
}
