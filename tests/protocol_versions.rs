//! Every transport with every protocol revision it serves, end to end against the real
//! binary: list the tools, call one with progress, grant a scope at the sandbox and hear
//! `notifications/tools/list_changed`, and receive the server's own log events the way the
//! revision asks for them.
//!
//! - stdio: 2024-11-05, 2025-06-18 and 2025-11-25 sessions; 2026-07-28 stateless;
//! - Streamable HTTP (`/mcp`): 2025-06-18 and 2025-11-25 sessions; 2026-07-28 stateless;
//! - legacy HTTP+SSE (`/sse`, deprecated): 2024-11-05.
//!
//! Sessions set `logging/setLevel` and hear of the scope change on the session. 2026-07-28
//! has no session: list_changed arrives on a `subscriptions/listen` stream, tagged with its
//! subscription id, and log events only on the response stream of a request that asked.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::http::{HttpServer, LegacySession, McpClient, Reply, SseStream, names};
use common::mcp::{Stderr, serve_command};
use common::{ALL_HANDS_CHAT, PERCEPTION_DEPT, RANDOM_CHAT, Sbx, ZHANG_WEI, seed};
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Phase, Seed};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const WAIT: Duration = Duration::from_secs(10);
const STATELESS: &str = "2026-07-28";
/// Not granted at start; granting it shows `lookup_user_by_email`.
const USER_ID_SCOPE: &str = "contact:user.id:readonly";
const GATED_TOOL: &str = "lookup_user_by_email";
/// Scopes are re-read every second, so a grant shows within about one.
const SERVE_ARGS: &[&str] = &["--scope-refresh-secs", "1"];

/// The demo org with the user-id scope enabled but not granted.
fn seed_ungranted() -> Seed {
    let mut s = seed();
    if let Some(entry) = s.scopes.iter_mut().find(|x| x.scope == USER_ID_SCOPE) {
        entry.granted = false;
    }
    s
}

/// `_meta` a 2026-07-28 request carries, merged with `extra` (progress token, log level).
fn stateless_meta(extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "protocol-tests", "version": "0"}
    });
    if let (Some(m), Value::Object(e)) = (meta.as_object_mut(), extra) {
        m.extend(e);
    }
    meta
}

fn is_method(m: &Value, method: &str) -> bool {
    m["method"] == method
}

/// One connection, whatever its transport.
trait Conn {
    /// Whether requests are 2026-07-28 stateless (they carry `_meta`, no session).
    fn stateless(&self) -> bool;
    /// Sends a request; returns its response and the messages that came before it on the
    /// same stream (progress, log messages).
    async fn rpc(&mut self, method: &str, params: Value) -> (Value, Vec<Value>);
    /// Waits for a message the server sends on its own (on the session, or on the
    /// subscription stream); earlier ones that do not match are kept for later waits.
    async fn unsolicited(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value;
    /// 2026-07-28: opens `subscriptions/listen` for tool list changes; the acknowledgement.
    async fn listen(&mut self, notifications: Value) -> Value;
    /// What arrived unasked and has not been waited for yet.
    fn kept(&self) -> &[Value];
}

/// The acknowledgement of subscription `id`, tagged with it.
async fn acknowledgement(c: &mut impl Conn, id: u64) -> Value {
    let ack = c
        .unsolicited("the subscription acknowledgement", |m| {
            is_method(m, "notifications/subscriptions/acknowledged")
        })
        .await;
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id,
        "{ack}"
    );
    ack
}

/// What a subscription asks for: `notifications`, a filter.
fn listen_params(c: &impl Conn, notifications: Value) -> Value {
    params_for(c, json!({ "notifications": notifications }))
}

/// Adds `_meta` for stateless connections; keeps any `_meta` already there.
fn params_for(c: &impl Conn, mut params: Value) -> Value {
    if c.stateless() {
        let extra = params
            .as_object_mut()
            .and_then(|p| p.remove("_meta"))
            .unwrap_or(json!({}));
        params["_meta"] = stateless_meta(extra);
    }
    params
}

async fn list(c: &mut impl Conn) -> Vec<String> {
    let params = params_for(c, json!({}));
    let (resp, _) = c.rpc("tools/list", params).await;
    names(&resp["result"])
}

async fn prompt_names(c: &mut impl Conn) -> Vec<String> {
    let params = params_for(c, json!({}));
    let (resp, _) = c.rpc("prompts/list", params).await;
    resp["result"]["prompts"]
        .as_array()
        .unwrap_or_else(|| panic!("no prompts in {resp}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The whole exercise; the same assertions for every transport and revision.
async fn exercise(c: &mut impl Conn, sbx: &Sbx) {
    // 1. list: the gated tool is hidden until its scope is granted.
    let before = list(c).await;
    assert!(before.iter().any(|t| t == "get_user"), "{before:?}");
    assert!(!before.iter().any(|t| t == GATED_TOOL), "{before:?}");

    // 2. a paged call with a progress token: progress first, counting up, then the result.
    let params = params_for(
        c,
        json!({
            "name": "list_department_users",
            "arguments": {"department_id": PERCEPTION_DEPT, "all_pages": true, "page_size": 2},
            "_meta": {"progressToken": "pt-1"}
        }),
    );
    let (resp, earlier) = c.rpc("tools/call", params).await;
    assert_eq!(resp["result"]["isError"], false, "{resp}");
    let users = resp["result"]["structuredContent"]["users"]
        .as_array()
        .map_or(0, Vec::len);
    let progress: Vec<f64> = earlier
        .iter()
        .filter(|m| is_method(m, "notifications/progress"))
        .map(|m| {
            assert_eq!(m["params"]["progressToken"], "pt-1", "{m}");
            m["params"]["progress"].as_f64().unwrap_or(-1.0)
        })
        .collect();
    assert_eq!(progress.len(), users.div_ceil(2), "{earlier:?}");
    assert!(progress.len() >= 2, "{earlier:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");

    // 3. ask to hear of changes: a subscription (2026) or a log level (sessions).
    let subscription = if c.stateless() {
        let ack = c
            .listen(json!({"toolsListChanged": true, "promptsListChanged": true}))
            .await;
        assert!(
            is_method(&ack, "notifications/subscriptions/acknowledged"),
            "{ack}"
        );
        assert_eq!(
            ack["params"]["notifications"]["toolsListChanged"], true,
            "{ack}"
        );
        let id = ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone();
        assert!(
            !id.is_null(),
            "the acknowledgement names its subscription: {ack}"
        );
        Some(id)
    } else {
        let (resp, _) = c.rpc("logging/setLevel", json!({"level": "info"})).await;
        assert_eq!(resp["result"], json!({}), "{resp}");
        None
    };

    // Prompts follow their tools: who_is needs lookup_user_by_email.
    let prompts_before = prompt_names(c).await;
    assert!(
        !prompts_before.iter().any(|p| p == "who_is"),
        "{prompts_before:?}"
    );

    // 4. grant the scope at the sandbox: the change is announced, the tool appears.
    sbx.state().set_scopes(&[USER_ID_SCOPE.into()], &[]);
    let changed = c
        .unsolicited("tools/list_changed", |m| {
            is_method(m, "notifications/tools/list_changed")
        })
        .await;
    match &subscription {
        Some(id) => assert_eq!(
            &changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id,
            "{changed}"
        ),
        None => {
            let log = c
                .unsolicited("the scope change as a log message", |m| {
                    is_method(m, "notifications/message")
                        && m["params"]["data"]
                            .as_str()
                            .is_some_and(|d| d.contains("visible tools changed"))
                })
                .await;
            assert_eq!(log["params"]["level"], "info", "{log}");
        }
    }
    let prompts_changed = c
        .unsolicited("prompts/list_changed", |m| {
            is_method(m, "notifications/prompts/list_changed")
        })
        .await;
    if let Some(id) = &subscription {
        assert_eq!(
            &prompts_changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id,
            "{prompts_changed}"
        );
    }
    let after = list(c).await;
    assert!(after.iter().any(|t| t == GATED_TOOL), "{after:?}");
    let prompts_after = prompt_names(c).await;
    assert!(
        prompts_after.iter().any(|p| p == "who_is"),
        "{prompts_after:?}"
    );

    // 5. log messages for one request, only when it asks (2026-07-28).
    if c.stateless() {
        stateless_logging(c, sbx).await;
    }
}

/// A retried Lark call logs a warning: sent on the call's own stream when the request asks
/// for warnings, and not at all when it does not.
async fn stateless_logging(c: &mut impl Conn, sbx: &Sbx) {
    let call = |c: &mut _, log_level: Option<&str>| {
        let mut meta = json!({});
        if let Some(l) = log_level {
            meta["io.modelcontextprotocol/logLevel"] = json!(l);
        }
        params_for(
            c,
            json!({"name": "get_user", "arguments": {"user_id": ZHANG_WEI}, "_meta": meta}),
        )
    };
    let fail_once = || {
        sbx.state().add_fault(
            FaultRule::new(FaultAction::ServerError {
                status: 500,
                phase: Phase::default(),
            })
            .path("/open-apis/contact/v3/users/")
            .times(1),
        );
    };
    fail_once();
    let params = call(c, Some("warning"));
    let (resp, earlier) = c.rpc("tools/call", params).await;
    assert_eq!(resp["result"]["isError"], false, "{resp}");
    let logs: Vec<&Value> = earlier
        .iter()
        .filter(|m| is_method(m, "notifications/message"))
        .collect();
    assert!(
        logs.iter().any(|m| m["params"]["level"] == "warning"
            && m["params"]["data"]
                .as_str()
                .is_some_and(|d| d.contains("retrying Lark call"))),
        "{earlier:?}"
    );

    fail_once();
    let params = call(c, None);
    let (resp, earlier) = c.rpc("tools/call", params).await;
    assert_eq!(resp["result"]["isError"], false, "{resp}");
    assert!(
        !earlier
            .iter()
            .any(|m| is_method(m, "notifications/message")),
        "no log level asked, no log messages: {earlier:?}"
    );
}

// ---- stdio ------------------------------------------------------------------------------

struct StdioConn {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Stderr,
    stateless: bool,
    next_id: u64,
    /// Messages read while waiting for something else.
    kept: Vec<Value>,
}

impl StdioConn {
    async fn start(sbx: &Sbx, args: &[&str]) -> StdioConn {
        let mut cmd = serve_command(&sbx.base, args, &[]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("the server starts");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = Stderr::default();
        stderr.collect(child.stderr.take().expect("stderr"));
        StdioConn {
            _child: child,
            stdin,
            lines,
            stderr,
            stateless: false,
            next_id: 1,
            kept: Vec::new(),
        }
    }

    /// A session opened with `initialize` at `version`.
    async fn session(sbx: &Sbx, version: &str) -> StdioConn {
        StdioConn::session_with(sbx, version, SERVE_ARGS).await
    }

    async fn session_with(sbx: &Sbx, version: &str, args: &[&str]) -> StdioConn {
        let mut c = StdioConn::start(sbx, args).await;
        let (resp, _) = c
            .rpc(
                "initialize",
                json!({"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "protocol-tests", "version": "0"}}),
            )
            .await;
        assert_eq!(resp["result"]["protocolVersion"], version, "{resp}");
        c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        c
    }

    async fn send(&mut self, msg: &Value) {
        let line = format!("{msg}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("stdin is open");
    }

    async fn read(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}")),
            other => panic!(
                "no message from the server ({other:?}); stderr:\n{}",
                self.stderr.text()
            ),
        }
    }
}

impl Conn for StdioConn {
    fn stateless(&self) -> bool {
        self.stateless
    }

    async fn rpc(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let mut earlier = Vec::new();
        loop {
            let m = self.read().await;
            if m["id"] == id && m.get("method").is_none() {
                self.kept.extend(earlier.iter().cloned());
                return (m, earlier);
            }
            earlier.push(m);
        }
    }

    async fn unsolicited(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.kept.iter().position(&matches) {
            return self.kept.remove(i);
        }
        loop {
            let m = tokio::time::timeout(WAIT, self.read())
                .await
                .unwrap_or_else(|_| panic!("no {what}; kept {:?}", self.kept));
            if matches(&m) {
                return m;
            }
            self.kept.push(m);
        }
    }

    fn kept(&self) -> &[Value] {
        &self.kept
    }

    async fn listen(&mut self, notifications: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let params = listen_params(self, notifications);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params}))
            .await;
        acknowledgement(self, id).await
    }
}

#[tokio::test]
async fn stdio_2024_11_05_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    exercise(&mut StdioConn::session(&sbx, "2024-11-05").await, &sbx).await;
}

#[tokio::test]
async fn stdio_2025_06_18_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    exercise(&mut StdioConn::session(&sbx, "2025-06-18").await, &sbx).await;
}

#[tokio::test]
async fn stdio_2025_11_25_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    let mut c = StdioConn::session(&sbx, "2025-11-25").await;
    exercise(&mut c, &sbx).await;
    // Without the events toolset nothing is watched, and subscribing is not offered.
    let uri = messages_uri(ALL_HANDS_CHAT);
    let (resp, _) = c.rpc("resources/subscribe", json!({"uri": uri})).await;
    assert_eq!(resp["error"]["code"], -32601, "{resp}");
}

#[tokio::test]
async fn stdio_2026_07_28_stateless() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    let mut c = StdioConn::start(&sbx, SERVE_ARGS).await;
    c.stateless = true;
    // No handshake: server/discover says what the server is and does.
    let params = params_for(&c, json!({}));
    let (resp, _) = c.rpc("server/discover", params).await;
    let result = &resp["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == STATELESS)),
        "{resp}"
    );
    // Exactly what it does: no resource subscriptions, no tasks, no skills.
    assert_eq!(
        result["capabilities"],
        json!({
            "logging": {},
            "completions": {},
            "prompts": {"listChanged": true},
            "resources": {"listChanged": true},
            "tools": {"listChanged": true}
        }),
        "{resp}"
    );
    assert_eq!(result["cacheScope"], "public", "{resp}");
    assert!(result["ttlMs"].as_u64().is_some_and(|t| t > 0), "{resp}");
    exercise(&mut c, &sbx).await;
}

// ---- Streamable HTTP --------------------------------------------------------------------

struct HttpConn {
    srv: HttpServer,
    client: McpClient,
    stateless: bool,
    /// The session's GET stream, or the subscription's POST stream.
    stream: Option<SseStream>,
    kept: Vec<Value>,
}

impl HttpConn {
    async fn start(sbx: &Sbx, args: &[&str]) -> HttpConn {
        // A long drain, so that a shutdown that waited on an open subscription would show.
        let args: Vec<&str> = args.iter().copied().chain(["--drain-secs", "60"]).collect();
        let srv = HttpServer::start(&sbx.base, &args).await;
        let client = srv.mcp();
        HttpConn {
            srv,
            client,
            stateless: false,
            stream: None,
            kept: Vec::new(),
        }
    }

    /// A session at `version`, with its GET stream open for what the server sends alone.
    async fn session(sbx: &Sbx, version: &str) -> HttpConn {
        let mut c = HttpConn::start(sbx, SERVE_ARGS).await;
        let init = c.client.connect(version).await;
        assert_eq!(init["protocolVersion"], version, "{init}");
        let resp = c
            .client
            .request(reqwest::Method::GET)
            .send()
            .await
            .expect("GET /mcp completes");
        assert_eq!(resp.status().as_u16(), 200, "the session's GET stream");
        c.stream = Some(SseStream::new(resp));
        c
    }

    async fn stateless(sbx: &Sbx) -> HttpConn {
        HttpConn::stateless_with(sbx, SERVE_ARGS).await
    }

    async fn stateless_with(sbx: &Sbx, args: &[&str]) -> HttpConn {
        let mut c = HttpConn::start(sbx, args).await;
        c.stateless = true;
        c.client.protocol = Some(STATELESS.into());
        c
    }

    /// A POST with the 2026-07-28 routing headers when stateless.
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut rb = self.client.post(body);
        if self.stateless {
            if let Some(m) = body["method"].as_str() {
                rb = rb.header("mcp-method", m);
            }
            let params = &body["params"];
            if let Some(n) = params["name"].as_str().or(params["uri"].as_str()) {
                rb = rb.header("mcp-name", n);
            }
        }
        rb
    }
}

fn all_messages(reply: &Reply) -> Vec<Value> {
    reply.messages.clone()
}

impl Conn for HttpConn {
    fn stateless(&self) -> bool {
        self.stateless
    }

    async fn rpc(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.client.next_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = self.client.send(self.post(&body)).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.text);
        assert_eq!(
            reply.header("mcp-session-id").is_some(),
            !self.stateless && method == "initialize",
            "stateless requests get no session: {:?}",
            reply.headers
        );
        let mut messages = all_messages(&reply);
        let at = messages
            .iter()
            .position(|m| m["id"] == id && m.get("method").is_none())
            .unwrap_or_else(|| panic!("{method}: no response in {}", reply.text));
        let resp = messages.remove(at);
        (resp, messages)
    }

    async fn unsolicited(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.kept.iter().position(&matches) {
            return self.kept.remove(i);
        }
        let stream = self.stream.as_mut().expect("a stream to wait on");
        loop {
            // rmcp's events carry no `event:` field; a priming event has no data.
            let event = stream
                .next(WAIT)
                .await
                .unwrap_or_else(|| panic!("no {what}; kept {:?}", self.kept));
            let m = event.json();
            if m.is_null() {
                continue;
            }
            if matches(&m) {
                return m;
            }
            self.kept.push(m);
        }
    }

    fn kept(&self) -> &[Value] {
        &self.kept
    }

    async fn listen(&mut self, notifications: Value) -> Value {
        let id = self.client.next_id();
        let params = listen_params(self, notifications);
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params});
        let resp = self
            .post(&body)
            .send()
            .await
            .expect("the listen POST completes");
        assert_eq!(resp.status().as_u16(), 200, "subscriptions/listen");
        assert!(resp.headers().get("mcp-session-id").is_none());
        self.stream = Some(SseStream::new(resp));
        acknowledgement(self, id).await
    }
}

#[tokio::test]
async fn http_2025_06_18_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    exercise(&mut HttpConn::session(&sbx, "2025-06-18").await, &sbx).await;
}

#[tokio::test]
async fn http_2025_11_25_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    exercise(&mut HttpConn::session(&sbx, "2025-11-25").await, &sbx).await;
}

#[tokio::test]
async fn http_2026_07_28_stateless() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    let mut c = HttpConn::stateless(&sbx).await;
    exercise(&mut c, &sbx).await;
    // Methods 2026-07-28 removed are unknown (404, -32601), whatever their params.
    for method in ["initialize", "ping", "logging/setLevel"] {
        let id = c.client.next_id();
        let params = params_for(&c, json!({}));
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = c.client.send(c.post(&body)).await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.text);
        assert_eq!(reply.response(id)["error"]["code"], -32601, "{method}");
    }
    // SIGTERM ends the open subscription with its final result at once, instead of the
    // drain waiting on a stream that never ends by itself.
    c.srv.sigterm();
    let end = c
        .unsolicited("the subscription's final result", |m| {
            m.get("method").is_none() && m.get("result").is_some()
        })
        .await;
    assert!(end["id"].is_number(), "{end}");
    let exit = c.srv.wait_exit(Duration::from_secs(20)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "exits well before the 60 s drain: {exit:?}"
    );
}

// ---- legacy HTTP+SSE --------------------------------------------------------------------

struct LegacyConn {
    _srv: HttpServer,
    session: LegacySession,
    kept: Vec<Value>,
}

impl Conn for LegacyConn {
    fn stateless(&self) -> bool {
        false
    }

    async fn rpc(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let (resp, earlier) = self.session.request(method, params).await;
        self.kept.extend(earlier.iter().cloned());
        (resp, earlier)
    }

    async fn unsolicited(&mut self, _what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.kept.iter().position(&matches) {
            return self.kept.remove(i);
        }
        loop {
            let m = self.session.sse.next_message(WAIT).await;
            if m.is_null() {
                continue; // a priming event, no message
            }
            if matches(&m) {
                return m;
            }
            self.kept.push(m);
        }
    }

    fn kept(&self) -> &[Value] {
        &self.kept
    }

    async fn listen(&mut self, _notifications: Value) -> Value {
        unreachable!("2024-11-05 has sessions")
    }
}

#[tokio::test]
async fn legacy_sse_2024_11_05_session() {
    let sbx = Sbx::with_seed(seed_ungranted()).await;
    let srv = HttpServer::start(&sbx.base, SERVE_ARGS).await;
    let mut session = LegacySession::open(&srv.http, &srv.base, None).await;
    let init = session.connect().await;
    assert_eq!(init["protocolVersion"], "2024-11-05");
    let mut c = LegacyConn {
        _srv: srv,
        session,
        kept: Vec::new(),
    };
    exercise(&mut c, &sbx).await;
}

// ---- a chat's messages as a resource that changes ---------------------------------------

/// With the events toolset: messages arrive over the sandbox's long connection.
const EVENTS_ARGS: &[&str] = &["--toolsets", "messages,events,meta"];

fn messages_uri(chat: &str) -> String {
    format!("lark://chats/{chat}/messages")
}

/// A person posts `text` to `chat` (the sandbox stores it and pushes the event).
async fn someone_posts(sbx: &Sbx, chat: &str, text: &str) {
    let sender = sbx
        .state()
        .chats()
        .iter()
        .find(|c| c.chat_id == chat)
        .and_then(|c| c.members.first().cloned())
        .expect("the chat has members");
    let r = sbx
        .http
        .post(sbx.url("/_sandbox/incoming"))
        .json(&json!({"chat_id": chat, "sender": sender, "text": text}))
        .send()
        .await
        .expect("incoming");
    assert!(r.status().is_success(), "{}", r.status());
}

async fn long_connection_up(sbx: &Sbx) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while sbx.state().ws_stats().live == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never opened its long connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_update_of(m: &Value, uri: &str) -> bool {
    is_method(m, "notifications/resources/updated") && m["params"]["uri"] == uri
}

/// Subscribed to one chat's messages: a message there is announced (and a message
/// elsewhere is not), and reading the resource shows it.
async fn watch_messages(c: &mut impl Conn, sbx: &Sbx, subscription: Option<&Value>) {
    let watched = messages_uri(ALL_HANDS_CHAT);
    let other = messages_uri(RANDOM_CHAT);
    let params = params_for(c, json!({}));
    let (resp, _) = c.rpc("resources/templates/list", params).await;
    let templates = resp["result"]["resourceTemplates"].to_string();
    assert!(
        templates.contains("lark://chats/{chat_id}/messages"),
        "{resp}"
    );

    long_connection_up(sbx).await;
    // The other chat first: were it announced, it would come before the watched one.
    someone_posts(sbx, RANDOM_CHAT, "lunch?").await;
    someone_posts(sbx, ALL_HANDS_CHAT, "release at 5").await;
    let update = c
        .unsolicited("the watched chat's update", |m| is_update_of(m, &watched))
        .await;
    if let Some(id) = subscription {
        assert_eq!(
            &update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id,
            "{update}"
        );
    }
    assert!(
        !c.kept().iter().any(|m| is_update_of(m, &other)),
        "no update for a chat nobody watches: {:?}",
        c.kept()
    );
    let params = params_for(c, json!({"uri": watched}));
    let (resp, _) = c.rpc("resources/read", params).await;
    let text = resp["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no contents: {resp}"));
    let read: Value = serde_json::from_str(text).expect("the contents are JSON");
    assert_eq!(read["messages"].as_array().map_or(0, Vec::len), 1, "{read}");
    assert_eq!(read["messages"][0]["text"], "release at 5", "{read}");
    // One connection per process, whatever the sessions and streams (Lark counts per app).
    assert_eq!(sbx.state().ws_stats().live, 1);
}

#[tokio::test]
async fn stdio_session_subscribes_to_a_chats_messages() {
    let sbx = Sbx::start().await;
    let mut c = StdioConn::session_with(&sbx, "2025-11-25", EVENTS_ARGS).await;
    let watched = messages_uri(ALL_HANDS_CHAT);
    // Only chats' messages change: anything else is refused, with the URI.
    for bad in [
        "lark://users/ou_x",
        "lark://chats/oc_x",
        "lark://chats/ou_x/messages",
    ] {
        let (resp, _) = c.rpc("resources/subscribe", json!({"uri": bad})).await;
        assert_eq!(resp["error"]["code"], -32602, "{bad}: {resp}");
        assert_eq!(resp["error"]["data"]["uri"], bad, "{resp}");
    }
    let (resp, _) = c.rpc("resources/subscribe", json!({"uri": watched})).await;
    assert_eq!(resp["result"], json!({}), "{resp}");
    watch_messages(&mut c, &sbx, None).await;

    // Unsubscribed, it hears no more of that chat; now watching the other one, it hears
    // of that (posted after, so anything about the first would have come before).
    let (resp, _) = c
        .rpc("resources/unsubscribe", json!({"uri": watched}))
        .await;
    assert_eq!(resp["result"], json!({}), "{resp}");
    let other = messages_uri(RANDOM_CHAT);
    let (resp, _) = c.rpc("resources/subscribe", json!({"uri": other})).await;
    assert_eq!(resp["result"], json!({}), "{resp}");
    someone_posts(&sbx, ALL_HANDS_CHAT, "again").await;
    someone_posts(&sbx, RANDOM_CHAT, "tacos").await;
    c.unsolicited("the other chat's update", |m| is_update_of(m, &other))
        .await;
    assert!(
        !c.kept().iter().any(|m| is_update_of(m, &watched)),
        "{:?}",
        c.kept()
    );
}

#[tokio::test]
async fn stateless_listen_hears_of_a_chats_messages() {
    let sbx = Sbx::start().await;
    let mut c = HttpConn::stateless_with(&sbx, EVENTS_ARGS).await;
    let params = params_for(&c, json!({}));
    let (resp, _) = c.rpc("server/discover", params).await;
    assert_eq!(
        resp["result"]["capabilities"]["resources"]["subscribe"], true,
        "{resp}"
    );
    let watched = messages_uri(ALL_HANDS_CHAT);
    // Of the URIs asked for, the ack names those that are watched.
    let ack = c
        .listen(json!({"resourceSubscriptions": [watched, "lark://users/ou_x"]}))
        .await;
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!([watched]),
        "{ack}"
    );
    let id = ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone();
    watch_messages(&mut c, &sbx, Some(&id)).await;
}
