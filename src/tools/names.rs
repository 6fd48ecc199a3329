//! Display names for ids, so outputs can put a name next to every id. A bounded TTL cache
//! filled by batch lookups (50 ids a call), never one call per id. Names are a courtesy:
//! a failed lookup leaves them out rather than failing the tool.

use std::collections::HashMap;
use std::time::Duration;

use quick_cache::sync::Cache;
use serde_json::Value;
use tokio::time::Instant;

use super::ToolCtx;
use crate::lark::Request;

const BATCH: usize = 50;

/// A bounded map of id → name whose entries expire after `ttl`. `quick_cache` does the
/// bounding (S3-FIFO eviction, no global lock); it has no TTL of its own, so each entry
/// carries the time it was stored and `get` ignores stale ones. The timestamp is tokio's
/// `Instant` so tests with paused time can age entries.
pub struct NameCache {
    ttl: Duration,
    entries: Cache<String, (String, Instant)>,
}

#[derive(Clone, Copy)]
enum Kind {
    User,
    Department,
}

impl NameCache {
    pub fn new(ttl: Duration, cap: usize) -> NameCache {
        NameCache {
            ttl,
            entries: Cache::new(cap),
        }
    }

    pub fn get(&self, id: &str) -> Option<String> {
        match self.entries.get(id) {
            Some((name, at)) if at.elapsed() < self.ttl => Some(name),
            Some(_) => {
                // Stale: drop it now so it stops taking a slot a live name could use.
                self.entries.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, id: &str, name: &str) {
        if id.is_empty() || name.is_empty() {
            return;
        }
        self.entries
            .insert(id.to_string(), (name.to_string(), Instant::now()));
    }

    /// Names of users by open_id.
    pub async fn users(&self, ctx: &ToolCtx, open_ids: &[String]) -> HashMap<String, String> {
        self.resolve(ctx, open_ids, Kind::User).await
    }

    /// Names of departments by open_department_id.
    pub async fn departments(&self, ctx: &ToolCtx, ids: &[String]) -> HashMap<String, String> {
        self.resolve(ctx, ids, Kind::Department).await
    }

    async fn resolve(&self, ctx: &ToolCtx, ids: &[String], kind: Kind) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for id in ids {
            if id == "0" || out.contains_key(id) || missing.contains(&id.as_str()) {
                continue;
            }
            match self.get(id) {
                Some(n) => {
                    out.insert(id.clone(), n);
                }
                None => missing.push(id),
            }
        }
        for chunk in missing.chunks(BATCH) {
            let (path, key, id_key, type_key, type_val) = match kind {
                Kind::User => (
                    "/open-apis/contact/v3/users/batch",
                    "user_ids",
                    "open_id",
                    "user_id_type",
                    "open_id",
                ),
                Kind::Department => (
                    "/open-apis/contact/v3/departments/batch",
                    "department_ids",
                    "open_department_id",
                    "department_id_type",
                    "open_department_id",
                ),
            };
            let mut req = Request::get("look up names", path.to_string()).query(type_key, type_val);
            for id in chunk {
                req = req.query(key, *id);
            }
            let Ok(resp) = ctx.client().call(req, &ctx.cancel).await else {
                continue;
            };
            let items = resp
                .data()
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                let id = item.get(id_key).and_then(Value::as_str).unwrap_or("");
                let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                if !id.is_empty() && !name.is_empty() {
                    self.put(id, name);
                    out.insert(id.to_string(), name.to_string());
                }
            }
        }
        out
    }
}

/// open_ids of the people with these emails (Lark's `batch_get_id`), keyed by lower-cased
/// email. Emails with no visible person (unknown, resigned, outside the contact range) are
/// absent; the caller decides whether that is an error.
pub async fn open_ids_by_email(
    ctx: &ToolCtx,
    op: &str,
    emails: &[&str],
) -> Result<HashMap<String, String>, super::ToolError> {
    let mut out = HashMap::new();
    for chunk in emails.chunks(BATCH) {
        let req = Request::post(
            op,
            "/open-apis/contact/v3/users/batch_get_id".into(),
            serde_json::json!({ "emails": chunk }),
        )
        .query("user_id_type", "open_id")
        .idempotent();
        let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
        for e in data["user_list"].as_array().into_iter().flatten() {
            if let (Some(email), Some(id)) = (e["email"].as_str(), e["user_id"].as_str()) {
                out.insert(email.to_ascii_lowercase(), id.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded() {
        let c = NameCache::new(Duration::from_secs(60), 20);
        for i in 0..100 {
            c.put(&format!("ou_{i}"), "x");
        }
        assert!(c.entries.len() <= 20);
        assert_eq!(c.get("ou_99").as_deref(), Some("x"));
    }

    #[tokio::test(start_paused = true)]
    async fn names_expire_after_the_ttl() {
        let c = NameCache::new(Duration::from_secs(60), 20);
        c.put("ou_1", "Ann");
        c.put("ou_2", "");
        assert_eq!(c.get("ou_1").as_deref(), Some("Ann"));
        assert_eq!(c.get("ou_2"), None, "empty names are not stored");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(c.get("ou_1"), None);
        c.put("ou_1", "Ann B");
        assert_eq!(
            c.get("ou_1").as_deref(),
            Some("Ann B"),
            "a fresh put revives it"
        );
    }
}
