//! Which scopes each sandbox endpoint demands, read from a verbatim copy of the reference
//! `lark-endpoints.tsv` (columns: op_name, method, path, required_scopes, token_types,
//! notes). The sandbox keeps its own table rather than sharing the tool catalog's
//! (`crate::lark::scope_sets`): if both sides read one table, a wrong requirement would
//! pass every test. With the facts embedded here, `tests/scope_agreement.rs` can check the
//! catalog against them.

use std::collections::HashMap;
use std::sync::LazyLock;

const TSV: &str = include_str!("lark-endpoints.tsv");

/// What an endpoint missing from the table demands: a scope no app has, so a forgotten
/// row fails closed (and the unit test below names it) instead of skipping the check.
const UNLISTED: &[&str] = &["(endpoint missing from lark-endpoints.tsv)"];

static TABLE: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    TSV.lines()
        .skip(1) // the header row
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?.trim();
            let scopes = cols.nth(2).unwrap_or("");
            let any_of = scopes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            Some((name, any_of))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
});

/// The scopes of which any one lets a tenant token call the endpoint `op_name` (its name in
/// the TSV); empty when the endpoint needs none.
pub fn required(op_name: &str) -> &'static [&'static str] {
    TABLE.get(op_name).map(Vec::as_slice).unwrap_or(UNLISTED)
}

static TOKEN_TYPES: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    TSV.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?.trim();
            let types = cols.nth(3).unwrap_or("");
            Some((name, types.split(',').map(str::trim).collect()))
        })
        .collect()
});

/// Whether the endpoint `op_name` accepts `token_type` (`tenant` or `user`), per the
/// table's token_types column. An unlisted endpoint accepts only tenant tokens.
pub fn accepts(op_name: &str, token_type: &str) -> bool {
    match TOKEN_TYPES.get(op_name) {
        Some(types) => types.contains(&token_type),
        None => token_type == "tenant",
    }
}

/// Whether `scope` is a scope the sandbox knows: one some endpoint in the table accepts.
/// The registration page drops other names, as Lark's page drops unknown items.
pub fn is_known(scope: &str) -> bool {
    TABLE.values().any(|any_of| any_of.contains(&scope))
}

/// Whether the table has a row for `op_name`.
pub fn is_listed(op_name: &str) -> bool {
    TABLE.contains_key(op_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sandbox_endpoint_has_a_row() {
        let missing: Vec<&str> = crate::sandbox::api::all_endpoints()
            .map(|e| e.name)
            .filter(|n| !is_listed(n))
            .collect();
        assert!(missing.is_empty(), "not in lark-endpoints.tsv: {missing:?}");
    }

    #[test]
    fn rows_read_as_any_of_lists() {
        assert_eq!(
            required("batch_get_users"),
            ["contact:contact.base:readonly"]
        );
        assert_eq!(
            required("upload_image"),
            ["im:resource", "im:resource:upload"]
        );
        assert!(required("tenant_access_token_internal").is_empty());
        assert_eq!(required("no_such_endpoint"), UNLISTED);
    }

    #[test]
    fn token_types_come_from_the_table() {
        assert!(accepts("get_user_info_me", "user"));
        assert!(!accepts("get_user_info_me", "tenant"));
        assert!(accepts("list_chats", "user") && accepts("list_chats", "tenant"));
        assert!(!accepts("list_contact_scopes", "user"));
        assert!(accepts("search_messages", "user") && !accepts("search_messages", "tenant"));
        assert_eq!(required("search_messages"), ["search:message"]);
        // Every token-checked endpoint of the sandbox accepted tenant tokens before user
        // tokens existed, except the user-only ones.
        for e in crate::sandbox::api::all_endpoints() {
            if e.auth == crate::sandbox::endpoint::Auth::Tenant
                && !["get_user_info_me", "search_users", "search_messages"].contains(&e.name)
            {
                assert!(accepts(e.name, "tenant"), "{}", e.name);
            }
        }
    }
}
