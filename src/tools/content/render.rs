//! Lark messages as an agent reads them: sender name beside the id, text and posts as
//! plain text or markdown, cards and media summarised with their keys, mentions as names.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::mentions::{AtTag, Token};
use crate::tools::output::NamedId;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MessageOut {
    pub message_id: String,
    /// When it was sent (UTC, ISO 8601).
    pub time: String,
    pub sender: NamedId,
    /// Lark msg_type: text, post, image, file, interactive, …
    #[serde(rename = "type")]
    pub msg_type: String,
    /// The content as plain text or markdown; media and cards summarised.
    pub text: String,
    /// image_key / file_key values, for download_resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// The message this one replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(String::from)
}

/// Milliseconds since the epoch (as Lark's string or number) → ISO 8601 UTC.
pub fn iso_time(ms: &Value) -> String {
    let ms = ms
        .as_str()
        .and_then(|x| x.parse::<i64>().ok())
        .or_else(|| ms.as_i64())
        .unwrap_or(0);
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The open_ids of senders and mentioned people, whose names a rendering needs.
pub fn people_in(messages: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for m in messages {
        if m["sender"]["sender_type"] == "user"
            && let Some(id) = s(&m["sender"], "id")
        {
            ids.push(id);
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

pub fn render(m: &Value, names: &HashMap<String, String>, bot_name: &str) -> MessageOut {
    let sender_id = s(&m["sender"], "id").unwrap_or_default();
    let sender_name = if m["sender"]["sender_type"] == "app" {
        Some(bot_name.to_string()).filter(|n| !n.is_empty())
    } else {
        names.get(&sender_id).cloned()
    };
    let msg_type = s(m, "msg_type").unwrap_or_default();
    let recalled = m.get("deleted").and_then(Value::as_bool) == Some(true);
    let content: Value = m["body"]["content"]
        .as_str()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    let mentions: HashMap<String, String> = m["mentions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| Some((s(x, "key")?, s(x, "name")?)))
        .collect();
    let (text, keys) = if recalled {
        ("[recalled]".to_string(), Vec::new())
    } else {
        content_text(&msg_type, &content, &mentions)
    };
    MessageOut {
        message_id: s(m, "message_id").unwrap_or_default(),
        time: iso_time(&m["create_time"]),
        sender: NamedId {
            id: sender_id,
            name: sender_name,
        },
        msg_type,
        text,
        keys,
        chat_id: s(m, "chat_id"),
        reply_to: s(m, "parent_id"),
        root_id: s(m, "root_id"),
        thread_id: s(m, "thread_id"),
        edited: m.get("updated").and_then(Value::as_bool) == Some(true),
        recalled,
    }
}

/// `@_user_1` placeholders → `@Name`; `@_all` (which has no mentions entry) → `@all`.
///
/// One pass over the text, trying at each `@` the key lengths there are, longest first, so
/// `@_user_10` is not read as `@_user_1` + "0" and names put in are never read again.
fn with_names(text: &str, mentions: &HashMap<String, String>) -> String {
    // Only keys that start with `@` can match at one (and each such match moves on).
    let mut lengths: Vec<usize> = mentions
        .keys()
        .filter(|k| k.starts_with('@'))
        .map(String::len)
        .collect();
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    lengths.dedup();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(n) = text[from..].find('@') {
        let at = from + n;
        let key = lengths.iter().find_map(|len| {
            let key = text.get(at..at + len)?;
            Some((key.len(), mentions.get(key)?.as_str()))
        });
        let Some((len, name)) = key.or_else(|| {
            text[at..]
                .starts_with("@_all")
                .then_some(("@_all".len(), "all"))
        }) else {
            from = at + 1;
            continue;
        };
        out.push_str(&text[last..at]);
        out.push('@');
        out.push_str(name);
        last = at + len;
        from = last;
    }
    out.push_str(&text[last..]);
    out
}

/// `<at user_id="…">Name</at>` (as sent) → `@Name`; a tag never closed stays as written.
fn strip_at_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in crate::mentions::tokens(text) {
        match token {
            Token::Tag(tag) if tag.closed => {
                out.push('@');
                out.push_str(if tag.name.is_empty() { "all" } else { tag.name });
            }
            Token::Tag(AtTag { range, .. }) | Token::Text(range) => out.push_str(&text[range]),
        }
    }
    out
}

fn content_text(
    msg_type: &str,
    c: &Value,
    mentions: &HashMap<String, String>,
) -> (String, Vec<String>) {
    let key = |k: &str| s(c, k).into_iter().collect::<Vec<_>>();
    match msg_type {
        "text" => (
            strip_at_tags(&with_names(&s(c, "text").unwrap_or_default(), mentions)),
            Vec::new(),
        ),
        "post" => post_text(c, mentions),
        "image" => ("[image]".into(), key("image_key")),
        "file" => (
            format!("[file {}]", s(c, "file_name").unwrap_or_default()).replace(" ]", "]"),
            key("file_key"),
        ),
        "audio" => ("[audio]".into(), key("file_key")),
        "media" => ("[video]".into(), key("file_key")),
        "sticker" => ("[sticker]".into(), Vec::new()),
        "share_chat" => (
            format!("[shared chat {}]", s(c, "chat_id").unwrap_or_default()),
            Vec::new(),
        ),
        "share_user" => (
            format!("[shared contact {}]", s(c, "user_id").unwrap_or_default()),
            Vec::new(),
        ),
        "interactive" => (card_text(c), Vec::new()),
        "merge_forward" => ("[merged forward of several messages]".into(), Vec::new()),
        other => (format!("[{other} message]"), Vec::new()),
    }
}

/// A post (read form `{title, content}`, or the sent form with a locale wrapper) as markdown.
fn post_text(c: &Value, mentions: &HashMap<String, String>) -> (String, Vec<String>) {
    let body = if c.get("content").is_some() {
        c
    } else {
        ["zh_cn", "en_us", "ja_jp"]
            .iter()
            .find_map(|l| c.get(*l))
            .unwrap_or(c)
    };
    let mut lines = Vec::new();
    let mut keys = Vec::new();
    if let Some(t) = s(body, "title") {
        lines.push(format!("**{t}**"));
    }
    for para in body["content"].as_array().into_iter().flatten() {
        let mut line = String::new();
        for el in para.as_array().into_iter().flatten() {
            let text = s(el, "text").unwrap_or_default();
            match el["tag"].as_str().unwrap_or("") {
                "text" | "md" => {
                    let styles: Vec<&str> = el["style"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let mut t = with_names(&text, mentions);
                    if styles.contains(&"lineThrough") {
                        t = format!("~~{t}~~");
                    }
                    if styles.contains(&"italic") {
                        t = format!("*{t}*");
                    }
                    if styles.contains(&"bold") {
                        t = format!("**{t}**");
                    }
                    line.push_str(&t);
                }
                "a" => line.push_str(&format!("[{text}]({})", s(el, "href").unwrap_or_default())),
                "at" => {
                    let id = s(el, "user_id").unwrap_or_default();
                    let name = s(el, "user_name").unwrap_or_else(|| {
                        if id == "all" {
                            "all".into()
                        } else {
                            id.clone()
                        }
                    });
                    line.push_str(&format!("@{name}"));
                }
                "img" => {
                    keys.extend(s(el, "image_key"));
                    line.push_str("[image]");
                }
                "media" => {
                    keys.extend(s(el, "file_key"));
                    line.push_str("[video]");
                }
                "emotion" => {
                    line.push_str(&format!(":{}:", s(el, "emoji_type").unwrap_or_default()))
                }
                "hr" => line.push_str("---"),
                "code_block" => {
                    line.push_str(&format!(
                        "```{}\n{}\n```",
                        s(el, "language").unwrap_or_default(),
                        text
                    ));
                }
                _ => line.push_str(&text),
            }
        }
        lines.push(line);
    }
    (lines.join("\n"), keys)
}

/// A card summarised: its header title and the text of its elements, shortened.
fn card_text(c: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(t) = c["header"]["title"]["content"].as_str() {
        parts.push(format!("**{t}**"));
    }
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(tag)), Some(Value::String(content))) =
                    (o.get("tag"), o.get("content"))
                    && (tag == "lark_md" || tag == "plain_text" || tag == "markdown")
                {
                    out.push(content.clone());
                }
                for (k, child) in o {
                    if k != "header" {
                        walk(child, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(c, &mut parts);
    let mut text = format!("[card] {}", parts.join(" / "));
    if text.chars().count() > 500 {
        text = text.chars().take(500).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_mentions_show_names_and_times_are_iso() {
        let m = json!({"message_id": "om_1", "msg_type": "text", "create_time": "1700000000000",
            "sender": {"id": "ou_a", "sender_type": "user"},
            "body": {"content": "{\"text\":\"@_user_1 请看 @_user_10 @_all\"}"},
            "mentions": [{"key": "@_user_1", "name": "张伟"}, {"key": "@_user_10", "name": "Li"}]});
        let names = HashMap::from([("ou_a".to_string(), "王芳".to_string())]);
        let r = render(&m, &names, "Bot");
        assert_eq!(r.text, "@张伟 请看 @Li @all");
        assert_eq!(r.sender.name.as_deref(), Some("王芳"));
        assert_eq!(r.time, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn posts_cards_and_media_are_summarised() {
        let post = json!({"title": "周报", "content": [[{"tag": "text", "text": "done", "style": ["bold"]},
            {"tag": "a", "text": "PR", "href": "https://x"}], [{"tag": "at", "user_id": "ou_1", "user_name": "张伟"}]]});
        let (t, _) = content_text("post", &post, &HashMap::new());
        assert_eq!(t, "**周报**\n**done**[PR](https://x)\n@张伟");
        let card = json!({"header": {"title": {"tag": "plain_text", "content": "Deploy"}},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**prod** ✅"}}]});
        assert_eq!(
            content_text("interactive", &card, &HashMap::new()).0,
            "[card] **Deploy** / **prod** ✅"
        );
        let (t, keys) = content_text("image", &json!({"image_key": "img_1"}), &HashMap::new());
        assert_eq!((t.as_str(), keys), ("[image]", vec!["img_1".to_string()]));
        assert_eq!(
            strip_at_tags("hi <at user_id=\"ou_1\">张伟</at> <at user_id=\"all\"></at>"),
            "hi @张伟 @all"
        );
    }

    #[test]
    fn placeholders_and_tags_are_read_in_one_pass() {
        let mentions: HashMap<String, String> = (1..=1000)
            .map(|i| (format!("@_user_{i}"), format!("P{i}")))
            .collect();
        let text = "@_user_1000 @_user_7@_user_70 @_user_1001 @_al @_all @ x@_user_2".repeat(2000);
        let out = with_names(&text, &mentions);
        assert!(out.starts_with("@P1000 @P7@P70 @P1001 @_al @all @ x@P2@P1000"));
        assert_eq!(out.matches("@P").count(), 2000 * 5);

        assert_eq!(
            strip_at_tags("<at user_id=\"ou_1\">A <at user_id=\"ou_2\">B</at> <at id=\"x\">"),
            "<at user_id=\"ou_1\">A @B <at id=\"x\">"
        );
        let unclosed = "<at user_id=\"x\">".repeat(50_000);
        assert_eq!(strip_at_tags(&unclosed), unclosed);
    }
}
