//! Injected faults, the request log and counters, and the HTTP control path.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Phase};
use serde_json::{Value, json};

const BOT_INFO: &str = "/open-apis/bot/v3/info";

fn bot_messages(s: &Sbx, chat: &str) -> usize {
    s.state()
        .messages(Some(chat))
        .iter()
        .filter(|m| m.sender_is_bot)
        .count()
}

// ---- rate limits -------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_rule_skips_then_fires_then_stops() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 429,
            reset_secs: 7,
            limit: 50,
        })
        .path("/open-apis/contact/v3/users")
        .skip(1)
        .times(2),
    );
    let path = format!("/open-apis/contact/v3/users/{ZHANG_WEI}");
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(s.get(&token, &path, &[]).await);
    }
    answers[0].ok();
    for r in &answers[1..3] {
        r.err(429, 99991400);
        assert_eq!(r.json["msg"], "request trigger frequency limit");
        assert_eq!(r.header("x-ogw-ratelimit-limit"), Some("50"));
        assert_eq!(r.header("x-ogw-ratelimit-reset"), Some("7"));
    }
    answers[3].ok();
    assert!(answers[3].header("x-ogw-ratelimit-reset").is_none());
    // Other paths never matched the rule.
    s.get(&token, BOT_INFO, &[]).await.ok();
    let rule = &s.state().faults()[0];
    assert_eq!((rule.seen, rule.fired), (4, 2));
    let codes: Vec<(u16, i64)> = s
        .state()
        .requests()
        .iter()
        .filter(|q| q.endpoint == "get_user")
        .map(|q| (q.status, q.code))
        .collect();
    assert_eq!(
        codes,
        [(200, 0), (429, 99991400), (429, 99991400), (200, 0)]
    );
}

#[tokio::test]
async fn rate_limit_can_answer_with_http_400() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 400,
            reset_secs: 3,
            limit: 10,
        })
        .method("get")
        .path(BOT_INFO)
        .times(1),
    );
    let r = s.get(&token, BOT_INFO, &[]).await;
    r.err(400, 99991400);
    assert_eq!(r.header("x-ogw-ratelimit-limit"), Some("10"));
    assert_eq!(r.header("x-ogw-ratelimit-reset"), Some("3"));
    s.get(&token, BOT_INFO, &[]).await.ok();
}

#[tokio::test]
async fn qps_limit_per_endpoint_answers_429() {
    let s = Sbx::with_options(lark_mcp_server::sandbox::Options {
        qps_limit_per_endpoint: 3,
        ..Default::default()
    })
    .await;
    let token = s.token().await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(s.get(&token, BOT_INFO, &[]).await);
    }
    for r in &statuses[..3] {
        r.ok();
    }
    statuses[3].err(429, 99991400);
    assert_eq!(statuses[3].header("x-ogw-ratelimit-limit"), Some("3"));
}

// ---- server errors and dropped connections around a write ---------------------------------

#[tokio::test]
async fn server_error_before_the_write_stores_nothing() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 500,
            phase: Phase::Before,
        })
        .method("POST")
        .path(MESSAGES_PATH)
        .times(1),
    );
    let r = s.send_text(&token, "chat_id", RANDOM_CHAT, "lost").await;
    assert_eq!(r.status, 500);
    assert!(r.json.is_null(), "a gateway error is not JSON: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(!r.log_id().is_empty());
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before);
    // The rule is spent: the retry goes through and stores exactly one message.
    s.send_text(&token, "chat_id", RANDOM_CHAT, "lost")
        .await
        .ok();
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before + 1);
}

#[tokio::test]
async fn server_error_after_the_write_still_stores_the_message() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 502,
            phase: Phase::After,
        })
        .path(MESSAGES_PATH)
        .times(1),
    );
    let r = s
        .send_text(&token, "chat_id", RANDOM_CHAT, "sent twice?")
        .await;
    assert_eq!(r.status, 502);
    assert!(r.json.is_null());
    // The client saw a failure, yet the message went out: a blind retry sends it twice.
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before + 1);
    s.send_text(&token, "chat_id", RANDOM_CHAT, "sent twice?")
        .await
        .ok();
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before + 2);
    let faults: Vec<Vec<String>> = s
        .state()
        .requests()
        .iter()
        .filter(|q| q.endpoint == "send_message")
        .map(|q| q.faults.clone())
        .collect();
    assert_eq!(faults, [vec!["server_error_after".to_string()], vec![]]);
}

#[tokio::test]
async fn uuid_makes_a_retry_after_a_late_failure_safe() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 500,
            phase: Phase::After,
        })
        .path(MESSAGES_PATH)
        .times(1),
    );
    let mut body = Sbx::text_body(RANDOM_CHAT, "once");
    body["uuid"] = json!("retry-after-500");
    let q = [("receive_id_type", "chat_id")];
    assert_eq!(s.post(&token, MESSAGES_PATH, &q, &body).await.status, 500);
    let retry = s.post(&token, MESSAGES_PATH, &q, &body).await;
    let id = retry.ok()["message_id"].as_str().unwrap().to_string();
    let stored = s.state().messages(Some(RANDOM_CHAT));
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before + 1);
    assert!(stored.iter().any(|m| m.message_id == id));
}

#[tokio::test]
async fn dropped_connection_before_the_write_stores_nothing() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::Drop {
            phase: Phase::Before,
        })
        .path(MESSAGES_PATH)
        .times(1),
    );
    let rb = s.post_builder(
        &token,
        MESSAGES_PATH,
        &[("receive_id_type", "chat_id")],
        &Sbx::text_body(RANDOM_CHAT, "dropped"),
    );
    let r = s.try_execute(rb).await;
    assert!(
        r.is_err(),
        "a dropped connection is a transport error: {r:?}"
    );
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before);
    let last = s.state().requests().pop().unwrap();
    assert_eq!((last.endpoint.as_str(), last.status), ("send_message", 0));
    assert_eq!(last.faults, ["drop"]);
    // The client recovers on the next request.
    s.send_text(&token, "chat_id", RANDOM_CHAT, "again")
        .await
        .ok();
}

#[tokio::test]
async fn dropped_connection_after_the_write_stores_the_message() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::Drop {
            phase: Phase::After,
        })
        .path(MESSAGES_PATH)
        .times(1),
    );
    let rb = s.post_builder(
        &token,
        MESSAGES_PATH,
        &[("receive_id_type", "chat_id")],
        &Sbx::text_body(RANDOM_CHAT, "dropped late"),
    );
    assert!(s.try_execute(rb).await.is_err());
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before + 1);
    let last = s.state().requests().pop().unwrap();
    assert_eq!(last.faults, ["drop_after"]);
}

// ---- latency, Lark errors, probability ------------------------------------------------------

#[tokio::test]
async fn latency_rule_delays_the_answer() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 300 })
            .path(BOT_INFO)
            .times(1),
    );
    let started = Instant::now();
    s.get(&token, BOT_INFO, &[]).await.ok();
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    let started = Instant::now();
    s.get(&token, BOT_INFO, &[]).await.ok();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "spent after one"
    );
    let faults: Vec<Vec<String>> = s
        .state()
        .requests()
        .iter()
        .filter(|q| q.endpoint == "bot_info")
        .map(|q| q.faults.clone())
        .collect();
    assert_eq!(faults, [vec!["latency".to_string()], vec![]]);
}

#[tokio::test]
async fn lark_error_rule_answers_any_envelope() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = bot_messages(&s, RANDOM_CHAT);
    s.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 230049,
            msg: "The message is being sent.".into(),
            status: 400,
        })
        .path(MESSAGES_PATH)
        .times(1),
    );
    let r = s.send_text(&token, "chat_id", RANDOM_CHAT, "busy").await;
    r.err(400, 230049);
    assert_eq!(r.json["msg"], "The message is being sent.");
    assert_eq!(bot_messages(&s, RANDOM_CHAT), before);
}

#[tokio::test]
async fn probability_zero_never_fires() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 500,
            phase: Phase::Before,
        })
        .path(BOT_INFO)
        .probability(0.0),
    );
    for _ in 0..20 {
        s.get(&token, BOT_INFO, &[]).await.ok();
    }
    let rule = &s.state().faults()[0];
    assert_eq!((rule.seen, rule.fired), (20, 0));
}

#[tokio::test]
async fn method_filter_limits_a_rule() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 503,
            phase: Phase::Before,
        })
        .method("POST")
        .path("/open-apis/contact/v3/users"),
    );
    s.get(
        &token,
        &format!("/open-apis/contact/v3/users/{ZHANG_WEI}"),
        &[],
    )
    .await
    .ok();
    let r = s
        .post(
            &token,
            BATCH_GET_ID_PATH,
            &[],
            &json!({"emails": [ZHANG_WEI_EMAIL]}),
        )
        .await;
    assert_eq!(r.status, 503);
}

// ---- the request log and counters -------------------------------------------------------

#[tokio::test]
async fn requests_are_recorded_without_secrets() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.get(
        &token,
        &format!("/open-apis/contact/v3/users/{ZHANG_WEI_UNION}"),
        &[("user_id_type", "union_id")],
    )
    .await
    .ok();
    s.get("", BOT_INFO, &[]).await.err(400, 99991661);

    let log = s.state().requests();
    assert_eq!(log.len(), 3);
    let (t, u, b) = (&log[0], &log[1], &log[2]);
    assert_eq!(t.method, "POST");
    assert_eq!(t.path, TENANT_TOKEN_PATH);
    assert_eq!(t.endpoint, "tenant_access_token_internal");
    assert_eq!(t.token_seq, None);
    assert_eq!((t.status, t.code), (200, 0));
    let body = t.body.as_ref().expect("token request body recorded");
    assert_eq!(body["app_id"], APP_ID);
    assert_eq!(body["app_secret"], "<redacted>");

    assert_eq!(u.method, "GET");
    assert_eq!(
        u.path,
        format!("/open-apis/contact/v3/users/{ZHANG_WEI_UNION}")
    );
    assert_eq!(u.query, "user_id_type=union_id");
    assert_eq!(u.endpoint, "get_user");
    assert_eq!(u.token_seq, Some(1));
    assert_eq!((u.status, u.code), (200, 0));
    assert!(u.seq > t.seq);

    assert_eq!(b.endpoint, "bot_info");
    assert_eq!(b.token_seq, None);
    assert_eq!((b.status, b.code), (400, 99991661));

    let serialized = serde_json::to_string(&log).unwrap();
    assert!(
        !serialized.contains(&token),
        "the token never reaches the log"
    );
    assert!(!serialized.contains(&token[2..]));
    assert!(
        !serialized.contains(APP_SECRET),
        "the secret never reaches the log"
    );
}

#[tokio::test]
async fn counters_count_per_endpoint_and_clear() {
    let s = Sbx::start().await;
    let token = s.token().await;
    for _ in 0..3 {
        s.get(&token, BOT_INFO, &[]).await.ok();
    }
    s.get(
        &token,
        &format!("/open-apis/contact/v3/users/{XUE_MING}"),
        &[],
    )
    .await
    .err(200, 41050);
    let st = s.state();
    assert_eq!(st.count("bot_info"), 3);
    assert_eq!(st.count("get_user"), 1);
    assert_eq!(st.count("tenant_access_token_internal"), 1);
    assert_eq!(st.count("send_message"), 0);
    let counters = st.counters();
    assert_eq!(counters.len(), 3, "{counters:?}");
    assert_eq!(counters.values().sum::<u64>(), 5);
    assert_eq!(st.requests().last().unwrap().code, 41050);

    st.clear_requests();
    assert!(st.requests().is_empty());
    assert!(st.counters().is_empty());
    assert_eq!(st.count("bot_info"), 0);
    s.get(&token, BOT_INFO, &[]).await.ok();
    assert_eq!(st.count("bot_info"), 1);
    assert_eq!(st.requests().len(), 1);
}

#[tokio::test]
async fn record_limit_trims_the_log_but_not_the_counters() {
    let s = Sbx::with_options(lark_mcp_server::sandbox::Options {
        record_limit: 3,
        ..Default::default()
    })
    .await;
    let token = s.token().await;
    for _ in 0..5 {
        s.get(&token, BOT_INFO, &[]).await.ok();
    }
    let log = s.state().requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(s.state().count("bot_info"), 5);
}

// ---- the control path over plain HTTP ---------------------------------------------------

async fn control(s: &Sbx, method: &str, path: &str, body: Option<Value>) -> Resp {
    let url = s.url(&format!("/_sandbox{path}"));
    let rb = match method {
        "GET" => s.http.get(url),
        "PUT" => s.http.put(url),
        "POST" => s.http.post(url),
        "PATCH" => s.http.patch(url),
        "DELETE" => s.http.delete(url),
        other => panic!("{other}"),
    };
    let rb = match body {
        Some(b) => rb
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => rb,
    };
    s.execute(rb).await
}

#[tokio::test]
async fn control_path_faults_and_requests_over_http() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let put = control(
        &s,
        "PUT",
        "/faults",
        Some(json!([{
            "path": BOT_INFO,
            "times": 1,
            "action": {"kind": "rate_limit", "reset_secs": 2}
        }])),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.text);
    let r = s.get(&token, BOT_INFO, &[]).await;
    r.err(429, 99991400);
    assert_eq!(r.header("x-ogw-ratelimit-limit"), Some("50"));
    assert_eq!(r.header("x-ogw-ratelimit-reset"), Some("2"));
    s.get(&token, BOT_INFO, &[]).await.ok();

    let faults = control(&s, "GET", "/faults", None).await;
    assert_eq!(faults.status, 200);
    assert_eq!(faults.json[0]["fired"], 1);
    assert_eq!(faults.json[0]["seen"], 2);
    assert_eq!(faults.json[0]["action"]["kind"], "rate_limit");

    let bad = control(
        &s,
        "POST",
        "/faults",
        Some(json!({"action": {"kind": "meteor"}})),
    )
    .await;
    assert_eq!(bad.status, 400);
    let add = control(
        &s,
        "POST",
        "/faults",
        Some(json!({"action": {"kind": "lark_error", "code": 99991663, "msg": "x"}})),
    )
    .await;
    assert_eq!(add.status, 204);
    s.get(&token, BOT_INFO, &[]).await.err(400, 99991663);
    assert_eq!(control(&s, "DELETE", "/faults", None).await.status, 204);
    assert_eq!(control(&s, "GET", "/faults", None).await.json, json!([]));
    s.get(&token, BOT_INFO, &[]).await.ok();

    let reqs = control(&s, "GET", "/requests?endpoint=bot_info", None).await;
    let list = reqs.json.as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["status"], 429);
    assert_eq!(list[0]["code"], 99991400);
    // The gateway refused it before the token was looked at.
    assert!(list[0].get("token_seq").is_none());
    assert_eq!(list[1]["token_seq"], 1);
    assert!(!reqs.text.contains(&token));
    let since = list[1]["seq"].as_u64().unwrap();
    let later = control(&s, "GET", &format!("/requests?since={since}"), None).await;
    assert_eq!(later.json.as_array().unwrap().len(), 2);

    let counters = control(&s, "GET", "/counters", None).await;
    assert_eq!(counters.json["bot_info"], 4);
    assert_eq!(counters.json["tenant_access_token_internal"], 1);
    assert_eq!(control(&s, "DELETE", "/requests", None).await.status, 204);
    assert_eq!(control(&s, "GET", "/requests", None).await.json, json!([]));
    assert_eq!(control(&s, "GET", "/counters", None).await.json, json!({}));
}

#[tokio::test]
async fn control_path_options_tokens_and_scopes_over_http() {
    let s = Sbx::start().await;
    let token = s.token().await;

    let opts = control(
        &s,
        "PATCH",
        "/options",
        Some(json!({"http200_codes": [], "send_qps_per_receiver": 0})),
    )
    .await;
    assert_eq!(opts.status, 200, "{}", opts.text);
    assert_eq!(opts.json["http200_codes"], json!([]));
    assert_eq!(opts.json["token_ttl_secs"], 7200, "other options are kept");
    let got = control(&s, "GET", "/options", None).await;
    assert_eq!(got.json["send_qps_per_receiver"], 0);
    s.get(
        &token,
        &format!("/open-apis/contact/v3/users/{XUE_MING}"),
        &[],
    )
    .await
    .err(400, 41050);
    let bad = control(&s, "PATCH", "/options", Some(json!({"no_such_option": 1}))).await;
    assert_eq!(bad.status, 400);

    let scopes = control(
        &s,
        "PUT",
        "/scopes",
        Some(json!({"revoke": ["contact:user.id:readonly"]})),
    )
    .await;
    assert_eq!(scopes.status, 200);
    let entry = scopes
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scope"] == "contact:user.id:readonly")
        .cloned()
        .unwrap();
    assert_eq!(entry["granted"], false);
    let body = json!({"emails": [ZHANG_WEI_EMAIL]});
    s.post(&token, BATCH_GET_ID_PATH, &[], &body)
        .await
        .err(400, 99991672);
    control(
        &s,
        "PUT",
        "/scopes",
        Some(json!({"grant": ["contact:user.id:readonly"]})),
    )
    .await;
    s.post(&token, BATCH_GET_ID_PATH, &[], &body).await.ok();

    let sent = s
        .send_text(&token, "chat_id", RANDOM_CHAT, "via http")
        .await;
    let id = sent.ok()["message_id"].as_str().unwrap().to_string();
    let msgs = control(&s, "GET", &format!("/messages?chat_id={RANDOM_CHAT}"), None).await;
    let list = msgs.json.as_array().unwrap();
    assert!(list.iter().all(|m| m["chat_id"] == RANDOM_CHAT));
    assert_eq!(
        list.iter()
            .filter(|m| m["message_id"] == id.as_str())
            .count(),
        1
    );
    let chats = control(&s, "GET", "/chats", None).await;
    assert_eq!(chats.json.as_array().unwrap().len(), seed().chats.len());

    let revoked = control(&s, "POST", "/tokens/revoke", None).await;
    assert_eq!(revoked.json, json!({"revoked": 1}));
    s.get(&token, BOT_INFO, &[]).await.err(400, 99991663);
    let fresh = s.token().await;
    let one = control(&s, "POST", "/tokens/revoke", Some(json!({"seq": 2}))).await;
    assert_eq!(one.json, json!({"revoked": 1}));
    s.get(&fresh, BOT_INFO, &[]).await.err(400, 99991663);
}

#[tokio::test]
async fn unknown_control_path_is_404() {
    let s = Sbx::start().await;
    let r = control(&s, "GET", "/nothing-here", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        control(&s, "GET", "/health", None).await.json,
        json!({"ok": true})
    );
}
