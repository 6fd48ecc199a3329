//! `<at …>…</at>` mention tags in message text, found in one forward pass.
//!
//! The agent's side (`tools::content::compose`), the reading side
//! (`tools::content::render`) and the sandbox's Lark emulation all read these tags; they
//! share this one scanner so that they agree on what a tag is and so that no input makes
//! any of them slow.
//!
//! A tag is `<at ` and attributes up to the first `>`; a `<` before that `>` means it is
//! not a tag. It is closed by the first `</at>` after it, unless another `<at ` comes
//! first, and `<at …/>` closes itself. The id is the `id`, `user_id` or `open_id`
//! attribute, quoted with `"` or `'` or bare.
//!
//! Every search starts where the previous one stopped or at most one token back, so a
//! text is read a small constant number of times, whatever it holds.

use std::ops::Range;

const OPEN: &str = "<at ";
const CLOSE: &str = "</at>";

/// One mention tag as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtTag<'a> {
    /// The whole tag, its name and `</at>` included when it is closed.
    pub range: Range<usize>,
    /// The `id` / `user_id` / `open_id` attribute; empty when there is none.
    pub id: &'a str,
    /// What stands between the opening tag and `</at>`; empty when not closed.
    pub name: &'a str,
    pub closed: bool,
}

/// A piece of text: either plain text or a mention tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    Text(Range<usize>),
    Tag(AtTag<'a>),
}

/// The text cut into plain spans and tags, in order; the ranges cover it without gaps.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens {
        text,
        pos: 0,
        pending: None,
    }
}

pub struct Tokens<'a> {
    text: &'a str,
    /// Everything before this has been yielded.
    pos: usize,
    /// A tag found while looking for the end of a text span, yielded next.
    pending: Option<AtTag<'a>>,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if let Some(tag) = self.pending.take() {
            self.pos = tag.range.end;
            return Some(Token::Tag(tag));
        }
        let len = self.text.len();
        if self.pos >= len {
            return None;
        }
        let mut from = self.pos;
        let tag = loop {
            let Some(at) = find(self.text, from, OPEN) else {
                break None;
            };
            match tag_at(self.text, at) {
                Some(tag) => break Some(tag),
                // The failed attempt stopped at the next `<`, which is where the search
                // for `<at ` goes on, so nothing is read more than twice.
                None => from = at + 1,
            }
        };
        match tag {
            Some(tag) if tag.range.start == self.pos => {
                self.pos = tag.range.end;
                Some(Token::Tag(tag))
            }
            Some(tag) => {
                let span = self.pos..tag.range.start;
                self.pos = tag.range.start;
                self.pending = Some(tag);
                Some(Token::Text(span))
            }
            None => {
                let span = self.pos..len;
                self.pos = len;
                Some(Token::Text(span))
            }
        }
    }
}

/// Byte offset of `needle` at or after `from`.
fn find(text: &str, from: usize, needle: &str) -> Option<usize> {
    text.get(from..)?.find(needle).map(|i| from + i)
}

/// The tag starting at `start` (where `<at ` stands), if it is one.
fn tag_at(text: &str, start: usize) -> Option<AtTag<'_>> {
    let bytes = text.as_bytes();
    let attrs_start = start + OPEN.len() - 1;
    let gt = attrs_start
        + bytes
            .get(attrs_start..)?
            .iter()
            .position(|b| *b == b'<' || *b == b'>')?;
    if bytes[gt] != b'>' {
        return None;
    }
    let attrs = &text[attrs_start..gt];
    let id = attribute_id(attrs);
    let open_end = gt + 1;
    if attrs.trim_end().ends_with('/') {
        return Some(AtTag {
            range: start..open_end,
            id,
            name: "",
            closed: true,
        });
    }
    match next_markup(text, open_end) {
        Some(close) if text[close..].starts_with(CLOSE) => Some(AtTag {
            range: start..close + CLOSE.len(),
            id,
            name: &text[open_end..close],
            closed: true,
        }),
        _ => Some(AtTag {
            range: start..open_end,
            id,
            name: "",
            closed: false,
        }),
    }
}

/// Where the next `<at ` or `</at>` at or after `from` starts.
///
/// The search stops at the next `<at `, so it never reads past the next tag.
fn next_markup(text: &str, from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let lt = find(text, at, "<")?;
        let rest = &text[lt..];
        if rest.starts_with(CLOSE) || rest.starts_with(OPEN) {
            return Some(lt);
        }
        at = lt + 1;
    }
}

/// The first `id`, `user_id` or `open_id` value in a tag's attributes, or "".
fn attribute_id(attrs: &str) -> &str {
    let bytes = attrs.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() || bytes[i] == b'/' {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < bytes.len() && !is_name_end(bytes[i]) {
            i += 1;
        }
        if i == name_start {
            // A stray quote or `=`: not an attribute name, so step over it.
            i += 1;
            continue;
        }
        let name = &attrs[name_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let end = bytes[start..]
                    .iter()
                    .position(|b| b == q)
                    .map_or(bytes.len(), |n| start + n);
                i = end + 1;
                &attrs[start..end]
            }
            _ => {
                let start = i;
                while i < bytes.len() && !is_name_end(bytes[i]) {
                    i += 1;
                }
                &attrs[start..i]
            }
        };
        if matches!(name, "id" | "user_id" | "open_id") {
            return value;
        }
    }
    ""
}

fn is_name_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'=' | b'"' | b'\'' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<AtTag<'_>> {
        tokens(text)
            .filter_map(|t| match t {
                Token::Tag(tag) => Some(tag),
                Token::Text(_) => None,
            })
            .collect()
    }

    /// Each token as its source text, tags marked with their id, name and closedness.
    fn shown(text: &str) -> Vec<String> {
        tokens(text)
            .map(|t| match t {
                Token::Text(r) => text[r].to_string(),
                Token::Tag(t) => format!("[{}|{}|{}]", t.id, t.name, t.closed),
            })
            .collect()
    }

    /// The tokens cover the text exactly, in order.
    fn assert_covers(text: &str) {
        let mut end = 0;
        for t in tokens(text) {
            let r = match t {
                Token::Text(r) => r,
                Token::Tag(t) => t.range,
            };
            assert_eq!(r.start, end, "gap or overlap in {text:?}");
            assert!(r.end > r.start, "empty token in {text:?}");
            end = r.end;
        }
        assert_eq!(end, text.len(), "{text:?} not fully covered");
    }

    #[test]
    fn closed_unclosed_and_self_closed_tags() {
        let t = "hi <at user_id=\"ou_1\">Ann</at>, <at id=\"ou_2\"></at> <at id=\"ou_3\"> and <at id=\"ou_4\"/>!";
        assert_eq!(
            shown(t),
            [
                "hi ",
                "[ou_1|Ann|true]",
                ", ",
                "[ou_2||true]",
                " ",
                "[ou_3||false]",
                " and ",
                "[ou_4||true]",
                "!"
            ]
        );
        let all = tags(t);
        assert_eq!(&t[all[0].range.clone()], "<at user_id=\"ou_1\">Ann</at>");
        assert_eq!(&t[all[2].range.clone()], "<at id=\"ou_3\">");
        assert_covers(t);
    }

    #[test]
    fn quotes_and_attribute_forms() {
        for (tag, id) in [
            ("<at id='ou_1'></at>", "ou_1"),
            ("<at id=ou_1></at>", "ou_1"),
            ("<at id=ou_1/>", "ou_1"),
            ("<at  user_id = \"ou_1\" ></at>", "ou_1"),
            ("<at open_id=\"ou_1\"></at>", "ou_1"),
            ("<at class=\"x\" id=\"ou_1\"></at>", "ou_1"),
            ("<at title=\"id=no\" id=\"ou_1\"></at>", "ou_1"),
            ("<at id=\"ou 1\"></at>", "ou 1"),
            ("<at id=\"ou_1></at>", "ou_1"),
            ("<at id=\"\"></at>", ""),
            ("<at name=\"x\"></at>", ""),
            ("<at \"=' id></at>", ""),
            ("<at userid=\"ou_1\"></at>", ""),
        ] {
            let found = tags(tag);
            assert_eq!(found.len(), 1, "{tag}");
            assert_eq!(found[0].id, id, "{tag}");
            assert_covers(tag);
        }
    }

    #[test]
    fn nested_tags_close_only_the_inner_one() {
        let t = "<at id=\"a\">x <at id=\"b\">B</at></at>";
        assert_eq!(shown(t), ["[a||false]", "x ", "[b|B|true]", "</at>"]);
        assert_covers(t);
    }

    #[test]
    fn malformed_tags_are_text() {
        for t in [
            "<at",
            "<at ",
            "<at id=\"a\"",
            "<at id=\"a\" <b>x</b>",
            "<atid=\"a\"></at>",
            "<AT id=\"a\"></at>",
            "</at> <at> text",
            "a < b > c",
        ] {
            assert!(tags(t).is_empty(), "{t}");
            assert_eq!(shown(t), [t], "{t}");
        }
        let t = "<at <at id=\"a\">A</at>";
        assert_eq!(shown(t), ["<at ", "[a|A|true]"]);
        assert_covers(t);
    }

    #[test]
    fn names_may_hold_markup_but_not_another_tag() {
        let t = "<at id=\"a\">x<3 <b>y</b></at> z";
        assert_eq!(shown(t), ["[a|x<3 <b>y</b>|true]", " z"]);
        let t = "<at id=\"a\">never closed <at foo";
        assert_eq!(shown(t), ["[a||false]", "never closed <at foo"]);
        assert_covers(t);
    }

    #[test]
    fn non_ascii_text_names_and_ids() {
        let t = "前<at user_id=\"用户_1\">张伟 👋</at>后 ✅<at id='é'>";
        assert_eq!(
            shown(t),
            ["前", "[用户_1|张伟 👋|true]", "后 ✅", "[é||false]"]
        );
        assert_covers(t);
    }

    #[test]
    fn empty_text_has_no_tokens() {
        assert_eq!(tokens("").count(), 0);
        assert_eq!(shown("plain"), ["plain"]);
    }

    #[test]
    fn six_hundred_kb_of_unclosed_tags_are_read_in_one_pass() {
        let unit = "<at id=\"x\">";
        let t = unit.repeat(600 * 1024 / unit.len());
        let found = tags(&t);
        assert_eq!(found.len(), 600 * 1024 / unit.len());
        assert!(found.iter().all(|t| t.id == "x" && !t.closed));

        // The same with no `>` at all: every `<at ` fails, and none of them is text twice.
        let t = "<at id=\"x\" ".repeat(600 * 1024 / 11);
        assert_eq!(tokens(&t).count(), 1);

        // One `</at>` at the very end closes only the last tag.
        let t = format!("{}</at>", unit.repeat(50_000));
        let found = tags(&t);
        assert_eq!(found.len(), 50_000);
        assert_eq!(found.iter().filter(|t| t.closed).count(), 1);
    }
}
