//! `--audit-log FILE`: one JSON line per write attempt (sent, failed, refused, declined or
//! dry run), appended to a file only its owner can read. Message bodies only with
//! `--audit-bodies`: the log says who wrote to whom and how it went, not what was said.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

/// One line of the log.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub time: String,
    pub tool: &'a str,
    /// bot or user: whose token the call used.
    pub identity: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// ok, error, refused, declined, cancelled, needs_confirmation or dry_run.
    pub result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl AuditLog {
    /// Opens (or creates) the log for appending, readable by its owner only; a link is
    /// not followed.
    pub fn open(path: &Path) -> Result<AuditLog, String> {
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = opts
            .open(path)
            .map_err(|e| format!("--audit-log {}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = file
                .metadata()
                .map_err(|e| format!("--audit-log {}: {e}", path.display()))?;
            if !meta.is_file() {
                return Err(format!(
                    "--audit-log {}: not a regular file",
                    path.display()
                ));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                // An existing log others could read: close it to them before writing more.
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| {
                        format!("--audit-log {}: cannot make it 0600: {e}", path.display())
                    })?;
            }
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line: appends from several calls never interleave within a line.
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {e}");
        }
    }
}

/// Writes the line for one write attempt, if the server keeps an audit log.
pub fn write_attempt(
    shared: &crate::tools::Shared,
    tool: &str,
    acting: crate::tools::Acting,
    record: &Mutex<super::Record>,
    outcome: &Result<crate::tools::ToolResult, Box<dyn std::any::Any + Send>>,
    log_ids: &[String],
) {
    let Some(log) = shared.guard.audit() else {
        return;
    };
    let r = super::lock_record(record);
    let mut line = Line {
        time: now(),
        tool,
        identity: match acting {
            crate::tools::Acting::Bot => "bot",
            crate::tools::Acting::User => "user",
        },
        receivers: r.receivers.clone(),
        message_id: None,
        result: "ok",
        code: None,
        log_id: None,
        error: None,
        body: if shared.guard.audit_bodies() {
            r.body.clone()
        } else {
            None
        },
    };
    match outcome {
        Err(_) => {
            line.result = "error";
            line.error = Some("internal error".into());
        }
        Ok(Ok(out)) => {
            line.message_id = out
                .value
                .get("message_id")
                .and_then(Value::as_str)
                .map(String::from);
            line.log_id = log_ids.last().cloned();
        }
        Ok(Err(e)) => {
            line.result = match (r.stopped, e.dry_run.is_some()) {
                (_, true) => "dry_run",
                (Some(why), _) => why,
                (None, _) => "error",
            };
            if let Some(l) = &e.lark {
                line.code = l.code;
                line.log_id = l.log_id.clone();
            }
            if e.dry_run.is_none() {
                line.error = Some(e.text.chars().take(300).collect());
            }
        }
    }
    log.write(&line);
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_log_is_owner_only_and_appends() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lark-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, "earlier\n").expect("seed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let log = AuditLog::open(&path).expect("opens");
        log.write(&Line {
            time: now(),
            tool: "send_message",
            identity: "bot",
            receivers: vec!["oc_a".into()],
            message_id: Some("om_1".into()),
            result: "ok",
            code: None,
            log_id: None,
            error: None,
            body: None,
        });
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("earlier\n{"), "{text}");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let link = dir.join("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(AuditLog::open(&link).is_err(), "a link is not followed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
