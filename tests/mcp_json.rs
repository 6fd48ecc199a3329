//! Launches the server exactly as the repository's `mcp.json` says and checks that the
//! tools a client sees are the ones that file allows.

use std::collections::BTreeSet;
use std::process::Stdio;

use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `${VAR}` placeholders, expanded as Claude Code, Cursor and VS Code do.
fn expand(s: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(s.to_string(), |acc, (k, v)| {
        acc.replace(&format!("${{{k}}}"), v)
    })
}

#[tokio::test]
async fn mcp_json_exposes_exactly_the_tools_it_allows() {
    let seed = Seed::default_org().expect("seed");
    let sb = Sandbox::start(seed.clone(), Options::default(), 0)
        .await
        .expect("sandbox");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mcp.json"))
            .expect("mcp.json"),
    )
    .expect("mcp.json is JSON");
    let server = &config["mcpServers"]["lark"];
    assert_eq!(server["command"], "lark-mcp-server");
    let vars = [
        ("LARK_APP_ID", seed.app.app_id.as_str()),
        ("LARK_APP_SECRET", seed.app.app_secret.as_str()),
    ];

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lark-mcp-server"));
    for a in server["args"].as_array().expect("args") {
        cmd.arg(expand(a.as_str().expect("string arg"), &vars));
    }
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in server["env"].as_object().expect("env") {
        cmd.env(k, expand(v.as_str().expect("string env"), &vars));
    }
    // The user's shell points the domain at Lark; here it points at the sandbox.
    cmd.env("LARK_DOMAIN", sb.base_url());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for msg in [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    ] {
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .expect("write");
    }
    let listed = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(15), lines.next_line())
            .await
            .expect("answer in time")
            .expect("read")
            .expect("a line");
        let v: Value = serde_json::from_str(&line).expect("stdout carries JSON-RPC only");
        if v["id"] == 2 {
            break v;
        }
    };
    let names: BTreeSet<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let want: BTreeSet<&str> = [
        "find_people",
        "get_app_status",
        "get_contact_scope",
        "get_department",
        "get_department_path",
        "get_user",
        "get_users",
        "list_department_users",
        "list_departments",
        "lookup_user_by_email",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, want);
    drop(stdin);
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
        .await
        .expect("exits after stdin closes")
        .expect("status");
    assert!(status.success());
}
