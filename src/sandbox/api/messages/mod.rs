//! `im/v1/messages` and what hangs off a message: send and reply (with `uuid` dedupe and
//! the 5-per-second receiver limit), edit, card update, recall, get, history, forward,
//! read receipts, reactions, pins and resource downloads.
//!
//! Messages are stored as they were sent (text with `<at>` tags, posts with their locale
//! wrapper); `get` and `list` serve Lark's read form (`@_user_N` placeholders, unwrapped
//! posts).

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::resources;
use crate::mentions::Token;
use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::seed::UserStatusSeed;
use crate::sandbox::world::{
    Chat, Message, Pin, Reaction, ResourceKind, World, message_resources, random_hex,
    reaction_id_for,
};

/// Bot reads of group (not p2p) messages also need this one (else 230027).
const GROUP_MSG_SCOPE: &str = "im:message.group_msg";

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
const EDIT_MAX: u32 = 20;
const DAY_MS: u64 = 86_400_000;
/// What a recalled message's `body.content` becomes. [U] a plain string, not JSON.
pub const RECALLED_CONTENT: &str = "This message was recalled";
/// Common keys of Lark's emoji table (`reaction_type.emoji_type`); others are 231001.
pub const EMOJI_TYPES: &[&str] = &[
    "OK",
    "THUMBSUP",
    "THANKS",
    "MUSCLE",
    "FINGERHEART",
    "APPLAUSE",
    "FISTBUMP",
    "JIAYI",
    "DONE",
    "SMILE",
    "BLUSH",
    "LAUGH",
    "SMIRK",
    "LOL",
    "FACEPALM",
    "LOVE",
    "WINK",
    "PROUD",
    "WITTY",
    "SMART",
    "SCOWL",
    "THINKING",
    "SOB",
    "CRY",
    "ERROR",
    "NOSEPICK",
    "HAUGHTY",
    "SLAP",
    "SPITBLOOD",
    "TOASTED",
    "GLANCE",
    "DULL",
    "INNOCENTSMILE",
    "JOYFUL",
    "WOW",
    "TRICK",
    "YEAH",
    "ENOUGH",
    "TEARS",
    "EMBARRASSED",
    "KISS",
    "SMOOCH",
    "DROOL",
    "OBSESSED",
    "MONEY",
    "TEASE",
    "SHOWOFF",
    "COMFORT",
    "CLAP",
    "PRAISE",
    "STRIVE",
    "XBLUSH",
    "SILENT",
    "WAVE",
    "WHAT",
    "FROWN",
    "SHY",
    "DIZZY",
    "LOOKDOWN",
    "CHUCKLE",
    "WAIL",
    "CRAZY",
    "WHIMPER",
    "HUG",
    "BLUBBER",
    "WRONGED",
    "HUSKY",
    "SHHH",
    "SMUG",
    "ANGRY",
    "HAMMER",
    "SHOCKED",
    "TERROR",
    "PETRIFIED",
    "SKULL",
    "SWEAT",
    "SPEECHLESS",
    "SLEEP",
    "DROWSY",
    "YAWN",
    "SICK",
    "PUKE",
    "BETRAYED",
    "HEADSET",
    "EatingFood",
    "MeMeMe",
    "Sigh",
    "Typing",
    "Lemon",
    "Get",
    "LGTM",
    "OnIt",
    "OneSecond",
    "VRHeadset",
    "YouAreTheBest",
    "SALUTE",
    "SHAKE",
    "HIGHFIVE",
    "UPPERLEFT",
    "ThumbsDown",
    "SLIGHT",
    "TONGUE",
    "EYESCLOSED",
    "RoarForYou",
    "CALF",
    "BEAR",
    "BULL",
    "RAINBOWPUKE",
    "ROSE",
    "HEART",
    "PARTY",
    "LIPS",
    "BEER",
    "CAKE",
    "GIFT",
    "CUCUMBER",
    "Drumstick",
    "Pepper",
    "CANDIEDHAWS",
    "BubbleTea",
    "Coffee",
    "Yes",
    "No",
    "OKR",
    "CheckMark",
    "CrossMark",
    "MinusOne",
    "Hundred",
    "AWESOMEN",
    "Pin",
    "Alarm",
    "Loudspeaker",
    "Trophy",
    "Fire",
    "BOMB",
    "Music",
    "XmasTree",
    "Snowman",
    "XmasHat",
    "FIREWORKS",
    "2022",
    "REDPACKET",
    "FORTUNE",
    "LUCK",
    "FIRECRACKER",
    "StickyRiceBalls",
    "HEARTBROKEN",
    "POOP",
    "StatusFlashOfInspiration",
    "18X",
    "CLEAVER",
    "Soccer",
    "Basketball",
    "GeneralDoNotDisturb",
    "Status_PrivateMessage",
    "GeneralInMeetingBusy",
    "StatusReading",
    "StatusInFlight",
    "GeneralBusinessTrip",
    "GeneralWorkFromHome",
    "StatusEnjoyLife",
    "GeneralTravellingCar",
    "StatusBus",
    "GeneralSun",
    "GeneralMoonRest",
    "PursueUltimate",
    "Partner",
    "BeOpen",
    "Yeah",
    "ClearlyExplained",
    "HighQuality",
    "Incredible",
    "Fight",
    "SmugSmile",
];

pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    const MSG: &str = "/open-apis/im/v1/messages/{message_id}";
    vec![
        Endpoint::new(
            "send_message",
            M::POST,
            "/open-apis/im/v1/messages",
            send_message,
        ),
        Endpoint::new(
            "list_messages",
            M::GET,
            "/open-apis/im/v1/messages",
            list_messages,
        ),
        Endpoint::new(
            "reply_message",
            M::POST,
            "/open-apis/im/v1/messages/{message_id}/reply",
            reply_message,
        ),
        Endpoint::new("get_message", M::GET, MSG, get_message),
        Endpoint::new("edit_message", M::PUT, MSG, edit_message),
        Endpoint::new("update_card_message", M::PATCH, MSG, update_card),
        Endpoint::new("recall_message", M::DELETE, MSG, recall_message),
        Endpoint::new(
            "forward_message",
            M::POST,
            "/open-apis/im/v1/messages/{message_id}/forward",
            forward_message,
        ),
        Endpoint::new(
            "message_read_users",
            M::GET,
            "/open-apis/im/v1/messages/{message_id}/read_users",
            read_users,
        ),
        Endpoint::new(
            "add_reaction",
            M::POST,
            "/open-apis/im/v1/messages/{message_id}/reactions",
            add_reaction,
        ),
        Endpoint::new(
            "list_reactions",
            M::GET,
            "/open-apis/im/v1/messages/{message_id}/reactions",
            list_reactions,
        ),
        Endpoint::new(
            "delete_reaction",
            M::DELETE,
            "/open-apis/im/v1/messages/{message_id}/reactions/{reaction_id}",
            delete_reaction,
        ),
        Endpoint::new("pin_message", M::POST, "/open-apis/im/v1/pins", pin),
        Endpoint::new(
            "unpin_message",
            M::DELETE,
            "/open-apis/im/v1/pins/{message_id}",
            unpin,
        ),
        Endpoint::new("list_pins", M::GET, "/open-apis/im/v1/pins", list_pins),
        Endpoint::new(
            "download_message_resource",
            M::GET,
            "/open-apis/im/v1/messages/{message_id}/resources/{file_key}",
            download_resource,
        ),
    ]
}

// ---- errors and common checks ------------------------------------------------------------

fn err(code: i64, msg: &str) -> ApiError {
    ApiError::new(400, code, msg)
}

fn invalid_content(why: &str) -> ApiError {
    ApiError::new(
        400,
        codes::MSG_INVALID_PARAM,
        format!("Your request contains an invalid request parameter. {why}"),
    )
}

fn bot_not_in_chat() -> ApiError {
    err(
        codes::BOT_NOT_IN_CHAT,
        "The bot can not be outside the group.",
    )
}

fn recalled() -> ApiError {
    err(codes::MSG_RECALLED, "The message is recalled.")
}

fn dissolved() -> ApiError {
    err(
        codes::CHAT_DISSOLVED,
        "Your request specifies a chat which has already been dissolved.",
    )
}

fn bot_check(world: &World) -> Result<(), ApiError> {
    if world.app.bot_activated {
        Ok(())
    } else {
        Err(err(
            codes::BOT_NOT_ACTIVATED,
            "Bot ability is not activated.",
        ))
    }
}

fn check_uuid(field: &str, uuid: Option<&str>) -> Result<(), ApiError> {
    match uuid {
        Some(u) if u.chars().count() > UUID_MAX => Err(ApiError::field(
            field,
            u,
            format!("{field} must be at most {UUID_MAX} characters"),
        )),
        _ => Ok(()),
    }
}

fn check_message_id(id: &str) -> Result<(), ApiError> {
    let ok = id.starts_with("om_")
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid_content("message_id is invalid."))
    }
}

/// The message and its chat, for an operation by the bot: the message exists, its chat
/// is not dissolved and the bot is in it. Recall state is left to the caller.
fn reachable<'w>(world: &'w World, id: &str) -> Result<(&'w Message, &'w Chat), ApiError> {
    check_message_id(id)?;
    let m = world.message(id).ok_or_else(|| {
        err(
            codes::MSG_DELETED,
            "Action unavailable as the message has been deleted.",
        )
    })?;
    let chat = world.chat(&m.chat_id).ok_or_else(|| {
        err(
            codes::MSG_DELETED,
            "Action unavailable as the message has been deleted.",
        )
    })?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !chat.bot_member {
        return Err(bot_not_in_chat());
    }
    Ok((m, chat))
}

/// Bot reads of group messages need `im:message.group_msg` on top of the API scope.
fn check_group_read(world: &World, chat: &Chat) -> Result<(), ApiError> {
    if chat.chat_mode != "p2p" && !world.has_scope(GROUP_MSG_SCOPE) {
        return Err(err(
            codes::LACK_PERMISSIONS,
            "Lack of necessary permissions.",
        ));
    }
    Ok(())
}

/// `content` must be a JSON-encoded string (not an object): 99992402 otherwise.
fn content_string(content: &Option<Value>) -> Result<String, ApiError> {
    match content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::field(
            "content",
            "",
            "content must be a JSON-encoded string",
        )),
        None => Err(ApiError::field("content", "", "content is required")),
    }
}

fn check_msg_type(msg_type: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&msg_type) {
        Ok(())
    } else {
        Err(ApiError::field(
            "msg_type",
            msg_type,
            format!("msg_type must be one of: {}", allowed.join(", ")),
        ))
    }
}

/// Parses and checks a time bound given as digits (seconds or milliseconds).
fn time_query(call: &Call, name: &str) -> Result<Option<u64>, ApiError> {
    match call.query(name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::field(name, v, format!("{name} must be a unix timestamp string"))
        }),
    }
}

// ---- content -------------------------------------------------------------------------------

/// `content` is a JSON string whose object must fit its `msg_type`; returns the mentions.
fn check_content(msg_type: &str, content: &str) -> Result<Vec<String>, ApiError> {
    let limit = match msg_type {
        "text" => TEXT_LIMIT,
        "post" | "interactive" => RICH_LIMIT,
        _ => TEXT_LIMIT,
    };
    if content.len() > limit {
        return Err(err(
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

/// The `<at>` tags in a text that mention someone: closed, with an id. The rest is text,
/// both when recording mentions and in the read form, so the two always agree.
fn mention_tags(text: &str) -> impl Iterator<Item = Token<'_>> {
    crate::mentions::tokens(text).map(|t| match t {
        Token::Tag(tag) if !tag.closed || tag.id.is_empty() => Token::Text(tag.range),
        t => t,
    })
}

/// open_ids mentioned with `<at user_id="…">` in text, or `at` elements in a post.
fn mentioned_ids(msg_type: &str, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match msg_type {
        "text" => {
            let text = v.get("text").and_then(Value::as_str).unwrap_or("");
            for t in mention_tags(text) {
                if let Token::Tag(tag) = t
                    && tag.id != "all"
                {
                    out.push(tag.id.to_string());
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

/// Lark's read form of stored content: `<at>` tags in text become `@_user_N` / `@_all`,
/// and a post loses its locale wrapper (`{title, content}`).
pub fn read_content(msg_type: &str, content: &str) -> String {
    match msg_type {
        "text" if content.contains("<at ") => {
            let Ok(mut v) = serde_json::from_str::<Value>(content) else {
                return content.to_string();
            };
            let Some(text) = v.get("text").and_then(Value::as_str) else {
                return content.to_string();
            };
            let mut out = String::with_capacity(text.len());
            let mut n = 0;
            for t in mention_tags(text) {
                match t {
                    Token::Text(range) => out.push_str(&text[range]),
                    Token::Tag(tag) if tag.id == "all" => out.push_str("@_all"),
                    Token::Tag(_) => {
                        n += 1;
                        out.push_str(&format!("@_user_{n}"));
                    }
                }
            }
            v["text"] = Value::String(out);
            v.to_string()
        }
        "post" => {
            let Ok(v) = serde_json::from_str::<Value>(content) else {
                return content.to_string();
            };
            if v.get("content").is_some() {
                return content.to_string();
            }
            ["zh_cn", "en_us", "ja_jp"]
                .iter()
                .find_map(|l| v.get(*l))
                .map(|body| {
                    json!({
                        "title": body.get("title").cloned().unwrap_or_else(|| json!("")),
                        "content": body.get("content").cloned().unwrap_or_else(|| json!([])),
                    })
                    .to_string()
                })
                .unwrap_or_else(|| content.to_string())
        }
        _ => content.to_string(),
    }
}

// ---- rendering -----------------------------------------------------------------------------

/// A message as `create` / `reply` / `forward` return it: times as millisecond strings,
/// content as stored.
pub fn message_json(world: &World, m: &Message, user_type: &str) -> Value {
    render_message(world, m, user_type, &m.content)
}

/// A message as `get` / `list` / `edit` return it: content in Lark's read form.
pub fn read_json(world: &World, m: &Message, user_type: &str) -> Value {
    render_message(world, m, user_type, &read_content(&m.msg_type, &m.content))
}

fn render_message(world: &World, m: &Message, user_type: &str, content: &str) -> Value {
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
    o.insert("body".into(), json!({"content": content}));
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

// ---- send ----------------------------------------------------------------------------------

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
        if chat.dissolved {
            return Err(dissolved());
        }
        if !chat.bot_member {
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
fn admit_send(world: &mut World, chat_id: &str, now_ms: u64, qps: u32) -> Result<(), ApiError> {
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
fn deduped(world: &mut World, key: &str, now: u64, ttl_secs: u64) -> Option<Value> {
    let ttl = ttl_secs.saturating_mul(1000);
    world
        .uuids
        .retain(|_, (_, at)| now.saturating_sub(*at) < ttl);
    let mid = world.uuids.get(key)?.0.clone();
    world
        .message(&mid)
        .map(|m| message_json(world, m, "open_id"))
}

fn new_bot_message(
    world: &World,
    chat_id: String,
    msg_type: String,
    content: String,
    now: u64,
) -> Message {
    Message {
        message_id: format!("om_{}", random_hex(32)),
        chat_id,
        sender: world.app.app_id.clone(),
        sender_is_bot: true,
        msg_type,
        content,
        create_time_ms: now,
        update_time_ms: now,
        parent_id: None,
        root_id: None,
        thread_id: None,
        mentions: Vec::new(),
        deleted: false,
        updated: false,
        uuid: None,
        edit_count: 0,
    }
}

fn send_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
fn store_sent(world: &mut World, message: Message, uuid_key: Option<String>, now: u64) -> Reply {
    if let Some(key) = uuid_key {
        world.uuids.insert(key, (message.message_id.clone(), now));
    }
    let data = message_json(world, &message, "open_id");
    world.messages.push(message);
    Reply::Data(data)
}

// ---- reply -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ReplyBody {
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reply_in_thread: bool,
    #[serde(default)]
    uuid: Option<String>,
}

fn reply_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
struct EditBody {
    #[serde(default)]
    msg_type: String,
    #[serde(default)]
    content: Option<Value>,
}

fn edit_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
    if !m.sender_is_bot {
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
struct CardBody {
    #[serde(default)]
    content: Option<Value>,
}

/// Shared cards only: `config.update_multi: true`, which schema 2.0 cards always are.
fn is_shared_card(content: &str) -> bool {
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

fn update_card(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
    if !m.sender_is_bot {
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

fn recall_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    bot_check(world)?;
    let now = call.now_ms;
    let (m, chat) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    let age = now.saturating_sub(m.create_time_ms);
    if m.sender_is_bot {
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

// ---- get and history ----------------------------------------------------------------------------

fn get_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let id = call.path_param("message_id");
    bot_check(world)?;
    let (m, chat) = reachable(world, id)?;
    check_group_read(world, chat)?;
    Ok(Reply::Data(
        json!({"items": [read_json(world, m, user_type)]}),
    ))
}

fn list_messages(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
    if !chat.bot_member {
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

// ---- forward -------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ForwardBody {
    #[serde(default)]
    receive_id: String,
}

fn forward_message(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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

// ---- read receipts -------------------------------------------------------------------------------

fn read_users(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
    if !m.sender_is_bot {
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

// ---- reactions -----------------------------------------------------------------------------------

fn reaction_json(world: &World, r: &Reaction, user_type: &str) -> Value {
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

fn reaction_type_invalid() -> ApiError {
    err(codes::REACTION_TYPE_INVALID, "reaction type is invalid.")
}

/// The message for a reaction call: 231003 when unknown or recalled, 231002/231008 when
/// the bot is not in its chat.
fn reaction_target<'w>(
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
    if !chat.bot_member {
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
struct ReactionBody {
    #[serde(default)]
    reaction_type: Option<EmojiBody>,
}

#[derive(Deserialize, Default)]
struct EmojiBody {
    #[serde(default)]
    emoji_type: String,
}

fn add_reaction(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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

fn list_reactions(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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

fn delete_reaction(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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

// ---- pins ----------------------------------------------------------------------------------------

fn pin_json(p: &Pin) -> Value {
    json!({
        "message_id": p.message_id,
        "chat_id": p.chat_id,
        "operator_id": p.operator_id,
        "operator_id_type": if p.operator_is_bot { "app_id" } else { "open_id" },
        "create_time": p.create_time_ms.to_string(),
    })
}

/// Pin and unpin: at most 5 per second per message (230047).
fn admit_pin(world: &mut World, id: &str, now: u64) -> Result<(), ApiError> {
    if world.admit(&format!("pin\u{1f}{id}"), now, 5) {
        Ok(())
    } else {
        Err(err(
            codes::PIN_RATE_LIMITED,
            "Pin/Unpin message trigger message_id limit.",
        ))
    }
}

#[derive(Deserialize)]
struct PinBody {
    #[serde(default)]
    message_id: String,
}

fn pin(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let body: PinBody = call.json()?;
    if body.message_id.is_empty() {
        return Err(ApiError::field("message_id", "", "message_id is required"));
    }
    let id = body.message_id;
    bot_check(world)?;
    let (m, chat) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    let chat_id = chat.chat_id.clone();
    if let Some(p) = world.pins.iter().find(|p| p.message_id == id) {
        return Ok(Reply::Data(json!({"pin": pin_json(p)})));
    }
    admit_pin(world, &id, call.now_ms)?;
    let p = Pin {
        message_id: id,
        chat_id,
        operator_id: world.app.app_id.clone(),
        operator_is_bot: true,
        create_time_ms: call.now_ms,
    };
    let data = json!({"pin": pin_json(&p)});
    world.pins.push(p);
    Ok(Reply::Data(data))
}

fn unpin(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    bot_check(world)?;
    reachable(world, &id)?;
    admit_pin(world, &id, call.now_ms)?;
    // Unpinning what is not pinned succeeds too.
    world.pins.retain(|p| p.message_id != id);
    Ok(Reply::Data(json!({})))
}

fn list_pins(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.required_query("chat_id")?.to_string();
    let start = time_query(call, "start_time")?;
    let end = time_query(call, "end_time")?;
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(invalid_content("end_time must be greater than start_time."));
    }
    let page = call.page(
        20,
        50,
        &format!(
            "{chat_id}|{}|{}",
            start.unwrap_or(0),
            end.unwrap_or(u64::MAX)
        ),
    )?;
    bot_check(world)?;
    let chat = world
        .chat(&chat_id)
        .ok_or_else(|| err(codes::PIN_CHAT_NOT_EXIST, "The chat not exist."))?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !chat.bot_member {
        return Err(bot_not_in_chat());
    }
    let mut found: Vec<&Pin> = world
        .pins
        .iter()
        .filter(|p| p.chat_id == chat_id)
        .filter(|p| {
            start.is_none_or(|s| p.create_time_ms >= s) && end.is_none_or(|e| p.create_time_ms <= e)
        })
        .collect();
    // Newest pin first.
    found.sort_by_key(|p| std::cmp::Reverse(p.create_time_ms));
    let items: Vec<Value> = found.into_iter().map(pin_json).collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

// ---- resources in messages -----------------------------------------------------------------------

fn download_resource(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
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
    if !chat.bot_member {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_form_replaces_at_tags_and_unwraps_posts() {
        let text = json!({"text": "hi <at user_id=\"ou_a\">A</at> and <at user_id=\"all\">所有人</at> <at id=\"ou_b\"></at>!"})
            .to_string();
        let read: Value = serde_json::from_str(&read_content("text", &text)).unwrap();
        assert_eq!(read["text"], "hi @_user_1 and @_all @_user_2!");
        let plain = json!({"text": "no tags"}).to_string();
        assert_eq!(read_content("text", &plain), plain);

        let post = json!({"en_us": {"title": "T", "content": [[{"tag": "text", "text": "x"}]]}})
            .to_string();
        let read: Value = serde_json::from_str(&read_content("post", &post)).unwrap();
        assert_eq!(
            read,
            json!({"title": "T", "content": [[{"tag": "text", "text": "x"}]]})
        );
        let already = json!({"title": "T", "content": []}).to_string();
        assert_eq!(read_content("post", &already), already);
    }

    #[test]
    fn mentions_skip_all_and_follow_tag_order() {
        let v = json!({"text": "<at user_id=\"ou_1\">a</at><at user_id=\"all\"></at><at user_id=\"ou_2\">b</at>"});
        assert_eq!(mentioned_ids("text", &v), ["ou_1", "ou_2"]);
    }

    #[test]
    fn read_form_and_mentions_agree_on_odd_tags() {
        let text = "<at user_id=\"ou_1\">A <at user_id=\"ou_2\">B</at> <at name=\"x\">C</at> <at id='ou_3'/> <at user_id=\"ou_4\">";
        let v = json!({ "text": text });
        assert_eq!(mentioned_ids("text", &v), ["ou_2", "ou_3"]);
        let read: Value = serde_json::from_str(&read_content("text", &v.to_string())).unwrap();
        assert_eq!(
            read["text"],
            "<at user_id=\"ou_1\">A @_user_1 <at name=\"x\">C</at> @_user_2 <at user_id=\"ou_4\">"
        );
    }

    #[test]
    fn six_hundred_kb_of_unclosed_tags_are_read_in_one_pass() {
        let text = "<at id=\"x\">".repeat(600 * 1024 / 11);
        let v = json!({ "text": text });
        assert!(mentioned_ids("text", &v).is_empty());
        assert_eq!(read_content("text", &v.to_string()), v.to_string());
    }

    #[test]
    fn shared_cards_are_recognised() {
        assert!(is_shared_card(
            r#"{"config":{"update_multi":true},"elements":[]}"#
        ));
        assert!(is_shared_card(r#"{"schema":"2.0","body":{"elements":[]}}"#));
        assert!(is_shared_card(
            r#"{"type":"template","data":{"template_id":"x"}}"#
        ));
        assert!(!is_shared_card(
            r#"{"config":{"wide_screen_mode":true},"elements":[]}"#
        ));
        assert!(!is_shared_card("not json"));
    }

    #[test]
    fn emoji_keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for e in EMOJI_TYPES {
            assert!(seen.insert(e), "{e} twice");
        }
        for e in [
            "SMILE", "THUMBSUP", "OK", "HEART", "JIAYI", "DONE", "LAUGH", "CLAP",
        ] {
            assert!(EMOJI_TYPES.contains(&e), "{e}");
        }
    }
}
