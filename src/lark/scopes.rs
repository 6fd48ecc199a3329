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
