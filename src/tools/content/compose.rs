//! Turning what an agent writes into a Lark message: who receives it, and the one content
//! form it chose (text, markdown, card, image, file, shared chat or user), with mentions
//! resolved before anything is sent.
//!
//! Mentions: `<at id="ou_…"></at>`, `@all`, or `@` followed by an email address
//! (`@zhang.wei@example.com`). An unknown person is an error; nothing is sent.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::mentions::{AtTag, Token};
use crate::tools::{ToolCtx, ToolError};

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
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            /// Plain text; mention with <at id="ou_…"></at>, @email or @all.
            text: Option<String>,
            /// Markdown, sent as a rich-text post (same mentions).
            markdown: Option<String>,
            /// An interactive card object.
            // Typed for schema checkers (MCP Inspector --strict wants a validation keyword).
            #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
            card: Option<serde_json::Value>,
            /// From upload_image.
            image_key: Option<String>,
            /// From upload_file.
            file_key: Option<String>,
            /// A chat_id to share as a card.
            share_chat: Option<String>,
            /// An open_id whose contact card to share.
            share_user: Option<String>,
        }

        impl $name {
            fn content(&mut self) -> $crate::tools::content::compose::ContentChoice {
                $crate::tools::content::compose::ContentChoice {
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
        return Err(too_large(what, content.len(), limit));
    }
    Ok(())
}

fn too_large(what: &str, size: usize, limit: usize) -> ToolError {
    ToolError::invalid(
        what,
        format!(
            "the message is {} KB; Lark accepts at most {} KB for this kind. Split it or shorten it; nothing was sent",
            size.div_ceil(1024),
            limit / 1024
        ),
    )
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
        // Sending only lengthens a text (JSON escapes, names and ids put into tags) unless
        // the agent wrote long names or attributes inside tags, so a text over the limit
        // now is refused before any of it is read.
        check_size("text", &text, TEXT_LIMIT)?;
        let text = non_empty("text", text)?;
        let found = find_mentions(&text, &[])?;
        let mentions = resolve_mentions(ctx, &found).await?;
        let content = json!({"text": lark_text(&text, &found, &mentions)}).to_string();
        check_size("text", &content, TEXT_LIMIT)?;
        return Ok(Composed {
            msg_type: "text",
            content,
        });
    }
    if let Some(md) = c.markdown {
        // Markdown can shrink on its way to a post (entities, unused link definitions), so
        // its own limit is checked on the post; before that it is held only to the text
        // limit, the most Lark takes in any message.
        if md.len() > TEXT_LIMIT {
            return Err(too_large("markdown", md.len(), RICH_LIMIT));
        }
        let md = non_empty("markdown", md)?;
        // Mention syntax inside code is shown as written, not resolved.
        let code = super::markdown::code_ranges(&md);
        let found = find_mentions(&md, &code)?;
        let mentions = resolve_mentions(ctx, &found).await?;
        let post = super::markdown::to_post(&canonical_mentions(&md, &found, &mentions), &mentions);
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

/// At most this many different emails, and as many open_ids, in one message.
pub const MAX_PEOPLE: usize = 50;

/// The mentions in a text, and the distinct people among them in order of first mention.
#[derive(Debug)]
pub struct Mentions {
    found: Vec<(Range<usize>, Mention)>,
    emails: Vec<String>,
    ids: Vec<String>,
}

impl Mentions {
    /// How many mentions the text holds, repeats included.
    pub fn count(&self) -> usize {
        self.found.len()
    }
}

/// The mentions in `text`, except those starting in `literal` (code, shown as written).
/// More than [`MAX_PEOPLE`] different emails or open_ids is refused.
pub fn find_mentions(text: &str, literal: &[Range<usize>]) -> Result<Mentions, ToolError> {
    let found = scan_mentions(text, literal);
    let (mut emails, mut ids) = (Vec::new(), Vec::new());
    let (mut seen_emails, mut seen_ids) = (HashSet::new(), HashSet::new());
    for (_, m) in &found {
        let (list, seen, key) = match m {
            Mention::Email(e) => (&mut emails, &mut seen_emails, e),
            Mention::OpenId(id) => (&mut ids, &mut seen_ids, id),
            Mention::All => continue,
        };
        if seen.insert(key.as_str()) {
            list.push(key.clone());
            if list.len() > MAX_PEOPLE {
                return Err(ToolError::msg(format!(
                    "At most {MAX_PEOPLE} different people can be mentioned in one message."
                )));
            }
        }
    }
    Ok(Mentions { found, emails, ids })
}

/// Mention tokens as (byte range, mention), in order, except those starting in `literal`.
fn scan_mentions(text: &str, literal: &[Range<usize>]) -> Vec<(Range<usize>, Mention)> {
    let mut out = Vec::new();
    for token in crate::mentions::tokens(text) {
        match token {
            Token::Tag(tag) if !tag.id.is_empty() => {
                let m = if tag.id == "all" {
                    Mention::All
                } else {
                    Mention::OpenId(tag.id.to_string())
                };
                out.push((tag.range, m));
            }
            // A tag without an id is no mention; `@` forms inside it still count.
            Token::Tag(AtTag { range, .. }) | Token::Text(range) => {
                at_signs(&text[range.clone()], range.start, &mut out)
            }
        }
    }
    outside(out, literal)
}

/// `@all` and `@email` in a span without tags that starts at `offset` in the text.
///
/// A span starts the text or follows a tag's `>`, so an `@` at its start has no email
/// character before it.
fn at_signs(span: &str, offset: usize, out: &mut Vec<(Range<usize>, Mention)>) {
    let mut from = 0;
    while let Some(n) = span[from..].find('@') {
        let at = from + n;
        from = at + 1;
        if span[..at].chars().next_back().is_some_and(is_email_char) {
            continue;
        }
        let rest = &span[at + 1..];
        let (len, m) = if rest.starts_with("all")
            && !rest["all".len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            ("all".len(), Mention::All)
        } else {
            match email_len(rest) {
                0 => continue,
                len => (len, Mention::Email(rest[..len].to_string())),
            }
        };
        out.push((offset + at..offset + at + 1 + len, m));
        from = at + 1 + len;
    }
}

/// The mentions that do not start inside any of `literal`.
fn outside(
    found: Vec<(Range<usize>, Mention)>,
    literal: &[Range<usize>],
) -> Vec<(Range<usize>, Mention)> {
    if literal.is_empty() {
        return found;
    }
    let mut literal: Vec<&Range<usize>> = literal.iter().collect();
    literal.sort_by_key(|r| r.start);
    // Both are in text order, so one walk over each decides (no range-by-range search).
    let mut k = 0;
    found
        .into_iter()
        .filter(|(r, _)| {
            while literal.get(k).is_some_and(|l| l.end <= r.start) {
                k += 1;
            }
            !literal.get(k).is_some_and(|l| l.contains(&r.start))
        })
        .collect()
}

fn is_email_char(c: char) -> bool {
    c.is_ascii() && is_email_byte(c as u8)
}

fn is_email_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
}

/// Length of an email address at the start of `s`, or 0.
///
/// Reads only the local part and the domain; neither holds an `@`, and an `@` right after
/// either has an email character before it, so no later call reads them again.
fn email_len(s: &str) -> usize {
    let b = s.as_bytes();
    let local = b.iter().take_while(|c| is_email_byte(**c)).count();
    if local == 0 || b.get(local) != Some(&b'@') {
        return 0;
    }
    let start = local + 1;
    let run = b[start..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.' || **c == b'-')
        .count();
    let domain = s[start..start + run].trim_end_matches(['.', '-']);
    let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
        !host.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
    });
    if tld_ok { start + domain.len() } else { 0 }
}

/// Resolves every mentioned person to an open_id and name: emails through `batch_get_id`,
/// open_ids through `users/batch`. Returns a map keyed by the agent's token (email or
/// open_id).
async fn resolve_mentions(
    ctx: &ToolCtx,
    found: &Mentions,
) -> Result<HashMap<String, Person>, ToolError> {
    let mut ids = found.ids.clone();
    let mut seen_ids: HashSet<String> = ids.iter().cloned().collect();
    let mut out = HashMap::new();
    out.insert(
        "all".to_string(),
        Person {
            open_id: "all".into(),
            name: "all".into(),
        },
    );
    if !found.emails.is_empty() {
        let refs: Vec<&str> = found.emails.iter().map(String::as_str).collect();
        let by_email =
            crate::tools::names::open_ids_by_email(ctx, "resolve mentioned emails", &refs).await?;
        let mut unknown = Vec::new();
        for e in &found.emails {
            match by_email.get(&e.to_ascii_lowercase()) {
                Some(open_id) => {
                    out.insert(
                        e.clone(),
                        Person {
                            open_id: open_id.to_string(),
                            name: String::new(),
                        },
                    );
                    if seen_ids.insert(open_id.to_string()) {
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
fn lark_text(text: &str, found: &Mentions, mentions: &HashMap<String, Person>) -> String {
    rewrite(text, found, mentions, |p| {
        if p.open_id == "all" {
            "<at user_id=\"all\"></at>".to_string()
        } else {
            format!("<at user_id=\"{}\">{}</at>", p.open_id, p.name)
        }
    })
}

/// Text with every mention as `<at id="ou_…"></at>`, the one form the markdown converter reads.
fn canonical_mentions(text: &str, found: &Mentions, mentions: &HashMap<String, Person>) -> String {
    rewrite(text, found, mentions, |p| {
        format!("<at id=\"{}\"></at>", p.open_id)
    })
}

fn rewrite(
    text: &str,
    found: &Mentions,
    mentions: &HashMap<String, Person>,
    render: impl Fn(&Person) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, m) in &found.found {
        if let Some(p) = person_for(m, mentions) {
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
        let t = "@a@b.io 看一下 @all";
        let found = find_mentions(t, &[]).expect("two mentions");
        assert_eq!(
            lark_text(t, &found, &m),
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

    #[test]
    fn tags_without_an_id_are_text_and_code_is_literal() {
        let t = "<at name=\"x\">@all</at> `<at id=\"ou_1\"></at>` @all `@all` <at id=\"ou_2\">";
        let ticks: Vec<usize> = t.match_indices('`').map(|(i, _)| i).collect();
        // Out of order on purpose: code ranges need not come sorted.
        let code = [ticks[2]..ticks[3] + 1, ticks[0]..ticks[1] + 1];
        let m: Vec<Mention> = scan_mentions(t, &code)
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            m,
            [Mention::All, Mention::All, Mention::OpenId("ou_2".into())]
        );
    }

    #[test]
    fn people_are_counted_once_and_capped() {
        let t =
            "<at id=\"ou_1\"></at> @a@b.io <at id=\"ou_1\"></at> @a@b.io <at id=\"a@b.io\"></at>";
        let found = find_mentions(t, &[]).expect("three people");
        assert_eq!(
            (found.count(), found.ids.len(), found.emails.len()),
            (5, 2, 1)
        );

        let ids: String = (0..=MAX_PEOPLE)
            .map(|i| format!("<at id=\"ou_{i}\"></at>"))
            .collect();
        assert!(find_mentions(&ids, &[]).is_err());
        let emails: String = (0..=MAX_PEOPLE).map(|i| format!(" @p{i}@b.io")).collect();
        assert!(find_mentions(&emails, &[]).is_err());
        let same: String = " @p@b.io <at id=\"ou_1\"></at>".repeat(1000);
        assert_eq!(
            find_mentions(&same, &[]).map(|f| f.count()).ok(),
            Some(2000)
        );
    }

    #[test]
    fn large_inputs_are_scanned_in_one_pass() {
        let unclosed = "<at id=\"x\">".repeat(600 * 1024 / 11);
        let found = find_mentions(&unclosed, &[]).expect("one person");
        assert_eq!((found.count(), found.ids.len()), (600 * 1024 / 11, 1));
        // Email-like runs that never complete, and `@` after `@`.
        for t in [
            " @a".repeat(200_000),
            " @a@b".repeat(100_000),
            "@".repeat(600_000),
            format!(" @{}", "a.".repeat(300_000)),
            format!(" @a@{}", "b-".repeat(300_000)),
        ] {
            assert_eq!(find_mentions(&t, &[]).map(|f| f.count()).ok(), Some(0));
        }
    }
}
