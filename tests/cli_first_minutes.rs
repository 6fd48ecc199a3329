//! The first ten minutes with the binary: piping into `head`, a client that leaves early,
//! `serve` typed into a terminal, the default logs, a wrong domain and a mistyped tool name.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");

/// The binary without anything from the caller's environment that would change it.
fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "LARK_APP_ID",
        "LARK_APP_SECRET",
        "LARK_DOMAIN",
        "LARK_MCP_TOOLS",
        "LARK_MCP_TOOLSETS",
        "LARK_MCP_EXCLUDE_TOOLS",
        "LARK_MCP_READ_ONLY",
        "LARK_MCP_ALLOW_READ_DIRS",
        "LARK_MCP_DOWNLOAD_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().args(args).output().expect("binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for the child, killing it after `limit` so a hang fails the test instead.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// `cmd | head -1` with the reader already gone: every write meets EPIPE, whatever the
/// size of the output or the timing, which a pipe buffer would otherwise hide.
fn with_stdout_closed(args: &[&str]) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let code = wait(&mut child, Duration::from_secs(30));
    let stderr = stderr_of(&mut child);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    assert!(!stderr.contains("error"), "{args:?}: {stderr}");
}

#[test]
fn a_reader_that_stops_early_is_a_quiet_exit_0() {
    with_stdout_closed(&["tools", "--json"]);
    with_stdout_closed(&["tools"]);
    with_stdout_closed(&["call", "list_departments", "--sandbox"]);
    with_stdout_closed(&["check", "--sandbox"]);
}

#[test]
fn a_client_that_leaves_before_initialize_is_a_quiet_exit_0() {
    let mut child = bin()
        .args(["serve", "--sandbox"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stdin.take());
    let code = wait(&mut child, Duration::from_secs(15));
    let stderr = stderr_of(&mut child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
}

fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn serve_in_a_terminal_says_how_to_try_it_and_keeps_serving() {
    if !script_available() {
        eprintln!(
            "skipped: `script` (util-linux) is not installed; main's unit test covers the decision"
        );
        return;
    }
    // `script` gives the server a terminal for stdin; the hint goes to stderr, which
    // `script` also copies to its own stdout.
    let command = format!("{BIN} serve --sandbox");
    let mut script = Command::new("script");
    script
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("LARK_DOMAIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = script.spawn().expect("script spawns");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains("waiting for a client") && Instant::now() < deadline {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("speaks MCP over stdin/stdout"), "{seen}");
    assert!(seen.contains("lark-mcp-server tools"), "{seen}");
    // Still serving: an initialize typed into the terminal is answered.
    let mut stdin = child.stdin.take().expect("stdin");
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tty","version":"1"}}}"#;
    writeln!(stdin, "{init}").expect("types");
    let mut answered = false;
    while Instant::now() < deadline {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains(r#""id":1"#) && line.contains("serverInfo") {
            answered = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered, "no initialize answer after the hint");
}

#[test]
fn default_logs_are_one_info_line_per_session_and_no_warnings() {
    let mut child = bin()
        .args(["serve", "--sandbox"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut send = |line: &str| writeln!(stdin, "{line}").expect("writes");
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"first-minutes","version":"0.1"}}}"#,
    );
    let mut line = String::new();
    out.read_line(&mut line).expect("initialize answer");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}"#,
    );
    line.clear();
    out.read_line(&mut line).expect("tools/call answer");
    assert!(line.contains("-32602"), "{line}");
    drop(stdin);
    let code = wait(&mut child, Duration::from_secs(15));
    let stderr = stderr_of(&mut child);
    assert_eq!(code, Some(0), "{stderr}");
    let sessions: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("session started"))
        .collect();
    assert_eq!(sessions.len(), 1, "{stderr}");
    assert!(
        sessions[0].contains(" INFO ")
            && sessions[0].contains("client first-minutes 0.1, protocol 2025-06-18"),
        "{stderr}"
    );
    assert!(!stderr.contains("peer_info"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
}

#[test]
fn a_domain_that_never_answers_names_the_flag_and_is_not_retried() {
    let lark = [
        "--app-id",
        "cli_a1",
        "--app-secret",
        "s3cret",
        "--domain",
        // The discard port: nothing listens there, so the connection is refused.
        "http://127.0.0.1:9",
    ];
    let check: Vec<&str> = ["check"].iter().chain(&lark).copied().collect();
    let call: Vec<&str> = ["call", "get_user", "--args", r#"{"user_id":"ou_1"}"#]
        .iter()
        .chain(&lark)
        .copied()
        .collect();
    for args in [check, call] {
        let started = Instant::now();
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("cannot connect to http://127.0.0.1:9")
                && stderr.contains("--domain")
                && stderr.contains("LARK_DOMAIN"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("try again shortly"), "{stderr}");
        assert!(!stderr.contains("retrying"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
}

#[test]
fn a_mistyped_tool_name_suggests_the_one_meant() {
    for (args, meant) in [
        (&["tools", "--tools", "send_mesage"][..], "`send_message`"),
        (&["tools", "--exclude-tools", "get_usr"][..], "`get_user`"),
        (&["tools", "--toolsets", "contcat"][..], "`contact`"),
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("did you mean {meant}?")),
            "{args:?}: {stderr}"
        );
    }
}

/// Tools of toolsets that run only when named (events).
const OFF_BY_DEFAULT: usize = 2;

#[test]
fn tools_shows_the_hidden_ones_with_the_flag_that_shows_them() {
    let (code, text, stderr) = run(&["tools"]);
    assert_eq!(code, Some(0), "{stderr}");
    let total = lark_mcp_server::tools::catalog().len();
    assert!(
        text.contains(&format!("{} of {total} tools", total - 3 - OFF_BY_DEFAULT)),
        "{text}"
    );
    for (tool, flag) in [
        ("upload_file", "--allow-read-dir"),
        ("upload_image", "--allow-read-dir"),
        ("download_resource", "--download-dir"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(tool) && l.contains(flag)),
            "{tool}: {text}"
        );
    }
    assert!(text.contains("destructive"), "{text}");
    assert!(!text.split_whitespace().any(|w| w == "delete"), "{text}");

    let (code, json, stderr) = run(&["tools", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let total = lark_mcp_server::tools::catalog().len();
    assert_eq!(doc["total"], total);
    assert_eq!(doc["count"], total - 3 - OFF_BY_DEFAULT);
    let hidden = doc["hidden"].as_array().expect("hidden list");
    assert_eq!(hidden.len(), 3 + OFF_BY_DEFAULT, "{hidden:?}");
    for h in hidden.iter().filter(|h| h["toolset"] != "events") {
        assert_eq!(h["reason"], "not_configured", "{h}");
        assert!(
            h["flag"].as_str().is_some_and(|f| f.starts_with("--")),
            "{h}"
        );
    }
}

#[test]
fn retry_warnings_name_the_step_retried_and_the_call_it_serves() {
    // A domain that answers, but only with 503: the token fetch is retried.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let domain = format!("http://127.0.0.1:{port}");
    let (code, _, stderr) = run(&[
        "call",
        "get_user",
        "--args",
        r#"{"user_id":"ou_1"}"#,
        "--app-id",
        "cli_a1",
        "--app-secret",
        "s3cret",
        "--domain",
        &domain,
        "--scope-check",
        "off",
        "--call-timeout",
        "2",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("retrying Lark call"))
        .collect();
    assert!(!retries.is_empty(), "{stderr}");
    for line in retries {
        assert!(
            line.contains("get a tenant_access_token for get user"),
            "{line}"
        );
    }
    // The domain answered, so it is not blamed.
    assert!(!stderr.contains("check --domain"), "{stderr}");
}
