//! MCP over HTTP, end to end: the real binary (`serve --http --port 0`) against an
//! in-process sandbox, driven by a plain HTTP client. Streamable HTTP at `/mcp`, the legacy
//! HTTP+SSE transport at `/sse` + `/message`, `/healthz`, the bearer token, Host/Origin
//! checks, body and session limits, the fixed tool policy and the SIGTERM drain.

mod common;

use std::time::{Duration, Instant};

use common::http::{
    DEMO_APP_ID, DEMO_APP_SECRET, HttpServer, LATEST, LEGACY, LegacySession, McpClient, names,
    serve_command, structured, text,
};
use common::im::PERCEPTION_CHAT;
use common::{PERCEPTION_DEPT, Sbx, ZHANG_WEI, ZHANG_WEI_EMAIL};
use lark_mcp_server::sandbox::{FaultAction, FaultRule};
use lark_mcp_server::tools::{self, Needs};
use serde_json::{Value, json};

const TOKEN: &str = "http-test-token-5f3a9c1e7b2d4a60";

/// What a default configuration exposes against the demo org, sorted.
fn default_tools() -> Vec<String> {
    let mut v: Vec<String> = tools::catalog()
        .iter()
        .filter(|t| {
            t.meta.needs == Needs::Nothing
                && t.meta.identity.bot_capable()
                && t.meta.toolset.is_default()
        })
        .map(|t| t.meta.name.to_string())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn start(sbx: &Sbx, args: &[&str]) -> HttpServer {
    HttpServer::start(&sbx.base, args).await
}

// ---- Streamable HTTP: handshake, tools, progress ----------------------------------------

#[tokio::test]
async fn initialize_2025_11_25_opens_a_session_over_sse() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    let (id, reply) = c.initialize_reply(LATEST).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("text/event-stream"),
        "{}",
        reply.content_type()
    );
    let session = reply.header("mcp-session-id").expect("a session id");
    assert!(session.len() >= 16, "session id {session:?}");
    let result = reply.result(id);
    assert_eq!(result["protocolVersion"], LATEST);
    assert_eq!(result["serverInfo"]["name"], "lark-mcp-server");
    assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(
        result["instructions"],
        lark_mcp_server::server::INSTRUCTIONS
    );

    // The same exchange through the client: the session then serves requests.
    let result = c.connect(LATEST).await;
    assert_eq!(result["protocolVersion"], LATEST);
    assert_eq!(c.tool_names(json!({})).await.len(), default_tools().len());
}

#[tokio::test]
async fn initialize_2024_11_05_is_answered_in_kind() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    let result = c.connect(LEGACY).await;
    assert_eq!(result["protocolVersion"], LEGACY);
    // No MCP-Protocol-Version header exists in 2024-11-05; the session still works.
    assert_eq!(c.protocol.as_deref(), Some(LEGACY));
    let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(structured(&r)["open_id"], ZHANG_WEI);
}

#[tokio::test]
async fn tools_list_has_the_default_tools() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let list = c.ok("tools/list", json!({})).await;
    let got = names(&list);
    assert_eq!(got.len(), default_tools().len(), "{got:?}");
    assert_eq!(sorted(got), default_tools());
    for t in list["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{}", t["name"]);
    }
}

#[tokio::test]
async fn tools_call_get_user_returns_the_profile() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let (id, reply) = c
        .rpc(
            "tools/call",
            json!({"name": "get_user", "arguments": {"user_id": ZHANG_WEI}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // Exactly one message: the result (no notifications without a progress token).
    assert_eq!(reply.messages.len(), 1, "{}", reply.text);
    let r = reply.result(id);
    let user = structured(r);
    assert_eq!(user["open_id"], ZHANG_WEI);
    assert_eq!(user["email"], ZHANG_WEI_EMAIL);
    assert_eq!(user["status"], "active");
    let from_text: Value = serde_json::from_str(&text(r)).expect("the text block is JSON");
    assert_eq!(&from_text, user);
    assert_eq!(sbx.state().count("get_user"), 1);
}

/// The 2026-07-28 era has no initialize and no session: every request carries its version.
#[tokio::test]
async fn protocol_2026_07_28_requests_are_served_without_a_session() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let c = srv
        .mcp()
        .with_header("mcp-protocol-version", "2026-07-28")
        .with_header("mcp-method", "tools/call")
        .with_header("mcp-name", "get_user");
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "get_user", "arguments": {"user_id": ZHANG_WEI}, "_meta": meta}});
    let reply = c.send(c.post(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.header("mcp-session-id").is_none(),
        "no session in this era"
    );
    let r = reply.result(7);
    assert_eq!(r["resultType"], "complete");
    assert_eq!(structured(r)["open_id"], ZHANG_WEI);

    let list = srv
        .mcp()
        .with_header("mcp-protocol-version", "2026-07-28")
        .with_header("mcp-method", "tools/list");
    let body =
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {"_meta": meta}});
    let reply = list.send(list.post(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(sorted(names(reply.result(8))), default_tools());
    assert_eq!(reply.result(8)["cacheScope"], "public");
}

/// list_messages' chat_id is annotated `x-mcp-header: Chat-Id` (SEP-2243): a 2026-07-28
/// call carries it in `Mcp-Param-Chat-Id` too, and a missing or different header is refused
/// before the tool runs.
#[tokio::test]
async fn list_messages_chat_id_must_match_its_mcp_param_header() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let call = |id: u64, header: Option<&str>| {
        let mut c = srv
            .mcp()
            .with_header("mcp-protocol-version", "2026-07-28")
            .with_header("mcp-method", "tools/call")
            .with_header("mcp-name", "list_messages");
        if let Some(h) = header {
            c = c.with_header("mcp-param-chat-id", h);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "list_messages",
            "arguments": {"chat_id": PERCEPTION_CHAT, "page_size": 2},
            "_meta": meta.clone()}});
        async move { c.send(c.post(&body)).await }
    };

    let ok = call(1, Some(PERCEPTION_CHAT)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        structured(ok.result(1))["messages"].is_array(),
        "{}",
        ok.text
    );
    for (id, header) in [(2, None), (3, Some("oc_someone_else"))] {
        let refused = call(id, header).await;
        assert_eq!(refused.status, 400, "{header:?}: {}", refused.text);
        assert_eq!(
            refused.response(id)["error"]["code"],
            -32020,
            "{}",
            refused.text
        );
    }
    assert_eq!(
        sbx.state().count("list_messages"),
        1,
        "only the matching call ran"
    );
}

#[tokio::test]
async fn progress_token_streams_progress_before_the_result() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let (id, reply) = c
        .rpc(
            "tools/call",
            json!({
                "name": "list_department_users",
                "arguments": {"department_id": PERCEPTION_DEPT, "all_pages": true, "page_size": 2},
                "_meta": {"progressToken": "pt-42"}
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("text/event-stream"),
        "{}",
        reply.content_type()
    );
    let result_at = reply
        .messages
        .iter()
        .position(|m| m["id"] == id)
        .expect("the result is on the stream");
    assert_eq!(result_at, reply.messages.len() - 1, "the result comes last");
    let progress = reply.notifications("notifications/progress");
    assert!(progress.len() >= 2, "progress events: {}", reply.text);
    let users = structured(reply.result(id))["users"]
        .as_array()
        .expect("users")
        .len();
    // One event per page of 2, each after its page, counting up to the total.
    assert_eq!(progress.len(), users.div_ceil(2), "{}", reply.text);
    let values: Vec<f64> = progress
        .iter()
        .map(|p| {
            assert_eq!(p["params"]["progressToken"], "pt-42");
            p["params"]["progress"].as_f64().expect("numeric progress")
        })
        .collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    assert_eq!(values.last().copied(), Some(users as f64));

    // Without a progress token the same call sends no notifications.
    let (id, reply) = c
        .rpc(
            "tools/call",
            json!({
                "name": "list_department_users",
                "arguments": {"department_id": PERCEPTION_DEPT, "all_pages": true, "page_size": 2}
            }),
        )
        .await;
    assert_eq!(reply.messages.len(), 1, "{}", reply.text);
    reply.result(id);
}

/// A call's answer is streamed in pieces (priming event, then the response); without
#[tokio::test]
async fn unknown_session_id_is_404() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.session = Some("0557b1ed-7963-4b4a-8c7d-d963ffd71d2c".into());
    c.protocol = Some(LATEST.into());
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
}

#[tokio::test]
async fn idle_sessions_expire() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--session-idle-secs", "1"]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 200, "a fresh session works: {}", reply.text);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(
        reply.status, 404,
        "an idle session is closed: {}",
        reply.text
    );
}

#[tokio::test]
async fn deleted_session_is_gone() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let session = c.session.clone();
    assert_eq!(c.close().await, 200);
    c.session = session;
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
}

// ---- legacy HTTP+SSE -------------------------------------------------------------------

#[tokio::test]
async fn legacy_sse_answers_on_the_stream() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    assert!(
        s.endpoint.starts_with("/message?sessionId="),
        "{}",
        s.endpoint
    );
    assert!(s.session_id().len() >= 16, "{}", s.endpoint);

    let init = s.connect().await;
    assert_eq!(init["protocolVersion"], LEGACY);
    assert_eq!(init["serverInfo"]["name"], "lark-mcp-server");

    let (list, before) = s.request("tools/list", json!({})).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(sorted(names(&list["result"])), default_tools());

    let (call, _) = s
        .request(
            "tools/call",
            json!({"name": "get_user", "arguments": {"user_id": ZHANG_WEI}}),
        )
        .await;
    assert_eq!(structured(&call["result"])["open_id"], ZHANG_WEI);

    // Progress arrives on the stream too, before the result.
    let (call, before) = s
        .request(
            "tools/call",
            json!({
                "name": "list_department_users",
                "arguments": {"department_id": PERCEPTION_DEPT, "all_pages": true, "page_size": 2},
                "_meta": {"progressToken": 7}
            }),
        )
        .await;
    assert!(call["result"].is_object(), "{call}");
    assert!(before.len() >= 2, "{before:?}");
    assert!(
        before
            .iter()
            .all(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == 7),
        "{before:?}"
    );
}

#[tokio::test]
async fn legacy_message_needs_a_live_session() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let body = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let post = |q: &str| {
        srv.http
            .post(srv.url(&format!("/message{q}")))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let r = post("?sessionId=bfc1ff6aac883fd16b7aa7148892fc5c")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = post("").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A session whose stream the client dropped is closed.
    let s = LegacySession::open(&srv.http, &srv.base, None).await;
    let endpoint = s.endpoint.clone();
    assert_eq!(s.notify("notifications/initialized").await, 202);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let st = post(&endpoint["/message".len()..])
            .await
            .unwrap()
            .status()
            .as_u16();
        if st == 404 || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 404, "the session outlived its stream");
}

// ---- bearer token ---------------------------------------------------------------------

#[tokio::test]
async fn bearer_token_guards_mcp() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--auth-token", TOKEN]).await;
    for token in [None, Some("wrong-token-000000000000000"), Some("")] {
        let mut c = srv.mcp();
        c.token = token.map(String::from);
        let (_, reply) = c.initialize_reply(LATEST).await;
        assert_eq!(reply.status, 401, "token {token:?}: {}", reply.text);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert!(reply.header("mcp-session-id").is_none());
        assert!(!reply.text.contains(TOKEN));
    }
    // A token that only starts like the right one.
    let mut c = srv.mcp().with_token(&TOKEN[..TOKEN.len() - 1]);
    assert_eq!(c.initialize_reply(LATEST).await.1.status, 401);

    c.token = Some(TOKEN.into());
    let result = c.connect(LATEST).await;
    assert_eq!(result["protocolVersion"], LATEST);
    assert_eq!(
        c.tool_names(json!({})).await.len(),
        common::mcp::default_tools().len()
    );
    // Every request needs it, not only the first.
    c.token = None;
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    c.token = Some("wrong-token-000000000000000".into());
    assert_eq!(c.rpc("tools/list", json!({})).await.1.status, 401);
}

#[tokio::test]
async fn bearer_token_guards_sse_and_message() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--auth-token", TOKEN]).await;
    for token in [None, Some("wrong-token-000000000000000")] {
        let mut rb = srv.http.get(srv.url("/sse"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "GET /sse with {token:?}");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
    let mut s = LegacySession::open(&srv.http, &srv.base, Some(TOKEN)).await;
    let init_body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    .to_string();
    for token in [None, Some("wrong-token-000000000000000")] {
        s.token = token.map(String::from);
        let (status, body) = s.post_raw(init_body.clone()).await;
        assert_eq!(status, 401, "POST /message with {token:?}: {body}");
    }
    s.token = Some(TOKEN.into());
    let init = s.connect().await;
    assert_eq!(init["protocolVersion"], LEGACY);
    let (call, _) = s
        .request(
            "tools/call",
            json!({"name": "get_user", "arguments": {"user_id": ZHANG_WEI}}),
        )
        .await;
    assert_eq!(structured(&call["result"])["open_id"], ZHANG_WEI);
}

#[tokio::test]
async fn healthz_needs_no_token_and_reveals_nothing() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--auth-token", TOKEN]).await;
    for token in [None, Some("wrong-token-000000000000000")] {
        let mut rb = srv.http.get(srv.url("/healthz"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            v,
            json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
        );
        for secret in [TOKEN, DEMO_APP_SECRET, DEMO_APP_ID, sbx.base.as_str()] {
            assert!(!text.contains(secret), "/healthz shows {secret}: {text}");
        }
    }
}

// ---- Host and Origin --------------------------------------------------------------------

#[tokio::test]
async fn foreign_origin_and_host_are_forbidden() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &[]).await;
    let evil_host = format!("evil.example:{}", srv.port);
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("host", evil_host.as_str()),
        ("host", "evil.example"),
    ] {
        let c = srv.mcp().with_header(name, value);
        let (_, reply) = c.initialize_reply(LATEST).await;
        assert_eq!(reply.status, 403, "/mcp {name}: {value}: {}", reply.text);
        assert!(reply.header("mcp-session-id").is_none());

        let r = srv
            .http
            .get(srv.url("/sse"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "/sse {name}: {value}");
    }
    // /message too, for a live session.
    let s = LegacySession::open(&srv.http, &srv.base, None).await;
    let r = srv
        .http
        .post(srv.url(&s.endpoint))
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // A local page is welcome.
    let mut c = srv.mcp().with_header("origin", "http://localhost:1234");
    assert_eq!(c.connect(LATEST).await["protocolVersion"], LATEST);
    let r = srv
        .http
        .get(srv.url("/sse"))
        .header("origin", "http://localhost:1234")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn allowed_origin_and_host_flags_replace_the_defaults() {
    let sbx = Sbx::start().await;
    let srv = start(
        &sbx,
        &[
            "--allowed-origin",
            "http://localhost:1234",
            "--allowed-host",
            "mcp.internal",
        ],
    )
    .await;
    let host = format!("mcp.internal:{}", srv.port);
    let status = |origin: &'static str, host: Option<String>| {
        let srv = &srv;
        async move {
            let mut c = srv.mcp().with_header("origin", origin);
            if let Some(h) = &host {
                c = c.with_header("host", h);
            }
            let mcp = c.initialize_reply(LATEST).await.1.status;
            let mut rb = srv.http.get(srv.url("/sse")).header("origin", origin);
            if let Some(h) = &host {
                rb = rb.header("host", h);
            }
            let sse = rb.send().await.unwrap().status().as_u16();
            (mcp, sse)
        }
    };
    assert_eq!(
        status("http://localhost:1234", Some(host.clone())).await,
        (200, 200)
    );
    assert_eq!(
        status("http://localhost:1235", Some(host.clone())).await,
        (403, 403)
    );
    assert_eq!(
        status("http://127.0.0.1:1234", Some(host.clone())).await,
        (403, 403)
    );
    // 127.0.0.1 is no longer an allowed Host.
    assert_eq!(status("http://localhost:1234", None).await, (403, 403));
}

// ---- body size ---------------------------------------------------------------------------

fn initialize_with_padding(bytes: usize) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LATEST, "capabilities": {},
        "clientInfo": {"name": "x".repeat(bytes), "version": "0"}}})
}

#[tokio::test]
async fn oversized_body_is_413() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--max-body-bytes", "4096"]).await;
    let c = srv.mcp();
    let big = initialize_with_padding(10 * 1024);
    let reply = c.send(c.post(&big)).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(reply.header("mcp-session-id").is_none());
    // Under the limit is fine.
    let small = initialize_with_padding(3000);
    assert!(small.to_string().len() < 4096);
    let reply = c.send(c.post(&small)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    let (status, text) = s.post_raw(big.to_string()).await;
    assert_eq!(status, 413, "{text}");
    // The session survives and takes normal messages.
    let (status, _) = s.post_raw(small.to_string()).await;
    assert_eq!(status, 202);
    let m = s.sse.next_message(Duration::from_secs(10)).await;
    assert_eq!(m["id"], 1);
    assert_eq!(m["result"]["protocolVersion"], LATEST);
}

// ---- start-up refusals --------------------------------------------------------------------

async fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = serve_command("http://127.0.0.1:9", args, &[]);
    cmd.stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(15), cmd.output())
        .await
        .expect("the server exits on its own")
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn non_loopback_bind_without_token_exits_2() {
    let (code, stderr) = run_to_exit(&["--host", "0.0.0.0"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("--auth-token"), "{stderr}");
    assert!(lines[0].contains("0.0.0.0"), "{stderr}");
    assert!(!stderr.contains("MCP over HTTP"), "it must not listen");

    let (code, stderr) = run_to_exit(&["--host", "0.0.0.0", "--auth-token", "short"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("at least 16"), "{stderr}");
}

#[tokio::test]
async fn non_loopback_bind_with_token_serves() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--host", "0.0.0.0", "--auth-token", TOKEN]).await;
    assert!(srv.base.starts_with("http://0.0.0.0:"), "{}", srv.base);
    let base = format!("http://127.0.0.1:{}", srv.port);
    let mut c = McpClient::new(srv.http.clone(), &base);
    assert_eq!(c.initialize_reply(LATEST).await.1.status, 401);
    c.token = Some(TOKEN.into());
    assert_eq!(c.connect(LATEST).await["protocolVersion"], LATEST);
}

// ---- the tool policy ----------------------------------------------------------------------

#[tokio::test]
async fn requests_cannot_widen_the_tool_policy() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--exclude-tools", "get_users"]).await;
    let mut expected = default_tools();
    expected.retain(|t| t != "get_users");

    let mut c = srv
        .mcp()
        .with_path("/mcp?tools=get_users&toolsets=all&exclude_tools=&read_only=false")
        .with_header("x-lark-tools", "get_users")
        .with_header("x-lark-toolsets", "all")
        .with_header("x-lark-mcp-tools", "get_users")
        .with_header("x-lark-exclude-tools", "");
    let (id, reply) = c
        .rpc(
            "initialize",
            json!({
                "protocolVersion": LATEST,
                "capabilities": {"experimental": {"lark": {"tools": ["get_users"], "toolsets": "all"}}},
                "clientInfo": {"name": "widen", "version": "0"},
                "tools": ["get_users"],
                "toolsets": "all",
                "_meta": {"tools": ["get_users"], "toolsets": "all"}
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.result(id);
    c.session = reply.header("mcp-session-id").map(String::from);
    c.protocol = Some(LATEST.into());
    assert_eq!(c.initialized().await, 202);

    for params in [
        json!({}),
        json!({"tools": ["get_users"], "toolsets": ["all"], "exclude_tools": []}),
        json!({"include": "get_users", "_meta": {"tools": "get_users", "toolsets": "all"}}),
    ] {
        let got = sorted(c.tool_names(params.clone()).await);
        assert_eq!(got, expected, "tools/list {params}");
        assert!(!got.contains(&"get_users".to_string()));
    }

    let r = c.call("get_users", json!({"user_ids": [ZHANG_WEI]})).await;
    assert_eq!(r["isError"], true, "{r}");
    let msg = text(&r);
    assert!(msg.contains("not available"), "{msg}");
    assert!(msg.contains("excluded"), "{msg}");
    assert_eq!(sbx.state().count("batch_get_users"), 0);
    // get_user is still there.
    let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(structured(&r)["open_id"], ZHANG_WEI);

    // The legacy transport too.
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    s.endpoint.push_str("&tools=get_users&toolsets=all");
    s.connect().await;
    let (list, _) = s
        .request("tools/list", json!({"tools": ["get_users"]}))
        .await;
    assert_eq!(sorted(names(&list["result"])), expected);
}

// ---- session cap ----------------------------------------------------------------------------

#[tokio::test]
async fn session_cap_answers_503() {
    let sbx = Sbx::start().await;
    let srv = start(&sbx, &["--max-sessions", "2"]).await;
    let mut a = srv.mcp();
    let mut b = srv.mcp();
    a.connect(LATEST).await;
    b.connect(LATEST).await;
    let c = srv.mcp();
    let (_, reply) = c.initialize_reply(LATEST).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(reply.header("mcp-session-id").is_none());
    let r = srv.http.get(srv.url("/sse")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "a legacy session counts too");
    // Open sessions keep working.
    assert_eq!(
        a.tool_names(json!({})).await.len(),
        common::mcp::default_tools().len()
    );
    // Closing one frees a slot.
    assert_eq!(a.close().await, 200);
    let mut c = srv.mcp();
    assert_eq!(c.connect(LATEST).await["protocolVersion"], LATEST);
    let (_, reply) = srv.mcp().initialize_reply(LATEST).await;
    assert_eq!(reply.status, 503);
}

// ---- SIGTERM -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_call_and_exits_0() {
    let sbx = Sbx::start().await;
    let mut srv = start(&sbx, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 1500 })
            .path("/open-apis/contact")
            .times(1),
    );
    let started = Instant::now();
    let call = tokio::spawn(async move {
        let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call should still be in flight");
    srv.sigterm();

    let (r, took) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call completes")
        .expect("the call task");
    assert_eq!(structured(&r)["open_id"], ZHANG_WEI, "{r}");
    assert!(took >= Duration::from_millis(1500), "took {took:?}");

    let status = srv
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "still running 5 s after SIGTERM; stderr:\n{}",
                srv.log.text()
            )
        });
    assert_eq!(status.code(), Some(0), "stderr:\n{}", srv.log.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_legacy_call_and_exits_0() {
    let sbx = Sbx::start().await;
    let mut srv = start(&sbx, &[]).await;
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    s.connect().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 1500 })
            .path("/open-apis/contact")
            .times(1),
    );
    let started = Instant::now();
    let call = tokio::spawn(async move {
        let (r, _) = s
            .request(
                "tools/call",
                json!({"name": "get_user", "arguments": {"user_id": ZHANG_WEI}}),
            )
            .await;
        // After the answer the stream ends: the server closes the session to shut down.
        let end = s.sse.next(Duration::from_secs(5)).await;
        (r, started.elapsed(), end)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call should still be in flight");
    srv.sigterm();

    let (r, took, end) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call completes")
        .expect("the call task");
    assert_eq!(structured(&r["result"])["open_id"], ZHANG_WEI, "{r}");
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
    assert_eq!(end, None, "the stream ends after the drain");

    let status = srv
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "still running 5 s after SIGTERM; stderr:\n{}",
                srv.log.text()
            )
        });
    assert_eq!(status.code(), Some(0), "stderr:\n{}", srv.log.text());
}
