//! Message content as the sandbox checks it on the way in (each `msg_type`'s JSON,
//! mentions) and serves it on the way out (Lark's read form).

use super::*;

/// `content` is a JSON string whose object must fit its `msg_type`; returns the mentions.
pub(crate) fn check_content(msg_type: &str, content: &str) -> Result<Vec<String>, ApiError> {
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
pub(super) fn mention_tags(text: &str) -> impl Iterator<Item = Token<'_>> {
    crate::mentions::tokens(text).map(|t| match t {
        Token::Tag(tag) if !tag.closed || tag.id.is_empty() => Token::Text(tag.range),
        t => t,
    })
}

/// open_ids mentioned with `<at user_id="…">` in text, or `at` elements in a post.
pub(super) fn mentioned_ids(msg_type: &str, v: &Value) -> Vec<String> {
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
