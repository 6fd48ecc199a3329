//! The protocol surface of `serve`: initialize, tools/list, and what goes over the pipes —
//! stdout carries JSON-RPC only, logs go to stderr, and the process ends on stdin EOF and
//! on SIGTERM. Wire-level tests drive the binary by hand (tokio::process, JSON lines).

mod common;

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::mcp::{CONTACT_META_TOOLS, McpServer, Stderr, default_tools, serve_command};
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule};
use lark_mcp_server::tools;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// What a client hands the model per tool, at most.
const TOOL_CONTEXT_BUDGET: usize = 1536;

#[tokio::test]
async fn initialize_names_the_server_and_announces_tool_list_changes() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let info = s.client.peer_info().expect("initialize result");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "lark-mcp-server");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let tools = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));
    let instructions = info.instructions.as_deref().expect("instructions");
    assert!(
        instructions.contains("lookup_user_by_email"),
        "{instructions}"
    );
    assert!(instructions.contains("get_app_status"), "{instructions}");
}

#[tokio::test]
async fn tools_list_has_every_default_tool_annotated_with_output_schemas_within_budget() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let tools = s.tools().await;
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, default_tools());
    for t in CONTACT_META_TOOLS {
        assert!(names.iter().any(|n| n == t), "{t} is listed by default");
    }
    for t in &tools {
        let meta = &tools::find(&t.name).expect("a catalog tool").meta;
        let a = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{}: annotations", t.name));
        assert_eq!(a.read_only_hint, Some(meta.read_only), "{}", t.name);
        assert_eq!(a.destructive_hint, Some(meta.destructive), "{}", t.name);
        if CONTACT_META_TOOLS.contains(&t.name.as_ref()) {
            assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
            assert_eq!(a.destructive_hint, Some(false), "{}", t.name);
        }
        assert!(
            t.title.as_deref().is_some_and(|x| !x.is_empty()),
            "{}: title",
            t.name
        );
        let out = t
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{}: outputSchema", t.name));
        assert_eq!(out.get("type"), Some(&json!("object")), "{}", t.name);
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
        assert!(
            !t.input_schema.contains_key("$schema"),
            "{}: no $schema",
            t.name
        );
        let description = t.description.as_deref().unwrap_or("");
        assert!(!description.is_empty(), "{}: description", t.name);
        let bytes = t.name.len()
            + description.len()
            + serde_json::to_string(&*t.input_schema).unwrap().len();
        assert!(
            bytes <= TOOL_CONTEXT_BUDGET,
            "{}: {bytes} bytes of name + description + inputSchema",
            t.name
        );
    }
}

// ---- by hand: JSON lines over the pipes ---------------------------------------------------

/// A child spoken to in raw JSON lines; stdout lines are kept for inspection.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every stdout line read so far.
    lines: Vec<String>,
    /// Responses read while waiting for another one, by id.
    responses: HashMap<i64, Value>,
    stderr: Stderr,
}

impl Raw {
    fn spawn(sbx: &Sbx, env: &[(&str, &str)]) -> Raw {
        let mut cmd = serve_command(&sbx.base, &[], env);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the server binary starts");
        let stderr = Stderr::default();
        stderr.collect(child.stderr.take().unwrap());
        Raw {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            lines: Vec::new(),
            responses: HashMap::new(),
            stderr,
        }
    }

    async fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = msg.to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The response with this id, reading stdout until it comes (responses may come in
    /// any order).
    async fn response(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.responses.remove(&id) {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match tokio::time::timeout(left, self.stdout.next_line()).await {
                Ok(Ok(Some(l))) => l,
                other => panic!(
                    "no response {id} ({other:?}); stdout so far: {:?}; stderr:\n{}",
                    self.lines,
                    self.stderr.text()
                ),
            };
            self.lines.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(got) = v["id"].as_i64()
                && v.get("method").is_none()
            {
                self.responses.insert(got, v);
            }
        }
    }

    async fn initialize(&mut self) -> Value {
        self.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}}}),
        )
        .await;
        let r = self.response(1).await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        r
    }

    /// Closes stdin and waits for the exit, at most `within`.
    async fn close_and_wait(&mut self, within: Duration) -> ExitStatus {
        drop(self.stdin.take());
        self.wait(within).await
    }

    async fn wait(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!(
                "still running after {within:?}; stderr:\n{}",
                self.stderr.text()
            ),
        }
    }

    /// Whatever stdout still holds (after the process ended).
    async fn drain(&mut self) {
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(2), self.stdout.next_line()).await
        {
            self.lines.push(line);
        }
    }
}

#[tokio::test]
async fn stdout_carries_only_json_rpc_and_logs_go_to_stderr() {
    let sbx = Sbx::start().await;
    let mut raw = Raw::spawn(&sbx, &[("RUST_LOG", "debug")]);
    let init = raw.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "lark-mcp-server");
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    let args = json!({"department_id": PERCEPTION_DEPT, "page_size": 2, "all_pages": true});
    raw.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "list_department_users", "arguments": args}}))
        .await;
    raw.send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "list_department_users", "arguments": args,
                   "_meta": {"progressToken": "tok-4"}}}))
        .await;
    let list = raw.response(2).await;
    let call = raw.response(3).await;
    let with_progress = raw.response(4).await;
    let status = raw.close_and_wait(Duration::from_secs(5)).await;
    raw.drain().await;
    assert_eq!(status.code(), Some(0));

    assert_eq!(
        list["result"]["tools"].as_array().map(Vec::len),
        Some(default_tools().len())
    );
    for r in [&call, &with_progress] {
        assert_eq!(r["result"]["isError"], json!(false), "{r}");
        assert_eq!(
            r["result"]["structuredContent"]["users"]
                .as_array()
                .map(Vec::len),
            Some(6)
        );
    }
    let mut progress_tokens = Vec::new();
    for line in &raw.lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        let response =
            v.get("id").is_some() && (v.get("result").is_some() ^ v.get("error").is_some());
        let notification = v.get("id").is_none() && v["method"].is_string();
        assert!(response || notification, "not a JSON-RPC message: {line}");
        if v["method"] == "notifications/progress" {
            progress_tokens.push(v["params"]["progressToken"].clone());
        }
    }
    // Progress only for the call that asked for it: one per page.
    assert_eq!(progress_tokens, vec![json!("tok-4"); 3]);
    let stderr = raw.stderr.complete(Duration::from_secs(2)).await;
    assert!(stderr.contains("DEBUG"), "debug logs on stderr:\n{stderr}");
    assert!(
        !stderr.contains(APP_SECRET),
        "the app secret never appears in logs"
    );
}

#[tokio::test]
async fn closing_stdin_ends_the_server_with_exit_code_0() {
    let sbx = Sbx::start().await;
    let mut raw = Raw::spawn(&sbx, &[]);
    raw.initialize().await;
    let status = raw.close_and_wait(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", raw.stderr.text());
}

#[tokio::test]
async fn closing_stdin_before_initialize_is_a_quiet_exit_0_and_nothing_on_stdout() {
    let sbx = Sbx::start().await;
    // The first scope read is still under way when the server gives up.
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 2000 }).path("/open-apis/application"),
    );
    let mut raw = Raw::spawn(&sbx, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = raw.close_and_wait(Duration::from_secs(5)).await;
    raw.drain().await;
    assert!(raw.lines.is_empty(), "stdout: {:?}", raw.lines);
    let stderr = raw.stderr.complete(Duration::from_secs(2)).await;
    // A client that leaves before `initialize` has disconnected, nothing failed.
    assert_eq!(status.code(), Some(0), "{stderr}");
    // The scope read cut short by the exit is not a failure to read them.
    assert!(raw.stderr.lines_with("WARN").is_empty(), "{stderr}");
    assert!(raw.stderr.lines_with("error").is_empty(), "{stderr}");
}

/// One request round trip: the session is up and the server is waiting for signals.
async fn serving(raw: &mut Raw) {
    raw.send(json!({"jsonrpc": "2.0", "id": 90, "method": "tools/list"}))
        .await;
    raw.response(90).await;
    // Signal handlers are installed once the session runs; leave the main task a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn sigterm(pid: u32) {
    let ok = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await
        .expect("kill runs");
    assert!(ok.success());
}

#[tokio::test]
async fn sigterm_ends_an_idle_server_with_exit_code_0() {
    let sbx = Sbx::start().await;
    let mut raw = Raw::spawn(&sbx, &[]);
    raw.initialize().await;
    serving(&mut raw).await;
    sigterm(raw.child.id().expect("pid")).await;
    let status = raw.wait(Duration::from_secs(5)).await;
    let stderr = raw.stderr.complete(Duration::from_secs(2)).await;
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("signal received"), "{stderr}");
}

#[tokio::test]
async fn sigterm_ends_the_server_even_with_a_slow_call_in_flight() {
    let sbx = Sbx::start().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 10_000 }).path("/open-apis/contact/v3/users/"),
    );
    let mut raw = Raw::spawn(&sbx, &[]);
    raw.initialize().await;
    serving(&mut raw).await;
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get_user", "arguments": {"user_id": ZHANG_WEI}}}))
        .await;
    // Time for the call to reach the sandbox, where it now waits 10 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(raw.child.id().expect("pid")).await;
    // The call would take 10 s: exiting within 5 s shows the signal cut it short.
    let status = raw.wait(Duration::from_secs(5)).await;
    assert!(status.code().is_some(), "exited by itself, not killed");
}
