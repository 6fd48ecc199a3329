//! `check` as a user runs it: configuration errors are one line, exit code 2; a wrong
//! secret against a running sandbox says so without printing the secret.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");

type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("LARK_APP_ID")
        .env_remove("LARK_APP_SECRET")
        .env_remove("LARK_DOMAIN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn missing_or_malformed_config_is_one_line_naming_flag_and_variable() {
    let cases: [Case; 4] = [
        (&["check"], &[], "LARK_APP_ID"),
        (&["check", "--app-id", "cli_a1"], &[], "LARK_APP_SECRET"),
        (
            &["check"],
            &[("LARK_APP_ID", "not-an-app"), ("LARK_APP_SECRET", "s")],
            "--app-id",
        ),
        (
            &[
                "check",
                "--app-id",
                "cli_a1",
                "--app-secret",
                "s",
                "--domain",
                "ftp://x",
            ],
            &[],
            "LARK_DOMAIN",
        ),
    ];
    for (args, env, needle) in cases {
        let (code, stdout, stderr) = run(args, env);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn check_shows_the_guard_rails_and_refuses_bad_ones() {
    let (code, stdout, stderr) = run(
        &[
            "check",
            "--sandbox",
            "--allow-recipients",
            "oc_a,!ou_b",
            "--send-budget",
            "30/h",
            "--confirm",
            "writes",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("recipients:   oc_a, !ou_b"), "{stdout}");
    assert!(
        stdout.contains("send budget:  30/h (30 left now)"),
        "{stdout}"
    );
    assert!(stdout.contains("confirm:      writes"), "{stdout}");
    assert!(stdout.contains("audit log:    none"), "{stdout}");
    for (flag, value, needle) in [
        ("--allow-recipients", "bob", "`bob` is not a recipient rule"),
        ("--send-budget", "30/week", "--send-budget: `30/week`"),
        (
            "--audit-log",
            "/nonexistent-dir/audit.jsonl",
            "--audit-log /nonexistent-dir",
        ),
    ] {
        let (code, _, stderr) = run(&["check", "--sandbox", flag, value], &[]);
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn a_bad_timeout_value_is_a_usage_error() {
    let (code, _, stderr) = run(&["check", "--call-timeout", "0"], &[]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn check_reports_the_sandbox_app_and_rejects_a_wrong_secret_without_echoing_it() {
    let (code, stdout, _) = run(&["check", "--sandbox"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Credentials: ok"), "{stdout}");
    assert!(stdout.contains("Northwind Assistant (active)"), "{stdout}");
    assert!(stdout.contains("contact:user.id:readonly"), "{stdout}");

    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("banner");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("url")
        .to_string();

    let secret = "definitely-wrong-secret";
    let (code, stdout, stderr) = run(
        &["check", "--domain", &url],
        &[
            ("LARK_APP_ID", "cli_a5f2c8e91b3d4007"),
            ("LARK_APP_SECRET", secret),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("get a tenant_access_token failed: app secret invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("Lark code 10014"), "{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}
