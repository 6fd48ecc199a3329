//! The real `lark-mcp-server` binary, spawned with `serve` against an in-process sandbox and
//! driven over stdio by rmcp's client — or, for wire-level tests, by hand.
//!
//! [`McpServer`] owns the child process (killed on drop), records the notifications the
//! client receives ([`Events`]) and collects the child's stderr.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, ProgressNotificationParam, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use lark_mcp_server::tools::{self, Needs};

use super::{APP_ID, APP_SECRET, Sbx};

pub const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");

/// The `contact` and `meta` toolsets (`--toolsets contact,meta`), sorted by name.
pub const CONTACT_META_TOOLS: [&str; 12] = [
    "find_people",
    "get_app_status",
    "get_contact_scope",
    "get_department",
    "get_department_path",
    "get_user",
    "get_users",
    "list_department_users",
    "list_departments",
    "list_user_group_members",
    "list_user_groups",
    "lookup_user_by_email",
];

/// `serve` flags that select the contact and meta toolsets only.
pub const CONTACT_META: [&str; 2] = ["--toolsets", "contact,meta"];

/// What a default configuration exposes against the demo org (whose app has every scope
/// the tools need) with nobody signed in: every bot tool of the default toolsets that needs
/// no operator setting such as an upload or download directory, sorted by name.
pub fn default_tools() -> Vec<String> {
    tools::catalog()
        .iter()
        .filter(|t| {
            t.meta.needs == Needs::Nothing
                && t.meta.identity.bot_capable()
                && t.meta.toolset.is_default()
        })
        .map(|t| t.meta.name.to_string())
        .collect()
}

/// [`default_tools`] under `--read-only`: the tools that only read.
pub fn read_only_tools() -> Vec<String> {
    tools::catalog()
        .iter()
        .filter(|t| {
            t.meta.needs == Needs::Nothing
                && t.meta.read_only
                && t.meta.identity.bot_capable()
                && t.meta.toolset.is_default()
        })
        .map(|t| t.meta.name.to_string())
        .collect()
}

/// What the server sent besides responses.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub progress: Vec<ProgressNotificationParam>,
    pub tool_list_changed: usize,
    /// The messages of the confirmations the server asked for.
    pub elicitations: Vec<String>,
}

/// How the client answers a confirmation, like a person would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Answer {
    /// Declares elicitation and accepts (the default: a person who says yes).
    #[default]
    Accept,
    Decline,
    Cancel,
    /// A client without elicitation.
    CannotAsk,
}

/// A client handler that records notifications and answers confirmations.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Seen>>, Arc<Mutex<Answer>>);

impl Events {
    pub fn with_answer(answer: Answer) -> Events {
        Events(Arc::default(), Arc::new(Mutex::new(answer)))
    }

    /// How later confirmations are answered (a client declared elicitation or not at start).
    pub fn answer(&self, answer: Answer) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = answer;
    }

    pub fn snapshot(&self) -> Seen {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Polls until `cond` holds or `within` passes; returns the last snapshot either way.
    pub async fn wait_for(&self, within: Duration, cond: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + within;
        loop {
            let s = self.snapshot();
            if cond(&s) || Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl ClientHandler for Events {
    fn get_info(&self) -> ClientConfig {
        let answer = *self.1.lock().unwrap_or_else(|e| e.into_inner());
        let caps = if answer == Answer::CannotAsk {
            ClientCapabilities::default()
        } else {
            ClientCapabilities::builder().enable_elicitation().build()
        };
        ClientConfig::new(caps, Implementation::new("lark-mcp-tests", "0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elicitations
                .push(message);
        }
        let action = match *self.1.lock().unwrap_or_else(|e| e.into_inner()) {
            Answer::Accept => ElicitationAction::Accept,
            Answer::Decline => ElicitationAction::Decline,
            _ => ElicitationAction::Cancel,
        };
        Ok(ElicitResult::new(action))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .progress
            .push(params);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tool_list_changed += 1;
    }
}

/// Everything the child wrote to stderr so far (and whether the pipe has closed).
#[derive(Clone, Default)]
pub struct Stderr(Arc<Mutex<(String, bool)>>);

impl Stderr {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Waits until the child closed stderr (it exited), at most `within`; returns the text.
    pub async fn complete(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while !self.0.lock().unwrap_or_else(|e| e.into_inner()).1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.text()
    }

    /// Lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }

    pub fn collect(&self, pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
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

/// `lark-mcp-server serve --domain <sandbox>` with the demo app's credentials, a clean
/// environment (no LARK_* from the caller) and logs at `info` unless `env` says otherwise.
pub fn serve_command(
    base_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("serve").arg("--domain").arg(base_url).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LARK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("LARK_APP_ID", APP_ID)
        .env("LARK_APP_SECRET", APP_SECRET)
        .env("RUST_LOG", "info")
        .env("XDG_CACHE_HOME", super::http::fresh_cache_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// A running server with an initialised rmcp client session.
pub struct McpServer {
    pub client: RunningService<RoleClient, Events>,
    pub events: Events,
    pub stderr: Stderr,
    pub pid: u32,
}

impl McpServer {
    /// `serve` with `args` against this sandbox.
    pub async fn start(sbx: &Sbx, args: &[&str]) -> McpServer {
        McpServer::start_env(sbx, args, &[]).await
    }

    pub async fn start_env(sbx: &Sbx, args: &[&str], env: &[(&str, &str)]) -> McpServer {
        McpServer::start_with(sbx, args, env, Events::default()).await
    }

    /// With a client that answers confirmations as `events` says.
    pub async fn start_with(
        sbx: &Sbx,
        args: &[&str],
        env: &[(&str, &str)],
        events: Events,
    ) -> McpServer {
        let cmd = serve_command(&sbx.base, args, env);
        let (transport, stderr_pipe) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let pid = transport.id().expect("the child has a pid");
        let stderr = Stderr::default();
        if let Some(pipe) = stderr_pipe {
            stderr.collect(pipe);
        }
        let client =
            match tokio::time::timeout(Duration::from_secs(10), events.clone().serve(transport))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => panic!("MCP initialize failed: {e}; stderr:\n{}", stderr.text()),
                Err(_) => panic!("MCP initialize timed out; stderr:\n{}", stderr.text()),
            };
        McpServer {
            client,
            events,
            stderr,
            pid,
        }
    }

    pub async fn tools(&self) -> Vec<Tool> {
        self.client
            .peer()
            .list_all_tools()
            .await
            .unwrap_or_else(|e| panic!("tools/list failed: {e}; stderr:\n{}", self.stderr.text()))
    }

    /// The names tools/list returns, in its order.
    pub async fn tool_names(&self) -> Vec<String> {
        self.tools()
            .await
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// tools/call; a JSON-RPC error panics (tool failures come back in-band).
    pub async fn call(&self, name: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("tool arguments must be a JSON object")
        };
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        match tokio::time::timeout(Duration::from_secs(20), self.client.call_tool(params)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!(
                "tools/call {name} failed: {e}; stderr:\n{}",
                self.stderr.text()
            ),
            Err(_) => panic!(
                "tools/call {name} timed out; stderr:\n{}",
                self.stderr.text()
            ),
        }
    }

    /// Calls a tool that must succeed; returns its structured content (checked: equals the
    /// text block's JSON, no nulls, no empty arrays or strings).
    pub async fn ok(&self, name: &str, args: Value) -> Value {
        let r = self.call(name, args).await;
        expect_ok(name, &r)
    }

    /// Calls a tool that must fail in-band; returns the error text.
    pub async fn err(&self, name: &str, args: Value) -> String {
        let r = self.call(name, args).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{name} should fail: {:?}",
            r.structured_content
        );
        assert!(
            r.structured_content.is_none(),
            "{name}: an error has no structured content"
        );
        text_of(&r)
    }
}

/// A successful result's structured content, checked: it equals the JSON in the one text
/// block and has no nulls, empty arrays or empty strings.
#[track_caller]
pub fn expect_ok(name: &str, r: &CallToolResult) -> Value {
    assert_eq!(
        r.is_error,
        Some(false),
        "{name} should succeed: {}",
        text_of(r)
    );
    let structured = r
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{name}: no structuredContent: {}", text_of(r)));
    assert_eq!(r.content.len(), 1, "{name}: one text block");
    let from_text: Value = serde_json::from_str(&text_of(r))
        .unwrap_or_else(|e| panic!("{name}: the text block is not JSON ({e}): {}", text_of(r)));
    assert_eq!(
        from_text, structured,
        "{name}: structuredContent must equal the JSON in the text block"
    );
    assert_compact(name, &structured);
    structured
}

/// The text blocks of a result, joined.
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Outputs carry no nulls, empty arrays or empty strings, at any depth.
#[track_caller]
pub fn assert_compact(name: &str, v: &Value) {
    fn walk(path: &str, v: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Null => bad.push(format!("{path}: null")),
            Value::String(s) if s.is_empty() => bad.push(format!("{path}: empty string")),
            Value::Array(a) if a.is_empty() => bad.push(format!("{path}: empty array")),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{path}[{i}]"), x, bad);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    walk(&format!("{path}.{k}"), x, bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    walk("$", v, &mut bad);
    assert!(bad.is_empty(), "{name}: {bad:?} in {v:#}");
}

/// The `log_id …` an error text cites; panics when there is none.
#[track_caller]
pub fn log_id_in(text: &str) -> String {
    let at = text
        .find("log_id ")
        .unwrap_or_else(|| panic!("no log_id in: {text}"));
    let id: String = text[at + 7..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert!(id.len() >= 16, "log_id looks wrong in: {text}");
    id
}

/// Ids (`id` or `open_id` / `open_department_id`) of the objects in `v[key]`.
pub fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array `{key}` in {v}"))
        .iter()
        .map(|x| {
            x.get("open_id")
                .or_else(|| x.get("open_department_id"))
                .or_else(|| x.get("id"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no id in {x}"))
                .to_string()
        })
        .collect()
}
