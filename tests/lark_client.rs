//! The Lark client against the sandbox over loopback; every claim is counted at the sandbox.

use std::time::{Duration, Instant};

use lark_mcp_server::lark::{ErrorKind, LarkClient, LarkConfig, Request, api_path};
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Options, Phase, Sandbox, Seed};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const IN_RANGE_USER: &str = "ou_7d82ab6889beb45bb7911ba8216f1a9e";
const LEGAL_USER: &str = "ou_d0746ea879393f08fe81a80ed7f4cfd3";

async fn sandbox_with(options: Options) -> Sandbox {
    Sandbox::start(Seed::default_org().expect("default seed"), options, 0)
        .await
        .expect("sandbox starts")
}

fn client_for(sb: &Sandbox) -> LarkClient {
    let seed = Seed::default_org().expect("default seed");
    let mut cfg = LarkConfig::new(
        Some(&seed.app.app_id),
        Some(&seed.app.app_secret),
        Some(&sb.base_url()),
    )
    .expect("config");
    cfg.call_budget = Duration::from_secs(20);
    LarkClient::new(cfg).expect("client")
}

fn get_user(id: &str) -> Request {
    Request::get(
        "get a user",
        api_path("/open-apis/contact/v3/users/{}", &[id]).expect("path"),
    )
}

/// The first group chat the bot is in.
fn bot_chat(sb: &Sandbox) -> String {
    sb.state()
        .chats()
        .into_iter()
        .find(|c| c.bot_member && c.chat_mode == "group")
        .map(|c| c.chat_id)
        .expect("a chat with the bot")
}

/// Lark's answer to a token it no longer accepts.
fn token_rejected() -> FaultRule {
    FaultRule::new(FaultAction::LarkError {
        code: 99991663,
        msg: "Invalid access token for authorization.".into(),
        status: 400,
    })
}

fn send_text(chat_id: &str, text: &str) -> Request {
    Request::post(
        "send a message",
        "/open-apis/im/v1/messages".into(),
        json!({"receive_id": chat_id, "msg_type": "text", "content": json!({"text": text}).to_string()}),
    )
    .query("receive_id_type", "chat_id")
    .pace(chat_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_cold_concurrent_calls_fetch_one_token() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let cancel = CancellationToken::new();
    let calls = (0..500).map(|_| {
        let c = client.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { c.call(get_user(IN_RANGE_USER), &cancel).await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("task").expect("call succeeds");
    }
    assert_eq!(sb.state().count("tenant_access_token_internal"), 1);
    assert_eq!(sb.state().count("get_user"), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_ahead_of_expiry_without_a_failed_call() {
    // A 5 s token is refreshed in the background from 3.75 s and used until 4.5 s: the
    // half-second margin absorbs a loaded machine's delays.
    let sb = sandbox_with(Options {
        token_ttl_secs: 5,
        token_renew_below_secs: 4,
        ..Options::default()
    })
    .await;
    let client = client_for(&sb);
    let cancel = CancellationToken::new();
    let until = Instant::now() + Duration::from_millis(6000);
    while Instant::now() < until {
        client
            .call(get_user(IN_RANGE_USER), &cancel)
            .await
            .expect("no call fails across token expiry");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let state = sb.state();
    assert!(
        state.count("tenant_access_token_internal") >= 2,
        "tokens were renewed"
    );
    let rejected: Vec<_> = state
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "get_user" && r.code != 0)
        .collect();
    assert!(
        rejected.is_empty(),
        "the sandbox never saw an expired token: {rejected:?}"
    );
}

#[tokio::test]
async fn a_revoked_token_is_dropped_refetched_once_and_the_call_retried_once() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let cancel = CancellationToken::new();
    client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect("first call");
    assert_eq!(sb.state().revoke_tokens(None), 1);
    sb.state().clear_requests();

    client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect("recovers");
    let s = sb.state();
    assert_eq!(s.count("tenant_access_token_internal"), 1, "one re-fetch");
    assert_eq!(s.count("get_user"), 2, "one rejected call and one retry");
    let seqs: Vec<_> = s
        .requests()
        .iter()
        .filter(|r| r.endpoint == "get_user")
        .map(|r| (r.code, r.token_seq))
        .collect();
    assert_eq!(seqs[0].0, 99991663);
    assert_eq!(seqs[1].0, 0);
    assert_ne!(seqs[0].1, seqs[1].1, "the retry carried the new token");
}

#[tokio::test]
async fn a_token_rejected_again_and_again_is_refreshed_a_bounded_number_of_times() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    sb.state()
        .add_fault(token_rejected().path("/open-apis/contact"));
    let err = client
        .call(get_user(IN_RANGE_USER), &CancellationToken::new())
        .await
        .expect_err("stays rejected");
    assert_eq!(err.kind, ErrorKind::Auth);
    // The first attempt and three attempts with fresh tokens.
    assert_eq!(sb.state().count("get_user"), 4);
    assert_eq!(sb.state().count("tenant_access_token_internal"), 4);
}

#[tokio::test]
async fn a_delivered_write_is_reported_delivered_when_its_retry_meets_revoked_tokens() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let chat = bot_chat(&sb);
    let rejected = || token_rejected().path("/open-apis/im/v1/messages");
    sb.state().set_faults(vec![
        // Lark applies the send, then the gateway fails: the outcome looks unknown.
        FaultRule::new(FaultAction::ServerError {
            status: 502,
            phase: Phase::After,
        })
        .path("/open-apis/im/v1/messages")
        .times(1),
        // The retries then meet a revoked token, twice.
        rejected().skip(1).times(2),
    ]);
    let before = sb.state().messages(Some(&chat)).len();
    let resp = client
        .call(
            send_text(&chat, "delivered once").dedupe_in_body(None),
            &CancellationToken::new(),
        )
        .await
        .expect("the write Lark applied is reported as delivered");
    let after = sb.state().messages(Some(&chat));
    assert_eq!(after.len(), before + 1, "exactly one message");
    assert_eq!(
        resp.data()["message_id"].as_str(),
        after.last().map(|m| m.message_id.as_str()),
        "the answer names the message that was delivered"
    );
    assert_eq!(sb.state().count("send_message"), 4);
    let seqs: Vec<u64> = sb
        .state()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "send_message")
        .filter_map(|r| r.token_seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_behind_a_failed_token_fetch_share_its_failure() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    sb.state().set_faults(vec![
        FaultRule::new(FaultAction::Latency { ms: 300 }).path("/open-apis/auth"),
        FaultRule::new(FaultAction::LarkError {
            code: 10014,
            msg: "app secret invalid".into(),
            status: 400,
        })
        .path("/open-apis/auth"),
    ]);
    let cancel = CancellationToken::new();
    let calls = (0..50).map(|_| {
        let c = client.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { c.call(get_user(IN_RANGE_USER), &cancel).await })
    });
    for r in futures::future::join_all(calls).await {
        let err = r.expect("task").expect_err("no token");
        assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    }
    assert_eq!(
        sb.state().count("tenant_access_token_internal"),
        1,
        "50 callers waited on one fetch and all got its answer"
    );
    assert_eq!(sb.state().count("get_user"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_background_refresh_is_not_restarted_by_every_call() {
    let sb = sandbox_with(Options {
        token_ttl_secs: 8,
        token_renew_below_secs: 7,
        ..Options::default()
    })
    .await;
    let client = client_for(&sb);
    let cancel = CancellationToken::new();
    let fetched = Instant::now();
    client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect("first call");
    // An 8 s token is refreshed in the background from 6 s on and used until 7.2 s.
    tokio::time::sleep(Duration::from_millis(6100).saturating_sub(fetched.elapsed())).await;
    sb.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 10014,
            msg: "app secret invalid".into(),
            status: 400,
        })
        .path("/open-apis/auth"),
    );
    sb.state().clear_requests();
    for _ in 0..25 {
        client
            .call(get_user(IN_RANGE_USER), &cancel)
            .await
            .expect("the cached token still serves");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert!(
        fetched.elapsed() < Duration::from_millis(7200),
        "precondition: every call ran while the token was due but usable"
    );
    assert_eq!(
        sb.state().count("tenant_access_token_internal"),
        1,
        "one failed refresh, then a back-off instead of one per call"
    );
}

#[tokio::test]
async fn permission_errors_never_refresh_the_token() {
    let mut seed = Seed::default_org().expect("seed");
    seed.scopes
        .retain(|s| s.scope != "contact:user.id:readonly");
    let sb = Sandbox::start(seed, Options::default(), 0)
        .await
        .expect("start");
    let client = client_for(&sb);
    let req = Request::post(
        "look up users by email",
        "/open-apis/contact/v3/users/batch_get_id".into(),
        json!({"emails": ["zhang.wei@northwind.example"]}),
    )
    .idempotent();
    let err = client
        .call(req, &CancellationToken::new())
        .await
        .expect_err("no scope");
    assert_eq!(err.kind, ErrorKind::MissingScope);
    assert_eq!(err.missing_scopes(), vec!["contact:user.id:readonly"]);
    let text = err.to_string();
    assert!(
        text.contains("contact:user.id:readonly")
            && text.contains("/auth?q=contact:user.id:readonly"),
        "{text}"
    );
    assert!(err.log_id.is_some());
    assert_eq!(sb.state().count("lookup_user_by_email_or_mobile"), 1);
    assert_eq!(sb.state().count("tenant_access_token_internal"), 1);
}

#[tokio::test]
async fn a_429_waits_for_the_reset_then_succeeds() {
    for status in [429u16, 400] {
        let sb = sandbox_with(Options::default()).await;
        let client = client_for(&sb);
        sb.state().add_fault(
            FaultRule::new(FaultAction::RateLimit {
                status,
                reset_secs: 1,
                limit: 50,
            })
            .path("/open-apis/contact")
            .times(1),
        );
        let started = Instant::now();
        client
            .call(get_user(IN_RANGE_USER), &CancellationToken::new())
            .await
            .expect("succeeds after the reset");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited the reset (HTTP {status})"
        );
        assert_eq!(sb.state().count("get_user"), 2);
    }
}

#[tokio::test]
async fn a_reset_beyond_the_call_budget_fails_fast_with_the_wait_named() {
    let sb = sandbox_with(Options::default()).await;
    let mut client_cfg = client_for(&sb).config().clone();
    client_cfg.call_budget = Duration::from_secs(3);
    let client = LarkClient::new(client_cfg).expect("client");
    sb.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 429,
            reset_secs: 30,
            limit: 50,
        })
        .path("/open-apis/contact"),
    );
    let err = client
        .call(get_user(IN_RANGE_USER), &CancellationToken::new())
        .await
        .expect_err("limited");
    // RateLimited, not Timeout: the call did not sit out its budget waiting.
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(sb.state().count("get_user"), 1, "no retry into the budget");
    assert!(err.to_string().contains("resets in 30 s"), "{err}");
}

#[tokio::test]
async fn a_reset_header_of_u64_max_is_an_error_within_the_budget() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    sb.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 429,
            reset_secs: u64::MAX,
            limit: 50,
        })
        .path("/open-apis/contact"),
    );
    let err = client
        .call(get_user(IN_RANGE_USER), &CancellationToken::new())
        .await
        .expect_err("limited");
    assert_eq!(err.kind, ErrorKind::RateLimited, "{err}");
    assert_eq!(sb.state().count("get_user"), 1);
    // The client is unharmed: the next call goes through.
    sb.state().set_faults(Vec::new());
    client
        .call(get_user(IN_RANGE_USER), &CancellationToken::new())
        .await
        .expect("still serving");
}

#[tokio::test]
async fn an_over_long_id_is_refused_at_once_not_retried_as_network_trouble() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let huge = "a".repeat(64 * 1024);
    let err = api_path("/open-apis/contact/v3/users/{}", &[&huge]).expect_err("too long");
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    // Built by hand past the path check, the request still fails as a local error.
    let req = Request::get("get a user", format!("/open-apis/contact/v3/users/{huge}"))
        .query("x", "y".repeat(128 * 1024));
    let err = client
        .call(req, &CancellationToken::new())
        .await
        .expect_err("unbuildable or refused");
    assert_ne!(err.kind, ErrorKind::Transient, "{err}");
    assert!(!err.to_string().contains("try again shortly"), "{err}");
}

#[tokio::test]
async fn send_limit_and_server_errors_are_retried_to_success() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let chat = bot_chat(&sb);
    sb.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 230020,
            msg: "This operation triggers the frequency limit.".into(),
            status: 400,
        })
        .path("/open-apis/im/v1/messages")
        .times(2),
    );
    let before = sb.state().messages(Some(&chat)).len();
    client
        .call(
            send_text(&chat, "hello").dedupe_in_body(None),
            &CancellationToken::new(),
        )
        .await
        .expect("230020 retried");
    assert_eq!(sb.state().count("send_message"), 3);
    assert_eq!(sb.state().messages(Some(&chat)).len(), before + 1);

    for status in [500u16, 502, 503, 504] {
        sb.state().set_faults(vec![
            FaultRule::new(FaultAction::ServerError {
                status,
                phase: Phase::Before,
            })
            .path("/open-apis/contact")
            .times(2),
        ]);
        sb.state().clear_requests();
        client
            .call(get_user(IN_RANGE_USER), &CancellationToken::new())
            .await
            .expect("5xx retried");
        assert_eq!(sb.state().count("get_user"), 3, "HTTP {status}");
    }
}

#[tokio::test]
async fn a_write_without_uuid_is_never_retried_after_a_server_error() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let chat = bot_chat(&sb);
    sb.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 502,
            phase: Phase::After,
        })
        .path("/open-apis/im/v1/messages")
        .times(1),
    );
    let before = sb.state().messages(Some(&chat)).len();
    let err = client
        .call(send_text(&chat, "once"), &CancellationToken::new())
        .await
        .expect_err("outcome unknown, so not retried");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert_eq!(sb.state().count("send_message"), 1);
    assert_eq!(sb.state().messages(Some(&chat)).len(), before + 1);
}

#[tokio::test]
async fn a_write_with_uuid_lands_exactly_once_under_after_commit_faults() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let chat = bot_chat(&sb);
    sb.state().set_faults(vec![
        FaultRule::new(FaultAction::ServerError {
            status: 500,
            phase: Phase::After,
        })
        .path("/open-apis/im/v1/messages")
        .times(1),
        FaultRule::new(FaultAction::Drop {
            phase: Phase::After,
        })
        .path("/open-apis/im/v1/messages")
        .skip(1)
        .times(1),
        FaultRule::new(FaultAction::ServerError {
            status: 503,
            phase: Phase::After,
        })
        .path("/open-apis/im/v1/messages")
        .skip(2)
        .times(1),
    ]);
    let before = sb.state().messages(Some(&chat)).len();
    let resp = client
        .call(
            send_text(&chat, "exactly once").dedupe_in_body(None),
            &CancellationToken::new(),
        )
        .await
        .expect("eventually answered");
    let after = sb.state().messages(Some(&chat));
    assert_eq!(after.len(), before + 1, "one message, not four");
    assert_eq!(sb.state().count("send_message"), 4);
    let id = resp.data()["message_id"].as_str().expect("message id");
    assert_eq!(after.last().map(|m| m.message_id.as_str()), Some(id));
    let uuids: Vec<_> = sb
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "send_message")
        .filter_map(|r| r.body.and_then(|b| b["uuid"].as_str().map(String::from)))
        .collect();
    assert_eq!(uuids.len(), 4);
    assert!(
        uuids.iter().all(|u| u == &uuids[0]),
        "one uuid on every retry"
    );
}

#[tokio::test]
async fn http_200_with_a_nonzero_code_is_an_error() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let err = client
        .call(get_user(LEGAL_USER), &CancellationToken::new())
        .await
        .expect_err("outside the range");
    assert_eq!(err.http_status, Some(200));
    assert_eq!(err.code, Some(41050));
    assert_eq!(err.kind, ErrorKind::DataRange);
}

#[tokio::test]
async fn non_json_and_cut_off_answers_are_errors_not_panics() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    sb.state().set_faults(vec![
        FaultRule::new(FaultAction::Drop {
            phase: Phase::Before,
        })
        .path("/open-apis/contact")
        .times(10),
    ]);
    let err = client
        .call(get_user(IN_RANGE_USER), &CancellationToken::new())
        .await
        .expect_err("dropped");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(sb.state().count("get_user") >= 2, "reads are retried");
}

#[tokio::test]
async fn path_ids_never_change_the_request_path() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    for id in [
        "../x",
        "a/b",
        "%2e%2e",
        "..%2F..%2Fauth",
        "ou_1?user_id_type=union_id",
        "a#b",
    ] {
        let _ = client.call(get_user(id), &CancellationToken::new()).await;
    }
    let reqs = sb.state().requests();
    let paths: Vec<_> = reqs
        .iter()
        .filter(|r| r.endpoint != "tenant_access_token_internal")
        .collect();
    assert_eq!(paths.len(), 6);
    for r in &paths {
        assert_eq!(
            r.endpoint, "get_user",
            "{} reached another endpoint",
            r.path
        );
        assert!(
            r.path.starts_with("/open-apis/contact/v3/users/"),
            "{}",
            r.path
        );
        assert_eq!(r.path.matches('/').count(), 5, "{}", r.path);
        assert!(r.query.is_empty(), "{}", r.query);
    }
    assert!(api_path("/open-apis/contact/v3/users/{}", &[".."]).is_err());
}

#[tokio::test]
async fn cancellation_stops_a_waiting_call() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    sb.state()
        .add_fault(FaultRule::new(FaultAction::Latency { ms: 5000 }).path("/open-apis/contact"));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let err = client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect_err("cancelled");
    // The answer was 5 s away: Cancelled (not success) shows the call stopped waiting.
    assert_eq!(err.kind, ErrorKind::Cancelled);
}

#[tokio::test]
async fn granted_scopes_come_from_the_app_info_with_a_fallback() {
    let sb = sandbox_with(Options::default()).await;
    let client = client_for(&sb);
    let cancel = CancellationToken::new();
    let scopes = client.granted_scopes(&cancel).await.expect("scopes");
    assert!(scopes.allows_any(&["contact:user.id:readonly"]));
    assert!(
        !scopes.allows_any(&["im:message.urgent"]),
        "enabled but not granted"
    );
    assert!(scopes.user.contains("contact:user.base:readonly"));

    sb.state()
        .set_scopes(&[], &["application:application:self_manage".into()]);
    let scopes = client.granted_scopes(&cancel).await.expect("fallback");
    assert!(scopes.allows_any(&["contact:user.id:readonly"]));
    assert_eq!(sb.state().count("list_app_scope_grant_status"), 1);
}
