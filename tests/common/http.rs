//! The real `lark-mcp-server` binary serving MCP over HTTP (`serve --http --port 0`), and a
//! small hand-written MCP-over-HTTP client: Streamable HTTP at `/mcp` (answers in
//! `application/json` or `text/event-stream`, parsed here) and the legacy HTTP+SSE transport
//! (`GET /sse` + `POST /message?sessionId=…`).
//!
//! Self-contained (no `super::` items), so `benches/http.rs` includes it by path.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");

/// The demo app of the default seed (public test values).
pub const DEMO_APP_ID: &str = "cli_a5f2c8e91b3d4007";
pub const DEMO_APP_SECRET: &str = "sbx_7Qm2Vn9Lr4Tx8Kp1Wd6Hs3Jc5Fb0Ga";

/// The protocol revision current clients speak, and the one the legacy SSE transport speaks.
pub const LATEST: &str = "2025-11-25";
pub const LEGACY: &str = "2024-11-05";

/// What the server logs once it listens; the URL follows.
const LISTENING: &str = "MCP over HTTP on ";

// ---- the server process ---------------------------------------------------------------------

/// Everything the child wrote to stderr so far, and whether the pipe has closed.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<(String, bool)>>);

impl Log {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    pub fn closed(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn collect(&self, pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
        let buf = self.0.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                b.0.push_str(&line);
                b.0.push('\n');
            }
            buf.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        });
    }
}

/// `lark-mcp-server serve --http --port 0 --domain <domain> <args>` with the demo app's
/// credentials and a clean environment (no LARK_* or RUST_LOG from the caller). Logs at
/// `warn`, except the server's own `info` lines (the listening URL). Killed on drop.
pub fn serve_command(domain: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--http", "--port", "0", "--domain", domain])
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LARK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("LARK_APP_ID", DEMO_APP_ID)
        .env("LARK_APP_SECRET", DEMO_APP_SECRET)
        .env("RUST_LOG", "warn,lark_mcp_server=info")
        .env("XDG_CACHE_HOME", fresh_cache_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `http://127.0.0.1:PORT` from the "MCP over HTTP on http://127.0.0.1:PORT/mcp" log line.
pub fn listening_url(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains(LISTENING))?;
    let url = line[line.find(LISTENING)? + LISTENING.len()..]
        .split_whitespace()
        .next()?;
    Some(url.strip_suffix("/mcp")?.to_string())
}

/// A running `serve --http`; the child is killed when this is dropped.
pub struct HttpServer {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
    pub log: Log,
    pub http: reqwest::Client,
}

impl HttpServer {
    /// `serve --http --port 0 --domain <domain> <args>`; waits (≤ 15 s) for the URL.
    pub async fn start(domain: &str, args: &[&str]) -> HttpServer {
        HttpServer::start_env(domain, args, &[]).await
    }

    pub async fn start_env(domain: &str, args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let mut child = serve_command(domain, args, env)
            .spawn()
            .expect("the server binary starts");
        let pid = child.id().expect("the child has a pid");
        let log = Log::default();
        log.collect(child.stderr.take().expect("stderr is piped"));
        let deadline = Instant::now() + Duration::from_secs(15);
        let base = loop {
            if let Some(url) = listening_url(&log.text()) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Let the reader drain what the child wrote before it exited.
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!(
                    "serve --http exited ({status}) before listening; stderr:\n{}",
                    log.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "serve --http did not log its URL within 15 s; stderr:\n{}",
                log.text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {base}"));
        HttpServer {
            child,
            pid,
            base,
            port,
            log,
            http: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A Streamable HTTP client for `/mcp` sharing this server's reqwest client.
    pub fn mcp(&self) -> McpClient {
        McpClient::new(self.http.clone(), &self.base)
    }

    /// `kill -TERM <pid>`.
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// The exit status, if the child exits within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|r| r.expect("wait on the child"))
    }

    /// The exit status if the child has exited already (does not wait).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits (≤ `within`) until the server has logged `needle`; panics otherwise.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the server did not log {needle:?} within {within:?}; stderr:\n{}",
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn fd_count(&self) -> usize {
        fd_count(self.pid)
    }

    pub fn rss_kb(&self) -> u64 {
        status_kb(self.pid, "VmRSS:")
    }
}

/// A client that never goes through a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Open file descriptors of a process (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`).
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many of a process's descriptors are TCP sockets whose remote port is `remote_port`
/// (e.g. its keep-alive pool to the sandbox), from `/proc/PID/fd` and `/proc/PID/net/tcp{,6}`.
pub fn sockets_to(pid: u32, remote_port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(String::from)
        })
        .collect();
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let rport = cols[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if rport == Some(remote_port) && inodes.contains(cols[9]) {
                n += 1;
            }
        }
    }
    n
}

// ---- a gate in front of Lark ------------------------------------------------------------

/// A pass-through proxy in front of an upstream (the sandbox) that holds every request whose
/// path starts with a prefix until [`Gate::open`]: a Lark call provably in flight for as long
/// as a test needs, however loaded the machine.
pub struct Gate {
    /// `http://127.0.0.1:PORT`, to pass as the server's `--domain`.
    pub base: String,
    arrived: Arc<AtomicU64>,
    open: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct GateInner {
    upstream: String,
    prefix: String,
    arrived: Arc<AtomicU64>,
    open: tokio::sync::watch::Receiver<bool>,
    http: reqwest::Client,
}

impl Gate {
    pub async fn start(upstream: &str, prefix: &str) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the gate binds a loopback port");
        let base = format!(
            "http://{}",
            listener.local_addr().expect("the gate's address")
        );
        let (open, open_rx) = tokio::sync::watch::channel(false);
        let arrived = Arc::new(AtomicU64::new(0));
        let inner = Arc::new(GateInner {
            upstream: upstream.to_string(),
            prefix: prefix.to_string(),
            arrived: arrived.clone(),
            open: open_rx,
            http: client(),
        });
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let inner = inner.clone();
            async move { inner.forward(req).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gate {
            base,
            arrived,
            open,
            task,
        }
    }

    /// Requests that reached the gate with the held prefix so far.
    pub fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Waits (≤ `within`) until `n` held requests have arrived; panics otherwise.
    pub async fn wait_arrived(&self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.arrived() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests reached the gate within {within:?}",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the held requests, and every later one, through.
    pub fn open(&self) {
        let _ = self.open.send(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GateInner {
    async fn forward(&self, req: axum::extract::Request) -> axum::response::Response {
        use axum::http::header;
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        if parts.uri.path().starts_with(&self.prefix) {
            self.arrived.fetch_add(1, Ordering::SeqCst);
            let _ = self.open.clone().wait_for(|open| *open).await;
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut rb = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.upstream))
            .body(body);
        for (k, v) in &parts.headers {
            if k != header::HOST && k != header::CONTENT_LENGTH {
                rb = rb.header(k, v);
            }
        }
        let mut resp = axum::response::Response::new(axum::body::Body::empty());
        match rb.send().await {
            Ok(r) => {
                *resp.status_mut() = r.status();
                for (k, v) in r.headers() {
                    if k != header::TRANSFER_ENCODING
                        && k != header::CONTENT_LENGTH
                        && k != header::CONNECTION
                    {
                        resp.headers_mut().append(k, v.clone());
                    }
                }
                *resp.body_mut() = axum::body::Body::from(r.bytes().await.unwrap_or_default());
            }
            Err(_) => *resp.status_mut() = axum::http::StatusCode::BAD_GATEWAY,
        }
        resp
    }
}

// ---- SSE --------------------------------------------------------------------------------------

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON (Null when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Parses a `text/event-stream` body: `field: value` lines, events ended by a blank line,
/// `data` lines joined with `\n`, comments (`:`) ignored. A trailing event without the
/// blank line is kept.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut cur = SseEvent::default();
    let mut data: Vec<String> = Vec::new();
    let mut has_fields = false;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            if has_fields {
                cur.data = data.join("\n");
                events.push(std::mem::take(&mut cur));
                data.clear();
                has_fields = false;
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        has_fields = true;
        match field {
            "data" => data.push(value.to_string()),
            "event" => cur.event = Some(value.to_string()),
            "id" => cur.id = Some(value.to_string()),
            _ => {}
        }
    }
    if has_fields {
        cur.data = data.join("\n");
        events.push(cur);
    }
    events
}

/// A live `text/event-stream` read event by event (`Response::chunk`).
pub struct SseStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    pending: VecDeque<SseEvent>,
}

impl SseStream {
    pub fn new(resp: reqwest::Response) -> SseStream {
        SseStream {
            resp,
            buf: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// The next event; `None` when the stream ended. Panics after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no SSE event within {within:?}"));
            match chunk {
                Ok(Some(bytes)) => {
                    self.buf
                        .extend(bytes.iter().copied().filter(|b| *b != b'\r'));
                    while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                        let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                        let text = String::from_utf8_lossy(&block);
                        self.pending.extend(parse_sse(&text));
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next `message` event's JSON, skipping other events. Panics at the end or after `within`.
    pub async fn next_message(&mut self, within: Duration) -> Value {
        loop {
            let e = self
                .next(within)
                .await
                .expect("the SSE stream ended before a message");
            if e.event.as_deref() == Some("message") {
                return e.json();
            }
        }
    }
}

// ---- Streamable HTTP (/mcp) ----------------------------------------------------------------

/// One HTTP answer from `/mcp`, read completely, with its JSON-RPC messages (one for
/// `application/json`, one per non-empty `data` for `text/event-stream`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub events: Vec<SseEvent>,
    pub messages: Vec<Value>,
}

impl Reply {
    pub async fn read(r: reqwest::Response) -> Result<Reply, reqwest::Error> {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await?;
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let (events, messages) = if ct.starts_with("text/event-stream") {
            let events = parse_sse(&text);
            let messages = events
                .iter()
                .filter(|e| !e.data.trim().is_empty())
                .map(SseEvent::json)
                .collect();
            (events, messages)
        } else if ct.starts_with("application/json") {
            (
                Vec::new(),
                serde_json::from_str(&text)
                    .map(|v| vec![v])
                    .unwrap_or_default(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Reply {
            status,
            headers,
            text,
            events,
            messages,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// The JSON-RPC response (result or error) with this id; panics when absent.
    #[track_caller]
    pub fn response(&self, id: u64) -> &Value {
        self.messages
            .iter()
            .find(|m| m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
            .unwrap_or_else(|| {
                panic!(
                    "no response to id {id} in HTTP {}: {}",
                    self.status, self.text
                )
            })
    }

    /// The `result` of the response with this id; panics on an error or none.
    #[track_caller]
    pub fn result(&self, id: u64) -> &Value {
        let r = self.response(id);
        assert!(
            r.get("result").is_some(),
            "expected a result for id {id}, got: {r}"
        );
        &r["result"]
    }

    /// Notifications with this method, in order.
    pub fn notifications(&self, method: &str) -> Vec<&Value> {
        self.messages
            .iter()
            .filter(|m| m["method"] == method && m.get("id").is_none())
            .collect()
    }
}

/// A hand-written MCP client for `/mcp`: one session, sequential ids.
pub struct McpClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub session: Option<String>,
    /// Negotiated protocol version (sent as `MCP-Protocol-Version` from 2025-06-18 on).
    pub protocol: Option<String>,
    /// The path requests go to (`/mcp`, possibly with a query).
    pub path: String,
    /// Extra headers on every request.
    pub extra: Vec<(String, String)>,
    next_id: AtomicU64,
}

impl McpClient {
    pub fn new(http: reqwest::Client, base: &str) -> McpClient {
        McpClient {
            http,
            base: base.to_string(),
            token: None,
            session: None,
            protocol: None,
            path: "/mcp".into(),
            extra: Vec::new(),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn with_token(mut self, token: &str) -> McpClient {
        self.token = Some(token.to_string());
        self
    }

    pub fn with_path(mut self, path: &str) -> McpClient {
        self.path = path.to_string();
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> McpClient {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A request to `/mcp` with the MCP headers (Accept, session, protocol, token, extras).
    pub fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, self.path))
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = &self.session {
            rb = rb.header("mcp-session-id", s);
        }
        if let Some(p) = self.protocol.as_deref().filter(|p| *p >= "2025-06-18") {
            rb = rb.header("mcp-protocol-version", p);
        }
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in &self.extra {
            rb = rb.header(k, v);
        }
        rb
    }

    /// POST of one JSON-RPC message (any body: it may be invalid on purpose).
    pub fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let r = rb.send().await.expect("the request completes");
        Reply::read(r).await.expect("the answer is read")
    }

    /// Sends a request; returns its id and the whole answer (whatever the status).
    pub async fn rpc(&self, method: &str, params: Value) -> (u64, Reply) {
        let id = self.next_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        (id, self.send(self.post(&body)).await)
    }

    /// A request that must succeed over HTTP 200; its `result`.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let (id, reply) = self.rpc(method, params).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.text);
        reply.result(id).clone()
    }

    /// `initialize` with this protocol version (no session yet); the whole answer.
    pub async fn initialize_reply(&self, version: &str) -> (u64, Reply) {
        self.rpc(
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "http-tests", "version": "0"}
            }),
        )
        .await
    }

    /// `initialize`; keeps the session id and the negotiated version; returns the result.
    pub async fn initialize(&mut self, version: &str) -> Value {
        let (id, reply) = self.initialize_reply(version).await;
        assert_eq!(reply.status, 200, "initialize: {}", reply.text);
        let result = reply.result(id).clone();
        self.session = Some(
            reply
                .header("mcp-session-id")
                .unwrap_or_else(|| panic!("initialize: no mcp-session-id header: {reply:?}"))
                .to_string(),
        );
        self.protocol = result["protocolVersion"].as_str().map(String::from);
        result
    }

    /// `notifications/initialized`; its HTTP status (202 expected).
    pub async fn initialized(&self) -> u16 {
        let body = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.send(self.post(&body)).await.status
    }

    /// `initialize` + `notifications/initialized`.
    pub async fn connect(&mut self, version: &str) -> Value {
        let result = self.initialize(version).await;
        let status = self.initialized().await;
        assert_eq!(status, 202, "notifications/initialized");
        result
    }

    /// The tool names tools/list returns, in order.
    pub async fn tool_names(&self, params: Value) -> Vec<String> {
        names(&self.ok("tools/list", params).await)
    }

    /// tools/call; the CallToolResult JSON (over HTTP 200).
    pub async fn call(&self, name: &str, args: Value) -> Value {
        self.ok("tools/call", json!({"name": name, "arguments": args}))
            .await
    }

    /// DELETE the session; its HTTP status (200: the session is gone).
    pub async fn close(&mut self) -> u16 {
        let r = self
            .request(reqwest::Method::DELETE)
            .send()
            .await
            .expect("DELETE completes");
        self.session = None;
        r.status().as_u16()
    }
}

/// `tools[].name` of a tools/list result.
pub fn names(list_result: &Value) -> Vec<String> {
    list_result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {list_result}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The structured content of a successful CallToolResult; panics on `isError`.
#[track_caller]
pub fn structured(result: &Value) -> &Value {
    assert_eq!(
        result["isError"],
        Value::Bool(false),
        "the call should succeed: {result}"
    );
    &result["structuredContent"]
}

/// The text blocks of a CallToolResult, joined.
pub fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

// ---- legacy HTTP+SSE (/sse + /message) --------------------------------------------------

/// A legacy SSE session: the open `GET /sse` stream and the endpoint to POST to.
pub struct LegacySession {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    /// `/message?sessionId=…` as announced.
    pub endpoint: String,
    pub sse: SseStream,
    next_id: u64,
}

pub const EVENT_WAIT: Duration = Duration::from_secs(10);

impl LegacySession {
    /// `GET /sse` (must answer 200 `text/event-stream`); reads the `endpoint` event.
    pub async fn open(http: &reqwest::Client, base: &str, token: Option<&str>) -> LegacySession {
        let mut rb = http
            .get(format!("{base}/sse"))
            .header("accept", "text/event-stream");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.expect("GET /sse completes");
        assert_eq!(resp.status().as_u16(), 200, "GET /sse");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "GET /sse type: {ct}");
        let mut sse = SseStream::new(resp);
        let first = sse
            .next(EVENT_WAIT)
            .await
            .expect("the stream starts with an event");
        assert_eq!(
            first.event.as_deref(),
            Some("endpoint"),
            "first event: {first:?}"
        );
        LegacySession {
            http: http.clone(),
            base: base.to_string(),
            token: token.map(String::from),
            endpoint: first.data,
            sse,
            next_id: 1,
        }
    }

    /// The session id in the endpoint.
    pub fn session_id(&self) -> &str {
        self.endpoint
            .split_once("sessionId=")
            .map(|(_, id)| id)
            .unwrap_or("")
    }

    /// POST of a raw body to the endpoint; status and text.
    pub async fn post_raw(&self, body: String) -> (u16, String) {
        let mut rb = self
            .http
            .post(format!("{}{}", self.base, self.endpoint))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.expect("POST /message completes");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// POSTs a notification; its HTTP status.
    pub async fn notify(&self, method: &str) -> u16 {
        self.post_raw(json!({"jsonrpc": "2.0", "method": method}).to_string())
            .await
            .0
    }

    /// POSTs a request (must be 202 Accepted) and reads its response from the stream;
    /// returns it with the messages that came before it.
    pub async fn request(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (status, text) = self.post_raw(body.to_string()).await;
        assert_eq!(status, 202, "POST {method}: {text}");
        let mut before = Vec::new();
        loop {
            let m = self.sse.next_message(EVENT_WAIT).await;
            if m["id"] == id {
                return (m, before);
            }
            before.push(m);
        }
    }

    /// `initialize` (2024-11-05) + `notifications/initialized`; the initialize result.
    pub async fn connect(&mut self) -> Value {
        let (r, _) = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": LEGACY,
                    "capabilities": {},
                    "clientInfo": {"name": "http-tests", "version": "0"}
                }),
            )
            .await;
        assert_eq!(self.notify("notifications/initialized").await, 202);
        r["result"].clone()
    }
}

/// A cache directory of its own for one spawned server: the scopes it keeps for the next
/// start are per app and sandbox URL, and a reused port must not hand one test's scope set
/// to another. Tests that watch the cache pass their own XDG_CACHE_HOME.
pub fn fresh_cache_home() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cache")
        .join(format!("{}-{n}", std::process::id()))
}
