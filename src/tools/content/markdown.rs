//! Markdown → Lark rich-text post. Each block becomes one or more post paragraphs; what a
//! post cannot show (tables, images by URL, inline code) degrades to readable text instead
//! of disappearing. Mentions arrive as `<at id="ou_…"></at>` (see `compose`).

use std::collections::HashMap;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

use super::compose::Person;

/// Quote and list levels drawn in a line's prefix.
const MAX_SHOWN_DEPTH: usize = 6;

#[derive(Default)]
struct Builder {
    paragraphs: Vec<Vec<Value>>,
    current: Vec<Value>,
    styles: Vec<&'static str>,
    /// Open link targets; text inside becomes `a` elements.
    link: Option<String>,
    /// (ordered?, next number) per open list.
    lists: Vec<Option<u64>>,
    quote_depth: usize,
    heading: bool,
    code: Option<(String, String)>,
    table_row: Vec<String>,
    cell: String,
    in_table_head: bool,
    in_cell: bool,
    image: Option<(String, String)>,
}

impl Builder {
    fn flush(&mut self) {
        if !self.current.is_empty() {
            let p = std::mem::take(&mut self.current);
            self.paragraphs.push(p);
        }
    }

    /// Starts a line: quote marks and list bullets go first.
    fn line_prefix(&mut self, bullet: Option<String>) {
        let mut prefix = String::new();
        // Every line repeats its prefix: unbounded, 3,000 nested `- ` would build a post of
        // 17 MB from 6 KB of markdown. Deeper levels look like the deepest shown.
        for _ in 0..self.quote_depth.min(MAX_SHOWN_DEPTH) {
            prefix.push_str("┃ ");
        }
        if let Some(b) = bullet {
            let indent = self.lists.len().saturating_sub(1).min(MAX_SHOWN_DEPTH);
            prefix.push_str(&"    ".repeat(indent));
            prefix.push_str(&b);
        }
        if !prefix.is_empty() {
            self.current.push(json!({"tag": "text", "text": prefix}));
        }
    }

    fn text(&mut self, t: &str) {
        if t.is_empty() {
            return;
        }
        if self.in_cell {
            self.cell.push_str(t);
            return;
        }
        if let Some((_, alt)) = &mut self.image {
            alt.push_str(t);
            return;
        }
        if self.current.is_empty() && self.quote_depth > 0 {
            self.line_prefix(None);
        }
        let mut styles: Vec<&str> = self.styles.clone();
        if self.heading && !styles.contains(&"bold") {
            styles.push("bold");
        }
        let mut el = match &self.link {
            Some(href) => json!({"tag": "a", "text": t, "href": href}),
            None => json!({"tag": "text", "text": t}),
        };
        if !styles.is_empty() {
            el["style"] = json!(styles);
        }
        self.current.push(el);
    }

    fn mention(&mut self, html: &str, mentions: &HashMap<String, Person>) -> bool {
        let Some(id) = html
            .strip_prefix("<at id=\"")
            .and_then(|r| r.split('"').next())
        else {
            return html.trim() == "</at>";
        };
        if self.in_cell {
            // Kept in its cell; becomes an `at` element when the row is written.
            self.cell
                .push_str(&format!("{MENTION_MARK}{id}{MENTION_MARK}"));
            return true;
        }
        if self.current.is_empty() && self.quote_depth > 0 {
            self.line_prefix(None);
        }
        self.current.push(at_element(id, mentions));
        true
    }
}

/// Brackets a mention's open_id inside table cell text.
const MENTION_MARK: char = '\u{1}';

fn at_element(id: &str, mentions: &HashMap<String, Person>) -> Value {
    let name = mentions
        .values()
        .find(|p| p.open_id == id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let mut el = json!({"tag": "at", "user_id": id});
    if !name.is_empty() && id != "all" {
        el["user_name"] = json!(name);
    }
    el
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Byte ranges of code spans and code blocks, where mention syntax is literal text.
pub fn code_ranges(markdown: &str) -> Vec<std::ops::Range<usize>> {
    Parser::new_ext(markdown, options())
        .into_offset_iter()
        .filter(|(e, _)| matches!(e, Event::Code(_) | Event::Start(Tag::CodeBlock(_))))
        .map(|(_, range)| range)
        .collect()
}

pub fn to_post(markdown: &str, mentions: &HashMap<String, Person>) -> Value {
    let mut b = Builder::default();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => {}
                Tag::Heading { level, .. } => {
                    b.flush();
                    b.heading = true;
                    if level >= HeadingLevel::H3 {
                        b.line_prefix(None);
                    }
                }
                Tag::BlockQuote(_) => {
                    b.flush();
                    b.quote_depth += 1;
                }
                Tag::CodeBlock(kind) => {
                    b.flush();
                    let lang = match kind {
                        CodeBlockKind::Fenced(l) => {
                            l.split_whitespace().next().unwrap_or("").to_string()
                        }
                        CodeBlockKind::Indented => String::new(),
                    };
                    b.code = Some((lang, String::new()));
                }
                Tag::List(start) => {
                    b.flush();
                    b.lists.push(start);
                }
                Tag::Item => {
                    b.flush();
                    let bullet = match b.lists.last_mut() {
                        Some(Some(n)) => {
                            let s = format!("{n}. ");
                            *n += 1;
                            s
                        }
                        _ => "• ".to_string(),
                    };
                    b.line_prefix(Some(bullet));
                }
                Tag::Emphasis => b.styles.push("italic"),
                Tag::Strong => b.styles.push("bold"),
                Tag::Strikethrough => b.styles.push("lineThrough"),
                Tag::Link { dest_url, .. } => b.link = Some(dest_url.to_string()),
                Tag::Image { dest_url, .. } => {
                    b.image = Some((dest_url.to_string(), String::new()))
                }
                Tag::Table(_) => b.flush(),
                Tag::TableHead => b.in_table_head = true,
                Tag::TableRow => b.table_row.clear(),
                Tag::TableCell => {
                    b.in_cell = true;
                    b.cell.clear();
                }
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Paragraph => b.flush(),
                TagEnd::Heading(_) => {
                    b.heading = false;
                    b.flush();
                }
                TagEnd::BlockQuote(_) => {
                    b.flush();
                    b.quote_depth = b.quote_depth.saturating_sub(1);
                }
                TagEnd::CodeBlock => {
                    if let Some((lang, text)) = b.code.take() {
                        let mut el =
                            json!({"tag": "code_block", "text": text.trim_end_matches('\n')});
                        if !lang.is_empty() {
                            el["language"] = json!(lang);
                        }
                        b.paragraphs.push(vec![el]);
                    }
                }
                TagEnd::List(_) => {
                    b.flush();
                    b.lists.pop();
                }
                TagEnd::Item => b.flush(),
                TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                    b.styles.pop();
                }
                TagEnd::Link => b.link = None,
                TagEnd::Image => {
                    if let Some((url, alt)) = b.image.take() {
                        // A post cannot show an image by URL: keep it as a visible link.
                        let label = if alt.is_empty() {
                            "image".to_string()
                        } else {
                            alt
                        };
                        b.current
                            .push(json!({"tag": "a", "text": format!("🖼 {label}"), "href": url}));
                    }
                }
                TagEnd::TableCell => {
                    b.in_cell = false;
                    let cell = std::mem::take(&mut b.cell);
                    b.table_row.push(cell.trim().to_string());
                }
                TagEnd::TableHead | TagEnd::TableRow => {
                    // Tables degrade to one line per row, cells separated by " | ";
                    // mentions in cells stay `at` elements, in place.
                    let line = b.table_row.join(" | ");
                    let mut row = Vec::new();
                    for (i, part) in line.split(MENTION_MARK).enumerate() {
                        if i % 2 == 1 {
                            row.push(at_element(part, mentions));
                        } else if !part.is_empty() || line.is_empty() {
                            let mut el = json!({"tag": "text", "text": part});
                            if b.in_table_head {
                                el["style"] = json!(["bold"]);
                            }
                            row.push(el);
                        }
                    }
                    b.in_table_head = false;
                    b.paragraphs.push(row);
                    b.table_row.clear();
                }
                TagEnd::Table => {}
                _ => {}
            },
            Event::Text(t) => {
                if let Some((_, code)) = &mut b.code {
                    code.push_str(&t);
                } else {
                    b.text(&t);
                }
            }
            Event::Code(t) => {
                if b.in_cell {
                    b.cell.push_str(&format!("`{t}`"));
                } else {
                    // Posts have no inline-code style; backticks keep it recognisable.
                    b.text(&format!("`{t}`"));
                }
            }
            Event::InlineHtml(h) | Event::Html(h) => {
                if !b.mention(&h, mentions) {
                    b.text(&h);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if b.in_cell {
                    b.cell.push(' ');
                } else {
                    b.flush();
                }
            }
            Event::Rule => {
                b.flush();
                b.paragraphs.push(vec![json!({"tag": "hr"})]);
            }
            Event::TaskListMarker(done) => b.text(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(r) => b.text(&format!("[^{r}]")),
            Event::InlineMath(m) | Event::DisplayMath(m) => b.text(&m),
        }
    }
    b.flush();
    json!({"zh_cn": {"title": "", "content": b.paragraphs}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(md: &str) -> Vec<Vec<Value>> {
        let mut m = HashMap::new();
        m.insert(
            "ou_1".to_string(),
            Person {
                open_id: "ou_1".into(),
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
        let v = to_post(md, &m);
        serde_json::from_value(v["zh_cn"]["content"].clone()).unwrap()
    }

    fn texts(p: &[Value]) -> String {
        p.iter().filter_map(|e| e["text"].as_str()).collect()
    }

    #[test]
    fn inline_styles_links_and_code() {
        let p = post("Hello **bold _both_** ~~gone~~ [site](https://x.io) `x = 1`");
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0][1],
            json!({"tag": "text", "text": "bold ", "style": ["bold"]})
        );
        assert_eq!(
            p[0][2],
            json!({"tag": "text", "text": "both", "style": ["bold", "italic"]})
        );
        assert_eq!(
            p[0][4],
            json!({"tag": "text", "text": "gone", "style": ["lineThrough"]})
        );
        assert_eq!(
            p[0][6],
            json!({"tag": "a", "text": "site", "href": "https://x.io"})
        );
        assert_eq!(p[0][8], json!({"tag": "text", "text": "`x = 1`"}));
    }

    #[test]
    fn blocks_headings_lists_quotes_and_code() {
        let p = post(
            "# 标题 Title\n\n- a\n- b\n  1. inner\n\n> quoted 🚀\n\n```rust\nfn main() {}\n```\n\n---\nline1\nline2",
        );
        assert_eq!(
            p[0],
            vec![json!({"tag": "text", "text": "标题 Title", "style": ["bold"]})]
        );
        assert_eq!(texts(&p[1]), "• a");
        assert_eq!(texts(&p[2]), "• b");
        assert_eq!(texts(&p[3]), "    1. inner");
        assert_eq!(texts(&p[4]), "┃ quoted 🚀");
        assert_eq!(
            p[5],
            vec![json!({"tag": "code_block", "text": "fn main() {}", "language": "rust"})]
        );
        assert_eq!(p[6], vec![json!({"tag": "hr"})]);
        assert_eq!(texts(&p[7]), "line1");
        assert_eq!(texts(&p[8]), "line2");
    }

    #[test]
    fn deep_nesting_grows_the_post_linearly() {
        for md in [
            "- ".repeat(3000) + "x",
            ">".repeat(4000) + " a\n" + &"b\n".repeat(4000),
        ] {
            let post = to_post(&md, &HashMap::new()).to_string();
            assert!(post.len() < 40 * md.len(), "{} → {}", md.len(), post.len());
        }
    }

    #[test]
    fn unsupported_constructs_degrade_readably() {
        let p = post("| a | b |\n|---|---|\n| 1 | `2` |\n\n![chart](https://x.io/c.png)");
        assert_eq!(
            p[0],
            vec![json!({"tag": "text", "text": "a | b", "style": ["bold"]})]
        );
        assert_eq!(texts(&p[1]), "1 | `2`");
        assert_eq!(
            p[2],
            vec![json!({"tag": "a", "text": "🖼 chart", "href": "https://x.io/c.png"})]
        );
    }

    #[test]
    fn mentions_become_at_elements() {
        let p = post("ping <at id=\"ou_1\"></at> and <at id=\"all\"></at>");
        assert_eq!(
            p[0][1],
            json!({"tag": "at", "user_id": "ou_1", "user_name": "张伟"})
        );
        assert_eq!(p[0][3], json!({"tag": "at", "user_id": "all"}));
    }
}
