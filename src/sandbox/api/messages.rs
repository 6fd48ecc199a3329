//! `im/v1/messages`: sending (with `uuid` dedupe and the 5-per-second receiver limit).
//! Reading, replying and the rest of im v1 join this module with the messaging tools.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::seed::UserStatusSeed;
use crate::sandbox::world::{Chat, Message, World, random_hex};

const SEND: &[&str] = &["im:message", "im:message:send_as_bot", "im:message:send"];
const MSG_TYPES: &[&str] = &[
    "text",
    "post",
    "image",
    "file",
    "audio",
    "media",
    "sticker",
    "interactive",
    "share_chat",
    "share_user",
    "system",
];
const TEXT_LIMIT: usize = 150 * 1024;
const RICH_LIMIT: usize = 30 * 1024;
const UUID_MAX: usize = 50;

pub fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(
        "send_message",
        Method::POST,
        "/open-apis/im/v1/messages",
        SEND,
        send_message,
    )]
}

#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    receive_id: String,
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    uuid: Option<String>,
}

fn invalid_content(why: &str) -> ApiError {
    ApiError::new(
        400,
        codes::MSG_INVALID_PARAM,
        format!("Your request contains an invalid request parameter. {why}"),
    )
}

/// `content` is a JSON string whose object must fit its `msg_type`.
fn check_content(msg_type: &str, content: &str) -> Result<Vec<String>, ApiError> {
    let limit = match msg_type {
        "text" => TEXT_LIMIT,
        "post" | "interactive" => RICH_LIMIT,
        _ => TEXT_LIMIT,
    };
    if content.len() > limit {
        return Err(ApiError::new(
            400,
            codes::CONTENT_TOO_LONG,
            "The length of the message content reaches its limit.",
        ));
    }
    let v: Value = serde_json::from_str(content)
        .map_err(|_| invalid_content("content is not a valid JSON string."))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid_content("content must be a JSON object."))?;
    let str_field = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let ok = match msg_type {
        "text" => obj.get("text").is_some_and(Value::is_string),
        "post" => obj.iter().any(|(locale, body)| {
            ["zh_cn", "en_us", "ja_jp"].contains(&locale.as_str())
                && body
                    .get("content")
                    .and_then(Value::as_array)
                    .is_some_and(|paras| paras.iter().all(Value::is_array))
        }),
        "image" => str_field("image_key"),
        "file" | "audio" | "media" | "sticker" => str_field("file_key"),
        "share_chat" => str_field("chat_id"),
        "share_user" => str_field("user_id"),
        "interactive" => ["elements", "body", "type", "header", "i18n_elements"]
            .iter()
            .any(|k| obj.contains_key(*k)),
        "system" => str_field("type"),
        _ => false,
    };
    if !ok {
        return Err(invalid_content(&format!(
            "content does not fit msg_type {msg_type}."
        )));
    }
    Ok(mentioned_ids(msg_type, &v))
}

/// open_ids mentioned with `<at user_id="…">` in text, or `at` elements in a post.
fn mentioned_ids(msg_type: &str, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match msg_type {
        "text" => {
            let text = v.get("text").and_then(Value::as_str).unwrap_or("");
            for part in text.split("<at ").skip(1) {
                let id = part
                    .split_once("id=\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(id, _)| id);
                if let Some(id) = id.filter(|id| *id != "all") {
                    out.push(id.to_string());
                }
            }
        }
        "post" => {
            for body in v.as_object().into_iter().flat_map(|o| o.values()) {
                let paras = body.get("content").and_then(Value::as_array);
                for el in paras
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_array)
                    .flatten()
                {
                    if el.get("tag").and_then(Value::as_str) == Some("at")
                        && let Some(id) = el
                            .get("user_id")
                            .and_then(Value::as_str)
                            .filter(|i| *i != "all")
                    {
                        out.push(id.to_string());
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// The chat a message to this receiver lands in, creating the bot's p2p chat on first contact.
fn receiving_chat(
    world: &mut World,
    id_type: &str,
    id: &str,
    now_ms: u64,
) -> Result<String, ApiError> {
    if id_type == "chat_id" {
        let chat = world
            .chat(id)
            .ok_or_else(|| crate::sandbox::world::not_existed("chat_id", id))?;
        if !chat.bot_member {
            return Err(ApiError::new(
                400,
                codes::BOT_NOT_IN_CHAT,
                "The bot can not be outside the group.",
            ));
        }
        return Ok(chat.chat_id.clone());
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
        return Err(ApiError::new(
            400,
            codes::NO_AVAILABILITY,
            "Bot has NO availability to this user.",
        ));
    }
    let open_id = user.open_id.clone();
    if let Some(c) = world
        .chats
        .iter()
        .find(|c| c.p2p_user.as_deref() == Some(&open_id))
    {
        return Ok(c.chat_id.clone());
    }
    let chat_id = format!("oc_{}", random_hex(32));
    world.chats.push(Chat {
        chat_id: chat_id.clone(),
        name: String::new(),
        description: String::new(),
        owner: open_id.clone(),
        chat_type: "private".into(),
        chat_mode: "p2p".into(),
        bot_member: true,
        members: vec![open_id.clone()],
        create_time_ms: now_ms,
        p2p_user: Some(open_id),
    });
    Ok(chat_id)
}

/// Lark's 5 sends per second to one user or chat (230020).
fn admit_send(world: &mut World, chat_id: &str, now_ms: u64, qps: u32) -> Result<(), ApiError> {
    if qps == 0 {
        return Ok(());
    }
    let w = world.send_windows.entry(chat_id.to_string()).or_default();
    while w.front().is_some_and(|t| now_ms.saturating_sub(*t) >= 1000) {
        w.pop_front();
    }
    if w.len() >= qps as usize {
        return Err(ApiError::new(
            400,
            codes::SEND_RATE_LIMITED,
            "This operation triggers the frequency limit.",
        ));
    }
    w.push_back(now_ms);
    Ok(())
}

fn send_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id_type = call
        .query("receive_id_type")
        .ok_or_else(|| ApiError::field("receive_id_type", "", "receive_id_type is required"))?;
    let id_type = call
        .enum_query(
            "receive_id_type",
            &["open_id", "union_id", "user_id", "email", "chat_id"],
            "open_id",
        )
        .map(|_| id_type.to_string())?;
    let body: SendBody = call.json()?;
    if body.receive_id.is_empty() {
        return Err(ApiError::field("receive_id", "", "receive_id is required"));
    }
    if !MSG_TYPES.contains(&body.msg_type.as_str()) {
        return Err(ApiError::field(
            "msg_type",
            &body.msg_type,
            format!("msg_type must be one of: {}", MSG_TYPES.join(", ")),
        ));
    }
    let content = match &body.content {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "content",
                "",
                "content must be a JSON-encoded string",
            ));
        }
        None => return Err(ApiError::field("content", "", "content is required")),
    };
    if let Some(u) = &body.uuid
        && u.len() > UUID_MAX
    {
        return Err(ApiError::field(
            "uuid",
            u,
            format!("uuid must be at most {UUID_MAX} characters"),
        ));
    }
    let mentions = check_content(&body.msg_type, &content)?;
    if !world.app.bot_activated {
        return Err(ApiError::new(
            400,
            codes::BOT_NOT_ACTIVATED,
            "Bot ability is not activated.",
        ));
    }
    let now = call.now_ms;

    // A repeated uuid inside the window is answered with the message it first created. [U]
    if let Some(u) = &body.uuid {
        let ttl = call.options.uuid_ttl_secs * 1000;
        world
            .uuids
            .retain(|_, (_, at)| now.saturating_sub(*at) < ttl);
        if let Some((mid, _)) = world.uuids.get(u)
            && let Some(m) = world.messages.iter().find(|m| &m.message_id == mid)
        {
            return Ok(Reply::Data(message_json(world, m, "open_id")));
        }
    }

    let chat_id = receiving_chat(world, &id_type, &body.receive_id, now)?;
    admit_send(world, &chat_id, now, call.options.send_qps_per_receiver)?;
    let message = Message {
        message_id: format!("om_{}", random_hex(32)),
        chat_id,
        sender: world.app.app_id.clone(),
        sender_is_bot: true,
        msg_type: body.msg_type,
        content,
        create_time_ms: now,
        update_time_ms: now,
        parent_id: None,
        root_id: None,
        thread_id: None,
        mentions,
        deleted: false,
        updated: false,
        uuid: body.uuid.clone(),
    };
    if let Some(u) = body.uuid {
        world.uuids.insert(u, (message.message_id.clone(), now));
    }
    let data = message_json(world, &message, "open_id");
    world.messages.push(message);
    Ok(Reply::Data(data))
}

/// A message as `get` / `list` / `create` return it: times as millisecond strings.
pub fn message_json(world: &World, m: &Message, user_type: &str) -> Value {
    let mut o = Map::new();
    o.insert("message_id".into(), json!(m.message_id));
    for (k, v) in [
        ("root_id", &m.root_id),
        ("parent_id", &m.parent_id),
        ("thread_id", &m.thread_id),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    o.insert("msg_type".into(), json!(m.msg_type));
    o.insert("create_time".into(), json!(m.create_time_ms.to_string()));
    o.insert("update_time".into(), json!(m.update_time_ms.to_string()));
    o.insert("deleted".into(), json!(m.deleted));
    o.insert("updated".into(), json!(m.updated));
    o.insert("chat_id".into(), json!(m.chat_id));
    let sender = if m.sender_is_bot {
        json!({"id": m.sender, "id_type": "app_id", "sender_type": "app", "tenant_key": world.app.tenant_key})
    } else {
        let id = world
            .user_by_open_id(&m.sender)
            .map(|u| world.user_id_of(u, user_type))
            .unwrap_or_else(|| m.sender.clone());
        json!({"id": id, "id_type": user_type, "sender_type": "user", "tenant_key": world.app.tenant_key})
    };
    o.insert("sender".into(), sender);
    o.insert("body".into(), json!({"content": m.content}));
    let mentions: Vec<Value> = m
        .mentions
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let u = world.user_by_open_id(id)?;
            Some(
                json!({"key": format!("@_user_{}", i + 1), "id": world.user_id_of(u, user_type),
                        "id_type": user_type, "name": u.name, "tenant_key": world.app.tenant_key}),
            )
        })
        .collect();
    if !mentions.is_empty() {
        o.insert("mentions".into(), json!(mentions));
    }
    Value::Object(o)
}
