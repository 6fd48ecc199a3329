//! The user login from outside: the real binary's commands (`login`, `whoami`, …) on a
//! profile directory of the test's own, keychain off, against the sandbox.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::http::BIN;
use super::{APP_ID, APP_SECRET, Sbx};

const WAIT: Duration = Duration::from_secs(30);

/// The environment that makes `home` the profile directory, the keychain off: the tokens
/// are in `default.user.json` there.
pub fn env(home: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("XDG_CONFIG_HOME", home.display().to_string()),
        ("HOME", home.display().to_string()),
        ("LARK_MCP_KEYCHAIN", "off".into()),
    ]
}

/// Where `login` keeps the login of `home`'s default profile.
pub fn login_file(home: &Path) -> PathBuf {
    home.join("lark-mcp-server/profiles/default.user.json")
}

/// `lark-mcp-server ARGS --domain SANDBOX` on the profile directory `home`, with only the
/// sandbox app's `LARK_*` variables.
pub fn command(sbx: &Sbx, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).args(["--domain", &sbx.base]);
    for (k, _) in std::env::vars() {
        if k.starts_with("LARK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("LARK_APP_ID", APP_ID)
        .env("LARK_APP_SECRET", APP_SECRET)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in env(home) {
        cmd.env(k, v);
    }
    cmd
}

/// `login --no-browser` (the device flow at the sandbox) into `home`, confirmed by opening
/// the link as a person would.
pub async fn login(sbx: &Sbx, home: &Path) {
    login_with(sbx, home, &[]).await;
}

/// As [`login`], with more `login` arguments.
pub async fn login_with(sbx: &Sbx, home: &Path, extra: &[&str]) {
    let mut args = vec!["login", "--no-browser"];
    args.extend_from_slice(extra);
    let mut child = command(sbx, home, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("login starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("Link: ") {
                return url.to_string();
            }
        }
        panic!("no link from login");
    })
    .await
    .expect("the link");
    let page = reqwest::get(&url).await.expect("the page");
    assert_eq!(page.status().as_u16(), 200, "{url}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("login ends")
        .expect("wait");
    assert!(status.success(), "login: {status:?}");
}
