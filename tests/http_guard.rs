//! The guard every HTTP request passes, end to end against the real binary: only `/mcp`
//! itself reaches rmcp, the session cap holds under concurrency and across both transports,
//! Host/Origin rules are the same on every route, the body limit covers every route (the
//! limit on chunked bodies is a unit test of the guard), SIGTERM
//! refuses new work while the call in flight still gets its answer, and legacy session ids
//! are unguessable.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::http::{Gate, HttpServer, LATEST, LegacySession, McpClient, Reply, structured};
use common::{Sbx, ZHANG_WEI};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

fn initialize_body(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": LATEST, "capabilities": {},
        "clientInfo": {"name": "guard-tests", "version": "0"}}})
}

/// A 503 of the guard: a JSON-RPC error, and no session.
#[track_caller]
fn assert_refused_session(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(reply.header("mcp-session-id").is_none(), "{reply:?}");
    let m = reply.messages.first().expect("a JSON-RPC body");
    assert_eq!(m["jsonrpc"], "2.0", "{m}");
    assert!(m["error"]["code"].is_i64(), "{m}");
}

// ---- only /mcp reaches rmcp -----------------------------------------------------------------

#[tokio::test]
async fn paths_under_mcp_are_404_and_open_no_session() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--max-sessions", "1"]).await;
    for path in ["/mcp/", "/mcp/x", "/mcp/mcp", "/mcpx"] {
        for _ in 0..3 {
            let c = srv.mcp().with_path(path);
            let (_, reply) = c.initialize_reply(LATEST).await;
            assert_eq!(reply.status, 404, "POST {path}: {}", reply.text);
            assert!(reply.header("mcp-session-id").is_none(), "{path}");
        }
        let r = srv
            .http
            .get(srv.url(path))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("GET completes");
        assert_eq!(r.status().as_u16(), 404, "GET {path}");
    }
    // None of them took the one slot.
    let mut c = srv.mcp();
    assert_eq!(c.connect(LATEST).await["protocolVersion"], LATEST);
}

// ---- the session cap --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_initializes_open_exactly_the_cap() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--max-sessions", "1"]).await;
    let replies = futures::future::join_all((0..20).map(|_| {
        let c = srv.mcp();
        async move { c.initialize_reply(LATEST).await }
    }))
    .await;
    let mut opened = Vec::new();
    for (id, reply) in &replies {
        match reply.status {
            200 => {
                reply.result(*id);
                opened.push(
                    reply
                        .header("mcp-session-id")
                        .expect("a session id")
                        .to_string(),
                );
            }
            _ => {
                assert_refused_session(reply);
                assert_eq!(reply.messages[0]["id"], *id, "the error names the request");
            }
        }
    }
    assert_eq!(opened.len(), 1, "sessions opened: {opened:?}");

    // The cap stays full until that session is deleted, then frees at once.
    assert_refused_session(&srv.mcp().initialize_reply(LATEST).await.1);
    let mut winner = srv.mcp();
    winner.session = opened.pop();
    winner.protocol = Some(LATEST.into());
    assert_eq!(
        winner.tool_names(json!({})).await.len(),
        common::mcp::default_tools().len()
    );
    assert_eq!(winner.close().await, 200);
    let mut next = srv.mcp();
    assert_eq!(next.connect(LATEST).await["protocolVersion"], LATEST);
    assert_refused_session(&srv.mcp().initialize_reply(LATEST).await.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_transports_share_one_cap() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--max-sessions", "1"]).await;
    let get_sse = || {
        srv.http
            .get(srv.url("/sse"))
            .header("accept", "text/event-stream")
            .send()
    };

    // A Streamable HTTP session keeps /sse out…
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let r = get_sse().await.expect("GET /sse completes");
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.expect("a JSON-RPC body");
    assert!(body["error"]["code"].is_i64(), "{body}");
    assert_eq!(c.close().await, 200);

    // …and a legacy session keeps /mcp out, until its stream is dropped.
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    s.connect().await;
    assert_refused_session(&srv.mcp().initialize_reply(LATEST).await.1);
    assert_eq!(get_sse().await.expect("GET /sse").status().as_u16(), 503);
    drop(s);
    let deadline = Instant::now() + WAIT;
    let mut c = srv.mcp();
    loop {
        let (id, reply) = c.initialize_reply(LATEST).await;
        if reply.status == 200 {
            reply.result(id);
            c.session = reply.header("mcp-session-id").map(String::from);
            break;
        }
        assert_refused_session(&reply);
        assert!(
            Instant::now() < deadline,
            "the slot of a dropped legacy stream was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.close().await, 200);

    // Opening both ways at once still opens one session.
    let inits = futures::future::join_all((0..10).map(|_| {
        let c = srv.mcp();
        async move { c.initialize_reply(LATEST).await.1 }
    }));
    let streams = futures::future::join_all((0..10).map(|_| get_sse()));
    let (inits, streams) = tokio::join!(inits, streams);
    let streams: Vec<reqwest::Response> = streams
        .into_iter()
        .map(|r| r.expect("GET /sse completes"))
        .collect();
    let mcp_ok = inits.iter().filter(|r| r.status == 200).count();
    let sse_ok = streams.iter().filter(|r| r.status() == 200).count();
    assert_eq!(mcp_ok + sse_ok, 1, "{mcp_ok} + {sse_ok} sessions opened");
    for r in inits.iter().filter(|r| r.status != 200) {
        assert_refused_session(r);
    }
    assert!(
        streams
            .iter()
            .all(|r| r.status() == 200 || r.status() == 503)
    );
}

#[tokio::test]
async fn an_expired_session_frees_its_slot() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(
        &sbx.base,
        &["--max-sessions", "1", "--session-idle-secs", "1"],
    )
    .await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (id, reply) = srv.mcp().initialize_reply(LATEST).await;
        if reply.status == 200 {
            reply.result(id);
            break;
        }
        assert_refused_session(&reply);
        assert!(
            Instant::now() < deadline,
            "the slot of an idle session was not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "the old session expired: {}", reply.text);
}

/// Only opening a session takes a slot: with the cap reached, requests outside any session
/// are still served (or refused for their own reasons), not 503.
#[tokio::test]
async fn requests_outside_sessions_do_not_count() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--max-sessions", "1"]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;

    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let stateless = srv
        .mcp()
        .with_header("mcp-protocol-version", "2026-07-28")
        .with_header("mcp-method", "tools/list");
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}});
    let reply = stateless.send(stateless.post(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.result(3)["tools"].as_array().map(Vec::len),
        Some(common::mcp::default_tools().len())
    );

    let (_, reply) = srv.mcp().rpc("tools/list", json!({})).await;
    assert!(
        reply.status != 503 && reply.status != 200,
        "no session, no initialize: {} {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        c.tool_names(json!({})).await.len(),
        common::mcp::default_tools().len()
    );
}

// ---- Host and Origin ------------------------------------------------------------------------

/// Every route, with extra headers; the statuses in the order mcp, sse, message, healthz, 404.
async fn statuses(http: &reqwest::Client, base: &str, extra: &[(&str, &str)]) -> Vec<u16> {
    let with = |mut rb: reqwest::RequestBuilder| {
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        rb
    };
    let mut c = McpClient::new(http.clone(), base);
    for (k, v) in extra {
        c = c.with_header(k, v);
    }
    let mcp = c.initialize_reply(LATEST).await.1.status;
    let sse = with(
        http.get(format!("{base}/sse"))
            .header("accept", "text/event-stream"),
    )
    .send()
    .await
    .expect("GET /sse")
    .status()
    .as_u16();
    // A live session to post into, opened without the extra headers.
    let s = LegacySession::open(http, base, None).await;
    let message = with(
        http.post(format!("{base}{}", s.endpoint))
            .header("content-type", "application/json")
            .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()),
    )
    .send()
    .await
    .expect("POST /message")
    .status()
    .as_u16();
    let healthz = with(http.get(format!("{base}/healthz")))
        .send()
        .await
        .expect("GET /healthz")
        .status()
        .as_u16();
    let unknown = with(http.get(format!("{base}/nothing-here")))
        .send()
        .await
        .expect("GET /nothing-here")
        .status()
        .as_u16();
    vec![mcp, sse, message, healthz, unknown]
}

#[tokio::test]
async fn host_and_origin_rules_are_the_same_on_every_route() {
    let sbx = Sbx::start().await;
    // 127.0.0.1 only on port 1 (not the port it listens on), localhost on any port.
    let srv = HttpServer::start(
        &sbx.base,
        &[
            "--allowed-host",
            "localhost",
            "--allowed-host",
            "127.0.0.1:1",
            "--allowed-origin",
            "http://localhost:3000",
        ],
    )
    .await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", srv.port).parse().unwrap();
    // Requests to http://localhost:PORT, reaching the server on 127.0.0.1.
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("localhost", addr)
        .build()
        .expect("client");
    let base = format!("http://localhost:{}", srv.port);

    let welcome = vec![200, 200, 202, 200, 404];
    assert_eq!(statuses(&http, &base, &[]).await, welcome);
    assert_eq!(
        statuses(&http, &base, &[("origin", "http://localhost:3000")]).await,
        welcome
    );
    assert_eq!(
        statuses(&http, &base, &[("host", "127.0.0.1:1")]).await,
        welcome,
        "a rule's port is matched against the Host's port, not the socket's"
    );

    let port = srv.port.to_string();
    let here = format!("127.0.0.1:{port}");
    let evil = format!("evil.example:{port}");
    let forbidden = vec![403; 5];
    for (name, value) in [
        ("host", here.as_str()),
        ("host", "127.0.0.1"),
        ("host", evil.as_str()),
        ("host", "localhost.evil.example"),
        ("origin", "http://localhost:3001"),
        ("origin", "http://localhost"),
        ("origin", "https://localhost:3000"),
        ("origin", "http://evil.example:3000"),
        ("origin", "null"),
    ] {
        assert_eq!(
            statuses(&http, &base, &[(name, value)]).await,
            forbidden,
            "{name}: {value}"
        );
    }
}

/// HTTP/2 sends no Host header, only `:authority`: it is checked all the same.
#[tokio::test]
async fn the_host_of_an_http2_request_is_its_authority() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", srv.port).parse().unwrap();
    let h2 = |resolve: Option<&str>| {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .http2_prior_knowledge();
        if let Some(name) = resolve {
            b = b.resolve(name, addr);
        }
        b.build().expect("client")
    };
    let local = h2(None);
    let r = local.get(srv.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status().as_u16(), 200);
    let mut c = McpClient::new(local, &srv.base);
    assert_eq!(c.connect(LATEST).await["protocolVersion"], LATEST);

    let evil = h2(Some("evil.example"));
    let base = format!("http://evil.example:{}", srv.port);
    let r = evil.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status().as_u16(), 403);
    let (_, reply) = McpClient::new(evil, &base).initialize_reply(LATEST).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
}

#[tokio::test]
async fn healthz_needs_no_token_but_a_good_host() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--auth-token", "guard-test-token-0123456789"]).await;
    let get = |host: Option<&str>| {
        let mut rb = srv.http.get(srv.url("/healthz"));
        if let Some(h) = host {
            rb = rb.header("host", h);
        }
        rb.send()
    };
    assert_eq!(get(None).await.unwrap().status().as_u16(), 200);
    assert_eq!(
        get(Some("evil.example")).await.unwrap().status().as_u16(),
        403
    );
    // Other paths need the token, unknown ones included.
    let r = srv.http.get(srv.url("/nothing-here")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

// ---- body size --------------------------------------------------------------------------------

#[tokio::test]
async fn the_body_limit_covers_every_route() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--max-body-bytes", "1024"]).await;
    let big = "x".repeat(4096);
    let s = LegacySession::open(&srv.http, &srv.base, None).await;
    for (method, path) in [
        (reqwest::Method::POST, "/mcp".to_string()),
        (reqwest::Method::POST, s.endpoint.clone()),
        (reqwest::Method::GET, "/healthz".to_string()),
        (reqwest::Method::POST, "/nothing-here".to_string()),
    ] {
        let r = srv
            .http
            .request(method.clone(), srv.url(&path))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(big.clone())
            .send()
            .await
            .expect("the request completes");
        assert_eq!(r.status().as_u16(), 413, "{method} {path}");
    }
    // A small body still gets through.
    let c = srv.mcp();
    let reply = c.send(c.post(&initialize_body(1))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

// ---- SIGTERM ----------------------------------------------------------------------------------

/// After SIGTERM: no new connection, no new session, but the call already running (held at a
/// gate in front of the sandbox until the checks are done) still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_work_and_still_answers_the_call_in_flight() {
    let sbx = Sbx::start().await;
    let gate = Gate::start(&sbx.base, "/open-apis/contact").await;
    // A drain bound far beyond the test: the gate, not the clock, decides when the call ends.
    let mut srv = HttpServer::start(&gate.base, &["--drain-secs", "600"]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    s.connect().await;

    let call = tokio::spawn(async move {
        let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
        (c, r)
    });
    gate.wait_arrived(1, WAIT).await;
    srv.sigterm();
    srv.wait_for_log("signal received; draining", WAIT).await;

    // New connections end up refused; anything answered before is a 503 without a session.
    let deadline = Instant::now() + WAIT;
    loop {
        let fresh = common::http::client();
        match McpClient::new(fresh.clone(), &srv.base)
            .post(&initialize_body(1))
            .send()
            .await
        {
            Err(e) if e.is_connect() => break,
            Err(_) => {}
            Ok(r) => {
                let connection = r
                    .headers()
                    .get("connection")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_ascii_lowercase);
                let reply = Reply::read(r).await.expect("the answer is read");
                assert_refused_session(&reply);
                assert_eq!(connection.as_deref(), Some("close"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "the listener still accepts connections after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", srv.port)).await;
    assert!(refused.is_err(), "a TCP connect after SIGTERM was accepted");
    // Requests on the connections already open get no session either.
    for _ in 0..3 {
        match srv.mcp().post(&initialize_body(1)).send().await {
            Err(_) => {}
            Ok(r) => assert_refused_session(&Reply::read(r).await.expect("read")),
        }
        match srv.http.get(srv.url("/sse")).send().await {
            Err(_) => {}
            Ok(r) => assert_eq!(r.status().as_u16(), 503),
        }
    }
    // All of this happened during the drain: the call is still held, the server still up.
    assert!(!call.is_finished(), "the call ended before the gate opened");
    assert!(
        srv.exited().is_none(),
        "the server exited before the gate opened"
    );

    gate.open();
    let (_c, r) = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call completes once the gate opens")
        .expect("the call task");
    assert_eq!(structured(&r)["open_id"], ZHANG_WEI, "{r}");
    // The legacy session is closed by the shutdown: its stream ends.
    assert_eq!(s.sse.next(WAIT).await, None, "the legacy stream ends");

    let status = srv
        .wait_exit(WAIT)
        .await
        .unwrap_or_else(|| panic!("still running after the drain; stderr:\n{}", srv.log.text()));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", srv.log.text());
    assert_eq!(sbx.state().count("get_user"), 1);
}

// ---- legacy session ids ---------------------------------------------------------------------

#[tokio::test]
async fn legacy_session_ids_are_128_bit_hex_and_distinct() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let mut ids = HashSet::new();
    let mut open = Vec::new();
    for _ in 0..32 {
        let s = LegacySession::open(&srv.http, &srv.base, None).await;
        let id = s.session_id().to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert!(ids.insert(id.clone()), "{id} handed out twice");
        open.push(s);
    }
    // The id is the session: another one is 404.
    let r = srv
        .http
        .post(srv.url(&format!("/message?sessionId={}", "0".repeat(32))))
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
