//! The real binary: `lark-mcp-server sandbox …` as a child process, reached over loopback.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");

/// The binary with none of the environment the CLI reads.
fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LARK_SANDBOX_PORT")
        .env_remove("LARK_SANDBOX_SEED")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// A running sandbox child, killed when dropped (also when a test panics).
struct Running {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `sandbox --port 0 <extra>` and waits for its "listening" line.
    fn start(extra: &[&str]) -> Running {
        let mut child = bin()
            .args(["sandbox", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut guard = Running {
            child,
            base: String::new(),
            http: client(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the sandbox announces itself on stdout");
        let prefix = "sandbox listening on http://127.0.0.1:";
        assert!(line.starts_with(prefix), "unexpected first line: {line}");
        let port: String = line[prefix.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let port: u16 = port.parse().expect("a port number");
        assert_ne!(port, 0);
        guard.base = format!("http://127.0.0.1:{port}");
        guard
    }

    async fn post(&self, token: &str, path: &str, body: serde_json::Value) -> Resp {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string());
        if !token.is_empty() {
            rb = rb.bearer_auth(token);
        }
        Resp::read(rb.send().await.expect("send"))
            .await
            .expect("read")
    }

    async fn get(&self, token: &str, path: &str) -> Resp {
        let rb = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        Resp::read(rb.send().await.expect("send"))
            .await
            .expect("read")
    }

    async fn token(&self, app_id: &str, app_secret: &str) -> Resp {
        self.post(
            "",
            TENANT_TOKEN_PATH,
            json!({"app_id": app_id, "app_secret": app_secret}),
        )
        .await
    }
}

fn temp_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

#[tokio::test]
async fn sandbox_serves_token_and_lookup_on_the_printed_port() {
    let sbx = Running::start(&[]);
    let r = sbx.token(APP_ID, APP_SECRET).await;
    assert_eq!((r.status, r.code()), (200, 0), "{}", r.text);
    let token = r.json["tenant_access_token"].as_str().unwrap().to_string();
    assert_eq!(r.json["expire"], 7200);
    let r = sbx
        .post(
            &token,
            BATCH_GET_ID_PATH,
            json!({"emails": [ZHANG_WEI_EMAIL, MA_CHAO_EMAIL]}),
        )
        .await;
    let list = r.ok()["user_list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["user_id"], ZHANG_WEI);
    assert!(list[1].get("user_id").is_none(), "resigned: {}", list[1]);
    assert!(!r.log_id().is_empty());
    // The control path is there too.
    let counters = sbx.get("", "/_sandbox/counters").await;
    assert_eq!(counters.json["lookup_user_by_email_or_mobile"], 1);
}

#[tokio::test]
async fn sandbox_serves_a_custom_seed_file() {
    let mut custom = seed();
    custom.app.app_secret = "sbx_custom_secret".into();
    custom.contact_range.all = true;
    let path = temp_file("seed.json");
    std::fs::write(&path, serde_json::to_string(&custom).unwrap()).unwrap();
    let sbx = Running::start(&["--seed", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);

    sbx.token(APP_ID, APP_SECRET).await.err(400, 10014);
    let r = sbx.token(APP_ID, "sbx_custom_secret").await;
    assert_eq!(r.code(), 0, "{}", r.text);
    let token = r.json["tenant_access_token"].as_str().unwrap().to_string();
    // Everyone is in range with this seed, Legal included.
    let r = sbx
        .get(&token, &format!("/open-apis/contact/v3/users/{XUE_MING}"))
        .await;
    assert_eq!(r.ok()["user"]["email"], XUE_MING_EMAIL);
}

#[tokio::test]
async fn sandbox_takes_options_as_json() {
    let sbx = Running::start(&[
        "--options",
        r#"{"token_ttl_secs":60,"token_renew_below_secs":10}"#,
    ]);
    let r = sbx.token(APP_ID, APP_SECRET).await;
    assert_eq!(r.json["expire"], 60, "{}", r.text);
}

#[test]
fn missing_seed_file_exits_2_with_one_line() {
    let o = run(&["sandbox", "--port", "0", "--seed", "/nonexistent/seed.json"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = stderr_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("/nonexistent/seed.json"), "{lines:?}");
    assert!(o.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn invalid_seed_file_exits_2_with_one_line() {
    let path = temp_file("broken-seed.json");
    std::fs::write(&path, r#"{"app": {}}"#).unwrap();
    let o = run(&["sandbox", "--port", "0", "--seed", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr_lines(&o).len(), 1, "{:?}", stderr_lines(&o));
}

#[test]
fn unknown_flag_exits_2_with_exactly_one_line() {
    for args in [&["--bogus"][..], &["sandbox", "--bogus"][..]] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let lines = stderr_lines(&o);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].contains("--bogus"), "{lines:?}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn invalid_options_exit_2() {
    let o = run(&["sandbox", "--port", "0", "--options", r#"{"nope":1}"#]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr_lines(&o).len(), 1, "{:?}", stderr_lines(&o));
}

#[test]
fn version_and_help_exit_0() {
    let v = run(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")) && out.contains("lark-mcp-server"),
        "{out}"
    );
    let h = run(&["--help"]);
    assert_eq!(h.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&h.stdout).contains("sandbox"));
    let sh = run(&["sandbox", "--help"]);
    assert_eq!(sh.status.code(), Some(0));
    let text = String::from_utf8_lossy(&sh.stdout);
    assert!(text.contains("--port") && text.contains("--seed"), "{text}");
}
