//! One error type for every Lark call. Its `Display` is what an agent reads: what failed,
//! why (Lark's code, msg, log id) and what to do about it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing or malformed configuration (app id, secret, domain).
    Config,
    /// Credentials or token rejected.
    Auth,
    /// The app lacks an API scope (99991672).
    MissingScope,
    /// The user did not grant a scope to a user token (99991679).
    UserNotAuthorized,
    /// The target is outside the app's contact data range (40004, 41050, …).
    DataRange,
    /// The caller's IP is not on the app's allow-list (99991401).
    IpDenied,
    /// The gateway's frequency limit (HTTP 429 / 99991400).
    RateLimited,
    /// Lark's 5 sends per second to one user or chat (230020).
    SendRateLimited,
    /// The bot is not a member of the chat (230002).
    BotNotInChat,
    /// A user, department, chat or message that does not exist.
    NotFound,
    /// A parameter Lark refused (99992402, 230001, size limits, …).
    InvalidArgument,
    /// 5xx, connection failures and per-request timeouts: retried where safe.
    Transient,
    /// The whole call ran out of its time budget.
    Timeout,
    /// The caller cancelled the call.
    Cancelled,
    /// A body that is not the JSON Lark sends.
    Decode,
    /// Any other Lark error.
    Api,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PermissionViolation {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subject: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldViolation {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Help {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default)]
pub struct Details {
    pub permission_violations: Vec<PermissionViolation>,
    pub field_violations: Vec<FieldViolation>,
    pub helps: Vec<Help>,
}

#[derive(Debug, Clone)]
pub struct LarkError {
    pub kind: ErrorKind,
    /// What was being done, e.g. "look up users by email".
    pub operation: String,
    pub http_status: Option<u16>,
    pub code: Option<i64>,
    pub msg: String,
    pub log_id: Option<String>,
    /// Lark's `error` lists; boxed because most errors have none.
    pub details: Box<Details>,
    /// `x-ogw-ratelimit-reset`, when Lark sent it.
    pub retry_after: Option<Duration>,
    /// The request certainly never reached Lark (no connection, no token), so even a
    /// write may be sent again.
    pub not_sent: bool,
}

impl LarkError {
    pub fn new(kind: ErrorKind, operation: impl Into<String>, msg: impl Into<String>) -> Self {
        LarkError {
            kind,
            operation: operation.into(),
            http_status: None,
            code: None,
            msg: msg.into(),
            log_id: None,
            details: Box::default(),
            retry_after: None,
            not_sent: false,
        }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        LarkError::new(ErrorKind::Config, "configuration", msg)
    }

    /// Builds the error from a Lark envelope with `code != 0`.
    pub fn from_envelope(
        operation: &str,
        status: u16,
        body: &Value,
        log_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let code = body.get("code").and_then(Value::as_i64).unwrap_or(-1);
        let msg = body
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let error = body.get("error");
        fn parse<T: serde::de::DeserializeOwned>(error: Option<&Value>, key: &str) -> Vec<T> {
            error
                .and_then(|e| e.get(key))
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        }
        let log_id = log_id.or_else(|| {
            error
                .and_then(|e| e.get("log_id"))
                .and_then(Value::as_str)
                .map(String::from)
        });
        LarkError {
            kind: kind_of(code, status),
            operation: operation.to_string(),
            http_status: Some(status),
            code: Some(code),
            msg,
            log_id,
            details: Box::new(Details {
                permission_violations: parse(error, "permission_violations"),
                field_violations: parse(error, "field_violations"),
                helps: parse(error, "helps"),
            }),
            retry_after,
            not_sent: false,
        }
    }

    /// Token errors after which a fresh token may succeed.
    pub fn is_stale_token(&self) -> bool {
        matches!(
            self.code,
            Some(99991661 | 99991663 | 99991664 | 99991671 | 99991668 | 99991677)
        )
    }

    /// Scopes named by a 99991672 / 99991679.
    pub fn missing_scopes(&self) -> Vec<&str> {
        self.details
            .permission_violations
            .iter()
            .map(|v| v.subject.as_str())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn advice(&self) -> String {
        match self.kind {
            ErrorKind::MissingScope => {
                let scopes = self.missing_scopes().join(", ");
                let link = self
                    .details.helps
                    .first()
                    .map(|h| format!(" at {}", h.url))
                    .unwrap_or_default();
                format!(
                    "The Lark app lacks a required scope. An app admin must enable one of [{scopes}] in the developer console{link} and publish a new app version; retrying will not help until then."
                )
            }
            ErrorKind::UserNotAuthorized => {
                let scopes = self.missing_scopes().join(", ");
                let named = if scopes.is_empty() {
                    String::new()
                } else {
                    format!(" ([{scopes}])")
                };
                format!(
                    "The user has not granted the app a scope this call needs{named}; ask them to authorise the app again, then retry."
                )
            }
            ErrorKind::DataRange => "The target is outside the app's contact data range. Use only people and departments the app can see (get_contact_scope lists them), or ask an admin to widen the range in the developer console.".into(),
            ErrorKind::IpDenied => "This server's IP is not on the app's IP allow-list; an admin must add it in the developer console.".into(),
            ErrorKind::RateLimited => match self.retry_after {
                Some(d) => format!("Lark's rate limit persisted; it resets in {} s. Wait, then retry.", d.as_secs()),
                None => "Lark's rate limit persisted. Wait a few seconds, then retry.".into(),
            },
            ErrorKind::SendRateLimited => "Lark allows 5 messages per second to one user or chat. Wait a moment, then retry.".into(),
            ErrorKind::BotNotInChat => "The bot is not a member of that chat. Add the bot to the chat (or choose a chat it is in), then retry.".into(),
            ErrorKind::NotFound => "Check the id and its type; look the target up again instead of guessing ids.".into(),
            ErrorKind::InvalidArgument => "Lark refused an argument. Check the arguments against the tool's description, correct the refused one, and retry.".into(),
            ErrorKind::Auth => "Check the app id and secret (LARK_APP_ID / LARK_APP_SECRET) and that the app is enabled in this tenant.".into(),
            ErrorKind::Transient => "Lark or the network failed temporarily and retries did not recover; try again shortly.".into(),
            ErrorKind::Timeout => "The call ran out of time; try again, or narrow the request.".into(),
            ErrorKind::Cancelled => "The request was cancelled before it finished; call again if it is still needed.".into(),
            ErrorKind::Decode => format!(
                "Lark sent a response this server cannot read; try again, and if it persists report it to Lark support{}.",
                self.quoting_log_id()
            ),
            ErrorKind::Config => "Fix the configuration and restart the server.".into(),
            ErrorKind::Api => {
                let code = self
                    .code
                    .map(|c| format!(" with code {c}"))
                    .unwrap_or_default();
                format!(
                    "Lark refused the request{code}. Check the arguments against the tool's description and retry; if it persists, look the code up in Lark's error code list ({FEISHU_ERROR_CODES} on Feishu, {LARK_ERROR_CODES} on Lark) and ask Lark support{}.",
                    self.quoting_log_id()
                )
            }
        }
    }

    /// The log id is what lets Lark support find the request; only offer it when there is one.
    fn quoting_log_id(&self) -> String {
        self.log_id
            .as_deref()
            .map(|l| format!(", quoting log id {l}"))
            .unwrap_or_default()
    }
}

const FEISHU_ERROR_CODES: &str =
    "https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code";
const LARK_ERROR_CODES: &str =
    "https://open.larksuite.com/document/server-docs/api-call-guide/generic-error-code";

/// Classifies by Lark's `code` first; the HTTP status only decides when there is no code.
pub fn kind_of(code: i64, status: u16) -> ErrorKind {
    match code {
        99991672 => ErrorKind::MissingScope,
        99991679 => ErrorKind::UserNotAuthorized,
        99991400 | 99991402 | 1000004 | 1000005 => ErrorKind::RateLimited,
        230020 => ErrorKind::SendRateLimited,
        99991401 => ErrorKind::IpDenied,
        99991661..=99991671 | 99991673..=99991677 | 99991543 | 10003 | 10014 | 10015 => {
            ErrorKind::Auth
        }
        40004 | 40003 | 41050 | 41056 => ErrorKind::DataRange,
        230002 => ErrorKind::BotNotInChat,
        99992351..=99992381 | 41017 | 40007 | 40008 | 99991201 | 230011 | 231003 | 230019 => {
            ErrorKind::NotFound
        }
        99992402 | 230001 | 230025 | 40001 | 40013 | 40011 | 40012 | 40040 | 40157 | 40161 => {
            ErrorKind::InvalidArgument
        }
        _ if status == 429 => ErrorKind::RateLimited,
        _ if status >= 500 => ErrorKind::Transient,
        _ => ErrorKind::Api,
    }
}

impl fmt::Display for LarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        let msg = self.msg.trim().trim_end_matches('.');
        if !msg.is_empty() {
            write!(f, ": {msg}")?;
        }
        let mut facts = Vec::new();
        if let Some(c) = self.code {
            facts.push(format!("Lark code {c}"));
        }
        if let Some(s) = self.http_status {
            facts.push(format!("HTTP {s}"));
        }
        if let Some(l) = &self.log_id {
            facts.push(format!("log_id {l}"));
        }
        if !facts.is_empty() {
            write!(f, " ({})", facts.join(", "))?;
        }
        write!(f, ".")?;
        for v in &self.details.field_violations {
            write!(f, " Field `{}`", v.field)?;
            if !v.value.is_empty() {
                write!(f, " = `{}`", v.value)?;
            }
            write!(f, ": {}.", v.description.trim_end_matches('.'))?;
        }
        write!(f, " {}", self.advice())
    }
}

impl std::error::Error for LarkError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_scope_text_names_the_scopes_and_the_console_link() {
        let body = json!({"code": 99991672, "msg": "Access denied. One of the following scopes is required: [a:b]",
            "error": {"log_id": "L1", "permission_violations": [{"type": "action_scope_required", "subject": "a:b"}],
                      "helps": [{"url": "https://open.feishu.cn/app/cli_x/auth?q=a:b&op_from=openapi", "description": "d"}]}});
        let e = LarkError::from_envelope("look up users", 400, &body, None, None);
        assert_eq!(e.kind, ErrorKind::MissingScope);
        let text = e.to_string();
        assert!(
            text.starts_with("look up users failed: Access denied."),
            "{text}"
        );
        assert!(
            text.contains("Lark code 99991672, HTTP 400, log_id L1"),
            "{text}"
        );
        assert!(text.contains("one of [a:b]"), "{text}");
        assert!(
            text.contains("https://open.feishu.cn/app/cli_x/auth?q=a:b&op_from=openapi"),
            "{text}"
        );
    }

    #[test]
    fn unknown_code_text_stands_alone() {
        let body = json!({"code": 12345, "msg": "something odd"});
        let e = LarkError::from_envelope("send a message", 400, &body, Some("L9".into()), None);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "send a message failed: something odd (Lark code 12345, HTTP 400, log_id L9)."
            ),
            "{text}"
        );
        assert!(
            text.contains("refused the request with code 12345"),
            "{text}"
        );
        assert!(text.contains("generic-error-code"), "{text}");
        assert!(text.contains("quoting log id L9"), "{text}");
        assert!(!text.contains("above"), "{text}");
    }

    #[test]
    fn advice_never_points_elsewhere() {
        use ErrorKind::*;
        for kind in [
            Config,
            Auth,
            MissingScope,
            UserNotAuthorized,
            DataRange,
            IpDenied,
            RateLimited,
            SendRateLimited,
            BotNotInChat,
            NotFound,
            InvalidArgument,
            Transient,
            Timeout,
            Cancelled,
            Decode,
            Api,
        ] {
            let text = LarkError::new(kind, "do it", "").to_string();
            assert!(!text.contains("above"), "{text}");
            assert!(!text.contains("failed: "), "{text}");
            assert!(text.ends_with('.'), "{text}");
        }
    }

    #[test]
    fn code_wins_over_http_status() {
        assert_eq!(kind_of(41050, 200), ErrorKind::DataRange);
        assert_eq!(kind_of(99991400, 400), ErrorKind::RateLimited);
        assert_eq!(kind_of(-1, 503), ErrorKind::Transient);
        assert_eq!(kind_of(12345, 400), ErrorKind::Api);
    }
}
