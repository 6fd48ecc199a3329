//! The catalog's scope requirements agree with the facts the sandbox enforces.
//!
//! The catalog (`lark::scope_sets`) decides which tools an app sees; the sandbox checks each
//! call against its own copy of `lark-endpoints.tsv` (`sandbox::scopes`). A tool's list is
//! "any one of these scopes lets it work", and each endpoint's list is "any one of these
//! lets the call through". A tool that needs endpoints E1..En works for a single granted
//! scope s exactly when s is in every Ei, so its list must equal the intersection of the
//! Ei's lists:
//! - a scope in the tool's list but missing from some Ei would show the tool to an app
//!   whose calls then fail with a missing-scope error;
//! - a scope in every Ei but missing from the tool's list would hide a tool that works.
//!
//! "Needs" means the endpoints the tool calls on every input. Calls made only for some
//! inputs (an email receiver's lookup) or as a courtesy whose failure is ignored (display
//! names) are left out, since the tool's one list cannot express them.

use std::collections::BTreeSet;

use lark_mcp_server::sandbox::{api::all_endpoints, scopes};
use lark_mcp_server::tools::catalog;

/// Tool → the sandbox endpoints (TSV op names) it calls on every input; read from the
/// handlers in `src/tools/`. An empty list: the tool needs no scope.
const NEEDS: &[(&str, &[&str])] = &[
    // contact
    ("lookup_user_by_email", &["lookup_user_by_email_or_mobile"]),
    ("get_user", &["get_user"]),
    ("get_users", &["batch_get_users"]),
    ("list_department_users", &["find_users_by_department"]),
    ("get_department", &["get_department"]),
    ("list_departments", &["list_child_departments"]),
    ("get_department_path", &["list_parent_departments"]),
    ("list_user_groups", &["list_user_groups"]),
    ("list_user_group_members", &["list_user_group_members"]),
    ("get_contact_scope", &["list_contact_scopes"]),
    // The directory walk behind find_people (src/directory/walk.rs).
    (
        "find_people",
        &[
            "list_contact_scopes",
            "batch_get_departments",
            "list_child_departments",
            "find_users_by_department",
            "batch_get_users",
        ],
    ),
    // messages
    ("send_message", &["send_message"]),
    ("reply_message", &["reply_message"]),
    ("edit_message", &["edit_message"]),
    ("recall_message", &["recall_message"]),
    ("forward_message", &["forward_message"]),
    ("get_message", &["get_message"]),
    ("list_messages", &["list_messages"]),
    ("add_reaction", &["add_reaction"]),
    ("list_reactions", &["list_reactions"]),
    ("remove_reaction", &["delete_reaction"]),
    ("pin_message", &["pin_message"]),
    ("unpin_message", &["unpin_message"]),
    ("list_pins", &["list_pins"]),
    ("get_read_users", &["message_read_users"]),
    // files
    ("upload_image", &["upload_image"]),
    ("upload_file", &["upload_file"]),
    ("download_resource", &["download_message_resource"]),
    // chats
    ("list_chats", &["list_chats"]),
    ("search_chats", &["search_chats"]),
    ("find_chats", &["list_chats", "get_chat"]),
    // events: what the long connection delivers; no API call
    ("wait_for_messages", &[]),
    ("get_new_messages", &[]),
    ("get_chat", &["get_chat", "is_in_chat"]),
    ("create_chat", &["create_chat"]),
    ("update_chat", &["update_chat"]),
    ("dissolve_chat", &["dissolve_chat"]),
    ("get_chat_link", &["get_chat_share_link"]),
    ("list_chat_members", &["list_chat_members"]),
    ("add_chat_members", &["add_chat_members"]),
    ("remove_chat_members", &["remove_chat_members"]),
    // meta: reads only endpoints that need no scope
    ("get_app_status", &[]),
    ("get_me", &["get_user_info_me"]),
    ("search_users", &["search_users"]),
    ("list_my_chats", &["list_chats"]),
    // Each hit is then read with get_message: a login without a read scope gets the
    // search's error, not empty hits (tools/toolsets/messages/search.rs).
    ("search_messages", &["search_messages"]),
];

/// Disagreements found and left open because the TSV marks the facts as inferred rather
/// than documented: (tool, scope the catalog accepts but some needed endpoint does not).
/// `get_chat` also calls `is_in_chat`, whose inferred list lacks `im:chat:read`. An entry
/// that stops disagreeing fails the test, so this list cannot go stale.
const KNOWN: &[(&str, &str)] = &[("get_chat", "im:chat:read")];

fn needs(tool: &str) -> Option<&'static [&'static str]> {
    NEEDS.iter().find(|(t, _)| *t == tool).map(|(_, e)| *e)
}

/// Scopes any one of which passes every endpoint in `eps` (all scopes pass none).
fn intersection(eps: &[&str]) -> BTreeSet<&'static str> {
    let mut sets = eps
        .iter()
        .map(|e| scopes::required(e).iter().copied().collect::<BTreeSet<_>>());
    let Some(first) = sets.next() else {
        return BTreeSet::new();
    };
    sets.fold(first, |acc, s| acc.intersection(&s).copied().collect())
}

#[test]
fn the_table_covers_every_tool_and_names_real_endpoints() {
    let missing: Vec<&str> = catalog()
        .iter()
        .map(|d| d.meta.name)
        .filter(|n| needs(n).is_none())
        .collect();
    assert!(missing.is_empty(), "tools missing from NEEDS: {missing:?}");
    for (tool, eps) in NEEDS {
        assert!(
            catalog().iter().any(|d| d.meta.name == *tool),
            "{tool} is not in the catalog"
        );
        for e in *eps {
            assert!(
                all_endpoints().any(|ep| ep.name == *e),
                "{tool}: the sandbox has no endpoint {e}"
            );
        }
    }
}

#[test]
fn every_tools_scopes_are_exactly_what_its_endpoints_accept() {
    let mut problems = Vec::new();
    for def in catalog() {
        let name = def.meta.name;
        let Some(eps) = needs(name) else { continue };
        let tool: BTreeSet<&str> = def.meta.scopes.iter().copied().collect();
        let facts = intersection(eps);
        let fail: Vec<_> = tool
            .difference(&facts)
            .filter(|s| !KNOWN.contains(&(name, **s)))
            .collect();
        for (t, scope) in KNOWN.iter().filter(|(t, _)| *t == name) {
            if facts.contains(scope) || !tool.contains(scope) {
                problems.push(format!("{t}: {scope} now agrees; drop it from KNOWN"));
            }
        }
        let hidden: Vec<_> = facts.difference(&tool).collect();
        if !fail.is_empty() || !hidden.is_empty() {
            problems.push(format!(
                "{name} (calls {eps:?}): shown but failing with {fail:?}; hidden though enough: {hidden:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
