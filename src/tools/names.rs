//! Display names for ids, so outputs can put a name next to every id. A bounded TTL cache
//! filled by batch lookups (50 ids a call), never one call per id. Names are a courtesy:
//! a failed lookup leaves them out rather than failing the tool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::ToolCtx;
use crate::lark::Request;

const BATCH: usize = 50;

pub struct NameCache {
    ttl: Duration,
    cap: usize,
    entries: Mutex<HashMap<String, (String, Instant)>>,
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
            cap,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<String> {
        self.lock()
            .get(id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(n, _)| n.clone())
    }

    pub fn put(&self, id: &str, name: &str) {
        if id.is_empty() || name.is_empty() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.cap && !map.contains_key(id) {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.cap {
                // Still full of live entries: drop the oldest tenth.
                let mut ages: Vec<(String, Instant)> =
                    map.iter().map(|(k, (_, at))| (k.clone(), *at)).collect();
                ages.sort_by_key(|(_, at)| *at);
                for (k, _) in ages.into_iter().take(self.cap / 10 + 1) {
                    map.remove(&k);
                }
            }
        }
        map.insert(id.to_string(), (name.to_string(), Instant::now()));
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
        assert!(c.lock().len() <= 20);
        assert_eq!(c.get("ou_99").as_deref(), Some("x"));
    }
}
