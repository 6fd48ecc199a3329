//! How names become search keys: one folded form for what people type (case, width, tones
//! and separators do not matter) and pinyin for Chinese names (full, either order, and
//! initials), from the `pinyin` crate's tables.

use pinyin::{ToPinyin, ToPinyinMulti};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower-case, half-width, tone marks and other combining marks removed (`Zhāng` →
/// `zhang`, `ＺＨＡＮＧ` → `zhang`); CJK characters stay as they are.
pub fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a character is a word separator in names and addresses.
fn separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | '_' | '-' | '·' | '•' | ',' | '\'' | '+' | '/')
}

/// The folded words of `s` (`Wei ZHANG` → `wei`, `zhang`; `zhang.wei` → `zhang`, `wei`).
pub fn words(s: &str) -> Vec<String> {
    fold(s)
        .split(separator)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// The folded form with separators dropped: what a query is compared with.
pub fn joined(s: &str) -> String {
    fold(s).chars().filter(|c| !separator(*c)).collect()
}

pub fn is_han(c: char) -> bool {
    c.to_pinyin().is_some()
}

pub fn has_han(s: &str) -> bool {
    s.chars().any(is_han)
}

/// The syllables of a Chinese name, each in its readings (the first is the usual one; a
/// surname like 曾 or 单 has others), `ü` written `u`. Characters without pinyin are kept
/// as a syllable of their own.
pub fn syllables(name: &str) -> Vec<Vec<String>> {
    name.chars()
        .filter(|c| !separator(*c))
        .map(|c| match c.to_pinyin_multi() {
            Some(multi) => {
                let mut readings: Vec<String> = (0..multi.count())
                    .map(|i| multi.get(i).plain().replace('ü', "u"))
                    .collect();
                readings.dedup();
                readings
            }
            None => vec![fold(&c.to_string())],
        })
        .collect()
}

/// The usual pinyin of each character of `s`, joined (`张伟` → `zhangwei`); used for
/// queries typed in characters, to also find names that sound the same.
pub fn pinyin_joined(s: &str) -> String {
    syllables(s)
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect()
}

/// Every way a Chinese name is typed in pinyin, without separators: surname first and
/// last, each reading of the surname, and the initials (`张伟` → `zhangwei`, `weizhang`,
/// `zw`). Longer than four characters is not a personal name: only the usual reading.
pub fn pinyin_keys(name: &str) -> (Vec<String>, Vec<String>) {
    let syl = syllables(name);
    if syl.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let usual: Vec<&str> = syl
        .iter()
        .filter_map(|r| r.first().map(String::as_str))
        .collect();
    let mut full = vec![usual.concat()];
    let mut initials = vec![initials_of(&usual)];
    if syl.len() <= 4 {
        let given: String = usual[1..].concat();
        // `Wei Zhang`: the given name first, as in English.
        if !given.is_empty() {
            full.push(format!("{given}{}", usual[0]));
        }
        for surname in syl[0].iter().skip(1).take(2) {
            full.push(format!("{surname}{given}"));
            let mut alt = usual.clone();
            alt[0] = surname;
            initials.push(initials_of(&alt));
        }
    }
    full.dedup();
    initials.dedup();
    (full, initials)
}

fn initials_of(syllables: &[&str]) -> String {
    syllables.iter().filter_map(|s| s.chars().next()).collect()
}

/// A cheap fingerprint of the letters and digits in a key: two strings one edit apart
/// differ in at most two bits, so most keys are ruled out before an edit distance.
pub fn letter_mask(s: &str) -> u32 {
    s.chars().fold(0u32, |m, c| {
        let bit = match c {
            'a'..='z' => c as u32 - 'a' as u32,
            '0'..='9' => 26 + (c as u32 - '0' as u32) % 4,
            _ => 30 + c as u32 % 2,
        };
        m | (1u32 << bit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_width_tones_and_separators() {
        assert_eq!(fold("Zhāng Wěi"), "zhang wei");
        assert_eq!(fold("ＺＨＡＮＧ"), "zhang");
        assert_eq!(joined("zhang.wei"), "zhangwei");
        assert_eq!(words(" Wei  ZHANG "), ["wei", "zhang"]);
        assert_eq!(fold("张伟"), "张伟");
    }

    #[test]
    fn chinese_names_get_pinyin_both_ways_and_initials() {
        let (full, initials) = pinyin_keys("张伟");
        assert!(full.contains(&"zhangwei".to_string()), "{full:?}");
        assert!(full.contains(&"weizhang".to_string()), "{full:?}");
        assert_eq!(initials[0], "zw");
        assert_eq!(pinyin_joined("吕"), "lu");
        // A surname with a second reading is found by either.
        let (full, _) = pinyin_keys("曾志远");
        assert!(full.iter().any(|k| k == "zengzhiyuan"), "{full:?}");
    }

    #[test]
    fn one_edit_changes_at_most_two_mask_bits() {
        let a = letter_mask("zhangwei");
        for b in ["zhangwel", "zhangwi", "zhanggwei", "zahngwei"] {
            assert!((a ^ letter_mask(b)).count_ones() <= 2, "{b}");
        }
    }
}
