//! Mention scanning on hostile and on busy texts.
//!
//! `cargo bench --bench mentions` prints p50/max over 20 runs of the agent-side parse
//! (`compose::find_mentions`: tags, `@all`, `@email`, dedupe) and of the sandbox's read
//! form (`read_content`: tags → `@_user_N`), each on 600 KB of unclosed `<at` tags and on
//! 600 KB of ordinary text with 1,000 mentions. Both once took seconds on such input; the
//! target is well under 100 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use lark_mcp_server::sandbox::api::read_content;
use lark_mcp_server::tools::content::compose::find_mentions;
use serde_json::json;

const SIZE: usize = 600 * 1024;
const RUNS: usize = 20;
const MENTIONS: usize = 1000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn time(label: &str, mut f: impl FnMut()) {
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    runs.sort();
    println!(
        "{label:<48} p50 {:>8.3} ms   max {:>8.3} ms",
        ms(runs[RUNS / 2]),
        ms(runs[RUNS - 1])
    );
}

/// `<at id="x">` over and over, never closed.
fn unclosed() -> String {
    let unit = "<at id=\"x\">";
    unit.repeat(SIZE / unit.len())
}

/// `<at id="x" ` over and over: no tag ever ends.
fn unended() -> String {
    let unit = "<at id=\"x\" ";
    unit.repeat(SIZE / unit.len())
}

/// Prose with a stray `@`, `<` and non-ASCII, and `mention(i)` every so often.
fn busy(mention: impl Fn(usize) -> String) -> String {
    let filler = "Deploy at 5pm @ the lab; a < b, 价格 10元 ✅, mail x@y later. ";
    let mentions: Vec<String> = (0..MENTIONS).map(mention).collect();
    let room = SIZE - mentions.iter().map(String::len).sum::<usize>();
    let gap = filler.repeat(room / MENTIONS / filler.len());
    let mut text = String::with_capacity(SIZE);
    for m in &mentions {
        text.push_str(&gap);
        text.push_str(m);
    }
    text
}

/// What an agent writes: open_ids, emails and `@all`, 50 people in all.
fn agent_mention(i: usize) -> String {
    match i % 3 {
        0 => format!(" <at id=\"ou_{:032x}\"></at> ", i % 30),
        1 => format!(" @person.{}@northwind.example ", i % 20),
        _ => " @all ".to_string(),
    }
}

/// What the sandbox stores: Lark's tags with names.
fn stored_mention(i: usize) -> String {
    if i.is_multiple_of(10) {
        " <at user_id=\"all\"></at> ".to_string()
    } else {
        format!(" <at user_id=\"ou_{:032x}\">张伟 {i}</at> ", i % 30)
    }
}

fn main() {
    println!(
        "mention scanning, {} KB inputs, {RUNS} runs each",
        SIZE / 1024
    );

    for (name, text) in [
        ("unclosed <at id=\"x\">", unclosed()),
        ("<at id=\"x\"  with no >", unended()),
        ("text with 1,000 mentions", busy(agent_mention)),
    ] {
        let found = find_mentions(&text, &[]).map(|f| f.count()).ok();
        assert_eq!(
            found,
            Some(match name {
                "text with 1,000 mentions" => MENTIONS,
                "unclosed <at id=\"x\">" => SIZE / 11,
                _ => 0,
            }),
            "{name}"
        );
        time(&format!("compose find_mentions: {name}"), || {
            black_box(find_mentions(black_box(&text), &[]).is_ok());
        });
    }

    for (name, text) in [
        ("unclosed <at id=\"x\">", unclosed()),
        ("<at id=\"x\"  with no >", unended()),
        ("text with 1,000 mentions", busy(stored_mention)),
    ] {
        let content = json!({ "text": text }).to_string();
        let read = read_content("text", &content);
        let placeholders = read.matches("@_user_").count() + read.matches("@_all").count();
        let expected = if name.starts_with("text") {
            MENTIONS
        } else {
            0
        };
        assert_eq!(placeholders, expected, "{name}");
        time(&format!("sandbox read_content: {name}"), || {
            black_box(read_content("text", black_box(&content)));
        });
    }
}
