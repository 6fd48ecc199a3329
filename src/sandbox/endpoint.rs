//! The framework every endpoint group plugs into: a static description of the endpoint
//! (method, path, token kind, any-of scopes) and a synchronous handler that sees one
//! parsed request and the world. Auth, scopes, faults, log ids and recording happen
//! around it in [`super::pipeline`], so a new group is just a module of these.

use std::collections::HashMap;

use axum::http::Method;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::envelope::{ApiError, Reply};
use super::options::Options;
use super::world::World;

pub type Handler = fn(&mut Call, &mut World) -> Result<Reply, ApiError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Credential endpoints: no Authorization header.
    None,
    /// A tenant_access_token is required.
    Tenant,
}

pub struct Endpoint {
    /// The operation name used in `lark-endpoints.tsv`; also the request counter key.
    pub name: &'static str,
    pub method: Method,
    /// axum path syntax, e.g. `/open-apis/contact/v3/users/{user_id}`.
    pub path: &'static str,
    pub auth: Auth,
    /// Any one of these, granted for the tenant token, allows the call. Empty: no scope needed.
    /// Always `super::scopes::required(name)`: the sandbox's own table, not the catalog's.
    pub scopes: &'static [&'static str],
    pub handler: Handler,
    /// Largest accepted request body; `None` keeps axum's default (2 MB). Uploads raise it.
    pub body_limit: Option<usize>,
}

impl Endpoint {
    /// The scopes come from the row named `name` in the sandbox's copy of
    /// `lark-endpoints.tsv`, so each endpoint demands what Lark documents.
    pub fn new(
        name: &'static str,
        method: Method,
        path: &'static str,
        handler: Handler,
    ) -> Endpoint {
        Endpoint {
            name,
            method,
            path,
            auth: Auth::Tenant,
            scopes: super::scopes::required(name),
            handler,
            body_limit: None,
        }
    }

    pub const fn with_body_limit(mut self, bytes: usize) -> Endpoint {
        self.body_limit = Some(bytes);
        self
    }

    pub const fn without_token(mut self) -> Endpoint {
        self.auth = Auth::None;
        self
    }
}

/// One request as a handler sees it.
pub struct Call<'a> {
    pub endpoint: &'static str,
    /// Path parameters, percent-decoded.
    pub path: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// The request's `Content-Type` header (multipart uploads need its boundary).
    pub content_type: Option<String>,
    pub options: &'a Options,
    pub now_ms: u64,
}

impl Call<'_> {
    pub fn path_param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or("")
    }

    /// First value of a query parameter; an empty value counts as absent.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn query_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn required_query(&self, name: &str) -> Result<&str, ApiError> {
        self.query(name)
            .ok_or_else(|| ApiError::field(name, "", format!("{name} is required")))
    }

    pub fn enum_query<'s>(
        &'s self,
        name: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'s str, ApiError> {
        match self.query(name) {
            None => Ok(default),
            Some(v) if allowed.contains(&v) => Ok(v),
            Some(v) => Err(ApiError::field(
                name,
                v,
                format!("{name} must be one of: {}", allowed.join(", ")),
            )),
        }
    }

    /// Case-insensitive, as Lark is: the official Python SDK sends `str(bool)`,
    /// i.e. `True`/`False`, and Lark accepts those.
    pub fn bool_query(&self, name: &str) -> Result<bool, ApiError> {
        match self.query(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) => Err(ApiError::field(
                name,
                v,
                format!("{name} must be true or false"),
            )),
        }
    }

    pub fn user_id_type(&self) -> Result<&str, ApiError> {
        self.enum_query(
            "user_id_type",
            &["open_id", "union_id", "user_id"],
            "open_id",
        )
    }

    pub fn department_id_type(&self) -> Result<&str, ApiError> {
        self.enum_query(
            "department_id_type",
            &["open_department_id", "department_id"],
            "open_department_id",
        )
    }

    /// The JSON body; a missing or malformed one is a validation error, as on Lark.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.is_empty() {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|e| ApiError::field("body", "", format!("request body is not valid: {e}")))
    }

    /// Parses `page_size` / `page_token`. `key` ties a token to the query it came from,
    /// so a token replayed with different filters is rejected.
    pub fn page(&self, default: usize, max: usize, key: &str) -> Result<Page, ApiError> {
        let size = match self.query("page_size") {
            None => default,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(ApiError::field(
                        "page_size",
                        v,
                        format!("page_size must be an integer between 1 and {max}"),
                    ));
                }
            },
        };
        let fingerprint = fingerprint(&format!("{}|{key}", self.endpoint));
        let offset = match self.query("page_token") {
            None => 0,
            Some(t) => decode_token(t, fingerprint)
                .ok_or_else(|| ApiError::field("page_token", t, "page_token is invalid"))?,
        };
        Ok(Page {
            size,
            offset,
            fingerprint,
        })
    }
}

pub struct Page {
    pub size: usize,
    pub offset: usize,
    fingerprint: u32,
}

pub struct PageOut<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    pub page_token: Option<String>,
}

impl Page {
    pub fn slice<T: Clone>(&self, all: &[T]) -> PageOut<T> {
        let start = self.offset.min(all.len());
        let end = (start + self.size).min(all.len());
        let has_more = end < all.len();
        PageOut {
            items: all[start..end].to_vec(),
            has_more,
            page_token: has_more.then(|| encode_token(end, self.fingerprint)),
        }
    }
}

impl<T: serde::Serialize> PageOut<T> {
    /// `{<items_key>: […], has_more, page_token?}` as Lark lays out list responses.
    pub fn into_data(self, items_key: &str) -> serde_json::Value {
        let mut data = serde_json::Map::new();
        data.insert(items_key.into(), serde_json::json!(self.items));
        data.insert("has_more".into(), self.has_more.into());
        if let Some(t) = self.page_token {
            data.insert("page_token".into(), t.into());
        }
        serde_json::Value::Object(data)
    }
}

fn fingerprint(s: &str) -> u32 {
    // FNV-1a: stable across runs, which a page token must be.
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

fn encode_token(offset: usize, fingerprint: u32) -> String {
    format!("AQD9{fingerprint:08x}{:08x}", (offset as u32) ^ fingerprint)
}

fn decode_token(token: &str, fingerprint: u32) -> Option<usize> {
    let rest = token.strip_prefix("AQD9")?;
    if rest.len() != 16 || !rest.is_char_boundary(8) {
        return None;
    }
    let fp = u32::from_str_radix(&rest[..8], 16).ok()?;
    let masked = u32::from_str_radix(&rest[8..], 16).ok()?;
    (fp == fingerprint).then_some((masked ^ fingerprint) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_foreign_queries() {
        let t = encode_token(42, fingerprint("a"));
        assert_eq!(decode_token(&t, fingerprint("a")), Some(42));
        assert_eq!(decode_token(&t, fingerprint("b")), None);
        assert_eq!(decode_token("AQD9zz", fingerprint("a")), None);
        assert_eq!(
            decode_token("AQD9é1234567890123456", fingerprint("a")),
            None
        );
    }
}
