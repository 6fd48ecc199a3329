//! Turning what an agent writes into a Lark message: who receives it, and the one content
//! form it chose (text, markdown, card, image, file, shared chat or user), with mentions
//! resolved before anything is sent.
//!
//! Mentions: `<at id="ou_…"></at>`, `@all`, or `@` followed by an email address
//! (`@zhang.wei@example.com`). An unknown person is an error; nothing is sent.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolCtx, ToolError};

pub const TEXT_LIMIT: usize = 150 * 1024;
pub const RICH_LIMIT: usize = 30 * 1024;

/// How the receiver is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum ReceiverType {
    OpenId,
    UnionId,
    UserId,
    Email,
    ChatId,
}

impl ReceiverType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverType::OpenId => "open_id",
            ReceiverType::UnionId => "union_id",
            ReceiverType::UserId => "user_id",
            ReceiverType::Email => "email",
            ReceiverType::ChatId => "chat_id",
        }
    }

    /// `ou_` open_id, `on_` union_id, `oc_` chat_id, an `@` an email, else a user_id.
    pub fn resolve(given: Option<ReceiverType>, to: &str) -> ReceiverType {
        given.unwrap_or(if to.starts_with("ou_") {
            ReceiverType::OpenId
        } else if to.starts_with("on_") {
            ReceiverType::UnionId
        } else if to.starts_with("oc_") {
            ReceiverType::ChatId
        } else if to.contains('@') {
            ReceiverType::Email
        } else {
            ReceiverType::UserId
        })
    }
}

/// The content forms, exactly one of which a message carries.
#[derive(Debug, Default)]
pub struct ContentChoice {
    pub text: Option<String>,
    pub markdown: Option<String>,
    pub card: Option<Value>,
    pub image_key: Option<String>,
    pub file_key: Option<String>,
    pub share_chat: Option<String>,
    pub share_user: Option<String>,
}

/// Declares an argument struct that carries the content forms next to its own fields.
macro_rules! with_content {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            /// Plain text; mention with <at id="ou_…"></at>, @email or @all.
            text: Option<String>,
            /// Markdown, sent as a rich-text post (same mentions).
            markdown: Option<String>,
            /// An interactive card object.
            card: Option<serde_json::Value>,
            /// An image uploaded with upload_image.
            image_key: Option<String>,
            /// A file uploaded with upload_file.
            file_key: Option<String>,
            /// A chat_id to share as a card.
            share_chat: Option<String>,
            /// An open_id whose contact card to share.
            share_user: Option<String>,
        }

        impl $name {
            fn content(&mut self) -> $crate::tools::compose::ContentChoice {
                $crate::tools::compose::ContentChoice {
                    text: self.text.take(),
                    markdown: self.markdown.take(),
                    card: self.card.take(),
                    image_key: self.image_key.take(),
                    file_key: self.file_key.take(),
                    share_chat: self.share_chat.take(),
                    share_user: self.share_user.take(),
                }
            }
        }
    };
}
pub(crate) use with_content;

/// A message ready for Lark: `msg_type` and the JSON-encoded `content` string.
#[derive(Debug, Clone)]
pub struct Composed {
    pub msg_type: &'static str,
    pub content: String,
}

fn check_size(what: &str, content: &str, limit: usize) -> Result<(), ToolError> {
    if content.len() > limit {
        return Err(ToolError::invalid(
            what,
            format!(
                "the message is {} KB; Lark accepts at most {} KB for this kind. Split it or shorten it; nothing was sent",
                content.len().div_ceil(1024),
                limit / 1024
            ),
        ));
    }
    Ok(())
}

pub async fn compose(ctx: &ToolCtx, c: ContentChoice) -> Result<Composed, ToolError> {
    let given = [
        c.text.is_some(),
        c.markdown.is_some(),
        c.card.is_some(),
        c.image_key.is_some(),
        c.file_key.is_some(),
        c.share_chat.is_some(),
        c.share_user.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(ToolError::msg(format!(
            "Give exactly one of text, markdown, card, image_key, file_key, share_chat, share_user (got {given})."
        )));
    }
    let non_empty = |field: &str, v: String| -> Result<String, ToolError> {
        if v.trim().is_empty() {
            Err(ToolError::invalid(field, "must not be empty"))
        } else {
            Ok(v)
        }
    };
    if let Some(text) = c.text {
        let text = non_empty("text", text)?;
        let mentions = resolve_mentions(ctx, &text, &[]).await?;
        let content = json!({"text": lark_text(&text, &mentions)}).to_string();
        check_size("text", &content, TEXT_LIMIT)?;
        return Ok(Composed {
            msg_type: "text",
            content,
        });
    }
    if let Some(md) = c.markdown {
        let md = non_empty("markdown", md)?;
        // Mention syntax inside code is shown as written, not resolved.
        let code = super::markdown::code_ranges(&md);
        let mentions = resolve_mentions(ctx, &md, &code).await?;
        let post = super::markdown::to_post(&canonical_mentions(&md, &mentions, &code), &mentions);
        let content = post.to_string();
        check_size("markdown", &content, RICH_LIMIT)?;
        return Ok(Composed {
            msg_type: "post",
            content,
        });
    }
    if let Some(card) = c.card {
        if !card.is_object() {
            return Err(ToolError::invalid("card", "must be a card object"));
        }
        let content = card.to_string();
        check_size("card", &content, RICH_LIMIT)?;
        return Ok(Composed {
            msg_type: "interactive",
            content,
        });
    }
    let (msg_type, key, value) = match (c.image_key, c.file_key, c.share_chat, c.share_user) {
        (Some(k), ..) => ("image", "image_key", non_empty("image_key", k)?),
        (_, Some(k), ..) => ("file", "file_key", non_empty("file_key", k)?),
        (_, _, Some(chat), _) => ("share_chat", "chat_id", non_empty("share_chat", chat)?),
        (_, _, _, Some(user)) => ("share_user", "user_id", non_empty("share_user", user)?),
        _ => return Err(ToolError::msg("no content given")),
    };
    Ok(Composed {
        msg_type,
        content: json!({ key: value }).to_string(),
    })
}

/// Where an agent's mention syntax stands in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mention {
    All,
    OpenId(String),
    Email(String),
}

/// A resolved mention: the open_id (or "all") and the display name.
#[derive(Debug, Clone)]
pub struct Person {
    pub open_id: String,
    pub name: String,
}

/// Mention tokens as (byte range, mention), in order, except those starting in `literal`.
fn scan_mentions(
    text: &str,
    literal: &[std::ops::Range<usize>],
) -> Vec<(std::ops::Range<usize>, Mention)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("<at ")
            && let Some(end_tag) = text[i..].find('>')
        {
            let tag = &text[i..i + end_tag + 1];
            let id = tag
                .split_once("id=")
                .map(|(_, rest)| rest.trim_start_matches(['"', '\'']))
                .map(|rest| {
                    rest.split(|c: char| {
                        c == '"' || c == '\'' || c == '>' || c == '/' || c.is_whitespace()
                    })
                    .next()
                    .unwrap_or("")
                })
                .unwrap_or("");
            let mut end = i + end_tag + 1;
            if text[end..].starts_with("</at>") {
                end += "</at>".len();
            } else if let Some(close) = text[end..].find("</at>") {
                // `<at id="…">Name</at>`: the name between is replaced by the real one.
                if !text[end..end + close].contains('<') {
                    end += close + "</at>".len();
                }
            }
            if !id.is_empty() {
                let m = if id == "all" {
                    Mention::All
                } else {
                    Mention::OpenId(id.to_string())
                };
                out.push((i..end, m));
                i = end;
                continue;
            }
        }
        if bytes[i] == b'@'
            && (i == 0 || !is_email_char(text[..i].chars().next_back().unwrap_or(' ')))
        {
            let rest = &text[i + 1..];
            if rest.starts_with("all")
                && !rest[3..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                out.push((i..i + 4, Mention::All));
                i += 4;
                continue;
            }
            let len = email_len(rest);
            if len > 0 {
                out.push((i..i + 1 + len, Mention::Email(rest[..len].to_string())));
                i += 1 + len;
                continue;
            }
        }
        i += text[i..].chars().next().map(char::len_utf8).unwrap_or(1);
    }
    out.retain(|(r, _)| !literal.iter().any(|l| l.contains(&r.start)));
    out
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

/// Length of an email address at the start of `s`, or 0.
fn email_len(s: &str) -> usize {
    let local = s.chars().take_while(|c| is_email_char(*c)).count();
    if local == 0 || !s[local..].starts_with('@') {
        return 0;
    }
    let domain: String = s[local + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let domain = domain.trim_end_matches(['.', '-']);
    let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
        !host.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
    });
    if tld_ok { local + 1 + domain.len() } else { 0 }
}

/// Resolves every mention to an open_id and name: emails through `batch_get_id`, open_ids
/// through `users/batch`. Returns a map keyed by the agent's token (email or open_id).
async fn resolve_mentions(
    ctx: &ToolCtx,
    text: &str,
    literal: &[std::ops::Range<usize>],
) -> Result<HashMap<String, Person>, ToolError> {
    let found = scan_mentions(text, literal);
    let mut emails: Vec<String> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (_, m) in &found {
        match m {
            Mention::Email(e) if !emails.contains(e) => emails.push(e.clone()),
            Mention::OpenId(id) if !ids.contains(id) => ids.push(id.clone()),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    out.insert(
        "all".to_string(),
        Person {
            open_id: "all".into(),
            name: "all".into(),
        },
    );
    if emails.len() > 50 || ids.len() > 50 {
        return Err(ToolError::msg(
            "At most 50 different people can be mentioned in one message.",
        ));
    }
    if !emails.is_empty() {
        let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
        let found = super::names::open_ids_by_email(ctx, "resolve mentioned emails", &refs).await?;
        let mut unknown = Vec::new();
        for e in &emails {
            match found.get(&e.to_ascii_lowercase()) {
                Some(open_id) => {
                    out.insert(
                        e.clone(),
                        Person {
                            open_id: open_id.to_string(),
                            name: String::new(),
                        },
                    );
                    if !ids.contains(&open_id.to_string()) {
                        ids.push(open_id.to_string());
                    }
                }
                None => unknown.push(e.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(ToolError::msg(format!(
                "Cannot mention {}: no such person visible to the app (unknown, resigned or outside its contact range). Nothing was sent.",
                unknown.join(", ")
            )));
        }
    }
    if !ids.is_empty() {
        let names = ctx.shared.names.users(ctx, &ids).await;
        let unknown: Vec<&String> = ids.iter().filter(|id| !names.contains_key(*id)).collect();
        if !unknown.is_empty() {
            return Err(ToolError::msg(format!(
                "Cannot mention {}: no such person visible to the app. Look people up with lookup_user_by_email first. Nothing was sent.",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for id in &ids {
            let name = names.get(id).cloned().unwrap_or_default();
            out.insert(
                id.clone(),
                Person {
                    open_id: id.clone(),
                    name: name.clone(),
                },
            );
        }
        for p in out.values_mut() {
            if p.name.is_empty() {
                p.name = names.get(&p.open_id).cloned().unwrap_or_default();
            }
        }
    }
    Ok(out)
}

fn person_for<'m>(m: &Mention, mentions: &'m HashMap<String, Person>) -> Option<&'m Person> {
    match m {
        Mention::All => mentions.get("all"),
        Mention::OpenId(id) => mentions.get(id),
        Mention::Email(e) => mentions.get(e),
    }
}

/// Text with mentions as Lark's `<at user_id="…">Name</at>`.
fn lark_text(text: &str, mentions: &HashMap<String, Person>) -> String {
    rewrite(text, mentions, &[], |p| {
        if p.open_id == "all" {
            "<at user_id=\"all\"></at>".to_string()
        } else {
            format!("<at user_id=\"{}\">{}</at>", p.open_id, p.name)
        }
    })
}

/// Text with every mention as `<at id="ou_…"></at>`, the one form the markdown converter reads.
fn canonical_mentions(
    text: &str,
    mentions: &HashMap<String, Person>,
    literal: &[std::ops::Range<usize>],
) -> String {
    rewrite(text, mentions, literal, |p| {
        format!("<at id=\"{}\"></at>", p.open_id)
    })
}

fn rewrite(
    text: &str,
    mentions: &HashMap<String, Person>,
    literal: &[std::ops::Range<usize>],
    render: impl Fn(&Person) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, m) in scan_mentions(text, literal) {
        if let Some(p) = person_for(&m, mentions) {
            out.push_str(&text[last..range.start]);
            out.push_str(&render(p));
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_in_every_documented_form() {
        let t = "hi @zhang.wei@northwind.example and <at id=\"ou_1\"></at>, <at id='ou_2'>Bob</at> @all! mail me: a@b.com";
        let m: Vec<Mention> = scan_mentions(t, &[]).into_iter().map(|(_, m)| m).collect();
        assert_eq!(
            m,
            vec![
                Mention::Email("zhang.wei@northwind.example".into()),
                Mention::OpenId("ou_1".into()),
                Mention::OpenId("ou_2".into()),
                Mention::All,
            ]
        );
    }

    #[test]
    fn plain_at_signs_are_left_alone() {
        assert!(scan_mentions("meet @ 5pm, @alice, @allison, x@y", &[]).is_empty());
        assert!(scan_mentions("价格 @ 10元 ✅", &[]).is_empty());
    }

    #[test]
    fn text_mentions_become_lark_at_tags() {
        let mut m = HashMap::new();
        m.insert(
            "a@b.io".to_string(),
            Person {
                open_id: "ou_9".into(),
                name: "张伟".into(),
            },
        );
        m.insert(
            "all".to_string(),
            Person {
                open_id: "all".into(),
                name: "all".into(),
            },
        );
        assert_eq!(
            lark_text("@a@b.io 看一下 @all", &m),
            "<at user_id=\"ou_9\">张伟</at> 看一下 <at user_id=\"all\"></at>"
        );
    }

    #[test]
    fn receivers_are_inferred_from_their_form() {
        assert_eq!(ReceiverType::resolve(None, "ou_1"), ReceiverType::OpenId);
        assert_eq!(ReceiverType::resolve(None, "on_1"), ReceiverType::UnionId);
        assert_eq!(ReceiverType::resolve(None, "oc_1"), ReceiverType::ChatId);
        assert_eq!(ReceiverType::resolve(None, "a@b.c"), ReceiverType::Email);
        assert_eq!(ReceiverType::resolve(None, "u123"), ReceiverType::UserId);
    }
}
