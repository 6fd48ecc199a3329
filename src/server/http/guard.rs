//! The one layer every request passes before any route, `/healthz` and unknown paths
//! included: shutdown, `Host`, `Origin`, the bearer token, the body size, a JSON-RPC check
//! of JSON POST bodies and the session cap, in that order. rmcp's own Host/Origin checks are off, so these are the only rules.
//!
//! `/healthz` needs no token (probes rarely carry one) but gets every other check: one set of
//! Host/Origin rules for the whole server is easier to reason about than exceptions.
//!
//! Checks that need the body belong in [`check`] after the body has been read (once, here),
//! before the session slot is reserved.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::sessions::{self, SessionSlots};
use super::{HEALTHZ_PATH, HttpOptions, InFlight, MCP_PATH, SSE_PATH};

/// Paths served without the bearer token.
const OPEN_PATHS: &[&str] = &[HEALTHZ_PATH];

pub(super) struct Guard {
    hosts: Vec<HostRule>,
    origins: Vec<OriginRule>,
    token: Option<SecretString>,
    max_body: usize,
    slots: SessionSlots,
    /// Cancelled on SIGTERM: from then on every request is refused.
    draining: CancellationToken,
    /// Requests past the shutdown check whose handler has not answered yet. The drain waits
    /// for them first: only once a handler has answered is its work visible to the drain
    /// (a running tool call, a response stream still owed).
    admitted: Arc<InFlight>,
}

impl Guard {
    pub(super) fn new(
        opts: &HttpOptions,
        slots: SessionSlots,
        draining: CancellationToken,
        admitted: Arc<InFlight>,
    ) -> Guard {
        let hosts = opts
            .allowed_hosts
            .iter()
            .filter_map(|h| {
                let rule = HostRule::parse(h);
                if rule.is_none() {
                    tracing::warn!("ignoring --allowed-host {h:?}: not host[:port]");
                }
                rule
            })
            .collect();
        let origins = opts
            .allowed_origins
            .iter()
            .filter_map(|o| {
                let rule = OriginRule::parse(o);
                if rule.is_none() {
                    tracing::warn!("ignoring --allowed-origin {o:?}: not scheme://host[:port]");
                }
                rule
            })
            .collect();
        Guard {
            hosts,
            origins,
            token: opts.auth_token.clone(),
            max_body: opts.max_body_bytes,
            slots,
            draining,
            admitted,
        }
    }

    fn host_allowed(&self, parts: &Parts) -> bool {
        let mut values = parts.headers.get_all(header::HOST).iter();
        let host = match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok(),
            (Some(_), Some(_)) => None,
            // HTTP/2 names the host in `:authority`, not in a Host header.
            (None, _) => parts.uri.authority().map(|a| a.as_str()),
        };
        host.and_then(Authority::parse)
            .is_some_and(|a| self.hosts.iter().any(|r| r.matches(&a)))
    }

    /// Requests without an Origin (not from a browser) pass.
    fn origin_allowed(&self, parts: &Parts) -> bool {
        let mut values = parts.headers.get_all(header::ORIGIN).iter();
        match (values.next(), values.next()) {
            (None, _) => true,
            (Some(v), None) => v
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .is_some_and(|o| self.origins.iter().any(|r| r.matches(&o))),
            (Some(_), Some(_)) => false,
        }
    }

    fn token_ok(&self, parts: &Parts) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if OPEN_PATHS.contains(&parts.uri.path()) {
            return true;
        }
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 7235); the token is not.
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim())
            })
            .unwrap_or("");
        given
            .as_bytes()
            .ct_eq(token.expose_secret().as_bytes())
            .into()
    }

    /// The whole body, or the response refusing it. The body is read here, once, so the limit
    /// holds for every route whatever the handler does with it.
    async fn read_body(&self, parts: &Parts, body: Body) -> Result<Bytes, Response> {
        let too_large = || {
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "request body too large",
            )
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(too_large());
        }
        let mut chunks = body.into_data_stream();
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|_| {
                error_response(
                    StatusCode::BAD_REQUEST,
                    None,
                    "cannot read the request body",
                )
            })?;
            if buf.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

pub(super) async fn check(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if g.draining.is_cancelled() {
        return shutting_down(parts.version);
    }
    if !g.host_allowed(&parts) {
        return error_response(
            StatusCode::FORBIDDEN,
            None,
            "Forbidden: Host header is not allowed",
        );
    }
    if !g.origin_allowed(&parts) {
        return error_response(
            StatusCode::FORBIDDEN,
            None,
            "Forbidden: Origin is not allowed",
        );
    }
    if !g.token_ok(&parts) {
        let mut resp = error_response(
            StatusCode::UNAUTHORIZED,
            None,
            "Unauthorized: send Authorization: Bearer <token>",
        );
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let body = match g.read_body(&parts, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Some(resp) = crate::server::jsonrpc::reject_invalid_body(&parts, &body) {
        return resp;
    }

    // Admitted before looking at `draining` again, the drain's mirror image (cancel, then
    // wait for admitted requests): a request either sees the shutdown or is waited for.
    let _admitted = g.admitted.enter();
    if g.draining.is_cancelled() {
        return shutting_down(parts.version);
    }
    let slot = match opens_session(&parts, &body) {
        None => None,
        Some(id) => match g.slots.try_reserve() {
            Some(slot) => Some(slot),
            None => {
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    "Too many open sessions; try again later",
                );
            }
        },
    };
    let req = Request::from_parts(parts, Body::from(body));
    sessions::with_reserved(slot, next.run(req)).await
}

/// The start of a JSON-RPC message: enough to tell an `initialize`.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<Value>,
}

/// `Some(request id)` when the request opens a session if it succeeds: `GET /sse`, and an
/// `initialize` POSTed to `/mcp` outside a session. A request misjudged as not opening one
/// cannot get past the cap: rmcp then finds no reserved slot and creates no session.
fn opens_session(parts: &Parts, body: &[u8]) -> Option<Option<Value>> {
    let path = parts.uri.path();
    if parts.method == Method::GET && path == SSE_PATH {
        return Some(None);
    }
    if parts.method == Method::POST
        && path == MCP_PATH
        && !parts.headers.contains_key("mcp-session-id")
    {
        let head = serde_json::from_slice::<Head>(body).ok()?;
        return (head.method.as_deref() == Some("initialize")).then_some(head.id);
    }
    None
}

/// A JSON-RPC error in an HTTP error: MCP clients parse the body either way.
pub(super) fn error_response(status: StatusCode, id: Option<Value>, msg: &str) -> Response {
    // -32000 is the implementation-defined server error: the request itself was fine.
    let code = if status.is_server_error() {
        -32000
    } else {
        -32600
    };
    (
        status,
        axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": msg}})),
    )
        .into_response()
}

fn shutting_down(version: Version) -> Response {
    let mut resp = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "The server is shutting down",
    );
    // A kept-alive connection would otherwise be offered for the next request too; HTTP/2
    // forbids the header (its connection gets a GOAWAY instead).
    if version <= Version::HTTP_11 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

// ---- Host and Origin matching ----------------------------------------------------------

/// `host[:port]` as found in a Host header or an origin: the host lowercased, IPv6 without
/// its brackets.
#[derive(Debug, PartialEq)]
struct Authority<'a> {
    host: String,
    port: Option<&'a str>,
}

impl<'a> Authority<'a> {
    /// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare `v6` (only ever configured).
    fn parse(s: &'a str) -> Option<Authority<'a>> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (host, port)
        } else if s.matches(':').count() > 1 {
            (s, None)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let host_chars = |c: char| c.is_ascii_alphanumeric() || "-._:%".contains(c);
        if host.is_empty() || !host.chars().all(host_chars) {
            return None;
        }
        Some(Authority {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

fn port_number(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// An `--allowed-host`: without a port (or with `:*`) any port; with one only that port,
/// a Host without a port being port 80 (this server speaks plain HTTP).
#[derive(Debug)]
struct HostRule {
    host: String,
    port: Option<u16>,
}

impl HostRule {
    fn parse(s: &str) -> Option<HostRule> {
        let a = Authority::parse(s.trim())?;
        let port = match a.port {
            None | Some("*") => None,
            Some(p) => Some(port_number(p)?),
        };
        Some(HostRule { host: a.host, port })
    }

    fn matches(&self, a: &Authority) -> bool {
        if a.host != self.host {
            return false;
        }
        let port = match a.port {
            None => 80,
            Some(p) => match port_number(p) {
                Some(n) => n,
                None => return false,
            },
        };
        self.port.is_none_or(|p| p == port)
    }
}

/// A browser origin, `scheme://host[:port]`, its port made explicit where the scheme has a
/// default.
#[derive(Debug, PartialEq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl Origin {
    fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let a = Authority::parse(rest.strip_suffix('/').unwrap_or(rest))?;
        let port = match a.port {
            None => default_port(&scheme),
            Some(p) => Some(port_number(p)?),
        };
        Some(Origin {
            scheme,
            host: a.host,
            port,
        })
    }
}

/// An `--allowed-origin`: `:*` for any port; without a port, the scheme's default port.
#[derive(Debug)]
struct OriginRule {
    scheme: String,
    host: String,
    /// `None`: any port.
    port: Option<Option<u16>>,
}

impl OriginRule {
    fn parse(s: &str) -> Option<OriginRule> {
        let s = s.trim();
        if let Some(base) = s.strip_suffix(":*") {
            let o = Origin::parse(base)?;
            return Some(OriginRule {
                scheme: o.scheme,
                host: o.host,
                port: None,
            });
        }
        let o = Origin::parse(s)?;
        Some(OriginRule {
            scheme: o.scheme,
            host: o.host,
            port: Some(o.port),
        })
    }

    fn matches(&self, o: &Origin) -> bool {
        self.scheme == o.scheme && self.host == o.host && self.port.is_none_or(|p| p == o.port)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;

    fn host_ok(host: &str, allowed: &[String]) -> bool {
        let rules: Vec<HostRule> = allowed.iter().filter_map(|h| HostRule::parse(h)).collect();
        Authority::parse(host).is_some_and(|a| rules.iter().any(|r| r.matches(&a)))
    }

    fn origin_ok(origin: &str, allowed: &[String]) -> bool {
        let rules: Vec<OriginRule> = allowed
            .iter()
            .filter_map(|o| OriginRule::parse(o))
            .collect();
        Origin::parse(origin).is_some_and(|o| rules.iter().any(|r| r.matches(&o)))
    }

    #[test]
    fn hosts_and_origins_match_like_browsers_send_them() {
        let hosts = HttpOptions::default_hosts();
        assert!(host_ok("localhost:8080", &hosts));
        assert!(host_ok("LocalHost:8080", &hosts));
        assert!(host_ok("127.0.0.1", &hosts));
        assert!(host_ok("[::1]:9000", &hosts));
        assert!(host_ok("[::1]", &hosts));
        assert!(!host_ok("evil.example", &hosts));
        assert!(!host_ok("localhost.evil.example:80", &hosts));
        assert!(!host_ok("localhost:80x", &hosts));
        assert!(!host_ok("localhost@evil.example", &hosts));
        assert!(!host_ok("", &hosts));
        let origins = HttpOptions::default_origins();
        assert!(origin_ok("http://localhost:3000", &origins));
        assert!(origin_ok("http://127.0.0.1", &origins));
        assert!(origin_ok("http://[::1]:5173", &origins));
        assert!(!origin_ok("http://evil.example", &origins));
        assert!(!origin_ok("http://localhost.evil.example:3000", &origins));
        assert!(!origin_ok("null", &origins));
        assert!(!origin_ok("file://", &origins));
        let exact = ["https://app.example.com:443".to_string()];
        assert!(origin_ok("https://app.example.com", &exact));
        assert!(!origin_ok("https://app.example.com:8443", &exact));
        assert!(!origin_ok("http://app.example.com:443", &exact));
    }

    #[test]
    fn a_port_in_a_rule_is_the_only_port_allowed() {
        let hosts = ["mcp.internal:8080".to_string()];
        assert!(host_ok("mcp.internal:8080", &hosts));
        assert!(!host_ok("mcp.internal:8081", &hosts));
        assert!(!host_ok("mcp.internal", &hosts));
        let any = ["mcp.internal".to_string()];
        assert!(host_ok("mcp.internal", &any));
        assert!(host_ok("mcp.internal:1", &any));
        let plain = ["mcp.internal:80".to_string()];
        assert!(host_ok("mcp.internal", &plain), "no port is port 80");

        // An origin rule without a port means the scheme's default port.
        let origins = ["https://app.example.com".to_string()];
        assert!(origin_ok("https://app.example.com", &origins));
        assert!(origin_ok("https://app.example.com:443", &origins));
        assert!(!origin_ok("https://app.example.com:8443", &origins));
    }

    #[test]
    fn unparsable_rules_are_rejected() {
        assert!(HostRule::parse("").is_none());
        assert!(HostRule::parse("host:port").is_none());
        assert!(HostRule::parse("[::1").is_none());
        assert!(OriginRule::parse("localhost:3000").is_none());
        assert!(OriginRule::parse("http://").is_none());
    }

    fn guard_with_body_limit(max_body_bytes: usize) -> Guard {
        let opts = HttpOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            auth_token: None,
            allowed_origins: HttpOptions::default_origins(),
            allowed_hosts: HttpOptions::default_hosts(),
            max_body_bytes,
            max_sessions: 1,
            session_idle: Duration::from_secs(60),
            drain: Duration::from_secs(1),
        };
        Guard::new(
            &opts,
            SessionSlots::new(1),
            CancellationToken::new(),
            Arc::default(),
        )
    }

    #[tokio::test]
    async fn bodies_are_capped_with_or_without_a_length() {
        let g = guard_with_body_limit(1000);
        let parts = |length: Option<usize>| {
            let mut b = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/anything");
            if let Some(n) = length {
                b = b.header(header::CONTENT_LENGTH, n);
            }
            b.body(()).map(|r| r.into_parts().0).expect("a request")
        };
        let chunked = |n: usize| {
            Body::from_stream(futures::stream::iter(
                (0..n).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100]))),
            ))
        };
        let status = |r: Result<Bytes, Response>| r.map(|b| b.len()).map_err(|e| e.status());

        assert_eq!(
            status(g.read_body(&parts(None), chunked(10)).await),
            Ok(1000)
        );
        assert_eq!(
            status(g.read_body(&parts(None), chunked(11)).await),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        // A declared length over the limit is refused before reading.
        assert_eq!(
            status(g.read_body(&parts(Some(1001)), Body::empty()).await),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        // A declared length is not trusted: the count is of what arrives.
        assert_eq!(
            status(g.read_body(&parts(Some(10)), chunked(20)).await),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        let broken = Body::from_stream(futures::stream::iter([
            Ok(Bytes::from_static(b"{")),
            Err(std::io::Error::other("reset")),
        ]));
        assert_eq!(
            status(g.read_body(&parts(None), broken).await),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn only_an_initialize_outside_a_session_or_get_sse_opens_a_session() {
        let parts = |method: Method, path: &str, session: bool| {
            let mut b = axum::http::Request::builder().method(method).uri(path);
            if session {
                b = b.header("mcp-session-id", "s");
            }
            b.body(()).map(|r| r.into_parts().0).expect("a request")
        };
        let init = br#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}"#;
        let list = br#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#;
        assert_eq!(
            opens_session(&parts(Method::POST, "/mcp", false), init),
            Some(Some(json!(7)))
        );
        assert_eq!(
            opens_session(&parts(Method::POST, "/mcp", true), init),
            None
        );
        assert_eq!(
            opens_session(&parts(Method::POST, "/mcp", false), list),
            None
        );
        assert_eq!(
            opens_session(&parts(Method::POST, "/mcp", false), b"[]"),
            None
        );
        assert_eq!(
            opens_session(&parts(Method::POST, "/mcp/", false), init),
            None
        );
        assert_eq!(
            opens_session(&parts(Method::GET, "/sse", false), b""),
            Some(None)
        );
        assert_eq!(opens_session(&parts(Method::GET, "/mcp", false), b""), None);
    }
}
