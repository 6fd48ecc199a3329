//! `install-client` as a user runs it, against files in a temporary directory: the entry
//! lands with the absolute binary path and `serve` args, every other byte of the file stays,
//! a backup equals the original, nothing secret is written, and bad files are left alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lark-mcp-server");
const SECRET: &str = "sekrit-app-secret-value-0123456789";
const APP_ID: &str = "cli_a9secretid000001";

/// A fresh directory for one test, under the system's temp dir.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("lark-install-client-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the binary with HOME and friends pointing into `home`, so nothing real is touched,
/// and the app's credentials set in the environment.
fn run(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env("USERPROFILE", home)
        .env("APPDATA", home.join("AppData"))
        .env("XDG_CONFIG_HOME", home.join("xdg"))
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("LARK_APP_ID", APP_ID)
        .env("LARK_APP_SECRET", SECRET)
        .env("LARK_MCP_TOOLSETS", "im")
        .env("LARK_MCP_READ_ONLY", "true")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bin_path() -> String {
    std::fs::canonicalize(BIN)
        .expect("binary path")
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn entry(client: &str, args: &[&str]) -> Value {
    let (command, args) = (bin_path(), json!(args));
    match client {
        "vscode" => json!({"type": "stdio", "command": command, "args": args}),
        "claude-code" => json!({"type": "stdio", "command": command, "args": args, "env": {}}),
        _ => json!({"command": command, "args": args}),
    }
}

fn backups(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.bak-"))
        })
        .collect();
    found.sort();
    found
}

/// Everything in the directory but the file and its backups: leftovers of a failed write.
fn strays(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n != name && !n.starts_with(&format!("{name}.bak-"))
        })
        .collect()
}

/// `new` is `old` with one piece of text inserted; returns that piece.
fn inserted<'a>(old: &str, new: &'a str) -> &'a str {
    let prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    assert_eq!(
        prefix + suffix,
        old.len(),
        "the old text is not kept byte for byte:\n--- old\n{old}\n--- new\n{new}"
    );
    &new[prefix..new.len() - suffix]
}

/// The inserted `"name": {…}` member, parsed (the separating comma may fall on either side).
fn inserted_member(piece: &str) -> Value {
    let member = piece.trim_matches(|c: char| c == ',' || c.is_whitespace());
    serde_json::from_str(&format!("{{{member}}}"))
        .unwrap_or_else(|e| panic!("inserted text {piece:?} is not a member: {e}"))
}

const CLAUDE_DESKTOP: &str = r#"{
  "globalShortcut": "Alt+Space",
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]
    }
  },
  "zeta": [1, 2.5e3, true, null, "ünïcödé"]
}
"#;

const CURSOR: &str = r#"{
    "mcpServers": {
        "github": {
            "command": "docker",
            "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
            "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${env:GITHUB_TOKEN}" }
        },
        "remote": { "url": "https://example.com/mcp" }
    },
    "aardvark": false
}
"#;

const VSCODE: &str = r#"{
  // Asked once, stored by VS Code outside this file.
  "inputs": [
    { "id": "token", "type": "promptString", "password": true, },
  ],
  "servers": {
    /* a team server */
    "playwright": {
      "type": "stdio",
      "command": "npx",
      "args": ["@playwright/mcp@latest"],
    },
  },
}
"#;

const CLAUDE_CODE: &str = r#"{
  "numStartups": 42,
  "theme": "dark",
  "projects": {
    "/home/me/work": {
      "allowedTools": [],
      "mcpServers": { "local-one": { "type": "stdio", "command": "x", "args": [] } },
      "history": [{ "display": "fix the \"bug\"\n", "pastedContents": {} }]
    }
  },
  "mcpServers": {
    "sentry": {
      "type": "http",
      "url": "https://mcp.sentry.dev/mcp"
    }
  },
  "oauthAccount": { "emailAddress": "me@example.com" },
  "autoUpdates": true,
  "bigNumber": 12345678901234567890,
  "float": 1.0e-7
}
"#;

#[test]
fn each_client_gets_its_entry_and_keeps_everything_else() {
    let cases = [
        ("claude-desktop", CLAUDE_DESKTOP),
        ("cursor", CURSOR),
        ("vscode", VSCODE),
        ("claude-code", CLAUDE_CODE),
    ];
    for (client, sample) in cases {
        let dir = scratch(&format!("each-{client}"));
        let path = dir.join("config.json");
        std::fs::write(&path, sample).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let (code, stdout, stderr) = run(
            &dir,
            &["install-client", client, "--config", path.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{client}: {stderr}");

        let new = std::fs::read_to_string(&path).unwrap();
        let member = inserted_member(inserted(sample, &new));
        assert_eq!(
            member,
            json!({"lark": entry(client, &["serve"])}),
            "{client}:\n{new}"
        );
        if client != "vscode" {
            // Strict JSON stays strict JSON, the entry under the client's key.
            let parsed: Value = serde_json::from_str(&new).unwrap();
            assert_eq!(parsed["mcpServers"]["lark"], entry(client, &["serve"]));
        } else {
            assert!(new.contains("\"servers\": {") && new.contains("/* a team server */"));
            let lark = new.find("\"lark\"").unwrap();
            assert!(lark > new.find("\"playwright\"").unwrap(), "{new}");
        }
        assert_eq!(new.matches("\"lark\"").count(), 1, "{new}");
        assert!(!new.contains(SECRET) && !new.contains(APP_ID), "{new}");
        assert!(
            !new.contains("--toolsets") && !new.contains("--read-only"),
            "environment leaked into the entry: {new}"
        );
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

        let baks = backups(&path);
        assert_eq!(baks.len(), 1, "{client}: {baks:?}");
        assert_eq!(std::fs::read_to_string(&baks[0]).unwrap(), sample);
        assert!(stdout.contains(&baks[0].display().to_string()), "{stdout}");
        assert!(stdout.contains("Next:"), "{stdout}");
        assert!(strays(&path).is_empty(), "{:?}", strays(&path));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o640, "{client}: permissions kept");
            assert_eq!(
                mode(&baks[0]),
                0o640,
                "{client}: backup as private as the file"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_missing_file_and_its_directory_are_created() {
    for client in ["claude-desktop", "cursor", "vscode", "claude-code"] {
        let dir = scratch(&format!("missing-{client}"));
        let path = dir.join("nested").join("deeper").join("config.json");
        let (code, stdout, stderr) = run(
            &dir,
            &["install-client", client, "--config", path.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{client}: {stderr}");
        let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let key = if client == "vscode" {
            "servers"
        } else {
            "mcpServers"
        };
        assert_eq!(parsed, json!({key: {"lark": entry(client, &["serve"])}}));
        assert!(backups(&path).is_empty());
        assert!(stdout.contains("Created"), "{stdout}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn running_again_replaces_the_entry_instead_of_adding_one() {
    let dir = scratch("twice");
    let path = dir.join("mcp.json");
    std::fs::write(&path, CURSOR).unwrap();
    let config = path.to_str().unwrap();
    let (code, _, stderr) = run(&dir, &["install-client", "cursor", "--config", config]);
    assert_eq!(code, 0, "{stderr}");
    let once = std::fs::read_to_string(&path).unwrap();

    // The same again: nothing to change, no new backup.
    let (code, stdout, stderr) = run(&dir, &["install-client", "cursor", "--config", config]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("nothing changed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), once);
    assert_eq!(backups(&path).len(), 1);

    // Different flags: the entry is replaced in place.
    let (code, stdout, stderr) = run(
        &dir,
        &[
            "install-client",
            "cursor",
            "--config",
            config,
            "--profile",
            "work",
            "--read-only",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Replaced"), "{stdout}");
    let twice = std::fs::read_to_string(&path).unwrap();
    assert_eq!(twice.matches("\"lark\"").count(), 1, "{twice}");
    let parsed: Value = serde_json::from_str(&twice).unwrap();
    assert_eq!(
        parsed["mcpServers"]["lark"],
        entry("cursor", &["serve", "--profile", "work", "--read-only"])
    );
    assert_eq!(parsed["mcpServers"]["github"]["command"], "docker");
    let keys: Vec<&String> = parsed["mcpServers"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let baks = backups(&path);
    assert_eq!(baks.len(), 2, "{baks:?}");
    assert!(
        baks.iter()
            .any(|b| std::fs::read_to_string(b).unwrap() == once)
    );
    // Only the entry's text changed.
    let start = once.find("\"lark\"").unwrap();
    assert_eq!(once[..start], twice[..start]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn profile_and_policy_flags_land_in_args_as_serve_spells_them() {
    let dir = scratch("flags");
    let path = dir.join("claude.json");
    std::fs::write(&path, CLAUDE_CODE).unwrap();
    let (code, _, stderr) = run(
        &dir,
        &[
            "install-client",
            "claude-code",
            "--config",
            path.to_str().unwrap(),
            "--profile",
            "work",
            "--read-only",
            "--toolsets",
            "contact, meta",
            "--tools",
            "get_user",
            "--exclude-tools",
            "list_user_groups",
            "--name",
            "lark-work",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        parsed["mcpServers"]["lark-work"],
        entry(
            "claude-code",
            &[
                "serve",
                "--profile",
                "work",
                "--read-only",
                "--toolsets",
                "contact,meta",
                "--tools",
                "get_user",
                "--exclude-tools",
                "list_user_groups"
            ]
        )
    );
    assert!(parsed["mcpServers"].get("lark").is_none());

    // A name serve would refuse is refused here, before anything is written.
    let before = std::fs::read_to_string(&path).unwrap();
    let (code, _, stderr) = run(
        &dir,
        &[
            "install-client",
            "claude-code",
            "--config",
            path.to_str().unwrap(),
            "--toolsets",
            "nope",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_is_not_json_is_left_untouched() {
    let bad = [
        ("broken", "{\"mcpServers\": {\"a\": }\n"),
        ("array", "[1, 2]\n"),
        ("servers-not-object", "{\"mcpServers\": [\"lark\"]}\n"),
        ("duplicate", "{\"mcpServers\": {}, \"mcpServers\": {}}\n"),
        ("unterminated-comment", "{ /* never closed\n"),
        ("trailing-garbage", "{} {}\n"),
    ];
    for (label, content) in bad {
        let dir = scratch(&format!("bad-{label}"));
        let path = dir.join("claude_desktop_config.json");
        std::fs::write(&path, content).unwrap();
        let (code, stdout, stderr) = run(
            &dir,
            &[
                "install-client",
                "claude-desktop",
                "--config",
                path.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1, "{label}: {stdout} {stderr}");
        assert!(
            stderr.contains("left untouched") && stderr.contains(path.to_str().unwrap()),
            "{label}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "{label}");
        assert!(
            backups(&path).is_empty() && strays(&path).is_empty(),
            "{label}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn dry_run_writes_nothing() {
    let dir = scratch("dry");
    let missing = dir.join("sub").join("mcp.json");
    let (code, stdout, stderr) = run(
        &dir,
        &[
            "install-client",
            "vscode",
            "--config",
            missing.to_str().unwrap(),
            "--dry-run",
            "--read-only",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!missing.exists() && !dir.join("sub").exists());
    assert!(
        stdout.contains(missing.to_str().unwrap()) && stdout.contains("--read-only"),
        "{stdout}"
    );
    assert!(stdout.contains(&bin_path()), "{stdout}");

    let path = dir.join("mcp.json");
    std::fs::write(&path, VSCODE).unwrap();
    let (code, stdout, stderr) = run(
        &dir,
        &[
            "install-client",
            "vscode",
            "--config",
            path.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("nothing written"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), VSCODE);
    assert!(backups(&path).is_empty() && strays(&path).is_empty());
    assert!(!stdout.contains(SECRET));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(target_os = "linux")]
#[test]
fn without_config_each_client_file_is_found_from_the_environment() {
    let dir = scratch("default-paths");
    let cases = [
        ("claude-desktop", "xdg/Claude/claude_desktop_config.json"),
        ("cursor", ".cursor/mcp.json"),
        ("vscode", "xdg/Code/User/mcp.json"),
        ("claude-code", ".claude.json"),
    ];
    for (client, rel) in cases {
        let (code, stdout, stderr) = run(&dir, &["install-client", client]);
        assert_eq!(code, 0, "{client}: {stderr}");
        let path = dir.join(rel);
        assert!(path.is_file(), "{client}: {stdout}");
        assert!(stdout.contains(path.to_str().unwrap()), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
