//! Reactions: add, list and remove.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Done, message_path};
use crate::lark::{Request, api_path};
use crate::sandbox::api::EMOJI_TYPES;
use crate::tools::content::render::iso_time;
use crate::tools::guard::Write;
use crate::tools::output::NamedId;
use crate::tools::paging::{pages, with_paging};
use crate::tools::{ToolCtx, ToolError};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReactArgs {
    /// The message (om_…).
    message_id: String,
    /// Lark emoji key, e.g. THUMBSUP, OK, DONE, SMILE, HEART, CLAP.
    emoji: String,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Reaction {
    reaction_id: String,
    emoji: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
}

fn reaction(r: &Value, names: &std::collections::HashMap<String, String>) -> Reaction {
    let by = r["operator"]["operator_id"]
        .as_str()
        .map(|id| NamedId::new(id, names));
    Reaction {
        reaction_id: r["reaction_id"].as_str().unwrap_or("").to_string(),
        emoji: r["reaction_type"]["emoji_type"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        by,
        time: r.get("action_time").map(iso_time),
    }
}

/// Where Lark lists its emoji keys.
const EMOJI_LIST_URL: &str =
    "https://open.feishu.cn/document/server-docs/im-v1/message-reaction/emojis-introduce";

/// Lark's emoji keys are case-sensitive (`THUMBSUP`, `Get`, `OnIt`) while agents write
/// `thumbsup`; a key that matches one known key in any case is sent in Lark's spelling.
/// Unknown keys go as given: Lark's table grows, and its 231001 then says what is wrong.
fn lark_emoji(field: &str, emoji: &str) -> Result<String, ToolError> {
    let emoji = emoji.trim();
    if emoji.is_empty() {
        return Err(ToolError::invalid(field, "must not be empty"));
    }
    if EMOJI_TYPES.contains(&emoji) {
        return Ok(emoji.to_string());
    }
    let matches: Vec<&str> = EMOJI_TYPES
        .iter()
        .copied()
        .filter(|k| k.eq_ignore_ascii_case(emoji))
        .collect();
    match matches.as_slice() {
        [] => Ok(emoji.to_string()),
        [one] => Ok((*one).to_string()),
        // `YEAH` and `Yeah` are different emoji; guessing would put the wrong one on.
        several => Err(ToolError::invalid(
            field,
            format!(
                "`{emoji}` could mean any of {}; Lark's emoji keys are case-sensitive, so give one exactly",
                several.join(", ")
            ),
        )),
    }
}

/// Lark's 231001 names no key; say how keys are spelled and where the list is.
fn emoji_hint(mut err: ToolError, emoji: &str) -> ToolError {
    if err.lark.as_ref().and_then(|l| l.code) == Some(231001) {
        err.text.push_str(&format!(
            " Lark does not know the emoji key `{emoji}`. Keys are case-sensitive, e.g. THUMBSUP, OK, DONE, SMILE, LGTM, Get; the full list is at {EMOJI_LIST_URL}."
        ));
    }
    err
}

pub(super) async fn add_reaction(ctx: ToolCtx, a: ReactArgs) -> Result<Reaction, ToolError> {
    let emoji = lark_emoji("emoji", &a.emoji)?;
    let path = message_path("/open-apis/im/v1/messages/{}/reactions", &a.message_id)?;
    let req = Request::post(
        "add reaction",
        path,
        json!({"reaction_type": {"emoji_type": emoji}}),
    );
    ctx.guard(Write::on_message(&a.message_id), &req).await?;
    let data = ctx
        .client()
        .call(req, &ctx.cancel)
        .await
        .map_err(|e| emoji_hint(e.into(), &emoji))?
        .into_data();
    Ok(reaction(&data, &Default::default()))
}

with_paging! {
    "Items per page, 1–50.",
    pub(super) struct ListReactionsArgs {
        /// The message (om_…).
        message_id: String,
        /// Only this emoji key.
        emoji: Option<String>,
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ReactionsOut {
    reactions: Vec<Reaction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn list_reactions(
    ctx: ToolCtx,
    mut a: ListReactionsArgs,
) -> Result<ReactionsOut, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}/reactions", &a.message_id)?;
    let emoji = a
        .emoji
        .take()
        .map(|e| lark_emoji("emoji", &e))
        .transpose()?;
    let base = Request::get("list reactions", path)
        .query("user_id_type", "open_id")
        .query_opt("reaction_type", emoji.clone());
    let paging = a.paging();
    let (raw, next, _) =
        pages(&ctx, base, "items", paging, 50)
            .await
            .map_err(|e| match &emoji {
                Some(emoji) => emoji_hint(e, emoji),
                None => e,
            })?;
    let people: Vec<String> = raw
        .iter()
        .filter(|r| r["operator"]["operator_type"] == "user")
        .filter_map(|r| r["operator"]["operator_id"].as_str().map(String::from))
        .collect();
    let names = ctx.shared.names.users(&ctx, &people).await;
    Ok(ReactionsOut {
        reactions: raw.iter().map(|r| reaction(r, &names)).collect(),
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveReactionArgs {
    /// The message (om_…).
    message_id: String,
    /// From add_reaction or list_reactions.
    reaction_id: String,
}

pub(super) async fn remove_reaction(
    ctx: ToolCtx,
    a: RemoveReactionArgs,
) -> Result<Done, ToolError> {
    let path = api_path(
        "/open-apis/im/v1/messages/{}/reactions/{}",
        &[&a.message_id, &a.reaction_id],
    )
    .map_err(|e| ToolError::invalid("reaction_id", e.msg))?;
    ctx.delete(Write::on_message(&a.message_id), "remove reaction", path)
        .await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}
