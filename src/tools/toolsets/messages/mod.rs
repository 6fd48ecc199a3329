//! Toolset `messages`: send, reply, edit, recall and forward messages ([`send`]); read
//! history and read receipts ([`history`]); [`reactions`]; [`pins`]. Uploads and downloads
//! are in [`files`].

pub mod files;
mod history;
mod pins;
mod reactions;
mod search;
mod send;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::lark::api_path;
use crate::lark::scope_sets as scopes;
use crate::tools::{Needs, ToolDef, ToolError, ToolMeta, Toolset};
pub(crate) use history::render_all;
use history::{get_message, get_read_users, list_messages};
use pins::{list_pins, pin_message, unpin_message};
use reactions::{add_reaction, list_reactions, remove_reaction};
use search::search_messages;
use send::{edit_message, forward_message, recall_message, reply_message, send_message};

#[allow(clippy::too_many_arguments)]
pub(super) const fn meta(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    scopes: &'static [&'static str],
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    needs: Needs,
) -> ToolMeta {
    ToolMeta {
        name,
        toolset: Toolset::Messages,
        title,
        description,
        scopes,
        read_only,
        destructive,
        idempotent,
        needs,
        identity: crate::tools::Identity::Bot,
    }
}

pub fn tools() -> Vec<ToolDef> {
    use Needs::Nothing;
    vec![
        ToolDef::new(
            meta(
                "send_message",
                "Send a message",
                "Send a message to a person or a chat, with exactly one content field.",
                scopes::MESSAGE_SEND,
                false,
                false,
                false,
                Nothing,
            )
            .or_speaks_as_user(scopes::SEND_AS_USER),
            send_message,
        ),
        ToolDef::new(
            meta(
                "reply_message",
                "Reply to a message",
                "Reply to a message, optionally in its thread; same content forms as send_message.",
                scopes::MESSAGE_SEND,
                false,
                false,
                false,
                Nothing,
            )
            .or_speaks_as_user(scopes::SEND_AS_USER),
            reply_message,
        ),
        ToolDef::new(
            meta(
                "edit_message",
                "Edit a message",
                "Replace the content of a message the bot sent: text or markdown, or a card for card messages.",
                scopes::MESSAGE_UPDATE,
                false,
                false,
                true,
                Nothing,
            ),
            edit_message,
        ),
        ToolDef::new(
            meta(
                "recall_message",
                "Recall a message",
                "Recall (delete for everyone) a message the bot sent.",
                scopes::MESSAGE_RECALL,
                false,
                true,
                true,
                Nothing,
            ),
            recall_message,
        ),
        ToolDef::new(
            meta(
                "forward_message",
                "Forward a message",
                "Forward a message to a person, chat or thread.",
                scopes::MESSAGE_FORWARD,
                false,
                false,
                false,
                Nothing,
            ),
            forward_message,
        ),
        ToolDef::new(
            meta(
                "get_message",
                "Get a message",
                "Get one message, rendered as text with its sender's name.",
                scopes::MESSAGE_READ,
                true,
                false,
                true,
                Nothing,
            )
            .or_as_user(scopes::MESSAGE_READ),
            get_message,
        ),
        ToolDef::new(
            meta(
                "list_messages",
                "Read chat history",
                "Read messages in a chat or thread, newest first by default.",
                scopes::MESSAGE_HISTORY,
                true,
                false,
                true,
                Nothing,
            )
            .or_as_user(scopes::MESSAGE_HISTORY),
            list_messages,
        ),
        ToolDef::new(
            meta(
                "search_messages",
                "Search messages",
                "Search messages in your chats (as you) by words, optionally by chat, sender, time or kind.",
                scopes::MESSAGE_SEARCH,
                true,
                false,
                true,
                Nothing,
            )
            .user_only(),
            search_messages,
        ),
        ToolDef::new(
            meta(
                "add_reaction",
                "React to a message",
                "Add an emoji reaction (e.g. THUMBSUP, OK, DONE, SMILE) to a message.",
                scopes::REACTIONS_WRITE,
                false,
                false,
                false,
                Nothing,
            ),
            add_reaction,
        ),
        ToolDef::new(
            meta(
                "list_reactions",
                "List reactions",
                "List the reactions on a message and who added them.",
                scopes::REACTIONS_READ,
                true,
                false,
                true,
                Nothing,
            ),
            list_reactions,
        ),
        ToolDef::new(
            meta(
                "remove_reaction",
                "Remove a reaction",
                "Remove a reaction the bot added (reaction_id from add_reaction or list_reactions).",
                scopes::REACTIONS_WRITE,
                false,
                true,
                true,
                Nothing,
            ),
            remove_reaction,
        ),
        ToolDef::new(
            meta(
                "pin_message",
                "Pin a message",
                "Pin a message in its chat.",
                scopes::PINS_WRITE,
                false,
                false,
                true,
                Nothing,
            ),
            pin_message,
        ),
        ToolDef::new(
            meta(
                "unpin_message",
                "Unpin a message",
                "Remove a message's pin.",
                scopes::UNPIN,
                false,
                true,
                true,
                Nothing,
            ),
            unpin_message,
        ),
        ToolDef::new(
            meta(
                "list_pins",
                "List pinned messages",
                "List a chat's pinned messages, newest pin first.",
                scopes::PINS_READ,
                true,
                false,
                true,
                Nothing,
            ),
            list_pins,
        ),
        ToolDef::new(
            meta(
                "get_read_users",
                "Who read a message",
                "List who has read a message the bot sent in the last 7 days.",
                scopes::MESSAGE_READ,
                true,
                false,
                true,
                Nothing,
            ),
            get_read_users,
        ),
    ]
}

fn message_path(template: &str, id: &str) -> Result<String, ToolError> {
    api_path(template, &[id]).map_err(|e| ToolError::invalid("message_id", e.msg))
}

#[derive(Serialize, JsonSchema)]
struct Done {
    message_id: String,
    ok: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MessageIdArgs {
    /// The message (om_…).
    message_id: String,
}
