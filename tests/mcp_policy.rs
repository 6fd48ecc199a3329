//! Which tools the real binary exposes: the operator's filters (flags and LARK_MCP_* env),
//! and the app's granted scopes as the sandbox reports them — hidden tools, list_changed
//! when grants change, and the three `--scope-check` modes when scopes cannot be read.

mod common;

use std::time::{Duration, Instant};

use common::mcp::{
    CONTACT_META, CONTACT_META_TOOLS, McpServer, default_tools, read_only_tools, serve_command,
};
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Seed};
use lark_mcp_server::tools;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

const USER_ID_SCOPE: &str = "contact:user.id:readonly";
const SELF_MANAGE_SCOPE: &str = "application:application:self_manage";
const CONSOLE_LINK: &str =
    "https://open.feishu.cn/app/cli_a5f2c8e91b3d4007/auth?q=contact:user.id:readonly";
const APP_INFO: &str = "get_application_info";
const GRANT_LIST: &str = "list_app_scope_grant_status";

/// The contact and meta tools without `names`.
fn without(names: &[&str]) -> Vec<String> {
    CONTACT_META_TOOLS
        .iter()
        .filter(|t| !names.contains(t))
        .map(|t| t.to_string())
        .collect()
}

fn contact_meta_tools() -> Vec<String> {
    without(&[])
}

/// `serve --toolsets contact,meta <args>`: the scope tests watch the contact tools only.
async fn start_cm(sbx: &Sbx, args: &[&str]) -> McpServer {
    start_cm_env(sbx, args, &[]).await
}

async fn start_cm_env(sbx: &Sbx, args: &[&str], env: &[(&str, &str)]) -> McpServer {
    let all: Vec<&str> = CONTACT_META.iter().chain(args).copied().collect();
    McpServer::start_env(sbx, &all, env).await
}

/// The demo org with `scope` enabled but not granted.
fn seed_ungranted(scope: &str) -> Seed {
    let mut s = seed();
    let entry = s
        .scopes
        .iter_mut()
        .find(|x| x.scope == scope)
        .unwrap_or_else(|| panic!("{scope} is in the default seed"));
    entry.granted = false;
    s
}

/// Both scope endpoints (`applications/me` and `scopes`) answer with a Lark error.
fn break_scope_reads(sbx: &Sbx) {
    sbx.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 2200,
            msg: "internal error".into(),
            status: 400,
        })
        .path("/open-apis/application"),
    );
}

/// Flags, environment, what the error says, and the valid names it lists.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, String);

/// Runs `serve` to completion (stdin closed) and returns (exit code, stdout, stderr).
async fn run_to_exit(sbx: &Sbx, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = serve_command(&sbx.base, args, env);
    cmd.stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(15), cmd.output())
        .await
        .expect("the process exits")
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---- operator filters ---------------------------------------------------------------------

#[tokio::test]
async fn toolsets_meta_exposes_only_get_app_status() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--toolsets", "meta"]).await;
    assert_eq!(s.tool_names().await, vec!["get_app_status"]);
    let text = s.err("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert!(
        text.contains("not available") && text.contains("without the `contact` toolset"),
        "{text}"
    );
    assert_eq!(sbx.state().count("get_user"), 0);
}

#[tokio::test]
async fn tools_adds_a_single_tool_beyond_the_toolsets() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--toolsets", "meta", "--tools", "get_user"]).await;
    assert_eq!(s.tool_names().await, vec!["get_app_status", "get_user"]);
    let out = s.ok("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(out["name"], "张伟");
}

#[tokio::test]
async fn exclude_tools_always_wins_and_an_excluded_tool_cannot_be_called() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(
        &sbx,
        &[
            "--toolsets",
            "meta,contact",
            "--tools",
            "get_users",
            "--exclude-tools",
            "get_users,lookup_user_by_email",
        ],
    )
    .await;
    assert_eq!(
        s.tool_names().await,
        without(&["get_users", "lookup_user_by_email"])
    );
    let text = s.err("get_users", json!({"user_ids": [ZHANG_WEI]})).await;
    assert!(
        text.contains("`get_users` is not available") && text.contains("excluded"),
        "{text}"
    );
    assert!(text.contains("--exclude-tools"), "{text}");
    assert_eq!(sbx.state().count("batch_get_users"), 0);
}

#[tokio::test]
async fn read_only_hides_exactly_the_tools_that_write() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--read-only"]).await;
    let names = s.tool_names().await;
    assert_eq!(names, read_only_tools());
    for t in CONTACT_META_TOOLS {
        assert!(names.iter().any(|n| n == t), "{t} only reads");
    }
    assert!(!names.iter().any(|n| n == "send_message"), "{names:?}");
    assert!(names.len() < default_tools().len());
    let text = s
        .err("send_message", json!({"to": ZHANG_WEI, "text": "hi"}))
        .await;
    assert!(
        text.contains("not available") && text.contains("--read-only"),
        "{text}"
    );
    assert_eq!(sbx.state().count("send_message"), 0);
}

#[tokio::test]
async fn lark_mcp_environment_variables_work_like_the_flags() {
    let sbx = Sbx::start().await;
    let s = McpServer::start_env(
        &sbx,
        &[],
        &[
            ("LARK_MCP_TOOLSETS", "meta"),
            ("LARK_MCP_TOOLS", "get_user,get_department"),
            ("LARK_MCP_EXCLUDE_TOOLS", "get_app_status"),
        ],
    )
    .await;
    assert_eq!(s.tool_names().await, vec!["get_department", "get_user"]);
    let text = s.err("get_app_status", json!({})).await;
    assert!(text.contains("excluded"), "{text}");

    let ro = McpServer::start_env(
        &sbx,
        &[],
        &[
            ("LARK_MCP_READ_ONLY", "true"),
            ("LARK_MCP_EXCLUDE_TOOLS", "get_users"),
        ],
    )
    .await;
    let expected: Vec<String> = read_only_tools()
        .into_iter()
        .filter(|t| t != "get_users")
        .collect();
    assert_eq!(ro.tool_names().await, expected);
}

#[tokio::test]
async fn an_unknown_tool_or_toolset_is_exit_code_2_with_one_line_naming_the_likely_or_valid_names()
{
    let sbx = Sbx::start().await;
    let catalog: Vec<&str> = tools::catalog().iter().map(|t| t.meta.name).collect();
    let valid_tools = format!("valid tools: {}", catalog.join(", "));
    let toolsets: Vec<&str> = tools::Toolset::ALL.iter().map(|t| t.as_str()).collect();
    let valid_toolsets = format!("valid toolsets: all, {}", toolsets.join(", "));
    let cases: [Case; 4] = [
        (
            &["--toolsets", "contact,nope"],
            &[],
            "unknown toolset `nope`",
            valid_toolsets.clone(),
        ),
        (
            &[],
            &[("LARK_MCP_TOOLSETS", "people")],
            "unknown toolset `people`",
            valid_toolsets.clone(),
        ),
        (
            &["--tools", "get_usr"],
            &[],
            "unknown tool `get_usr` in --tools",
            "did you mean `get_user`?".to_string(),
        ),
        (
            &[],
            &[("LARK_MCP_EXCLUDE_TOOLS", "send_fax")],
            "unknown tool `send_fax` in --exclude-tools",
            valid_tools.clone(),
        ),
    ];
    for (args, env, what, valid) in cases {
        let (code, stdout, stderr) = run_to_exit(&sbx, args, env).await;
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert!(stdout.is_empty(), "stdout: {stdout}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(what) && stderr.contains(&valid), "{stderr}");
    }
    // Nothing was asked of Lark.
    assert_eq!(sbx.state().count("tenant_access_token_internal"), 0);
}

#[tokio::test]
async fn calling_a_tool_that_does_not_exist_is_a_protocol_error() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let r = s
        .client
        .call_tool(CallToolRequestParams::new("send_fax"))
        .await;
    let e = r.expect_err("unknown tools are JSON-RPC errors");
    let text = e.to_string();
    assert!(text.contains("send_fax"), "{text}");
    assert!(text.contains("-32602"), "{text}");
}

// ---- scope gating -------------------------------------------------------------------------

#[tokio::test]
async fn a_tool_without_its_scope_is_hidden_and_calling_it_names_the_scope_and_console_link() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm(&sbx, &[]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    let text = s
        .err("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert!(
        text.contains("`lookup_user_by_email` is not available"),
        "{text}"
    );
    assert!(text.contains(&format!("[{USER_ID_SCOPE}]")), "{text}");
    assert!(text.contains(CONSOLE_LINK), "{text}");
    assert_eq!(sbx.state().count("lookup_user_by_email_or_mobile"), 0);

    let status = s.ok("get_app_status", json!({})).await;
    let lookup = status["hidden_tools"]
        .as_array()
        .and_then(|h| h.iter().find(|t| t["name"] == "lookup_user_by_email"))
        .unwrap_or_else(|| panic!("lookup_user_by_email is listed as hidden: {status}"));
    assert!(
        lookup["why"]
            .as_str()
            .is_some_and(|w| w.contains(&format!("[{USER_ID_SCOPE}]")) && w.contains(CONSOLE_LINK)),
        "{lookup}"
    );
}

#[tokio::test]
async fn granting_the_scope_shows_the_tool_and_notifies_list_changed() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm(&sbx, &["--scope-refresh-secs", "1"]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    assert_eq!(s.events.snapshot().tool_list_changed, 0);

    sbx.state().set_scopes(&[USER_ID_SCOPE.into()], &[]);
    let seen = s
        .events
        .wait_for(Duration::from_secs(4), |e| e.tool_list_changed >= 1)
        .await;
    assert_eq!(seen.tool_list_changed, 1, "{}", s.stderr.text());
    assert_eq!(s.tool_names().await, contact_meta_tools());
    let out = s
        .ok("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert_eq!(out["found"][0]["open_id"], ZHANG_WEI);
}

#[tokio::test]
async fn revoking_a_scope_hides_its_tools_and_notifies_list_changed() {
    let sbx = Sbx::start().await;
    let s = start_cm(&sbx, &["--scope-refresh-secs", "1"]).await;
    assert_eq!(s.tool_names().await, contact_meta_tools());
    sbx.state()
        .set_scopes(&[], &["contact:group:readonly".into()]);
    let seen = s
        .events
        .wait_for(Duration::from_secs(4), |e| e.tool_list_changed >= 1)
        .await;
    assert_eq!(seen.tool_list_changed, 1, "{}", s.stderr.text());
    assert_eq!(
        s.tool_names().await,
        without(&["list_user_group_members", "list_user_groups"])
    );
    // Re-reads that change nothing notify nothing.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(s.events.snapshot().tool_list_changed, 1);
}

#[tokio::test]
async fn calling_a_hidden_tool_rereads_the_scopes_at_most_every_5_seconds() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm(&sbx, &[]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    let first_read = Instant::now();
    sbx.state().set_scopes(&[USER_ID_SCOPE.into()], &[]);
    assert_eq!(sbx.state().count(APP_INFO), 1);

    // Just read: the call does not ask again, so the tool is still hidden.
    let text = s
        .err("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert!(text.contains("not available"), "{text}");
    assert_eq!(sbx.state().count(APP_INFO), 1);

    tokio::time::sleep(Duration::from_millis(5200).saturating_sub(first_read.elapsed())).await;
    // A re-read the client cancels (it gives up on the call) teaches nothing and does not
    // count as a read.
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 1000 })
            .path("/open-apis/application")
            .times(1),
    );
    let args = json!({"emails": [ZHANG_WEI_EMAIL]});
    let params = CallToolRequestParams::new("lookup_user_by_email")
        .with_arguments(args.as_object().unwrap().clone());
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), s.client.call_tool(params)).await;
    assert!(gave_up.is_err(), "the re-read is slowed to 1 s");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let out = s.ok("lookup_user_by_email", args).await;
    assert_eq!(out["found"][0]["open_id"], ZHANG_WEI);
    let seen = s
        .events
        .wait_for(Duration::from_secs(2), |e| e.tool_list_changed >= 1)
        .await;
    assert_eq!(seen.tool_list_changed, 1, "{}", s.stderr.text());
    assert!(
        s.stderr.lines_with("WARN").is_empty(),
        "{}",
        s.stderr.text()
    );
    let status = s.ok("get_app_status", json!({})).await;
    assert!(status.get("problem").is_none(), "{status}");
}

#[tokio::test]
async fn the_first_scope_read_announces_no_change_when_no_client_listed_before_it() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    // Slow enough that the read ends after the client has initialised (and asked for
    // tools), and within the bounded wait for it (3 s).
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 2000 })
            .path("/open-apis/application")
            .times(1),
    );
    let s = start_cm(&sbx, &[]).await;
    assert_eq!(
        sbx.state().count(APP_INFO),
        0,
        "precondition: the scope read is still under way when the client lists tools"
    );
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    assert_eq!(sbx.state().count(APP_INFO), 1, "tools/list waited for it");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.events.snapshot().tool_list_changed,
        0,
        "{}",
        s.stderr.text()
    );
}

#[tokio::test]
async fn a_scope_read_slower_than_the_bounded_wait_announces_its_result() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 4000 })
            .path("/open-apis/application")
            .times(1),
    );
    let s = start_cm(&sbx, &[]).await;
    // Answered after the bounded wait, before the scopes are known: every tool.
    assert_eq!(s.tool_names().await, contact_meta_tools());
    let seen = s
        .events
        .wait_for(Duration::from_secs(4), |e| e.tool_list_changed >= 1)
        .await;
    assert_eq!(seen.tool_list_changed, 1, "{}", s.stderr.text());
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
}

#[tokio::test]
async fn scopes_that_become_unreadable_keep_the_last_ones_read() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm(&sbx, &["--scope-refresh-secs", "1"]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    break_scope_reads(&sbx);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sbx.state().count(APP_INFO) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sbx.state().count(APP_INFO) >= 3);
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    assert_eq!(s.events.snapshot().tool_list_changed, 0);
    let warnings = s.stderr.lines_with("WARN");
    assert_eq!(warnings.len(), 1, "{}", s.stderr.text());
    assert!(
        warnings[0].contains("keeping the last ones read"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn scopes_come_from_the_grant_list_when_app_info_is_refused() {
    let mut seed = seed_ungranted(USER_ID_SCOPE);
    seed.scopes
        .iter_mut()
        .find(|x| x.scope == SELF_MANAGE_SCOPE)
        .expect("in the seed")
        .granted = false;
    let sbx = Sbx::with_seed(seed).await;
    let s = start_cm(&sbx, &[]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
    assert_eq!(sbx.state().count(APP_INFO), 1);
    assert_eq!(sbx.state().count(GRANT_LIST), 1);
    assert!(
        s.stderr.lines_with("WARN").is_empty(),
        "{}",
        s.stderr.text()
    );
}

// ---- scopes unreadable --------------------------------------------------------------------

#[tokio::test]
async fn auto_mode_exposes_every_tool_and_warns_once_when_scopes_cannot_be_read() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    break_scope_reads(&sbx);
    let s = start_cm(&sbx, &["--scope-refresh-secs", "1"]).await;
    assert_eq!(s.tool_names().await, contact_meta_tools());
    // Several failed re-reads later, still one warning.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sbx.state().count(GRANT_LIST) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sbx.state().count(APP_INFO) >= 3);
    assert!(
        sbx.state().count(GRANT_LIST) >= 3,
        "the fallback is tried too"
    );
    let warnings = s.stderr.lines_with("WARN");
    assert_eq!(warnings.len(), 1, "{}", s.stderr.text());
    assert!(
        warnings[0].contains("cannot read the app's granted scopes")
            && warnings[0].contains("exposing every configured tool"),
        "{}",
        warnings[0]
    );
    let status = s.ok("get_app_status", json!({})).await;
    assert!(status.get("granted_scopes").is_none(), "{status}");
    assert!(
        status["problem"]
            .as_str()
            .is_some_and(|p| p.contains("granted scopes:") && p.contains("Lark code 2200")),
        "{status}"
    );
    // The tool the scope list would have hidden is offered; Lark itself now refuses it.
    let text = s
        .err("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert!(
        text.contains("Lark code 99991672") && text.contains(USER_ID_SCOPE),
        "{text}"
    );
    assert_eq!(s.events.snapshot().tool_list_changed, 0);
}

#[tokio::test]
async fn strict_mode_exits_non_zero_with_one_line_when_scopes_cannot_be_read() {
    let sbx = Sbx::start().await;
    break_scope_reads(&sbx);
    let (code, stdout, stderr) = run_to_exit(&sbx, &["--scope-check", "strict"], &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read the app's granted scopes (--scope-check strict)")
            && stderr.contains("Lark code 2200"),
        "{stderr}"
    );
}

#[tokio::test]
async fn strict_mode_serves_normally_when_scopes_are_readable() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm_env(&sbx, &[], &[("LARK_MCP_SCOPE_CHECK", "strict")]).await;
    assert_eq!(s.tool_names().await, without(&["lookup_user_by_email"]));
}

#[tokio::test]
async fn off_mode_never_reads_scopes_and_exposes_every_tool() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let s = start_cm(&sbx, &["--scope-check", "off", "--scope-refresh-secs", "1"]).await;
    assert_eq!(s.tool_names().await, contact_meta_tools());
    let status = s.ok("get_app_status", json!({})).await;
    assert_eq!(status["visible_tools"], json!(CONTACT_META_TOOLS.to_vec()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(s.tool_names().await, contact_meta_tools());
    assert_eq!(sbx.state().count(APP_INFO), 0);
    assert_eq!(sbx.state().count(GRANT_LIST), 0);
    assert!(
        s.stderr.lines_with("WARN").is_empty(),
        "{}",
        s.stderr.text()
    );
}

#[tokio::test]
async fn tools_list_does_not_wait_for_a_slow_scope_read() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 10_000 }).path("/open-apis/application"),
    );
    let s = start_cm(&sbx, &[]).await;
    let names = s.tool_names().await;
    // Answered while the 10 s read is still under way: the bounded wait ran out first.
    assert_eq!(
        sbx.state().count(APP_INFO),
        0,
        "the read is still in flight"
    );
    // Scopes still unknown: every configured tool is offered.
    assert_eq!(names, contact_meta_tools());
}

/// Waits (bounded) for the scope cache file the first run writes after its first read.
async fn cached_scope_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    for _ in 0..500 {
        let found = std::fs::read_dir(dir.join("lark-mcp-server"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("scopes-") && n.ends_with(".json"))
            });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn a_restart_lists_tools_from_the_kept_scopes_and_announces_what_the_recheck_changes() {
    let sbx = Sbx::with_seed(seed_ungranted(USER_ID_SCOPE)).await;
    let cache = config_home("mcp_policy", "scope_cache");
    let cache_env = cache.to_string_lossy().into_owned();
    let env = [("XDG_CACHE_HOME", cache_env.as_str())];
    let kept = without(&["lookup_user_by_email"]);

    // First run ever: the scopes are read from Lark and kept.
    let file = {
        let s = start_cm_env(&sbx, &[], &env).await;
        assert_eq!(s.tool_names().await, kept);
        let file = cached_scope_file(&cache).await;
        assert!(
            file.is_some(),
            "the scope set is kept; stderr:\n{}",
            s.stderr.text()
        );
        file.unwrap_or_default()
    };
    let first_set = std::fs::read_to_string(&file).expect("the kept scopes");

    // Since then the scope was granted, but Lark's scope read is slow: tools/list answers
    // from the kept set instead of waiting (without it: every tool once the bounded wait
    // runs out, or the new set once read).
    sbx.state().set_scopes(&[USER_ID_SCOPE.into()], &[]);
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 10_000 }).path("/open-apis/application"),
    );
    {
        let s = start_cm_env(&sbx, &[], &env).await;
        assert_eq!(s.tool_names().await, kept);
    }

    // Lark's scope read fails: still the kept set (without it: every configured tool).
    sbx.state().set_faults(Vec::new());
    break_scope_reads(&sbx);
    let s = start_cm_env(&sbx, &["--scope-refresh-secs", "1"], &env).await;
    assert_eq!(s.tool_names().await, kept);
    assert_eq!(s.events.snapshot().tool_list_changed, 0);

    // Lark answers again: the background re-check finds the grant and says so.
    sbx.state().set_faults(Vec::new());
    let seen = s
        .events
        .wait_for(Duration::from_secs(10), |e| e.tool_list_changed >= 1)
        .await;
    assert_eq!(seen.tool_list_changed, 1, "{}", s.stderr.text());
    assert_eq!(s.tool_names().await, contact_meta_tools());
    drop(s);

    // A kept set written for another app is not used: with the scope read failing, every
    // configured tool is offered, as without a cache.
    std::fs::write(&file, first_set.replace(APP_ID, "cli_someoneelse00000"))
        .expect("rewrite the kept scopes");
    break_scope_reads(&sbx);
    let s = start_cm_env(&sbx, &[], &env).await;
    assert_eq!(s.tool_names().await, contact_meta_tools());
}
