//! Writes: send and reply (`uuid` dedupe, the per-receiver rate limit), edit, card
//! update, recall and forward.

use super::*;

// ---- send ----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct SendBody {
    #[serde(default)]
    receive_id: String,
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    uuid: Option<String>,
}

/// The chat a message to this receiver lands in, creating the bot's p2p chat on first contact.
pub(super) fn receiving_chat(
    world: &mut World,
    id_type: &str,
    id: &str,
    now_ms: u64,
) -> Result<String, ApiError> {
    if id_type == "chat_id" {
        let chat = world
            .chat(id)
            .ok_or_else(|| crate::sandbox::world::not_existed("chat_id", id))?;
        if chat.dissolved {
            return Err(dissolved());
        }
        if !world.caller_in_chat(chat) {
            return Err(bot_not_in_chat());
        }
        return Ok(chat.chat_id.clone());
    }
    if id_type == "thread_id" {
        let chat_id = world
            .thread_chat(id)
            .ok_or_else(|| err(codes::TOPIC_NOT_EXIST, "The topic does NOT exist."))?
            .to_string();
        return receiving_chat(world, "chat_id", &chat_id, now_ms);
    }
    let user = if id_type == "email" {
        world
            .users
            .iter()
            .find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(id))
            })
            .ok_or_else(|| invalid_content("receive_id is not a known email."))?
    } else {
        world.find_user(id, id_type)?
    };
    if user.status == UserStatusSeed::Resigned || !world.user_in_range(user) {
        return Err(err(
            codes::NO_AVAILABILITY,
            "Bot has NO availability to this user.",
        ));
    }
    let open_id = user.open_id.clone();
    // A user token sends in the p2p chat between the two users.
    if let Some(me) = world.caller_user.clone() {
        let pair = |c: &&Chat| {
            c.chat_mode == "p2p"
                && !c.bot_member
                && c.members.len() == 2
                && c.members.contains(&me)
                && c.members.contains(&open_id)
        };
        if let Some(c) = world.chats.iter().find(pair) {
            return Ok(c.chat_id.clone());
        }
        let chat_id = format!("oc_{}", random_hex(32));
        let mut chat = Chat::new(chat_id.clone(), me.clone(), now_ms);
        chat.chat_mode = "p2p".into();
        chat.bot_member = false;
        chat.members = vec![me, open_id];
        world.chats.push(chat);
        return Ok(chat_id);
    }
    if let Some(c) = world
        .chats
        .iter()
        .find(|c| c.p2p_user.as_deref() == Some(&open_id))
    {
        return Ok(c.chat_id.clone());
    }
    let chat_id = format!("oc_{}", random_hex(32));
    let mut chat = Chat::new(chat_id.clone(), open_id.clone(), now_ms);
    chat.chat_mode = "p2p".into();
    chat.members = vec![open_id.clone()];
    chat.p2p_user = Some(open_id);
    world.chats.push(chat);
    Ok(chat_id)
}

/// Lark's 5 sends per second to one user or chat (230020).
pub(super) fn admit_send(
    world: &mut World,
    chat_id: &str,
    now_ms: u64,
    qps: u32,
) -> Result<(), ApiError> {
    if qps == 0 {
        return Ok(());
    }
    let w = world.send_windows.entry(chat_id.to_string()).or_default();
    while w.front().is_some_and(|t| now_ms.saturating_sub(*t) >= 1000) {
        w.pop_front();
    }
    if w.len() >= qps as usize {
        return Err(err(
            codes::SEND_RATE_LIMITED,
            "This operation triggers the frequency limit.",
        ));
    }
    w.push_back(now_ms);
    Ok(())
}

/// The message a live `uuid` first produced, rendered as the send answered
/// (expired entries are dropped on the way).
pub(super) fn deduped(world: &mut World, key: &str, now: u64, ttl_secs: u64) -> Option<Value> {
    let ttl = ttl_secs.saturating_mul(1000);
    world
        .uuids
        .retain(|_, (_, at)| now.saturating_sub(*at) < ttl);
    let mid = world.uuids.get(key)?.0.clone();
    world
        .message(&mid)
        .map(|m| message_json(world, m, "open_id"))
}

pub(super) fn new_bot_message(
    world: &World,
    chat_id: String,
    msg_type: String,
    content: String,
    now: u64,
) -> Message {
    // The user of a user token, else the bot.
    let sender = world
        .caller_user
        .clone()
        .unwrap_or_else(|| world.app.app_id.clone());
    Message::fresh(
        chat_id,
        sender,
        world.caller_user.is_none(),
        msg_type,
        content,
        now,
    )
}

pub(super) fn send_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    call.required_query("receive_id_type")?;
    let id_type = call
        .enum_query(
            "receive_id_type",
            &["open_id", "union_id", "user_id", "email", "chat_id"],
            "open_id",
        )?
        .to_string();
    let body: SendBody = call.json()?;
    if body.receive_id.is_empty() {
        return Err(ApiError::field("receive_id", "", "receive_id is required"));
    }
    check_msg_type(&body.msg_type, MSG_TYPES)?;
    let content = content_string(&body.content)?;
    check_uuid("uuid", body.uuid.as_deref())?;
    let mentions = check_content(&body.msg_type, &content)?;
    bot_check(world)?;
    let now = call.now_ms;

    // A repeated uuid inside the window is answered with the message it first created. [U]
    if let Some(u) = &body.uuid
        && let Some(data) = deduped(world, u, now, call.options.uuid_ttl_secs)
    {
        return Ok(Reply::Data(data));
    }

    let chat_id = receiving_chat(world, &id_type, &body.receive_id, now)?;
    admit_send(world, &chat_id, now, call.options.send_qps_per_receiver)?;
    let mut message = new_bot_message(world, chat_id, body.msg_type, content, now);
    message.mentions = mentions;
    message.uuid = body.uuid.clone();
    Ok(store_sent(world, message, body.uuid, now))
}

/// Keeps a message the bot just sent, remembers its dedupe key, and answers with it.
pub(super) fn store_sent(
    world: &mut World,
    message: Message,
    uuid_key: Option<String>,
    now: u64,
) -> Reply {
    if let Some(key) = uuid_key {
        world.uuids.insert(key, (message.message_id.clone(), now));
    }
    let data = message_json(world, &message, "open_id");
    world.messages.push(message);
    Reply::Data(data)
}

// ---- reply -----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct ReplyBody {
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reply_in_thread: bool,
    #[serde(default)]
    uuid: Option<String>,
}

pub(super) fn reply_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let target_id = call.path_param("message_id").to_string();
    let body: ReplyBody = call.json()?;
    check_msg_type(&body.msg_type, MSG_TYPES)?;
    let content = content_string(&body.content)?;
    check_uuid("uuid", body.uuid.as_deref())?;
    let mentions = check_content(&body.msg_type, &content)?;
    bot_check(world)?;
    let now = call.now_ms;
    let uuid_key = body.uuid.as_ref().map(|u| format!("reply\u{1f}{u}"));
    if let Some(key) = &uuid_key
        && let Some(data) = deduped(world, key, now, call.options.uuid_ttl_secs)
    {
        return Ok(Reply::Data(data));
    }

    let (target, chat) = reachable(world, &target_id)?;
    if target.deleted {
        return Err(recalled());
    }
    let chat_id = chat.chat_id.clone();
    let root_id = target.root_id.clone().unwrap_or_else(|| target_id.clone());
    let existing_thread = target.thread_id.clone().or_else(|| {
        world
            .message(&root_id)
            .and_then(|root| root.thread_id.clone())
    });
    admit_send(world, &chat_id, now, call.options.send_qps_per_receiver)?;

    // A reply to a thread message stays in the thread; `reply_in_thread` opens one on the root.
    let thread_id = match existing_thread {
        Some(t) => Some(t),
        None if body.reply_in_thread => {
            let t = format!("omt_{}", random_hex(16));
            if let Some(root) = world.message_mut(&root_id) {
                root.thread_id = Some(t.clone());
            }
            Some(t)
        }
        None => None,
    };
    let mut message = new_bot_message(world, chat_id, body.msg_type, content, now);
    message.parent_id = Some(target_id);
    message.root_id = Some(root_id);
    message.thread_id = thread_id;
    message.mentions = mentions;
    message.uuid = body.uuid;
    Ok(store_sent(world, message, uuid_key, now))
}

// ---- edit, card update, recall ------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct EditBody {
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
}

pub(super) fn edit_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let body: EditBody = call.json()?;
    check_msg_type(&body.msg_type, &["text", "post"])?;
    let content = content_string(&body.content)?;
    let mentions = check_content(&body.msg_type, &content)?;
    bot_check(world)?;
    let (m, _) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    if !world.caller_sent(m) {
        return Err(err(
            codes::OPERATOR_NOT_SENDER,
            "The operator is not the sender of the message.",
        ));
    }
    if !["text", "post"].contains(&m.msg_type.as_str()) {
        return Err(err(
            codes::MSG_TYPE_NOT_SUPPORTED,
            "This operation is not supported for this message type.",
        ));
    }
    if m.edit_count >= EDIT_MAX {
        return Err(err(
            codes::EDIT_LIMIT_REACHED,
            "The message has reached the number of times it can be edited.",
        ));
    }
    let now = call.now_ms;
    let Some(m) = world.message_mut(&id) else {
        return Err(err(codes::MSG_DELETED, "message vanished"));
    };
    m.msg_type = body.msg_type;
    m.content = content;
    m.mentions = mentions;
    m.updated = true;
    m.update_time_ms = now;
    m.edit_count += 1;
    let m = m.clone();
    Ok(Reply::Data(read_json(world, &m, "open_id")))
}

#[derive(Deserialize)]
pub(super) struct CardBody {
    #[serde(default)]
    content: Option<Value>,
}

/// Shared cards only: `config.update_multi: true`, which schema 2.0 cards always are.
pub(super) fn is_shared_card(content: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(content) else {
        return false;
    };
    // Templates and CardKit entities carry the setting in the template / card entity.
    if matches!(
        v.get("type").and_then(Value::as_str),
        Some("template" | "card")
    ) {
        return true;
    }
    v.get("schema").and_then(Value::as_str) == Some("2.0")
        || v.pointer("/config/update_multi").and_then(Value::as_bool) == Some(true)
}

pub(super) fn update_card(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    let body: CardBody = call.json()?;
    let content = content_string(&body.content)?;
    check_content("interactive", &content)?;
    bot_check(world)?;
    let now = call.now_ms;
    let (m, _) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    if m.msg_type != "interactive" {
        return Err(err(
            codes::MSG_TYPE_NOT_SUPPORTED,
            "This operation is not supported for this message type.",
        ));
    }
    if !world.caller_sent(m) {
        return Err(err(
            codes::OPERATOR_NOT_SENDER,
            "The operator is not the sender of the message.",
        ));
    }
    if now.saturating_sub(m.create_time_ms) > 14 * DAY_MS {
        return Err(err(
            codes::CARD_UPDATE_WINDOW_PASSED,
            "Message can only be modified within 14 days after sending.",
        ));
    }
    if !is_shared_card(&m.content) || !is_shared_card(&content) {
        return Err(err(
            codes::CARD_CONTENT_FAILED,
            "Failed to create card content, ext=ErrCode: 200830; ErrMsg: only shared cards (config.update_multi=true) can be updated",
        ));
    }
    if !world.admit(&format!("card\u{1f}{id}"), now, 5) {
        return Err(err(
            codes::SEND_RATE_LIMITED,
            "This operation triggers the frequency limit.",
        ));
    }
    if let Some(m) = world.message_mut(&id) {
        m.content = content;
        m.updated = true;
        m.update_time_ms = now;
    }
    Ok(Reply::Data(json!({})))
}

pub(super) fn recall_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    bot_check(world)?;
    let now = call.now_ms;
    let (m, chat) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    let age = now.saturating_sub(m.create_time_ms);
    if world.caller_sent(m) {
        if age > call.options.recall_window_secs.saturating_mul(1000) {
            return Err(err(
                codes::MSG_RECALL_WINDOW_PASSED,
                "Message can only be recalled within one days.",
            ));
        }
    } else {
        // Others' messages: only as the group's owner, a manager or its creator bot, ≤ 1 year.
        let admin = chat.owner == world.app.app_id || chat.bot_manager || chat.created_by_bot;
        if !admin || age > 365 * DAY_MS {
            return Err(err(
                codes::NO_RECALL_PERMISSION,
                "No permission to recall this message.",
            ));
        }
    }
    if let Some(m) = world.message_mut(&id) {
        m.deleted = true;
        m.content = RECALLED_CONTENT.to_string();
        m.mentions.clear();
        m.update_time_ms = now;
    }
    world.pins.retain(|p| p.message_id != id);
    Ok(Reply::Data(json!({})))
}

// ---- forward -------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct ForwardBody {
    #[serde(default)]
    receive_id: String,
}

pub(super) fn forward_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    call.required_query("receive_id_type")?;
    let id_type = call
        .enum_query(
            "receive_id_type",
            &[
                "open_id",
                "union_id",
                "user_id",
                "email",
                "chat_id",
                "thread_id",
            ],
            "open_id",
        )?
        .to_string();
    let uuid = call.query("uuid").map(str::to_string);
    check_uuid("uuid", uuid.as_deref())?;
    let body: ForwardBody = call.json()?;
    if body.receive_id.is_empty() {
        return Err(ApiError::field("receive_id", "", "receive_id is required"));
    }
    bot_check(world)?;
    let now = call.now_ms;
    // Dedupe is per target: the same uuid may forward once to each receiver.
    let uuid_key = uuid
        .as_ref()
        .map(|u| format!("forward\u{1f}{id_type}\u{1f}{}\u{1f}{u}", body.receive_id));
    if let Some(key) = &uuid_key
        && let Some(data) = deduped(world, key, now, call.options.uuid_ttl_secs)
    {
        return Ok(Reply::Data(data));
    }
    let (source, _) = reachable(world, &id)?;
    if source.deleted {
        return Err(recalled());
    }
    if source.msg_type == "system" {
        return Err(err(
            codes::MSG_TYPE_NOT_SUPPORTED,
            "This operation is not supported for this message type.",
        ));
    }
    let (msg_type, content, mentions) = (
        source.msg_type.clone(),
        source.content.clone(),
        source.mentions.clone(),
    );
    let chat_id = receiving_chat(world, &id_type, &body.receive_id, now)?;
    let thread_root = if id_type == "thread_id" {
        world
            .messages
            .iter()
            .find(|m| m.thread_id.as_deref() == Some(&body.receive_id) && m.root_id.is_none())
            .map(|m| m.message_id.clone())
    } else {
        None
    };
    admit_send(world, &chat_id, now, call.options.send_qps_per_receiver)?;
    let mut message = new_bot_message(world, chat_id, msg_type, content, now);
    message.mentions = mentions;
    if id_type == "thread_id" {
        message.thread_id = Some(body.receive_id.clone());
        message.root_id = thread_root.clone();
        message.parent_id = thread_root;
    }
    message.uuid = uuid;
    Ok(store_sent(world, message, uuid_key, now))
}
