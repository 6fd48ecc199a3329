//! `init` end to end: the real binary registers an app at the sandbox's accounts host
//! (approve, deny, expiry, slow_down, the Lark-brand switch, Ctrl-C), stores it under a
//! profile readable by its owner only, and `serve --profile` then exposes exactly the tools
//! the requested scopes allow.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sbx;
use common::http::BIN;
use lark_mcp_server::lark::registration::Addons;
use lark_mcp_server::sandbox::Options;
use lark_mcp_server::tools::{Needs, ToolMeta, catalog, scope_plan};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(30);

fn config_home(test: &str) -> std::path::PathBuf {
    common::config_home("cli-init", test)
}

fn command(home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LARK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env("LARK_MCP_KEYCHAIN", "off")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    cmd
}

fn sbx_options(v: Value) -> Options {
    serde_json::from_value(v).expect("valid sandbox options")
}

struct Init {
    child: Child,
    url: String,
    stdout: String,
    /// The rest of stdout, read on so the child never blocks on a full pipe.
    tail: tokio::task::JoinHandle<String>,
}

/// Starts `init --no-browser` against the sandbox and reads up to the link.
async fn start_init(sbx: &Sbx, home: &std::path::Path, extra: &[&str]) -> Init {
    let mut args = vec![
        "init",
        "--no-browser",
        "--domain",
        &sbx.base,
        "--profile",
        "t1",
    ];
    args.extend_from_slice(extra);
    let mut child = command(home, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("init starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stdout = String::new();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some(url) = line.strip_prefix("Link: ") {
                return url.to_string();
            }
        }
        panic!("no link in:\n{stdout}");
    })
    .await
    .expect("the link within 30 s");
    let tail = tokio::spawn(async move {
        let mut out = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    Init {
        child,
        url,
        stdout,
        tail,
    }
}

impl Init {
    /// What a person does by scanning: opens the page.
    async fn scan(&self) -> String {
        let page = reqwest::get(&self.url).await.expect("the page answers");
        assert_eq!(page.status().as_u16(), 200);
        page.text().await.unwrap_or_default()
    }

    /// Waits for the exit; (code, stdout, stderr).
    async fn finish(mut self) -> (i32, String, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("init ends within 30 s")
            .expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err).await;
        }
        let tail = self.tail.await.unwrap_or_default();
        (status.code().unwrap_or(-1), self.stdout + &tail, err)
    }

    fn addons(&self) -> Value {
        let url = reqwest::Url::parse(&self.url).expect("a URL");
        let addons = url
            .query_pairs()
            .find(|(k, _)| k == "addons")
            .map(|(_, v)| v.into_owned())
            .expect("addons in the URL");
        Addons::decode(&addons).expect("addons decode")
    }
}

fn contact_tools() -> Vec<&'static ToolMeta> {
    catalog()
        .iter()
        .map(|d| &d.meta)
        // The app's scopes are planned for the tools acting as the bot.
        .filter(|m| m.toolset.as_str() == "contact" && m.identity.bot_capable())
        .collect()
}

fn profile_file(home: &std::path::Path, name: &str) -> std::path::PathBuf {
    home.join("lark-mcp-server")
        .join("profiles")
        .join(format!("{name}.json"))
}

#[tokio::test]
async fn approve_stores_a_private_profile_that_serves_exactly_the_requested_scopes() {
    let sbx = Sbx::start().await;
    let home = config_home("approve");
    let init = start_init(&sbx, &home, &["--toolsets", "contact"]).await;
    // The addons in the link decode back to the plan for the contact tools.
    let plan = scope_plan::plan(&contact_tools());
    assert_eq!(init.addons(), json!({"scopes": {"tenant": plan}}));
    for scope in &plan {
        assert!(
            init.stdout.contains(scope),
            "the scopes are shown first:\n{}",
            init.stdout
        );
    }
    let page = init.scan().await;
    assert!(
        page.contains("contact:user.id:readonly") || page.contains(plan[0]),
        "{page}"
    );
    let (code, out, err) = init.finish().await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Registered cli_"), "{out}");
    assert!(
        out.contains("install-client claude-desktop --profile t1"),
        "{out}"
    );

    let file = profile_file(&home, "t1");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("the profile")).expect("JSON");
    let secret = stored["app_secret"]
        .as_str()
        .expect("the secret, no keychain here");
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "the secret is never printed"
    );
    assert_eq!(stored["domain"], sbx.base.as_str());
    assert_eq!(stored["brand"], "feishu");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file:?}");
        let dir = std::fs::metadata(file.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir, 0o700);
    }

    // serve with only the profile: the tools the granted (= requested) scopes allow.
    let mut cmd = command(&home, &["serve", "--profile", "t1"]);
    cmd.stderr(Stdio::null());
    let client = ().serve(TokioChildProcess::new(cmd).expect("spawn")).await.expect("MCP");
    let mut listed: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = catalog()
        .iter()
        .map(|d| &d.meta)
        .filter(|m| m.needs == Needs::Nothing && m.identity.bot_capable())
        .filter(|m| m.toolset.is_default())
        .filter(|m| m.scopes.is_empty() || m.scopes.iter().any(|s| plan.contains(s)))
        .map(|m| m.name.to_string())
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn denial_and_expiry_fail_and_store_nothing() {
    for (outcome, says) in [("deny", "denied"), ("expire", "expired")] {
        let sbx = Sbx::with_options(sbx_options(json!({"registration_outcome": outcome}))).await;
        let home = config_home(outcome);
        let init = start_init(&sbx, &home, &["--read-only"]).await;
        init.scan().await;
        let (code, out, err) = init.finish().await;
        assert_eq!(code, 1, "{outcome}: {out}\n{err}");
        assert!(err.contains(says), "{outcome}: {err}");
        assert!(
            !profile_file(&home, "t1").exists(),
            "{outcome}: nothing stored"
        );
    }
}

#[tokio::test]
async fn slow_down_is_honoured() {
    let sbx = Sbx::with_options(sbx_options(json!({"registration_slow_down_polls": 1}))).await;
    let home = config_home("slow_down");
    let init = start_init(&sbx, &home, &["--read-only"]).await;
    init.scan().await;
    let (code, out, err) = init.finish().await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("poll less often: every 6 s"), "{err}");
}

#[tokio::test]
async fn a_lark_tenant_finishes_at_the_lark_host_and_is_stored_as_lark() {
    let sbx = Sbx::with_options(sbx_options(json!({"registration_brand": "lark"}))).await;
    let home = config_home("lark");
    let init = start_init(&sbx, &home, &["--read-only", "--user", "--events"]).await;
    // --user asks for the same scopes for user tokens, --events for incoming messages.
    let addons = init.addons();
    let user = addons["scopes"]["user"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tenant = addons["scopes"]["tenant"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The app's scopes for users too, plus what the tools acting as the user need; those
    // are never asked for the tenant token.
    assert!(tenant.iter().all(|s| user.contains(s)), "{addons}");
    assert!(user.contains(&json!("contact:user:search")), "{addons}");
    assert!(!tenant.contains(&json!("contact:user:search")), "{addons}");
    assert_eq!(
        addons["events"],
        json!({"items": {"tenant": ["im.message.receive_v1"]}})
    );
    init.scan().await;
    let (code, out, err) = init.finish().await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Lark (international) tenant"), "{err}");
    assert!(out.contains("(lark tenant)"), "{out}");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(profile_file(&home, "t1")).expect("the profile"))
            .expect("JSON");
    assert_eq!(stored["brand"], "lark");
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_while_waiting_stops_cleanly() {
    // Only a click approves: init waits until interrupted.
    let sbx = Sbx::with_options(sbx_options(json!({"registration_approve_after_polls": 0}))).await;
    let home = config_home("ctrl_c");
    let init = start_init(&sbx, &home, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = init.child.id().expect("pid") as libc::pid_t;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let (code, out, err) = init.finish().await;
    assert_eq!(code, 130, "{out}\n{err}");
    assert!(err.contains("cancelled"), "{err}");
    assert!(!profile_file(&home, "t1").exists());
}

#[tokio::test]
async fn the_sandbox_demo_needs_no_clicks_and_stores_nothing() {
    let home = config_home("demo");
    let out = command(&home, &["init", "--sandbox", "--toolsets", "contact"])
        .output()
        .await
        .expect("init --sandbox runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Registered cli_"), "{text}");
    assert!(text.contains("Credentials: ok"), "the check ran: {text}");
    assert!(!home.join("lark-mcp-server").exists(), "nothing stored");
}

#[tokio::test]
async fn an_unknown_profile_is_a_clear_error() {
    let home = config_home("unknown");
    let out = command(&home, &["check", "--profile", "nope"])
        .output()
        .await
        .expect("check runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("init --profile nope"), "{err}");
}

#[tokio::test]
async fn app_id_adds_the_scopes_to_an_existing_app() {
    const USER_ID_SCOPE: &str = "contact:user.id:readonly";
    let mut seed = common::seed();
    for s in seed.scopes.iter_mut().filter(|s| s.scope == USER_ID_SCOPE) {
        s.granted = false;
    }
    let sbx = Sbx::with_seed(seed).await;
    assert!(
        !sbx.state()
            .granted_scopes(common::APP_ID)
            .iter()
            .any(|s| s == USER_ID_SCOPE)
    );
    let home = config_home("app_id");
    let init = start_init(
        &sbx,
        &home,
        &[
            "--app-id",
            common::APP_ID,
            "--toolsets",
            "meta",
            "--tools",
            "lookup_user_by_email",
        ],
    )
    .await;
    assert!(
        init.url.contains(&format!("clientID={}", common::APP_ID)),
        "{}",
        init.url
    );
    init.scan().await;
    let (code, out, err) = init.finish().await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("add to the app {}", common::APP_ID)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Registered {}", common::APP_ID)),
        "{out}"
    );
    let granted = sbx.state().granted_scopes(common::APP_ID);
    assert!(granted.iter().any(|s| s == USER_ID_SCOPE), "{granted:?}");
    assert!(
        sbx.state().registered_apps().is_empty(),
        "no new app: the existing one was extended"
    );
}
