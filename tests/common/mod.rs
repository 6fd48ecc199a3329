//! Shared helpers for the integration tests: an in-process sandbox on a free loopback port,
//! a plain reqwest client, and a few well-known ids from the default seed.
//!
//! Every test file that needs them says `mod common;`; not every binary uses every item.
#![allow(dead_code)]

pub mod http;
pub mod im;
pub mod login;
pub mod mcp;

use std::sync::Arc;

use lark_mcp_server::sandbox::seed::DEFAULT_SEED_JSON;
use lark_mcp_server::sandbox::{Options, Sandbox, SandboxState, Seed};
use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

// ---- the default org (src/sandbox/default_seed.json) ----------------------------------

pub const APP_ID: &str = "cli_a5f2c8e91b3d4007";
pub const APP_SECRET: &str = "sbx_7Qm2Vn9Lr4Tx8Kp1Wd6Hs3Jc5Fb0Ga";

pub const TENANT_TOKEN_PATH: &str = "/open-apis/auth/v3/tenant_access_token/internal";
pub const APP_TOKEN_PATH: &str = "/open-apis/auth/v3/app_access_token/internal";
pub const MESSAGES_PATH: &str = "/open-apis/im/v1/messages";
pub const BATCH_GET_ID_PATH: &str = "/open-apis/contact/v3/users/batch_get_id";

/// Active, in range (Perception, under R&D).
pub const ZHANG_WEI: &str = "ou_7d82ab6889beb45bb7911ba8216f1a9e";
pub const ZHANG_WEI_UNION: &str = "on_f87e62f92c2519d931e6ab2224672228";
pub const ZHANG_WEI_USER_ID: &str = "ud71a84";
pub const ZHANG_WEI_EMAIL: &str = "zhang.wei@northwind.example";
pub const ZHANG_WEI_MOBILE: &str = "+8617762117949";
/// Resigned, in an in-range department.
pub const MA_CHAO: &str = "ou_957ee86af1500fa92629b72bb82ac4f0";
pub const MA_CHAO_EMAIL: &str = "ma.chao@northwind.example";
/// Legal & Compliance is outside the contact range…
pub const LEGAL_DEPT: &str = "od-8f81d8ccf7a51e63bafeba49d2844e2a";
/// …and so is this Legal member…
pub const XUE_MING: &str = "ou_d0746ea879393f08fe81a80ed7f4cfd3";
pub const XUE_MING_EMAIL: &str = "xue.ming@northwind.example";
/// …except this one, granted individually.
pub const BAI_XUE: &str = "ou_1fdec493aac318f451a02ea6b93b3866";
pub const BAI_XUE_EMAIL: &str = "bai.xue@northwind.example";

pub const RND_DEPT: &str = "od-57891d17a4df767674f2906dc08918aa";
pub const ROBOTICS_DEPT: &str = "od-de093deba38434588db391cf956b582f";
pub const PERCEPTION_DEPT: &str = "od-8667b797aafb4516b58c3778a7b60cfc";
pub const MOTION_DEPT: &str = "od-6f02dda7a6dc4f66c082a96cae5f88f6";
pub const INFRA_DEPT: &str = "od-49af719b6ea75c106c1976714883ab51";
pub const INTL_DEPT: &str = "od-2a0e1a07d9bd779ef69e6c7578c61e26";

/// The bot is a member.
pub const ALL_HANDS_CHAT: &str = "oc_565504f375c752f3e721d59fac70afd9";
pub const RANDOM_CHAT: &str = "oc_a471517295a593ba928002be6ed44c50";
/// The bot is not a member.
pub const HR_PRIVATE_CHAT: &str = "oc_e71b5d3c2b56c8e28e8a4306d67d8577";

// ---- seeds and options ----------------------------------------------------------------

/// A fresh copy of the default org, to mutate before starting a sandbox.
pub fn seed() -> Seed {
    serde_json::from_str(DEFAULT_SEED_JSON).expect("the default seed deserializes")
}

/// The default org with `scope` removed from the app entirely.
pub fn seed_without_scope(scope: &str) -> Seed {
    let mut s = seed();
    let before = s.scopes.len();
    s.scopes.retain(|x| x.scope != scope);
    assert_eq!(s.scopes.len(), before - 1, "{scope} is in the default seed");
    s
}

/// Short-lived tokens, so expiry and renewal can be seen in a second or two.
pub fn short_token_options(ttl_secs: u64, renew_below_secs: u64) -> Options {
    Options {
        token_ttl_secs: ttl_secs,
        token_renew_below_secs: renew_below_secs,
        ..Default::default()
    }
}

// ---- responses --------------------------------------------------------------------------

/// One answer, read completely: status, headers, raw text, and the JSON (Null if not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub async fn read(r: reqwest::Response) -> Result<Resp, reqwest::Error> {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            text,
            json,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-Tt-Logid` header; panics when absent.
    #[track_caller]
    pub fn log_id(&self) -> &str {
        self.header("x-tt-logid")
            .unwrap_or_else(|| panic!("no X-Tt-Logid header on {self:?}"))
    }

    #[track_caller]
    pub fn code(&self) -> i64 {
        self.json["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no numeric code in {}: {}", self.status, self.text))
    }

    pub fn data(&self) -> &Value {
        &self.json["data"]
    }

    /// Asserts HTTP 200 and code 0; returns `data`.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(
            (self.status, self.json["code"].as_i64()),
            (200, Some(0)),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        self.data()
    }

    /// Asserts an error envelope with this status and code, whose `error.log_id` repeats the header.
    #[track_caller]
    pub fn err(&self, status: u16, code: i64) -> &Value {
        assert_eq!(
            (self.status, self.json["code"].as_i64()),
            (status, Some(code)),
            "expected {status}/{code}, got {}: {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.json["error"]["log_id"].as_str(),
            Some(self.log_id()),
            "error.log_id must equal X-Tt-Logid: {}",
            self.text
        );
        &self.json["error"]
    }

    /// The single `error.field_violations[].field` of a 99992402.
    #[track_caller]
    pub fn violated_field(&self) -> &str {
        let v = self.err(400, 99992402)["field_violations"]
            .as_array()
            .unwrap_or_else(|| panic!("no field_violations in {}", self.text));
        assert_eq!(v.len(), 1, "one field violation: {}", self.text);
        v[0]["field"].as_str().unwrap_or("")
    }
}

// ---- the sandbox under test -------------------------------------------------------------

/// A plain client; loopback must never go through a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// An in-process sandbox on 127.0.0.1:<free port>, stopped on drop.
pub struct Sbx {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub base: String,
}

impl Sbx {
    /// The default org with default options.
    pub async fn start() -> Sbx {
        Sbx::with(seed(), Options::default()).await
    }

    pub async fn with_options(options: Options) -> Sbx {
        Sbx::with(seed(), options).await
    }

    pub async fn with_seed(seed: Seed) -> Sbx {
        Sbx::with(seed, Options::default()).await
    }

    pub async fn with(seed: Seed, options: Options) -> Sbx {
        let sandbox = Sandbox::start(seed, options, 0)
            .await
            .expect("sandbox starts on a free port");
        let base = sandbox.base_url();
        Sbx {
            sandbox,
            http: client(),
            base,
        }
    }

    pub fn state(&self) -> &Arc<SandboxState> {
        self.sandbox.state()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends and reads the whole answer; transport errors (dropped connections) surface here.
    pub async fn try_execute(&self, rb: RequestBuilder) -> Result<Resp, reqwest::Error> {
        Resp::read(rb.send().await?).await
    }

    pub async fn execute(&self, rb: RequestBuilder) -> Resp {
        self.try_execute(rb).await.expect("request completes")
    }

    fn authed(&self, rb: RequestBuilder, token: &str) -> RequestBuilder {
        if token.is_empty() {
            rb
        } else {
            rb.bearer_auth(token)
        }
    }

    /// GET with `Authorization: Bearer <token>` (no header when `token` is empty).
    pub async fn get(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Resp {
        let rb = self.authed(self.http.get(self.url(path)).query(query), token);
        self.execute(rb).await
    }

    /// POST of a JSON body with `Authorization: Bearer <token>` (none when `token` is empty).
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Resp {
        let rb = self.post_builder(token, path, query, body);
        self.execute(rb).await
    }

    pub fn post_builder(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> RequestBuilder {
        self.authed(self.http.post(self.url(path)).query(query), token)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
    }

    /// The tenant token endpoint with these credentials.
    pub async fn tenant_token_with(&self, app_id: &str, app_secret: &str) -> Resp {
        self.post(
            "",
            TENANT_TOKEN_PATH,
            &[],
            &json!({"app_id": app_id, "app_secret": app_secret}),
        )
        .await
    }

    /// A valid tenant_access_token for the default app.
    pub async fn token(&self) -> String {
        let r = self.tenant_token_with(APP_ID, APP_SECRET).await;
        assert_eq!((r.status, r.code()), (200, 0), "token: {}", r.text);
        r.json["tenant_access_token"]
            .as_str()
            .expect("tenant_access_token")
            .to_string()
    }

    /// The body of a text message send.
    pub fn text_body(receive_id: &str, text: &str) -> Value {
        json!({
            "receive_id": receive_id,
            "msg_type": "text",
            "content": json!({"text": text}).to_string(),
        })
    }

    /// `POST im/v1/messages?receive_id_type=…` with a text message.
    pub async fn send_text(
        &self,
        token: &str,
        receive_id_type: &str,
        receive_id: &str,
        text: &str,
    ) -> Resp {
        self.post(
            token,
            MESSAGES_PATH,
            &[("receive_id_type", receive_id_type)],
            &Sbx::text_body(receive_id, text),
        )
        .await
    }
}

// ---- im v1 helpers (chats, messages, uploads) --------------------------------------------------

/// The default org with all of these scopes removed from the app.
pub fn seed_without_scopes(scopes: &[&str]) -> Seed {
    let mut s = seed();
    for scope in scopes {
        assert!(
            s.scopes.iter().any(|x| x.scope == *scope),
            "{scope} is in the default seed"
        );
    }
    s.scopes.retain(|x| !scopes.contains(&x.scope.as_str()));
    s
}

/// A raw (possibly binary) answer: resource downloads.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a JSON envelope (for download errors).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// One `multipart/form-data` part: a text field (`file_name` None) or a file.
pub struct FormPart<'a> {
    pub name: &'a str,
    pub file_name: Option<&'a str>,
    pub data: &'a [u8],
}

impl<'a> FormPart<'a> {
    pub fn text(name: &'a str, value: &'a str) -> FormPart<'a> {
        FormPart {
            name,
            file_name: None,
            data: value.as_bytes(),
        }
    }

    pub fn file(name: &'a str, file_name: &'a str, data: &'a [u8]) -> FormPart<'a> {
        FormPart {
            name,
            file_name: Some(file_name),
            data,
        }
    }
}

/// `(content_type, body)` of a multipart form, built by hand (reqwest's multipart
/// feature is not enabled).
pub fn multipart_body(parts: &[FormPart]) -> (String, Vec<u8>) {
    let boundary = "----SandboxBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match p.file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
        }
        body.extend_from_slice(p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Sbx {
    /// Any method with a JSON body (PUT, PATCH, DELETE with body, …).
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let mut rb = self.authed(
            self.http.request(method, self.url(path)).query(query),
            token,
        );
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json; charset=utf-8")
                .body(b.to_string());
        }
        self.execute(rb).await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.send_json(reqwest::Method::PUT, token, path, &[], Some(body))
            .await
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.send_json(reqwest::Method::PATCH, token, path, &[], Some(body))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send_json(reqwest::Method::DELETE, token, path, query, None)
            .await
    }

    /// GET returning raw bytes (downloads).
    pub async fn get_raw(&self, token: &str, path: &str, query: &[(&str, &str)]) -> RawResp {
        let rb = self.authed(self.http.get(self.url(path)).query(query), token);
        let r = rb.send().await.expect("request completes");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body").to_vec();
        RawResp {
            status,
            headers,
            bytes,
        }
    }

    /// POST of a multipart form.
    pub async fn upload(&self, token: &str, path: &str, parts: &[FormPart<'_>]) -> Resp {
        let (content_type, body) = multipart_body(parts);
        let rb = self
            .authed(self.http.post(self.url(path)), token)
            .header("content-type", content_type)
            .body(body);
        self.execute(rb).await
    }
}

/// An empty config home of its own for one test (profiles, logins), under the build dir.
pub fn config_home(group: &str, test: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}
