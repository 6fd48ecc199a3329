//! Where the client connects and with which credentials.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::error::LarkError;

pub const FEISHU_BASE: &str = "https://open.feishu.cn";
pub const LARK_BASE: &str = "https://open.larksuite.com";

#[derive(Clone)]
pub struct LarkConfig {
    pub app_id: String,
    pub app_secret: SecretString,
    /// Scheme and host (no trailing slash), e.g. `https://open.feishu.cn`.
    pub base_url: String,
    pub connect_timeout: Duration,
    /// One HTTP attempt.
    pub request_timeout: Duration,
    /// One logical call, including token fetches, retries and rate-limit waits.
    pub call_budget: Duration,
    /// Retries after the first attempt (5xx, connection errors, 429, 230020).
    pub max_retries: usize,
    /// Sends per second to one user or chat before the client holds further sends back.
    pub sends_per_second: u32,
}

impl std::fmt::Debug for LarkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LarkConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("call_budget", &self.call_budget)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl LarkConfig {
    /// Validates raw values (from flags or env); each error is one line naming both.
    pub fn new(
        app_id: Option<&str>,
        app_secret: Option<&str>,
        domain: Option<&str>,
    ) -> Result<LarkConfig, LarkError> {
        let app_id = app_id.map(str::trim).unwrap_or("");
        if app_id.is_empty() {
            return Err(LarkError::config(
                "missing app id: pass --app-id or set LARK_APP_ID",
            ));
        }
        let well_formed = app_id.starts_with("cli_")
            && app_id.len() <= 64
            && app_id[4..].chars().all(|c| c.is_ascii_alphanumeric());
        if !well_formed {
            return Err(LarkError::config(format!(
                "malformed app id `{app_id}`: expected cli_ followed by letters and digits (--app-id / LARK_APP_ID)"
            )));
        }
        let secret = app_secret.map(str::trim).unwrap_or("");
        if secret.is_empty() {
            return Err(LarkError::config(
                "missing app secret: pass --app-secret or set LARK_APP_SECRET",
            ));
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(LarkError::config(
                "malformed app secret: it contains whitespace (--app-secret / LARK_APP_SECRET)",
            ));
        }
        Ok(LarkConfig {
            app_id: app_id.to_string(),
            app_secret: SecretString::from(secret.to_string()),
            base_url: parse_domain(domain.unwrap_or("feishu"))?,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            call_budget: Duration::from_secs(60),
            max_retries: 5,
            sends_per_second: 5,
        })
    }

    pub fn secret(&self) -> &str {
        self.app_secret.expose_secret()
    }

    /// The developer console where an admin grants scopes: Lark's for Lark tenants,
    /// Feishu's otherwise (a sandbox or proxy URL says nothing, so Feishu, the default).
    pub fn console_base(&self) -> &'static str {
        let host = reqwest::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        if host.is_some_and(|h| h == "larksuite.com" || h.ends_with(".larksuite.com")) {
            LARK_BASE
        } else {
            FEISHU_BASE
        }
    }
}

/// `feishu`, `lark` (or its alias `larksuite`), or a base URL such as the sandbox's
/// `http://127.0.0.1:18080`.
pub fn parse_domain(domain: &str) -> Result<String, LarkError> {
    let d = domain.trim();
    match d.to_ascii_lowercase().as_str() {
        "" | "feishu" => return Ok(FEISHU_BASE.into()),
        "lark" | "larksuite" => return Ok(LARK_BASE.into()),
        _ => {}
    }
    let bad = || {
        LarkError::config(format!(
            "malformed domain `{d}`: use feishu, lark or a URL like https://open.feishu.cn (--domain / LARK_DOMAIN)"
        ))
    };
    let url = reqwest::Url::parse(d).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad());
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(bad());
    }
    Ok(d.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_flag_and_variable() {
        let e = LarkConfig::new(None, Some("s"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--app-id") && e.contains("LARK_APP_ID"), "{e}");
        let e = LarkConfig::new(Some("cli_a1"), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--app-secret") && e.contains("LARK_APP_SECRET"),
            "{e}"
        );
        let e = LarkConfig::new(Some("bad id"), Some("s"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed app id"), "{e}");
        let e = LarkConfig::new(Some("cli_a1"), Some("s"), Some("ftp://x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("LARK_DOMAIN"), "{e}");
    }

    #[test]
    fn domains_resolve_and_secret_stays_out_of_debug() {
        let c = LarkConfig::new(Some("cli_a1"), Some("topsecret"), Some("lark")).unwrap();
        assert_eq!(c.base_url, LARK_BASE);
        assert_eq!(c.console_base(), LARK_BASE);
        let f = LarkConfig::new(Some("cli_a1"), Some("s"), Some("feishu")).unwrap();
        assert_eq!(f.console_base(), FEISHU_BASE);
        assert!(!format!("{c:?}").contains("topsecret"));
        assert_eq!(
            parse_domain("http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(parse_domain("").unwrap(), FEISHU_BASE);
        assert!(parse_domain("http://x/open-apis").is_err());
    }
}
