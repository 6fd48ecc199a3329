//! Message reactions: add, list, delete.

use super::*;

pub(super) fn reaction_json(world: &World, r: &Reaction, user_type: &str) -> Value {
    let operator_id = if r.operator_is_bot {
        r.operator_id.clone()
    } else {
        world
            .user_by_open_id(&r.operator_id)
            .map(|u| world.user_id_of(u, user_type))
            .unwrap_or_else(|| r.operator_id.clone())
    };
    json!({
        "reaction_id": r.reaction_id,
        "operator": {
            "operator_id": operator_id,
            "operator_type": if r.operator_is_bot { "app" } else { "user" },
        },
        "action_time": r.action_time_ms.to_string(),
        "reaction_type": {"emoji_type": r.emoji_type},
    })
}

pub(super) fn reaction_type_invalid() -> ApiError {
    err(codes::REACTION_TYPE_INVALID, "reaction type is invalid.")
}

/// The message for a reaction call: 231003 when unknown or recalled, 231002/231008 when
/// the bot is not in its chat.
pub(super) fn reaction_target<'w>(
    world: &'w World,
    id: &str,
    outside_code: i64,
) -> Result<&'w Message, ApiError> {
    bot_check(world)?;
    let not_found = || {
        err(
            codes::REACTION_MSG_NOT_FOUND,
            "The message is not found, maybe not exist or deleted.",
        )
    };
    if check_message_id(id).is_err() {
        return Err(not_found());
    }
    let m = world
        .message(id)
        .filter(|m| !m.deleted)
        .ok_or_else(not_found)?;
    let chat = world.chat(&m.chat_id).ok_or_else(not_found)?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !world.caller_in_chat(chat) {
        let msg = if outside_code == codes::REACTION_NO_PERMISSION {
            "The operator has no permission to react on the specific message."
        } else {
            "The operator has no access to the message."
        };
        return Err(err(outside_code, msg));
    }
    Ok(m)
}

#[derive(Deserialize, Default)]
pub(super) struct ReactionBody {
    #[serde(default)]
    reaction_type: Option<EmojiBody>,
}

#[derive(Deserialize, Default)]
pub(super) struct EmojiBody {
    #[serde(default)]
    emoji_type: String,
}

pub(super) fn add_reaction(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let body: ReactionBody = call.json()?;
    let emoji = body.reaction_type.unwrap_or_default().emoji_type;
    if emoji.is_empty() {
        return Err(ApiError::field(
            "reaction_type.emoji_type",
            "",
            "reaction_type.emoji_type is required",
        ));
    }
    if !EMOJI_TYPES.contains(&emoji.as_str()) {
        return Err(reaction_type_invalid());
    }
    let m = reaction_target(world, &id, codes::REACTION_NO_PERMISSION)?;
    if m.msg_type == "system" {
        return Err(err(
            codes::REACTION_MSG_TYPE_NOT_SUPPORTED,
            "This operation is not supported for this message type.",
        ));
    }
    let app_id = world.app.app_id.clone();
    if let Some(r) = world
        .reactions
        .iter()
        .find(|r| r.message_id == id && r.operator_is_bot && r.emoji_type == emoji)
    {
        return Ok(Reply::Data(reaction_json(world, r, "open_id")));
    }
    let salt = fastrand::u64(..);
    let r = Reaction {
        reaction_id: reaction_id_for(&id, &app_id, salt),
        message_id: id,
        operator_id: app_id,
        operator_is_bot: true,
        emoji_type: emoji,
        action_time_ms: call.now_ms,
    };
    let data = reaction_json(world, &r, "open_id");
    world.reactions.push(r);
    Ok(Reply::Data(data))
}

pub(super) fn list_reactions(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let filter = call.query("reaction_type").map(str::to_string);
    if let Some(f) = &filter
        && !EMOJI_TYPES.contains(&f.as_str())
    {
        return Err(reaction_type_invalid());
    }
    let user_type = call.user_id_type().map_err(|_| {
        err(
            codes::REACTION_USER_ID_TYPE_INVALID,
            "user_id_type is invalid.",
        )
    })?;
    let key = format!("{id}|{}|{user_type}", filter.as_deref().unwrap_or(""));
    let page = call.page(20, 50, &key).map_err(|e| {
        if call.query("page_token").is_some()
            && e.error["field_violations"][0]["field"] == "page_token"
        {
            err(
                codes::REACTION_PAGE_TOKEN_INVALID,
                "The request has an invalid pageToken.",
            )
        } else {
            e
        }
    })?;
    reaction_target(world, &id, codes::REACTION_NO_ACCESS)?;
    let mut found: Vec<&Reaction> = world
        .reactions
        .iter()
        .filter(|r| r.message_id == id && filter.as_deref().is_none_or(|f| r.emoji_type == f))
        .collect();
    found.sort_by_key(|r| r.action_time_ms);
    let items: Vec<Value> = found
        .into_iter()
        .map(|r| reaction_json(world, r, user_type))
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

pub(super) fn delete_reaction(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let reaction_id = call.path_param("reaction_id").to_string();
    reaction_target(world, &id, codes::REACTION_NO_ACCESS)?;
    let Some(pos) = world
        .reactions
        .iter()
        .position(|r| r.reaction_id == reaction_id)
    else {
        return Err(err(
            codes::REACTION_ID_INVALID,
            "The request has an invalid reaction_id.",
        ));
    };
    let r = &world.reactions[pos];
    if r.message_id != id {
        return Err(err(
            codes::REACTION_NOT_OF_MESSAGE,
            "The reaction does not belong to the message.",
        ));
    }
    if !r.operator_is_bot {
        return Err(err(
            codes::REACTION_NOT_OWN,
            "The operator has no permission to delete this reaction.",
        ));
    }
    let data = reaction_json(world, r, "open_id");
    world.reactions.remove(pos);
    Ok(Reply::Data(data))
}
