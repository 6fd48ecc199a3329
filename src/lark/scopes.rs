//! The scopes the app has been granted, per token type.

use std::collections::BTreeSet;

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantedScopes {
    pub tenant: BTreeSet<String>,
    pub user: BTreeSet<String>,
}

impl GrantedScopes {
    /// Whether a tenant-token call needing any one of `scopes` is allowed.
    pub fn allows_any(&self, scopes: &[&str]) -> bool {
        scopes.is_empty() || scopes.iter().any(|s| self.tenant.contains(*s))
    }

    /// From `application/v6/applications/me`: `data.app.scopes[{scope, token_types}]`.
    pub fn from_app_info(data: &Value) -> Option<GrantedScopes> {
        let list = data.get("app")?.get("scopes")?.as_array()?;
        let mut out = GrantedScopes::default();
        for s in list {
            let Some(name) = s.get("scope").and_then(Value::as_str) else {
                continue;
            };
            let types = s.get("token_types").and_then(Value::as_array);
            for t in types.into_iter().flatten().filter_map(Value::as_str) {
                out.insert(t, name);
            }
        }
        Some(out)
    }

    /// From `application/v6/scopes`: `data.scopes[{scope_name, grant_status, scope_type}]`.
    pub fn from_grant_status(data: &Value) -> Option<GrantedScopes> {
        let list = data.get("scopes")?.as_array()?;
        let mut out = GrantedScopes::default();
        for s in list {
            if s.get("grant_status").and_then(Value::as_i64) != Some(1) {
                continue;
            }
            let Some(name) = s.get("scope_name").and_then(Value::as_str) else {
                continue;
            };
            // [U] whether the name carries its domain prefix; both forms are kept as sent.
            let kind = s
                .get("scope_type")
                .and_then(Value::as_str)
                .unwrap_or("tenant");
            out.insert(kind, name);
        }
        Some(out)
    }

    fn insert(&mut self, token_type: &str, scope: &str) {
        match token_type {
            "user" => self.user.insert(scope.to_string()),
            _ => self.tenant.insert(scope.to_string()),
        };
    }
}

/// The last scope set read for one app on one Lark host, kept on disk so the next start
/// can answer `tools/list` at once instead of waiting for Lark; the scopes are re-read in
/// the background all the same. The file is untrusted: anything unreadable, malformed or
/// written for another app or host is ignored.
#[derive(Debug, Clone)]
pub struct ScopeCache {
    path: std::path::PathBuf,
    app_id: String,
    base_url: String,
}

const SCOPE_CACHE_VERSION: u32 = 1;
/// Far above any real app's scope list: a larger file is not ours.
const SCOPE_CACHE_MAX_BYTES: u64 = 1 << 20;

#[derive(serde::Serialize, serde::Deserialize)]
struct ScopeCacheFile {
    version: u32,
    app_id: String,
    base_url: String,
    tenant: BTreeSet<String>,
    user: BTreeSet<String>,
}

impl ScopeCache {
    /// `<cache>/lark-mcp-server/scopes-<hash>.json`; None without a cache directory.
    pub fn for_app(cfg: &super::LarkConfig) -> Option<ScopeCache> {
        let dir = crate::directory::cache_dir()?;
        Some(ScopeCache::at(dir, cfg))
    }

    /// The cache for `cfg` in `dir`.
    pub fn at(dir: std::path::PathBuf, cfg: &super::LarkConfig) -> ScopeCache {
        use sha2::Digest;
        // The name shows neither app nor host; the file says which, and is checked.
        let digest = sha2::Sha256::digest(format!("{}|{}", cfg.app_id, cfg.base_url));
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        ScopeCache {
            path: dir.join(format!("scopes-{short}.json")),
            app_id: cfg.app_id.clone(),
            base_url: cfg.base_url.clone(),
        }
    }

    pub fn load(&self) -> Option<GrantedScopes> {
        use std::io::Read;
        let file = std::fs::File::open(&self.path).ok()?;
        let mut bytes = Vec::new();
        if let Err(e) = file.take(SCOPE_CACHE_MAX_BYTES).read_to_end(&mut bytes) {
            tracing::debug!("ignoring the scope cache {}: {e}", self.path.display());
            return None;
        }
        let parsed: ScopeCacheFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("ignoring the scope cache {}: {e}", self.path.display());
                return None;
            }
        };
        if parsed.version != SCOPE_CACHE_VERSION
            || parsed.app_id != self.app_id
            || parsed.base_url != self.base_url
        {
            tracing::debug!(
                "ignoring the scope cache {}: written for another app or host",
                self.path.display()
            );
            return None;
        }
        Some(GrantedScopes {
            tenant: parsed.tenant,
            user: parsed.user,
        })
    }

    pub fn store(&self, granted: &GrantedScopes) {
        let file = ScopeCacheFile {
            version: SCOPE_CACHE_VERSION,
            app_id: self.app_id.clone(),
            base_url: self.base_url.clone(),
            tenant: granted.tenant.clone(),
            user: granted.user.clone(),
        };
        let written = serde_json::to_vec(&file)
            .map_err(|e| e.to_string())
            .and_then(|b| crate::profile::write_private(&self.path, &b));
        if let Err(e) = written {
            tracing::warn!("the scope cache was not written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(app: &str, base: &str) -> super::super::LarkConfig {
        super::super::LarkConfig::new(Some(app), Some("secret"), Some(base)).unwrap_or_else(|e| {
            panic!("config: {}", e.msg);
        })
    }

    fn dir() -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("lark-scope-cache-{}-{n}", std::process::id()))
    }

    #[test]
    fn round_trips_and_ignores_foreign_or_corrupt_files() {
        let d = dir();
        let mine = ScopeCache::at(d.clone(), &cfg("cli_a", "http://127.0.0.1:1"));
        assert!(mine.load().is_none(), "nothing stored yet");
        let mut g = GrantedScopes::default();
        g.tenant.insert("im:message".into());
        g.user.insert("contact:user.base:readonly".into());
        mine.store(&g);
        assert_eq!(mine.load(), Some(g.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&mine.path).map(|m| m.permissions().mode());
            assert_eq!(mode.ok().map(|m| m & 0o777), Some(0o600));
        }

        // Another app's file under this app's name (copied, or a hash collision).
        let other = ScopeCache::at(d.clone(), &cfg("cli_b", "http://127.0.0.1:1"));
        other.store(&g);
        let _ = std::fs::copy(&other.path, &mine.path);
        assert!(mine.load().is_none());

        for junk in [&b"not json"[..], b"{\"version\":1}", b"", b"[1,2]"] {
            let _ = std::fs::write(&mine.path, junk);
            assert!(mine.load().is_none(), "{:?}", String::from_utf8_lossy(junk));
        }
        let _ = std::fs::remove_dir_all(d);
    }
}
