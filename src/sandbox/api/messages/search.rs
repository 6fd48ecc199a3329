//! `POST /open-apis/search/v2/message`: the messages a user can see that contain a text,
//! newest first, as message ids only (user identity only; the token check is the
//! pipeline's, from the `search_messages` row of `lark-endpoints.tsv`).

use std::collections::HashMap;

use super::*;

/// Default and largest `page_size`. [U] the reference pins neither; these are the message
/// list's (20 / 50), the nearest documented listing of messages.
const PAGE_DEFAULT: usize = 20;
const PAGE_MAX: usize = 50;

const MESSAGE_TYPES: &[&str] = &["file", "image", "media"];
const FROM_TYPES: &[&str] = &["bot", "user"];
const CHAT_TYPES: &[&str] = &["group_chat", "p2p_chat"];

/// The request body as the Node SDK types it (`search.v2.message.create`). Debug feeds the
/// page-token key, so a token only continues the search it came from.
#[derive(Debug, Deserialize)]
pub(super) struct SearchBody {
    query: Option<String>,
    from_ids: Option<Vec<String>>,
    chat_ids: Option<Vec<String>>,
    message_type: Option<String>,
    at_chatter_ids: Option<Vec<String>>,
    from_type: Option<String>,
    chat_type: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// What a message must satisfy; `None` leaves that criterion open.
struct Filter<'b> {
    /// The query, lowercased.
    needle: String,
    /// Sender open_ids.
    senders: Option<Vec<String>>,
    chats: Option<&'b [String]>,
    msg_type: Option<&'b str>,
    /// open_ids of which at least one must be mentioned.
    mentioned: Option<Vec<String>>,
    from_bot: Option<bool>,
    p2p: Option<bool>,
    /// Unix seconds, inclusive.
    start: Option<u64>,
    end: Option<u64>,
}

pub(super) fn search_messages(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?.to_string();
    let body: SearchBody = call.json()?;
    let filter = Filter::parse(&body, world, &user_type)?;
    let page = call.page(PAGE_DEFAULT, PAGE_MAX, &format!("{user_type}|{body:?}"))?;
    // User-only per the TSV, so the pipeline has set the user; checked rather than assumed
    // so a tenant caller could never fall back to the bot's chats.
    let Some(me) = world.caller_user.as_deref() else {
        return Err(ApiError::new(
            400,
            codes::USER_TOKEN_INVALID,
            "user access token required",
        ));
    };
    let visible: HashMap<&str, &Chat> = world
        .chats
        .iter()
        .filter(|c| !c.dissolved && c.members.iter().any(|m| m == me))
        .map(|c| (c.chat_id.as_str(), c))
        .collect();
    let mut found: Vec<(usize, &Message)> = world
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.deleted)
        .filter(|(_, m)| {
            visible
                .get(m.chat_id.as_str())
                .is_some_and(|chat| filter.keeps(m, chat))
        })
        .collect();
    // Newest first; among equal times the later stored one, so the order is total and
    // pages never overlap.
    found.sort_by(|(ia, a), (ib, b)| {
        b.create_time_ms
            .cmp(&a.create_time_ms)
            .then_with(|| ib.cmp(ia))
    });
    let ids: Vec<String> = found
        .into_iter()
        .map(|(_, m)| m.message_id.clone())
        .collect();
    Ok(Reply::Data(page.slice(&ids).into_data("items")))
}

impl<'b> Filter<'b> {
    fn parse(body: &'b SearchBody, world: &World, user_type: &str) -> Result<Self, ApiError> {
        let needle = body.query.as_deref().unwrap_or("").trim().to_lowercase();
        if needle.is_empty() {
            return Err(ApiError::field("query", "", "query is required"));
        }
        let from_type = one_of("from_type", body.from_type.as_deref(), FROM_TYPES)?;
        let chat_type = one_of("chat_type", body.chat_type.as_deref(), CHAT_TYPES)?;
        Ok(Filter {
            needle,
            senders: open_ids(world, body.from_ids.as_deref(), user_type),
            chats: body.chat_ids.as_deref().filter(|c| !c.is_empty()),
            msg_type: one_of("message_type", body.message_type.as_deref(), MESSAGE_TYPES)?,
            mentioned: open_ids(world, body.at_chatter_ids.as_deref(), user_type),
            from_bot: from_type.map(|t| t == "bot"),
            p2p: chat_type.map(|t| t == "p2p_chat"),
            start: seconds("start_time", body.start_time.as_deref())?,
            end: seconds("end_time", body.end_time.as_deref())?,
        })
    }

    fn keeps(&self, m: &Message, chat: &Chat) -> bool {
        let secs = m.create_time_ms / 1000;
        self.senders
            .as_ref()
            .is_none_or(|s| !m.sender_is_bot && s.contains(&m.sender))
            && self.chats.is_none_or(|c| c.contains(&m.chat_id))
            && self.msg_type.is_none_or(|t| m.msg_type == t)
            && self
                .mentioned
                .as_ref()
                .is_none_or(|ids| m.mentions.iter().any(|x| ids.contains(x)))
            && self.from_bot.is_none_or(|bot| m.sender_is_bot == bot)
            && self.p2p.is_none_or(|p2p| (chat.chat_mode == "p2p") == p2p)
            && self.start.is_none_or(|s| secs >= s)
            && self.end.is_none_or(|e| secs <= e)
            && searchable_text(m).contains(&self.needle)
    }
}

/// An optional enum field: absent or empty is no filter, anything outside `allowed` is
/// a validation error.
fn one_of<'v>(
    name: &str,
    value: Option<&'v str>,
    allowed: &[&str],
) -> Result<Option<&'v str>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(ApiError::field(
            name,
            v,
            format!("{name} must be one of: {}", allowed.join(", ")),
        )),
    }
}

/// A Unix-seconds string; absent or empty is no bound.
fn seconds(name: &str, value: Option<&str>) -> Result<Option<u64>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::field(
                name,
                v,
                format!("{name} must be a unix timestamp in seconds"),
            )
        }),
    }
}

/// User ids of `id_type` as open_ids (how messages store senders and mentions). Unknown
/// ids match nothing rather than failing the search; an empty or absent list is no filter.
fn open_ids(world: &World, ids: Option<&[String]>, id_type: &str) -> Option<Vec<String>> {
    let ids = ids.filter(|i| !i.is_empty())?;
    Some(
        ids.iter()
            .filter_map(|id| world.find_user(id, id_type).ok())
            .map(|u| u.open_id.clone())
            .collect(),
    )
}

/// Keys whose string values a reader sees: text, post and card titles and paragraphs,
/// file names. Keys, image and file keys, links and styles are not searched.
const TEXT_KEYS: &[&str] = &["text", "title", "content", "file_name"];

/// The message's readable text, lowercased: its read form (mention tags as `@_user_N`,
/// posts unwrapped) with the strings under [`TEXT_KEYS`] joined.
fn searchable_text(m: &Message) -> String {
    let read = read_content(&m.msg_type, &m.content);
    let Ok(v) = serde_json::from_str::<Value>(&read) else {
        return String::new();
    };
    let mut parts = Vec::new();
    collect_text(&v, &mut parts);
    parts.join("\n").to_lowercase()
}

fn collect_text<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match x {
                    Value::String(s) if TEXT_KEYS.contains(&k.as_str()) => out.push(s),
                    Value::Object(_) | Value::Array(_) => collect_text(x, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect_text(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(msg_type: &str, content: Value) -> Message {
        Message::fresh(
            "oc_1".into(),
            "ou_1".into(),
            false,
            msg_type.into(),
            content.to_string(),
            0,
        )
    }

    #[test]
    fn readable_text_is_what_a_reader_sees() {
        let text = message(
            "text",
            json!({"text": "Hi <at user_id=\"ou_2\">Secret Name</at> THERE"}),
        );
        // The read form: the mention is a placeholder, the tag's name is not text.
        assert_eq!(searchable_text(&text), "hi @_user_1 there");
        let post = message(
            "post",
            json!({"en_us": {"title": "Plan", "content": [[
                {"tag": "text", "text": "Ship it", "style": ["bold"]},
                {"tag": "a", "text": "doc", "href": "https://x.example/hidden"},
                {"tag": "img", "image_key": "img_hidden"}]]}}),
        );
        // Parts in key order (serde_json maps are sorted); a query never spans two parts.
        assert_eq!(searchable_text(&post), "ship it\ndoc\nplan");
        let card = message(
            "interactive",
            json!({"header": {"title": {"tag": "plain_text", "content": "Alert"}},
                   "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**p99** up"}}]}),
        );
        assert_eq!(searchable_text(&card), "**p99** up\nalert");
        let file = message(
            "file",
            json!({"file_key": "file_hidden", "file_name": "Q3.xlsx"}),
        );
        assert_eq!(searchable_text(&file), "q3.xlsx");
        let image = message("image", json!({"image_key": "img_hidden"}));
        assert_eq!(searchable_text(&image), "");
    }
}
