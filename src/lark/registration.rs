//! One-click app registration: the device flow of the accounts host
//! (`POST {accounts}/oauth/v1/app/registration`, form actions `init`, `begin`, `poll`), as
//! Lark's official SDKs drive it (`lark_oapi.register_app`). Facts and their sources:
//! `shared/reference/lark-auth-registration-events.md`, part A.
//!
//! - pending answers come as HTTP 400 with a JSON body, so the status is never judged, the
//!   body is;
//! - `slow_down` adds 5 s to the interval;
//! - a Lark-tenant user is answered by the Feishu host with `tenant_brand: lark` and no
//!   secret: polling goes on at the Lark host, once, at once;
//! - `addons` (the scopes and events to pre-select) travel gzip'd, base64url'd, in the
//!   verification URL.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::config::{FEISHU_BASE, LARK_BASE};

const ENDPOINT: &str = "/oauth/v1/app/registration";
const FEISHU_ACCOUNTS: &str = "https://accounts.feishu.cn";
const LARK_ACCOUNTS: &str = "https://accounts.larksuite.com";
/// What `slow_down` adds to the interval (all official clients).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The interval and lifetime when `begin` leaves them out (PY/NODE defaults).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_EXPIRES: Duration = Duration::from_secs(600);
/// The longest interval honoured: a server asking for more is slowed to this.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Feishu (China) or Lark (international): decides hosts and the API domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brand {
    Feishu,
    Lark,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Feishu => "feishu",
            Brand::Lark => "lark",
        }
    }

    pub fn parse(s: &str) -> Option<Brand> {
        match s {
            "feishu" => Some(Brand::Feishu),
            "lark" => Some(Brand::Lark),
            _ => None,
        }
    }
}

/// The two accounts hosts, and the open-platform base each brand's apps then call.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub feishu: String,
    pub lark: String,
    /// The API base for a Feishu app and for a Lark app.
    pub feishu_api: String,
    pub lark_api: String,
}

impl Accounts {
    /// For an API base from `parse_domain`: the real hosts for Feishu and Lark; for any
    /// other base (the sandbox, a test double), that base for Feishu and `{base}/lark` for
    /// Lark, with API calls staying on the base.
    pub fn for_api_base(base: &str) -> Accounts {
        if base == FEISHU_BASE || base == LARK_BASE {
            Accounts {
                feishu: FEISHU_ACCOUNTS.into(),
                lark: LARK_ACCOUNTS.into(),
                feishu_api: FEISHU_BASE.into(),
                lark_api: LARK_BASE.into(),
            }
        } else {
            Accounts {
                feishu: base.into(),
                lark: format!("{base}/lark"),
                feishu_api: base.into(),
                lark_api: base.into(),
            }
        }
    }

    /// The accounts host that serves the apps of API base `api`.
    pub fn for_api(&self, api: &str) -> &str {
        if api == self.lark_api && self.lark_api != self.feishu_api {
            &self.lark
        } else {
            &self.feishu
        }
    }

    pub fn api_base(&self, brand: Brand) -> &str {
        match brand {
            Brand::Feishu => &self.feishu_api,
            Brand::Lark => &self.lark_api,
        }
    }
}

/// What to pre-select on the confirmation page (the `addons` payload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addons {
    pub tenant_scopes: Vec<String>,
    pub user_scopes: Vec<String>,
    pub tenant_events: Vec<String>,
}

impl Addons {
    /// The JSON shape the page accepts; empty parts are left out (an unknown or empty
    /// shape makes the page drop the whole payload).
    pub fn to_json(&self) -> Value {
        let mut scopes = serde_json::Map::new();
        if !self.tenant_scopes.is_empty() {
            scopes.insert("tenant".into(), json!(self.tenant_scopes));
        }
        if !self.user_scopes.is_empty() {
            scopes.insert("user".into(), json!(self.user_scopes));
        }
        let mut out = serde_json::Map::new();
        if !scopes.is_empty() {
            out.insert("scopes".into(), Value::Object(scopes));
        }
        if !self.tenant_events.is_empty() {
            out.insert(
                "events".into(),
                json!({"items": {"tenant": self.tenant_events}}),
            );
        }
        Value::Object(out)
    }

    /// compact JSON → gzip → base64url without padding, as the platform fixes it.
    pub fn encode(&self) -> String {
        let json = self.to_json().to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(json.as_bytes());
        let bytes = gz.finish().unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The inverse of [`Addons::encode`], for tests and the sandbox's page.
    pub fn decode(s: &str) -> Option<Value> {
        use std::io::Read;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()?;
        // Bounded: a small payload can inflate without end.
        const MAX_JSON: u64 = 1 << 20;
        let mut json = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(MAX_JSON)
            .read_to_string(&mut json)
            .ok()?;
        serde_json::from_str(&json).ok()
    }
}

/// What the app will be called, and what it asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub description: String,
    pub addons: Addons,
    /// Update this app (add to its scopes) instead of creating one.
    pub client_id: Option<String>,
}

/// `begin`'s answer.
#[derive(Debug, Clone)]
pub struct Begun {
    pub device_code: String,
    /// The page to open (or scan), with the app's name, description and addons.
    pub url: String,
    pub interval: Duration,
    pub expires_in: Duration,
}

/// The registered app.
pub struct Registered {
    pub app_id: String,
    pub app_secret: SecretString,
    pub brand: Brand,
    pub open_id: Option<String>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[redacted]")
            .field("brand", &self.brand)
            .finish()
    }
}

/// How the flow ended without an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Denied(String),
    Expired,
    Cancelled,
    /// The server spoke an error this client does not know, or could not be reached.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Denied(why) if why.is_empty() => write!(f, "the registration was denied"),
            Failure::Denied(why) => write!(f, "the registration was denied: {why}"),
            Failure::Expired => write!(
                f,
                "the registration expired before it was confirmed; run init again"
            ),
            Failure::Cancelled => write!(f, "cancelled"),
            Failure::Other(why) => write!(f, "{why}"),
        }
    }
}

/// What the flow is doing, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Polling {
        left: Duration,
    },
    SlowDown {
        interval: Duration,
    },
    /// A Lark tenant: polling moved to the Lark accounts host.
    DomainSwitched,
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    supported_auth_methods: Option<Vec<String>>,
    #[serde(default)]
    device_code: String,
    #[serde(default)]
    verification_uri_complete: String,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    user_info: Option<UserInfo>,
}

#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(default)]
    open_id: Option<String>,
    #[serde(default)]
    tenant_brand: Option<String>,
}

pub struct Registration {
    http: reqwest::Client,
    accounts: Accounts,
}

impl Registration {
    pub fn new(accounts: Accounts) -> Result<Registration, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::client_config())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Registration { http, accounts })
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    async fn post(&self, host: &str, form: &[(&str, &str)]) -> Result<Answer, String> {
        let url = format!("{host}{ENDPOINT}");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(&url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {host}: {}", e.without_url()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("{host} did not answer completely: {}", e.without_url()))?;
        // Pending answers are HTTP 400 with a JSON body: judge the body.
        serde_json::from_slice(&body).map_err(|_| {
            format!(
                "{host} answered HTTP {} with no registration JSON",
                status.as_u16()
            )
        })
    }

    /// `init` then `begin`; the URL carries the app's name, description and addons.
    pub async fn begin(&self, req: &Request) -> Result<Begun, String> {
        let host = &self.accounts.feishu;
        let init = self.post(host, &[("action", "init")]).await?;
        if let Some(methods) = &init.supported_auth_methods
            && !methods.iter().any(|m| m == "client_secret")
        {
            return Err(format!(
                "{host} does not offer client_secret registration (it offers {methods:?})"
            ));
        }
        let begun = self
            .post(
                host,
                &[
                    ("action", "begin"),
                    ("archetype", "PersonalAgent"),
                    ("auth_method", "client_secret"),
                    ("request_user_info", "open_id"),
                ],
            )
            .await?;
        if !begun.error.is_empty() {
            return Err(format!(
                "{host} refused to begin: {} {}",
                begun.error, begun.error_description
            ));
        }
        if begun.device_code.is_empty() || begun.verification_uri_complete.is_empty() {
            return Err(format!(
                "{host} began without a device code or a verification URL"
            ));
        }
        let url = verification_url(&begun.verification_uri_complete, req)?;
        Ok(Begun {
            device_code: begun.device_code,
            url,
            interval: begun
                .interval
                .map_or(DEFAULT_INTERVAL, Duration::from_secs)
                .min(MAX_INTERVAL),
            expires_in: begun
                .expires_in
                .map_or(DEFAULT_EXPIRES, Duration::from_secs),
        })
    }

    /// Polls until the app exists, the user says no, time runs out or `cancel` fires.
    pub async fn wait(
        &self,
        begun: &Begun,
        cancel: &CancellationToken,
        mut status: impl FnMut(Status),
    ) -> Result<Registered, Failure> {
        let deadline = Instant::now() + begun.expires_in;
        let mut interval = begun.interval;
        let mut host = self.accounts.feishu.clone();
        let mut switched = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Expired);
            }
            status(Status::Polling { left });
            let form = [
                ("action", "poll"),
                ("device_code", begun.device_code.as_str()),
            ];
            let answer = tokio::select! {
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                a = self.post(&host, &form) => a,
            };
            let answer = match answer {
                Ok(a) => a,
                // A network hiccup is not the end: try again after the interval.
                Err(e) => {
                    tracing::debug!("registration poll failed: {e}");
                    Answer {
                        error: "authorization_pending".into(),
                        ..Answer::default()
                    }
                }
            };
            let brand = answer
                .user_info
                .as_ref()
                .and_then(|u| u.tenant_brand.as_deref())
                .and_then(Brand::parse);
            // The brand first, as the Node and Go SDKs do (Python looks at the credentials
            // first): a Lark tenant's app is finished at the Lark host.
            if brand == Some(Brand::Lark) && !switched {
                switched = true;
                host = self.accounts.lark.clone();
                status(Status::DomainSwitched);
                continue;
            }
            if !answer.client_id.is_empty() && !answer.client_secret.is_empty() {
                return Ok(Registered {
                    app_id: answer.client_id,
                    app_secret: SecretString::from(answer.client_secret),
                    brand: brand.unwrap_or(if switched { Brand::Lark } else { Brand::Feishu }),
                    open_id: answer.user_info.and_then(|u| u.open_id),
                });
            }
            match answer.error.as_str() {
                "" | "authorization_pending" => {}
                "slow_down" => {
                    interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    status(Status::SlowDown { interval });
                }
                "access_denied" => return Err(Failure::Denied(answer.error_description)),
                "expired_token" | "invalid_grant" => return Err(Failure::Expired),
                other => {
                    return Err(Failure::Other(format!(
                        "the registration failed: {other} {}",
                        answer.error_description
                    )));
                }
            }
            let pause = interval.min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The verification URL with our additions after its own query, as the SDKs build it.
fn verification_url(base: &str, req: &Request) -> Result<String, String> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|_| format!("the accounts host gave a malformed verification URL: {base}"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("from", "sdk")
            .append_pair("tp", "sdk")
            .append_pair("source", "lark-mcp-server")
            .append_pair("name", &req.name)
            .append_pair("desc", &req.description);
        let addons = req.addons.to_json();
        if addons.as_object().is_some_and(|o| !o.is_empty()) {
            q.append_pair("addons", &req.addons.encode());
        }
        if let Some(id) = &req.client_id {
            q.append_pair("clientID", id);
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addons_encode_like_the_platform_and_decode_back() {
        let a = Addons {
            tenant_scopes: vec!["im:message:send_as_bot".into()],
            ..Addons::default()
        };
        let enc = a.encode();
        assert!(
            enc.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{enc}"
        );
        assert_eq!(
            Addons::decode(&enc),
            Some(json!({"scopes": {"tenant": ["im:message:send_as_bot"]}}))
        );
        // The reference's example (Python's gzip), decoded by us.
        assert_eq!(
            Addons::decode(
                "H4sIAAAAAAACA6tWKk7OL0gtVrKqVipJzUvMK1GyilbKzLXKTS0uTkxPtSpOzUuJTyyOT8ovUYqtrQUAgA4mvDAAAAA"
            ),
            Some(json!({"scopes": {"tenant": ["im:message:send_as_bot"]}}))
        );
    }

    #[test]
    fn events_and_user_scopes_take_their_places() {
        let a = Addons {
            tenant_scopes: vec!["a".into()],
            user_scopes: vec!["b".into()],
            tenant_events: vec!["im.message.receive_v1".into()],
        };
        assert_eq!(
            a.to_json(),
            json!({"scopes": {"tenant": ["a"], "user": ["b"]},
                   "events": {"items": {"tenant": ["im.message.receive_v1"]}}})
        );
    }

    #[test]
    fn the_url_keeps_its_query_and_adds_ours() {
        let req = Request {
            name: "Lark MCP {user}".into(),
            description: "d e".into(),
            addons: Addons {
                tenant_scopes: vec!["x".into()],
                ..Addons::default()
            },
            client_id: Some("cli_a1".into()),
        };
        let url = verification_url("https://accounts.feishu.cn/page/launcher?ticket=abc", &req)
            .unwrap_or_default();
        assert!(
            url.starts_with("https://accounts.feishu.cn/page/launcher?ticket=abc&from=sdk&tp=sdk"),
            "{url}"
        );
        assert!(url.contains("name=Lark+MCP+%7Buser%7D"), "{url}");
        assert!(url.contains("&clientID=cli_a1"), "{url}");
        assert!(url.contains("&addons="), "{url}");
    }

    #[test]
    fn real_bases_use_the_real_accounts_hosts() {
        let a = Accounts::for_api_base(FEISHU_BASE);
        assert_eq!(a.feishu, "https://accounts.feishu.cn");
        assert_eq!(a.lark, "https://accounts.larksuite.com");
        assert_eq!(a.api_base(Brand::Lark), LARK_BASE);
        let s = Accounts::for_api_base("http://127.0.0.1:9");
        assert_eq!(s.lark, "http://127.0.0.1:9/lark");
        assert_eq!(s.api_base(Brand::Lark), "http://127.0.0.1:9");
    }
}
