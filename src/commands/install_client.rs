//! `install-client`: adds this server to an MCP client's configuration file, so nobody edits
//! JSON by hand.
//!
//! The entry runs the absolute path of this binary with `serve`, `--profile NAME` when one is
//! given and the policy flags given; it never holds an app id, a secret or a token (the server
//! reads the credentials of its profile when it starts).
//!
//! Where each client keeps its user-level file and the shape it reads:
//!
//! | client           | file                                                                                     | entry under                                         |
//! |------------------|------------------------------------------------------------------------------------------|-----------------------------------------------------|
//! | `claude-desktop` | macOS `~/Library/Application Support/Claude/claude_desktop_config.json`, Windows `%APPDATA%\Claude\…`, elsewhere `$XDG_CONFIG_HOME` (or `~/.config`)`/Claude/…` | `mcpServers.NAME` = `{command, args}` |
//! | `cursor`         | `~/.cursor/mcp.json` (global)                                                            | `mcpServers.NAME` = `{command, args}`               |
//! | `vscode`         | user-profile `mcp.json`: macOS `~/Library/Application Support/Code/User/`, Windows `%APPDATA%\Code\User\`, elsewhere `$XDG_CONFIG_HOME` (or `~/.config`)`/Code/User/` | `servers.NAME` = `{type: "stdio", command, args}` |
//! | `claude-code`    | `~/.claude.json` (`$CLAUDE_CONFIG_DIR/.claude.json` when that is set); top-level `mcpServers` is the "user" scope | `mcpServers.NAME` = `{type: "stdio", command, args, env: {}}` |
//!
//! Sources: the MCP quickstart for Claude Desktop users (modelcontextprotocol.io; macOS and
//! Windows paths, `mcpServers`; Linux builds are unofficial and follow XDG); Cursor's MCP
//! documentation (cursor.com/docs/mcp, "global" `~/.cursor/mcp.json`, `mcpServers`); VS Code's
//! MCP configuration reference (code.visualstudio.com/docs/copilot/reference/mcp-configuration:
//! `mcp.json` in the workspace or the user profile, top-level `servers`, stdio entries need
//! `type`); Claude Code's MCP documentation (code.claude.com/docs/en/mcp: user scope lives in
//! `~/.claude.json`, the entry `claude mcp add --scope user` writes).
//!
//! The file is never re-serialized. A small scanner (JSON plus the comments and trailing
//! commas of JSONC, which VS Code's files may hold) finds the byte spans of the servers object
//! and of our entry, and only those bytes change: every other key, its order, its formatting and
//! every comment stay as they were. The result is checked before anything is written: parsed
//! again, it must equal the old document with only our entry added or replaced.
//! Writing is a temporary file in the same directory, renamed over the old one, with the old
//! file's permissions; the previous content is kept next to it as `<file>.bak-<UTC time>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The MCP clients whose configuration this can edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeDesktop,
    Cursor,
    Vscode,
    ClaudeCode,
}

impl Client {
    fn title(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::Cursor => "Cursor",
            Client::Vscode => "VS Code",
            Client::ClaudeCode => "Claude Code",
        }
    }

    /// The top-level key that maps server names to entries.
    fn root_key(self) -> &'static str {
        match self {
            Client::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    fn next_step(self, name: &str) -> String {
        match self {
            Client::ClaudeDesktop => {
                "Next: quit Claude Desktop completely (not just its window) and start it again."
                    .to_string()
            }
            Client::Cursor => format!(
                "Next: open Cursor Settings > MCP and check that \"{name}\" is enabled (restart Cursor if it is not listed)."
            ),
            Client::Vscode => format!(
                "Next: in VS Code run \"MCP: List Servers\" from the Command Palette and start \"{name}\" (or reload the window)."
            ),
            Client::ClaudeCode => format!(
                "Next: `claude mcp list` should show \"{name}\"; restart Claude Code sessions that are already running."
            ),
        }
    }
}

/// What the server is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub client: Client,
    pub name: String,
    pub profile: Option<String>,
    pub read_only: bool,
    pub toolsets: Option<Vec<String>>,
    pub tools: Vec<String>,
    pub exclude_tools: Vec<String>,
    pub config: Option<PathBuf>,
    pub dry_run: bool,
}

/// An error and the exit code it deserves: 2 for arguments, 1 for everything else.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub msg: String,
}

fn usage(msg: String) -> Failure {
    Failure { code: 2, msg }
}

fn failed(msg: String) -> Failure {
    Failure { code: 1, msg }
}

/// One server entry, fields in the order clients write them.
#[derive(Debug, Serialize, PartialEq)]
struct Entry {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    command: String,
    args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<std::collections::BTreeMap<String, String>>,
}

/// Runs the command and returns what to print.
pub fn run(req: &Request) -> Result<String, Failure> {
    let args = serve_args(req)?;
    let command = current_binary()?;
    let entry = match req.client {
        Client::ClaudeDesktop | Client::Cursor => Entry {
            kind: None,
            command: command.clone(),
            args,
            env: None,
        },
        Client::Vscode => Entry {
            kind: Some("stdio"),
            command: command.clone(),
            args,
            env: None,
        },
        Client::ClaudeCode => Entry {
            kind: Some("stdio"),
            command: command.clone(),
            args,
            env: Some(Default::default()),
        },
    };
    let given = match &req.config {
        Some(p) => p.clone(),
        None => default_path(req.client, &|k| std::env::var_os(k))?,
    };
    // Edit what a symlink points at, so the link (a dotfiles manager's, say) stays a link.
    let path = match std::fs::symlink_metadata(&given) {
        Ok(_) => std::fs::canonicalize(&given)
            .map_err(|e| failed(format!("cannot resolve {}: {e}", given.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => given.clone(),
        Err(e) => return Err(failed(format!("cannot read {}: {e}", given.display()))),
    };
    let original = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(failed(format!("cannot read {}: {e}", path.display()))),
    };
    let text = match &original {
        Some(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            failed(format!(
                "{} is not UTF-8 text, so not JSON; it was left untouched",
                path.display()
            ))
        })?,
        None => "",
    };
    let root_key = req.client.root_key();
    let edit = splice(text, root_key, &req.name, &entry).map_err(|e| {
        failed(format!(
            "{} cannot be edited: {e}; it was left untouched",
            path.display()
        ))
    })?;

    let mut out = String::new();
    let shown_entry = render(&entry, Some("  "), "");
    let key = serde_json::to_string(&req.name).unwrap_or_default();
    if req.dry_run {
        let verb = match (&original, edit.action) {
            (None, _) => "create it with",
            (Some(_), Action::Added) => "add",
            (Some(_), Action::Replaced) => "replace the entry with",
            (Some(_), Action::Unchanged) => "leave it as it is; it already has",
        };
        let _ = writeln!(
            out,
            "Dry run: nothing written. For {} the file is {}",
            req.client.title(),
            path.display()
        );
        let _ = writeln!(out, "It would {verb} {root_key}.{}:", req.name);
        let _ = writeln!(out, "{key}: {shown_entry}");
        return Ok(out);
    }

    if edit.action == Action::Unchanged && original.is_some() {
        let _ = writeln!(
            out,
            "{} already runs this entry in {} ({root_key}.{}); nothing changed.",
            req.client.title(),
            path.display(),
            req.name
        );
        let _ = writeln!(out, "{}", req.client.next_step(&req.name));
        return Ok(out);
    }

    let backup = write(&path, original.as_deref(), edit.text.as_bytes())?;
    let what = match (&original, edit.action) {
        (None, _) => "Created",
        (Some(_), Action::Replaced) => "Replaced",
        _ => "Added",
    };
    let _ = writeln!(
        out,
        "{what} {root_key}.{} in {} for {}:",
        req.name,
        path.display(),
        req.client.title()
    );
    let _ = writeln!(out, "{key}: {shown_entry}");
    if let Some(b) = backup {
        let _ = writeln!(out, "The previous file is kept as {}", b.display());
    }
    if edit.relaxed {
        let _ = writeln!(out, "Its comments and trailing commas were kept.");
    }
    let _ = writeln!(
        out,
        "No credentials were written: the server reads {} when it starts.",
        match &req.profile {
            Some(p) => format!("the credentials of profile \"{p}\""),
            None => "the default profile's credentials".to_string(),
        }
    );
    if looks_like_build_output(&command) {
        let _ = writeln!(
            out,
            "Note: {command} is a build output that `cargo clean` or a rebuild removes; `cargo install --path .` and running install-client from there gives the client a lasting path."
        );
    }
    let _ = writeln!(out, "{}", req.client.next_step(&req.name));
    Ok(out)
}

/// `serve` and the flags the request asks for, exactly as `serve` spells them.
fn serve_args(req: &Request) -> Result<Vec<String>, Failure> {
    if req.name.trim().is_empty() {
        return Err(usage("--name must not be empty".into()));
    }
    let mut args = vec!["serve".to_string()];
    if let Some(p) = &req.profile {
        // The rule `init` and `serve` apply, so the entry names a profile that can exist.
        crate::profile::check_name(p).map_err(usage)?;
        args.extend(["--profile".to_string(), p.clone()]);
    }
    // The same check `serve` makes at start: an unknown toolset or tool fails here, not in
    // the client's log.
    crate::tools::policy::Policy::new(&crate::tools::policy::PolicyConfig {
        toolsets: req.toolsets.clone(),
        tools: req.tools.clone(),
        exclude: req.exclude_tools.clone(),
        read_only: req.read_only,
        allow_read_dirs: Vec::new(),
        download_dir: None,
    })
    .map_err(usage)?;
    if req.read_only {
        args.push("--read-only".into());
    }
    let list = |names: &[String]| -> String {
        names
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    };
    if let Some(t) = &req.toolsets {
        args.extend(["--toolsets".to_string(), list(t)]);
    }
    for (flag, names) in [
        ("--tools", &req.tools),
        ("--exclude-tools", &req.exclude_tools),
    ] {
        let joined = list(names);
        if !joined.is_empty() {
            args.extend([flag.to_string(), joined]);
        }
    }
    Ok(args)
}

/// The absolute, resolved path of this binary, as text a client can run.
fn current_binary() -> Result<String, Failure> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| failed(format!("cannot find the path of this program: {e}")))?;
    let text = exe.to_str().ok_or_else(|| {
        failed(format!(
            "the path of this program is not UTF-8 and cannot go in a JSON file: {}",
            exe.display()
        ))
    })?;
    // Windows' canonical form is a verbatim path (\\?\C:\…) that some launchers reject.
    #[cfg(windows)]
    let text = match text.strip_prefix(r"\\?\") {
        Some(rest) if !rest.starts_with("UNC\\") => rest,
        _ => text,
    };
    Ok(text.to_string())
}

fn looks_like_build_output(command: &str) -> bool {
    let parts: Vec<&str> = command.split(['/', '\\']).collect();
    parts
        .windows(2)
        .any(|w| w[0] == "target" && (w[1] == "debug" || w[1] == "release"))
}

/// The client's user-level configuration file on this system.
fn default_path(
    client: Client,
    var: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf, Failure> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home_var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    let home = || {
        set(home_var).ok_or_else(|| {
            failed(format!(
                "cannot find your home directory ({home_var} is not set); pass --config PATH"
            ))
        })
    };
    let app_data = || {
        set("APPDATA").ok_or_else(|| failed("APPDATA is not set; pass --config PATH".to_string()))
    };
    // Linux and the other Unixes: the XDG configuration directory.
    let xdg = || -> Result<PathBuf, Failure> {
        match set("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
            Some(p) => Ok(p),
            None => Ok(home()?.join(".config")),
        }
    };
    Ok(match client {
        Client::ClaudeDesktop => {
            let dir = if cfg!(target_os = "macos") {
                home()?.join("Library/Application Support/Claude")
            } else if cfg!(windows) {
                app_data()?.join("Claude")
            } else {
                xdg()?.join("Claude")
            };
            dir.join("claude_desktop_config.json")
        }
        Client::Cursor => home()?.join(".cursor").join("mcp.json"),
        Client::Vscode => {
            let dir = if cfg!(target_os = "macos") {
                home()?.join("Library/Application Support/Code/User")
            } else if cfg!(windows) {
                app_data()?.join("Code").join("User")
            } else {
                xdg()?.join("Code").join("User")
            };
            dir.join("mcp.json")
        }
        Client::ClaudeCode => match set("CLAUDE_CONFIG_DIR") {
            Some(dir) => dir.join(".claude.json"),
            None => home()?.join(".claude.json"),
        },
    })
}

/// Writes `new` over `path` atomically; returns the backup of the old content, if any.
fn write(path: &Path, old: Option<&[u8]>, new: &[u8]) -> Result<Option<PathBuf>, Failure> {
    let shown = path.display();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
    let perms = match old {
        Some(_) => Some(
            std::fs::metadata(path)
                .map_err(|e| failed(format!("cannot read {shown}: {e}")))?
                .permissions(),
        ),
        None => None,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".into());

    let backup = match old {
        Some(bytes) => Some(write_backup(
            path,
            &file_name,
            &parent,
            bytes,
            perms.as_ref(),
        )?),
        None => None,
    };
    let undo_backup = || {
        if let Some(b) = &backup {
            let _ = std::fs::remove_file(b);
        }
    };

    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = create_new(&tmp)?;
        f.write_all(new)?;
        if let Some(p) = &perms {
            f.set_permissions(p.clone())?;
        }
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        undo_backup();
        return Err(failed(format!(
            "cannot write {}: {e}; {shown} was left untouched",
            tmp.display()
        )));
    }
    // A client that rewrote the file meanwhile (Claude Code saves ~/.claude.json often) must
    // not lose its change.
    let now = match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            undo_backup();
            return Err(failed(format!("cannot read {shown}: {e}")));
        }
    };
    if now.as_deref() != old {
        let _ = std::fs::remove_file(&tmp);
        undo_backup();
        return Err(failed(format!(
            "{shown} changed while it was being edited (is the client writing it?); it was left as the client wrote it, run install-client again"
        )));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        undo_backup();
        return Err(failed(format!(
            "cannot replace {shown}: {e}; it was left untouched"
        )));
    }
    Ok(backup)
}

fn write_backup(
    path: &Path,
    file_name: &str,
    parent: &Path,
    bytes: &[u8],
    perms: Option<&std::fs::Permissions>,
) -> Result<PathBuf, Failure> {
    use std::io::Write;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for n in 1..100 {
        let name = match n {
            1 => format!("{file_name}.bak-{stamp}"),
            _ => format!("{file_name}.bak-{stamp}-{n}"),
        };
        let backup = parent.join(name);
        let mut f = match create_new(&backup) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(failed(format!(
                    "cannot write the backup {}: {e}; {} was left untouched",
                    backup.display(),
                    path.display()
                )));
            }
        };
        let done = f
            .write_all(bytes)
            .and_then(|()| match perms {
                Some(p) => f.set_permissions(p.clone()),
                None => Ok(()),
            })
            .and_then(|()| f.sync_all());
        if let Err(e) = done {
            let _ = std::fs::remove_file(&backup);
            return Err(failed(format!(
                "cannot write the backup {}: {e}; {} was left untouched",
                backup.display(),
                path.display()
            )));
        }
        return Ok(backup);
    }
    Err(failed(format!(
        "too many backups of {} from this second; {} was left untouched",
        path.display(),
        path.display()
    )))
}

/// A new file only this user can read until the old file's permissions are copied onto it:
/// these files may hold other servers' secrets.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Added,
    Replaced,
    Unchanged,
}

#[derive(Debug)]
struct Edit {
    text: String,
    action: Action,
    /// The document had comments or trailing commas (JSONC).
    relaxed: bool,
}

/// The document with `root_key.name` set to `entry`, every other byte kept.
fn splice(text: &str, root_key: &str, name: &str, entry: &Entry) -> Result<Edit, String> {
    let blank = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{feff}');
    let text = if blank.is_empty() { "{}\n" } else { text };
    let mut scan = Scanner::new(text);
    let root = scan.document()?;
    let Some(root_members) = &root.members else {
        return Err("the top level is not a JSON object".into());
    };
    let style = Style::detect(text, &root);
    let servers = unique(root_members, root_key)?;
    let (start, end, insert, action) = match servers {
        None => {
            let mut one = std::collections::BTreeMap::new();
            one.insert(name, entry);
            let (start, end, insert) = add_member(text, &root, &style, root_key, &one);
            (start, end, insert, Action::Added)
        }
        Some(servers) => {
            let Some(members) = &servers.value.members else {
                return Err(format!("\"{root_key}\" is not an object"));
            };
            match unique(members, name)? {
                None => {
                    let (start, end, insert) =
                        add_member(text, &servers.value, &style, name, entry);
                    (start, end, insert, Action::Added)
                }
                Some(ours) => {
                    let indent = own_line_indent(text, ours.key_start);
                    let unit = style.unit.as_deref().filter(|_| indent.is_some());
                    let rendered = render(entry, unit, indent.unwrap_or(""));
                    let same = text[ours.value.start..ours.value.end] == rendered;
                    let action = if same {
                        Action::Unchanged
                    } else {
                        Action::Replaced
                    };
                    (ours.value.start, ours.value.end, rendered, action)
                }
            }
        }
    };
    let mut out = String::with_capacity(text.len() + insert.len());
    out.push_str(&text[..start]);
    out.push_str(&insert);
    out.push_str(&text[end..]);
    verify(text, &scan.relaxed, &out, root_key, name, entry)?;
    Ok(Edit {
        text: out,
        action,
        relaxed: !scan.relaxed.is_empty(),
    })
}

/// The one member called `key`; a name that appears twice is for a person to sort out.
fn unique<'m>(members: &'m [Member], key: &str) -> Result<Option<&'m Member>, String> {
    let mut found = members.iter().filter(|m| m.key == key);
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("the key \"{key}\" appears more than once"));
    }
    Ok(first)
}

/// Indentation of the document: `None` when it is written on one line.
struct Style {
    unit: Option<String>,
}

impl Style {
    fn detect(text: &str, root: &Node) -> Style {
        let members = root.members.as_deref().unwrap_or_default();
        let Some(first) = members.first() else {
            return Style {
                unit: Some("  ".into()),
            };
        };
        let unit = own_line_indent(text, first.key_start).map(|indent| {
            let outer = line_indent(text, root.start);
            let unit = indent.strip_prefix(outer).unwrap_or(indent);
            if unit.is_empty() { "  " } else { unit }.to_string()
        });
        Style { unit }
    }
}

/// The whitespace that starts the line holding `pos`.
fn line_indent(text: &str, pos: usize) -> &str {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..len]
}

/// The indentation before `pos` when only whitespace precedes it on its line.
fn own_line_indent(text: &str, pos: usize) -> Option<&str> {
    let start = text[..pos].rfind('\n')? + 1;
    let before = &text[start..pos];
    before
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(before)
}

/// The span to replace, and with what, to add `"key": value` as the last member of `obj`.
fn add_member(
    text: &str,
    obj: &Node,
    style: &Style,
    key: &str,
    value: &impl Serialize,
) -> (usize, usize, String) {
    let key_text = serde_json::to_string(key).unwrap_or_default();
    let members = obj.members.as_deref().unwrap_or_default();
    if let Some(last) = members.last() {
        let at = last.value.end;
        let first_indent = members
            .first()
            .and_then(|m| own_line_indent(text, m.key_start));
        let insert = match (style.unit.as_deref(), first_indent) {
            (Some(unit), Some(indent)) => {
                format!(
                    ",\n{indent}{key_text}: {}",
                    render(value, Some(unit), indent)
                )
            }
            _ => format!(", {key_text}: {}", render(value, None, "")),
        };
        return (at, at, insert);
    }
    // An empty object: whitespace between the braces is replaced, a comment is kept.
    let (open, close) = (obj.start + 1, obj.end - 1);
    let only_space = text[open..close].trim().is_empty();
    match style.unit.as_deref() {
        Some(unit) => {
            let outer = line_indent(text, obj.start);
            let indent = format!("{outer}{unit}");
            let member = format!("{key_text}: {}", render(value, Some(unit), &indent));
            if only_space {
                (open, close, format!("\n{indent}{member}\n{outer}"))
            } else {
                (open, open, format!("\n{indent}{member}"))
            }
        }
        None => {
            let member = format!("{key_text}: {}", render(value, None, ""));
            (open, if only_space { close } else { open }, member)
        }
    }
}

/// `value` as JSON: pretty with `unit` per level and `base` before every line but the
/// first, or on one line.
fn render(value: &impl Serialize, unit: Option<&str>, base: &str) -> String {
    match unit {
        None => serde_json::to_string(value).unwrap_or_default(),
        Some(unit) => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            if value.serialize(&mut ser).is_err() {
                return String::new();
            }
            String::from_utf8_lossy(&buf).replace('\n', &format!("\n{base}"))
        }
    }
}

/// The edit must leave the document, parsed, equal to the old one but for our entry.
fn verify(
    old: &str,
    old_relaxed: &[(usize, usize)],
    new: &str,
    root_key: &str,
    name: &str,
    entry: &Entry,
) -> Result<(), String> {
    let mut before: serde_json::Value = serde_json::from_str(&strict(old, old_relaxed))
        .map_err(|e| format!("it is not valid JSON ({e})"))?;
    let mut scan = Scanner::new(new);
    scan.document()
        .map_err(|e| format!("internal error, the edit broke the JSON ({e})"))?;
    let mut after: serde_json::Value = serde_json::from_str(&strict(new, &scan.relaxed))
        .map_err(|e| format!("internal error, the edit broke the JSON ({e})"))?;
    let want = serde_json::to_value(entry).map_err(|e| e.to_string())?;
    let broke = || "internal error, the edit would have changed other content".to_string();
    let servers = after
        .get_mut(root_key)
        .and_then(|s| s.as_object_mut())
        .ok_or_else(broke)?;
    if servers.remove(name) != Some(want) {
        return Err(broke());
    }
    let had_servers = before.get(root_key).is_some();
    if let Some(s) = before.get_mut(root_key).and_then(|s| s.as_object_mut()) {
        s.remove(name);
    }
    if !had_servers && let Some(obj) = after.as_object_mut() {
        obj.remove(root_key);
    }
    if before != after {
        return Err(broke());
    }
    Ok(())
}

/// `text` with comments, trailing commas and a byte-order mark turned into spaces.
fn strict(text: &str, relaxed: &[(usize, usize)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for &(start, end) in relaxed {
        for b in &mut bytes[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Whole characters were replaced, so this is still UTF-8.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A parsed value: where it is and, for an object, its members.
#[derive(Debug)]
struct Node {
    start: usize,
    end: usize,
    members: Option<Vec<Member>>,
}

#[derive(Debug)]
struct Member {
    key: String,
    key_start: usize,
    value: Node,
}

/// JSON, plus `//` and `/* */` comments and trailing commas, recorded in `relaxed`.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    relaxed: Vec<(usize, usize)>,
}

const MAX_DEPTH: usize = 128;

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            pos: 0,
            relaxed: Vec::new(),
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn error(&self, what: &str) -> String {
        let before = &self.bytes()[..self.pos.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        format!("it is not valid JSON: {what} at line {line}, column {column}")
    }

    fn document(&mut self) -> Result<Node, String> {
        if self.text.starts_with('\u{feff}') {
            self.relaxed.push((0, 3));
            self.pos = 3;
        }
        self.space()?;
        let node = self.value(0)?;
        self.space()?;
        if self.pos != self.text.len() {
            return Err(self.error("unexpected text after the end"));
        }
        Ok(node)
    }

    fn space(&mut self) -> Result<(), String> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' => {
                    let start = self.pos;
                    match self.bytes().get(self.pos + 1) {
                        Some(b'/') => {
                            let rest = &self.text[self.pos..];
                            self.pos += rest.find('\n').unwrap_or(rest.len());
                        }
                        Some(b'*') => {
                            let rest = &self.text[self.pos + 2..];
                            let Some(len) = rest.find("*/") else {
                                return Err(self.error("a comment that never ends"));
                            };
                            self.pos += 2 + len + 2;
                        }
                        _ => return Err(self.error("unexpected '/'")),
                    }
                    self.relaxed.push((start, self.pos));
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let start = self.pos;
        let members = match self.peek() {
            Some(b'{') => Some(self.object(depth)?),
            Some(b'[') => {
                self.array(depth)?;
                None
            }
            Some(b'"') => {
                self.string()?;
                None
            }
            Some(b't') => self.literal("true").map(|()| None)?,
            Some(b'f') => self.literal("false").map(|()| None)?,
            Some(b'n') => self.literal("null").map(|()| None)?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                None
            }
            Some(_) => return Err(self.error("expected a value")),
            None => return Err(self.error("unexpected end")),
        };
        Ok(Node {
            start,
            end: self.pos,
            members,
        })
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<(), String> {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        match serde_json::from_str::<serde_json::Value>(&self.text[start..self.pos]) {
            Ok(v) if v.is_number() => Ok(()),
            _ => {
                self.pos = start;
                Err(self.error("a malformed number"))
            }
        }
    }

    /// A string, decoded.
    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err(self.error("a string that never ends")),
                Some(b'"') => break,
                Some(b'\\') => self.pos += 2,
                Some(b) if b < 0x20 => return Err(self.error("a control character in a string")),
                Some(_) => self.pos += 1,
            }
        }
        self.pos += 1;
        let raw = self
            .text
            .get(start..self.pos)
            .ok_or_else(|| self.error("a malformed string"))?;
        serde_json::from_str::<String>(raw).map_err(|_| {
            self.pos = start;
            self.error("a malformed string")
        })
    }

    fn object(&mut self, depth: usize) -> Result<Vec<Member>, String> {
        self.pos += 1;
        let mut members = Vec::new();
        self.space()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(members);
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let key_start = self.pos;
            let key = self.string()?;
            self.space()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.space()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_start,
                value,
            });
            self.space()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members);
                }
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.space()?;
                    if self.peek() == Some(b'}') {
                        self.relaxed.push((comma, comma + 1));
                        self.pos += 1;
                        return Ok(members);
                    }
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), String> {
        self.pos += 1;
        self.space()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.space()?;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.space()?;
                    if self.peek() == Some(b']') {
                        self.relaxed.push((comma, comma + 1));
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }
}
