//! Reads: get, history, read receipts and resource downloads.

use super::*;

// ---- get and history ----------------------------------------------------------------------------

pub(super) fn get_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let id = call.path_param("message_id");
    bot_check(world)?;
    let (m, chat) = reachable(world, id)?;
    check_group_read(world, chat)?;
    Ok(Reply::Data(
        json!({"items": [read_json(world, m, user_type)]}),
    ))
}

pub(super) fn list_messages(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    call.required_query("container_id_type")?;
    let kind = call.enum_query("container_id_type", &["chat", "thread"], "chat")?;
    let container = call.required_query("container_id")?;
    let sort = call.enum_query(
        "sort_type",
        &["ByCreateTimeAsc", "ByCreateTimeDesc"],
        "ByCreateTimeAsc",
    )?;
    let start = time_query(call, "start_time")?;
    let end = time_query(call, "end_time")?;
    if kind == "thread" && (start.is_some() || end.is_some()) {
        return Err(invalid_content(
            "start_time and end_time are not supported for container_id_type thread.",
        ));
    }
    let page = call.page(
        20,
        50,
        &format!(
            "{kind}|{container}|{sort}|{}|{}",
            start.unwrap_or(0),
            end.unwrap_or(u64::MAX)
        ),
    )?;
    bot_check(world)?;
    let chat_id = if kind == "thread" {
        world
            .thread_chat(container)
            .ok_or_else(|| err(codes::TOPIC_NOT_EXIST, "The topic does NOT exist."))?
            .to_string()
    } else {
        container.to_string()
    };
    let chat = world
        .chat(&chat_id)
        .ok_or_else(|| crate::sandbox::world::not_existed("chat_id", &chat_id))?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !world.caller_in_chat(chat) {
        return Err(bot_not_in_chat());
    }
    check_group_read(world, chat)?;
    let in_window = |m: &&Message| {
        let secs = m.create_time_ms / 1000;
        start.is_none_or(|s| secs >= s) && end.is_none_or(|e| secs <= e)
    };
    let mut found: Vec<&Message> = world
        .messages
        .iter()
        .filter(|m| {
            if kind == "thread" {
                m.thread_id.as_deref() == Some(container)
            } else {
                // In a normal group only a thread's root shows in the chat container.
                m.chat_id == chat_id && (m.thread_id.is_none() || m.root_id.is_none())
            }
        })
        .filter(in_window)
        .collect();
    found.sort_by_key(|m| m.create_time_ms);
    if sort == "ByCreateTimeDesc" {
        found.reverse();
    }
    let items: Vec<Value> = found
        .into_iter()
        .map(|m| read_json(world, m, "open_id"))
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

// ---- read receipts -------------------------------------------------------------------------------

pub(super) fn read_users(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    call.required_query("user_id_type")?;
    let user_type = call.user_id_type()?;
    let page = call.page(20, 100, &format!("{id}|{user_type}"))?;
    bot_check(world)?;
    let now = call.now_ms;
    let (m, chat) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    if !world.caller_sent(m) {
        return Err(err(
            codes::BOT_NOT_SENDER,
            "Bot is NOT the sender of the message.",
        ));
    }
    if now.saturating_sub(m.create_time_ms) > 7 * DAY_MS {
        return Err(err(
            codes::READ_USERS_WINDOW_PASSED,
            "Get the reading status must be done within 7 days after the message is sent.",
        ));
    }
    // Seeded receipts: every human member has read it `read_receipt_delay_secs` after sending.
    let read_at = m
        .create_time_ms
        .saturating_add(call.options.read_receipt_delay_secs.saturating_mul(1000));
    let readers: Vec<Value> = if now >= read_at {
        chat.members
            .iter()
            .filter_map(|open_id| world.user_by_open_id(open_id))
            .map(|u| {
                json!({
                    "user_id_type": user_type,
                    "user_id": world.user_id_of(u, user_type),
                    "timestamp": read_at.to_string(),
                    "tenant_key": world.app.tenant_key,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Reply::Data(page.slice(&readers).into_data("items")))
}

// ---- resources in messages -----------------------------------------------------------------------

pub(super) fn download_resource(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let key = call.path_param("file_key").to_string();
    call.required_query("type")?;
    let kind = match call.enum_query("type", &["image", "file"], "image")? {
        "image" => ResourceKind::Image,
        _ => ResourceKind::File,
    };
    if !world.app.bot_activated {
        return Err(err(
            codes::RES_BOT_NOT_ACTIVATED,
            "App does not enable bot feature.",
        ));
    }
    if check_message_id(&id).is_err() {
        return Err(resources::invalid_param("message_id is invalid."));
    }
    let m = world
        .message(&id)
        .ok_or_else(|| resources::invalid_param("message_id does not exist."))?;
    let chat = world
        .chat(&m.chat_id)
        .ok_or_else(|| resources::invalid_param("message_id does not exist."))?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !world.caller_in_chat(chat) {
        return Err(err(codes::RES_APP_NOT_IN_CHAT, "App not in chat."));
    }
    if m.deleted {
        return Err(err(
            codes::MSG_DELETED,
            "Action unavailable as the message has been deleted.",
        ));
    }
    if ["interactive", "merge_forward", "sticker"].contains(&m.msg_type.as_str()) {
        return Err(err(
            codes::RES_MSG_TYPE_NOT_SUPPORTED,
            "Unsupported message type.",
        ));
    }
    let found = message_resources(&m.msg_type, &m.content)
        .into_iter()
        .find(|r| r.key == key)
        .ok_or_else(|| err(codes::RES_FILE_NOT_IN_MSG, "File not in message."))?;
    if found.kind != kind {
        return Err(resources::invalid_param(
            "type does not match the resource (image for image_key, file for file_key).",
        ));
    }
    let mut res = world
        .resources
        .get(&key)
        .cloned()
        .unwrap_or_else(|| resources::placeholder(&found));
    if let Some(name) = found.file_name {
        res.file_name = name;
    }
    Ok(resources::binary(&res))
}
