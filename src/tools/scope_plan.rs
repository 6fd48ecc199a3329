//! The scopes to ask for when registering an app for a set of tools: the fewest that let
//! every chosen tool work, preferring read-only and narrow ones, plus what the server needs
//! to see its own grants.

use std::collections::BTreeSet;

use super::ToolMeta;
use crate::lark::scope_sets::APP_INFO;

/// For each tool, any one of its scopes lets it work: choose scopes greedily, each time the
/// one that opens the fewest tools the operator did not choose (a read-only selection gets
/// no scope that also writes), then serves the most chosen tools still unserved; ties go
/// to a read-only scope, then to the longer (narrower) name, then to the name, so the plan
/// is deterministic.
pub fn plan(tools: &[&ToolMeta]) -> Vec<&'static str> {
    // The scope check reads the app's own grants (application/v6/applications/me).
    cover(tools, &[APP_INFO], |m| m.scopes)
}

/// What a person signing in grants for the tools that can act as them (the same greedy
/// cover over their user scopes, without the app's own needs).
pub fn plan_user(tools: &[&ToolMeta]) -> Vec<&'static str> {
    cover(tools, &[], ToolMeta::user_scopes)
}

fn cover(
    tools: &[&ToolMeta],
    extra: &[&'static [&'static str]],
    scopes_of: impl Fn(&ToolMeta) -> &'static [&'static str],
) -> Vec<&'static str> {
    let others: Vec<&[&'static str]> = super::catalog()
        .iter()
        .map(|d| &d.meta)
        .filter(|m| !tools.iter().any(|t| t.name == m.name))
        .map(&scopes_of)
        .collect();
    let mut unserved: Vec<&[&'static str]> = tools
        .iter()
        .map(|t| scopes_of(t))
        .filter(|s| !s.is_empty())
        .collect();
    unserved.extend_from_slice(extra);
    let mut chosen = BTreeSet::new();
    while !unserved.is_empty() {
        let candidates: BTreeSet<&'static str> =
            unserved.iter().flat_map(|s| s.iter().copied()).collect();
        let Some(best) = candidates.into_iter().max_by_key(|c| {
            (
                std::cmp::Reverse(others.iter().filter(|s| s.contains(c)).count()),
                unserved.iter().filter(|s| s.contains(c)).count(),
                c.ends_with(":readonly"),
                c.len(),
                std::cmp::Reverse(*c),
            )
        }) else {
            break;
        };
        chosen.insert(best);
        unserved.retain(|s| !s.contains(&best));
    }
    chosen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::catalog;

    fn metas(pred: impl Fn(&ToolMeta) -> bool) -> Vec<&'static ToolMeta> {
        catalog()
            .iter()
            .map(|d| &d.meta)
            .filter(|m| pred(m))
            .collect()
    }

    #[test]
    fn every_tool_is_served_by_the_plan() {
        let all = metas(|_| true);
        let plan = plan(&all);
        for m in &all {
            assert!(
                m.scopes.is_empty() || m.scopes.iter().any(|s| plan.contains(s)),
                "{} not served by {plan:?}",
                m.name
            );
        }
        assert!(APP_INFO.iter().any(|s| plan.contains(s)), "{plan:?}");
    }

    #[test]
    fn read_only_tools_get_no_scope_that_opens_a_write_tool() {
        let ro = metas(|m| m.read_only);
        let plan = plan(&ro);
        // download_resource writes a local file, not to Lark: its scope only reads.
        for w in metas(|m| !m.read_only && m.needs != crate::tools::Needs::DownloadDir) {
            assert!(
                !w.scopes.iter().any(|s| plan.contains(s)),
                "{} opened by the read-only plan {plan:?}",
                w.name
            );
        }
    }
}
