//! `completion/complete`: values for a prompt's or resource template's argument as the user
//! types it.
//!
//! - `chat` (summarize_chat): the names of the chats the bot is in (chat_ids once the
//!   typed value starts with `oc_`).
//! - `since` (summarize_chat): 1h, 24h, 7d, 30d.
//! - `chat_id` (lark://chats/{chat_id}): the bot's chat_ids, matched on the id or the name.
//!
//! Matching ignores case; values starting with what was typed come first, then values
//! containing it; at most 100, with `total` and `hasMore`. Chat lists come from
//! [`super::ChatDirectory`] and only while `list_chats` is visible: completion never shows
//! what the tools may not. A Lark failure offers nothing; only an unknown prompt, template
//! or argument is an error (-32602).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo, ErrorData, Reference};
use serde_json::json;

use super::chat_directory::ChatEntry;
use super::prompts::{self, SINCE_CHOICES};
use super::resources::{self, APP_STATUS_URI, CHAT_TEMPLATE, MESSAGES_TEMPLATE};
use super::{invalid_params, visible_tool_names};
use crate::tools::Shared;

/// Longer typed values match nothing worth offering (chat names are far shorter).
const MAX_TYPED_BYTES: usize = 256;

/// What an argument completes from.
enum Source {
    ChatNames,
    ChatIds,
    Since,
    Nothing,
}

pub async fn complete(
    shared: &Arc<Shared>,
    request: &CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let visible = visible_tool_names(shared).await;
    let arg = request.argument.name.as_str();
    let source = match &request.r#ref {
        Reference::Prompt(p) => {
            let def = prompts::available(&p.name, &visible)?;
            if def.arg(arg).is_none() {
                return Err(unknown_argument(arg, &format!("prompt `{}`", def.name)));
            }
            match (def.name, arg) {
                ("summarize_chat", "chat") => Source::ChatNames,
                ("summarize_chat", "since") => Source::Since,
                _ => Source::Nothing,
            }
        }
        Reference::Resource(r) => resource_source(&r.uri, arg, &visible)?,
        other => {
            return Err(invalid_params(
                format!(
                    "completion for `{}` references is not supported",
                    other.reference_type()
                ),
                None,
            ));
        }
    };
    let typed = request.argument.value.as_str();
    if typed.len() > MAX_TYPED_BYTES {
        return Ok(result(Vec::new(), 0));
    }
    let chats = || async {
        if visible.contains("list_chats") {
            shared.chat_directory.chats(shared).await
        } else {
            Arc::new(Vec::new())
        }
    };
    let (values, total) = match source {
        Source::Nothing => (Vec::new(), 0),
        Source::Since => ranked(typed, SINCE_CHOICES.iter().map(|s| (*s, vec![*s]))),
        Source::ChatNames => {
            let chats = chats().await;
            if typed.trim_start().to_lowercase().starts_with("oc_") {
                ranked(
                    typed.trim(),
                    chats.iter().map(|c| (&*c.chat_id, vec![&*c.chat_id])),
                )
            } else {
                ranked(
                    typed.trim(),
                    chats.iter().map(|c| (&*c.name, vec![&*c.name])),
                )
            }
        }
        Source::ChatIds => {
            let chats = chats().await;
            ranked(typed.trim(), chats.iter().map(id_and_name))
        }
    };
    Ok(result(values, total))
}

fn id_and_name(c: &ChatEntry) -> (&str, Vec<&str>) {
    (&c.chat_id, vec![&c.chat_id, &c.name])
}

fn unknown_argument(arg: &str, of: &str) -> ErrorData {
    let shown: String = arg.chars().take(64).collect();
    invalid_params(
        format!("{of} has no argument `{shown}`"),
        Some(json!({"argument": shown})),
    )
}

/// A template or resource this server lists now, and what the argument completes from.
fn resource_source(
    uri: &str,
    arg: &str,
    visible: &BTreeSet<&'static str>,
) -> Result<Source, ErrorData> {
    let listed = resources::templates(visible)
        .iter()
        .any(|t| t.uri_template == uri)
        || (uri == APP_STATUS_URI && visible.contains("get_app_status"));
    if !listed {
        let shown: String = uri.chars().take(200).collect();
        return Err(invalid_params(
            format!("resource not found: no resource template `{shown}` on this server"),
            Some(json!({"uri": shown})),
        ));
    }
    // The argument must be one of the template's variables.
    if !uri.contains(&format!("{{{arg}}}")) {
        return Err(unknown_argument(arg, &format!("resource `{uri}`")));
    }
    Ok(if uri == CHAT_TEMPLATE || uri == MESSAGES_TEMPLATE {
        Source::ChatIds
    } else {
        Source::Nothing
    })
}

/// Candidates `(value, keys)` ranked against `typed`, case-insensitively: values with a key
/// starting with it first, then those with a key containing it, each in the given order and
/// without repeats. Returns at most [`CompletionInfo::MAX_VALUES`] and the total matched.
fn ranked<'a>(
    typed: &str,
    candidates: impl Iterator<Item = (&'a str, Vec<&'a str>)>,
) -> (Vec<String>, usize) {
    let typed = typed.to_lowercase();
    let mut prefix = Vec::new();
    let mut inner = Vec::new();
    let mut seen = HashSet::new();
    for (value, keys) in candidates {
        if value.is_empty() || seen.contains(value) {
            continue;
        }
        let keys: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
        if keys.iter().any(|k| k.starts_with(&typed)) {
            prefix.push(value);
        } else if keys.iter().any(|k| k.contains(&typed)) {
            inner.push(value);
        } else {
            continue;
        }
        seen.insert(value);
    }
    let total = prefix.len() + inner.len();
    let values = prefix
        .into_iter()
        .chain(inner)
        .take(CompletionInfo::MAX_VALUES)
        .map(String::from)
        .collect();
    (values, total)
}

fn result(values: Vec<String>, total: usize) -> CompleteResult {
    let has_more = total > values.len();
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    // At most MAX_VALUES by construction, so this cannot fail.
    let info = CompletionInfo::with_pagination(values, Some(total), has_more).unwrap_or_default();
    CompleteResult::new(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(list: &'a [&'a str]) -> impl Iterator<Item = (&'a str, Vec<&'a str>)> {
        list.iter().map(|s| (*s, vec![*s]))
    }

    #[test]
    fn prefix_matches_come_before_substring_matches_ignoring_case() {
        let chats = [
            "Incident war room",
            "Perception standup",
            "R&D Weekly",
            "perception retro",
            "Perception standup",
        ];
        let (v, total) = ranked("PERC", names(&chats));
        assert_eq!(v, ["Perception standup", "perception retro"]);
        assert_eq!(total, 2);
        let (v, _) = ranked("room", names(&chats));
        assert_eq!(v, ["Incident war room"]);
        let (v, _) = ranked("r", names(&chats));
        assert_eq!(
            v,
            [
                "R&D Weekly",
                "Incident war room",
                "Perception standup",
                "perception retro"
            ]
        );
        let (v, total) = ranked("", names(&chats));
        assert_eq!((v.len(), total), (4, 4));
        let (v, total) = ranked("闲聊", names(&["☕ 闲聊 Random"]));
        assert_eq!((v.len(), total), (1, 1));
    }

    #[test]
    fn at_most_one_hundred_with_the_total() {
        let many: Vec<String> = (0..150).map(|i| format!("chat {i:03}")).collect();
        let (v, total) = ranked("chat", many.iter().map(|s| (s.as_str(), vec![s.as_str()])));
        let r = result(v, total);
        assert_eq!(r.completion.values.len(), 100);
        assert_eq!(r.completion.total, Some(150));
        assert_eq!(r.completion.has_more, Some(true));
        assert_eq!(r.completion.values[0], "chat 000");
    }

    #[test]
    fn since_completes_by_prefix() {
        let (v, _) = ranked("", SINCE_CHOICES.iter().map(|s| (*s, vec![*s])));
        assert_eq!(v, ["1h", "24h", "7d", "30d"]);
        let (v, _) = ranked("2", SINCE_CHOICES.iter().map(|s| (*s, vec![*s])));
        assert_eq!(v, ["24h"]);
    }

    #[test]
    fn chat_ids_match_on_id_or_name() {
        let chats = [
            ChatEntry {
                chat_id: "oc_1".into(),
                name: "Perception standup".into(),
            },
            ChatEntry {
                chat_id: "oc_2".into(),
                name: "Random".into(),
            },
        ];
        let (v, _) = ranked("oc_2", chats.iter().map(id_and_name));
        assert_eq!(v, ["oc_2"]);
        let (v, _) = ranked("stand", chats.iter().map(id_and_name));
        assert_eq!(v, ["oc_1"]);
    }
}
