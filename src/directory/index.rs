//! The in-memory directory: people, departments and chats, with their search keys packed
//! into one arena so a query is a linear scan over a few hundred kilobytes (10,000 people:
//! well under a millisecond, see `benches/directory.rs`).

use std::collections::HashMap;

use super::keys::{self, fold, joined, letter_mask};

/// What a search key was made from: decides its weight and how a match is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Name,
    Pinyin,
    Initials,
    EnName,
    Nickname,
    Email,
    EmployeeNo,
}

impl KeyKind {
    fn label(self) -> &'static str {
        match self {
            KeyKind::Name => "name",
            KeyKind::Pinyin => "pinyin",
            KeyKind::Initials => "pinyin initials",
            KeyKind::EnName => "English name",
            KeyKind::Nickname => "nickname",
            KeyKind::Email => "email",
            KeyKind::EmployeeNo => "employee number",
        }
    }

    fn exact(self) -> u8 {
        match self {
            KeyKind::Name | KeyKind::EmployeeNo => 100,
            KeyKind::Email | KeyKind::EnName => 95,
            KeyKind::Pinyin | KeyKind::Nickname => 90,
            KeyKind::Initials => 70,
        }
    }

    fn prefix(self) -> Option<u8> {
        match self {
            KeyKind::Name => Some(80),
            KeyKind::Pinyin | KeyKind::EnName | KeyKind::Email | KeyKind::Nickname => Some(75),
            KeyKind::EmployeeNo => Some(70),
            // Initials are short already; a prefix of them is noise.
            KeyKind::Initials => None,
        }
    }

    /// A misspelling of a personal name or address is worth finding; of an id, not.
    fn tolerates_typos(self) -> bool {
        !matches!(self, KeyKind::Initials | KeyKind::EmployeeNo)
    }
}

/// One person as the index keeps them: only what is searched or shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonRec {
    pub open_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_no: Option<String>,
    /// active, resigned, frozen, unjoined, …
    pub status: String,
    /// open_department_ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
}

impl PersonRec {
    pub fn active(&self) -> bool {
        self.status == "active"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeptRec {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatRec {
    pub chat_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub bot_is_member: bool,
    /// Found through the signed-in person's chats (the bot may not be in it).
    #[serde(default)]
    pub yours: bool,
}

/// Search keys, packed: the text of key `i` is `text[starts[i]..starts[i + 1]]`.
#[derive(Debug, Default, Clone)]
struct Keys {
    text: String,
    starts: Vec<u32>,
    owner: Vec<u32>,
    kind: Vec<KeyKind>,
    mask: Vec<u64>,
}

impl Keys {
    fn push(&mut self, owner: u32, kind: KeyKind, key: &str) {
        if key.is_empty() {
            return;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.text.push_str(key);
        self.starts.push(self.text.len() as u32);
        self.owner.push(owner);
        self.kind.push(kind);
        self.mask.push(letter_mask(key));
    }

    fn len(&self) -> usize {
        self.owner.len()
    }

    fn get(&self, i: usize) -> &str {
        let (a, b) = (self.starts[i] as usize, self.starts[i + 1] as usize);
        &self.text[a..b]
    }

    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.owner.shrink_to_fit();
        self.kind.shrink_to_fit();
        self.mask.shrink_to_fit();
    }
}

/// Why a person matched, for the agent (and for telling near misses apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub score: u8,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct PersonHit {
    pub person: usize,
    pub why: Why,
}

#[derive(Debug, Default, Clone)]
pub struct Index {
    pub people: Vec<PersonRec>,
    pub depts: Vec<DeptRec>,
    pub chats: Vec<ChatRec>,
    dept_at: HashMap<String, u32>,
    person_at: HashMap<String, u32>,
    keys: Keys,
    /// Folded department names and English names, per department.
    dept_words: Vec<String>,
}

impl Index {
    pub fn people_len(&self) -> usize {
        self.people.len()
    }

    pub fn add_dept(&mut self, d: DeptRec) {
        if self.dept_at.contains_key(&d.id) {
            return;
        }
        let words = format!(
            "{} {}",
            fold(&d.name),
            d.en_name.as_deref().map(fold).unwrap_or_default()
        );
        self.dept_at.insert(d.id.clone(), self.depts.len() as u32);
        self.depts.push(d);
        self.dept_words.push(words);
    }

    /// Adds a person (once; a second sighting adds departments it did not know).
    pub fn add_person(&mut self, p: PersonRec) {
        if let Some(&at) = self.person_at.get(&p.open_id) {
            let known = &mut self.people[at as usize].departments;
            for d in p.departments {
                if !known.contains(&d) {
                    known.push(d);
                }
            }
            return;
        }
        let at = self.people.len() as u32;
        self.index_person(at, &p);
        self.person_at.insert(p.open_id.clone(), at);
        self.people.push(p);
    }

    fn index_person(&mut self, at: u32, p: &PersonRec) {
        let k = &mut self.keys;
        let name = joined(&p.name);
        k.push(at, KeyKind::Name, &name);
        if keys::has_han(&p.name) {
            let (full, initials) = keys::pinyin_keys(&p.name);
            for f in full.iter().filter(|f| **f != name) {
                k.push(at, KeyKind::Pinyin, f);
            }
            for i in &initials {
                k.push(at, KeyKind::Initials, i);
            }
        } else {
            // `Wei Zhang` is also typed `Zhang Wei`.
            push_both_orders(k, at, KeyKind::Name, &p.name, &name);
        }
        if let Some(en) = &p.en_name {
            let j = joined(en);
            k.push(at, KeyKind::EnName, &j);
            push_both_orders(k, at, KeyKind::EnName, en, &j);
        }
        if let Some(n) = &p.nickname {
            k.push(at, KeyKind::Nickname, &joined(n));
        }
        if let Some(e) = &p.email {
            let local = e.split('@').next().unwrap_or_default();
            k.push(at, KeyKind::Email, &joined(local));
        }
        if let Some(no) = &p.employee_no {
            k.push(at, KeyKind::EmployeeNo, &joined(no));
        }
    }

    pub fn add_chat(&mut self, c: ChatRec) {
        match self.chats.iter_mut().find(|x| x.chat_id == c.chat_id) {
            Some(known) => {
                known.bot_is_member |= c.bot_is_member;
                known.yours |= c.yours;
            }
            None => self.chats.push(c),
        }
    }

    pub fn shrink(&mut self) {
        self.people.shrink_to_fit();
        self.depts.shrink_to_fit();
        self.chats.shrink_to_fit();
        self.keys.shrink();
    }

    pub fn person(&self, open_id: &str) -> Option<&PersonRec> {
        self.person_at
            .get(open_id)
            .map(|&i| &self.people[i as usize])
    }

    /// `Company / R&D / Platform` for a department id.
    pub fn dept_path(&self, id: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut at = self.dept_at.get(id).copied();
        while let Some(i) = at {
            let d = &self.depts[i as usize];
            names.push(d.name.as_str());
            if names.len() > 32 {
                break; // a cycle in bad data
            }
            at = d.parent.as_ref().and_then(|p| self.dept_at.get(p)).copied();
        }
        (!names.is_empty()).then(|| {
            names.reverse();
            names.join(" / ")
        })
    }

    /// People matching `query`, best first, at most `limit`.
    pub fn find_people(&self, query: &str, limit: usize, include_resigned: bool) -> Vec<PersonHit> {
        let q = joined(query);
        if q.is_empty() {
            return Vec::new();
        }
        let mut best: HashMap<u32, Why> = HashMap::new();
        self.whole_query(&q, &mut best);
        let words = keys::words(query);
        if words.len() >= 2 {
            self.every_word(&words, &mut best);
        }
        let mut hits: Vec<PersonHit> = best
            .into_iter()
            .filter(|(p, _)| include_resigned || self.people[*p as usize].active())
            .map(|(p, why)| PersonHit {
                person: p as usize,
                why,
            })
            .collect();
        hits.sort_by(|a, b| {
            let (pa, pb) = (&self.people[a.person], &self.people[b.person]);
            b.why
                .score
                .cmp(&a.why.score)
                .then(pb.active().cmp(&pa.active()))
                .then(pa.name.cmp(&pb.name))
                .then(pa.open_id.cmp(&pb.open_id))
        });
        hits.truncate(limit);
        hits
    }

    /// The whole query against each key: exact, prefix, same sound, one or two typos.
    fn whole_query(&self, q: &str, best: &mut HashMap<u32, Why>) {
        let han = keys::has_han(q);
        let sound = han.then(|| keys::pinyin_joined(q));
        let q_len = q.chars().count();
        let max_typos = if han || q_len < 4 {
            0
        } else if q_len < 8 {
            1
        } else {
            2
        };
        let q_mask = letter_mask(q);
        let keys = &self.keys;
        for i in 0..keys.len() {
            let key = keys.get(i);
            let kind = keys.kind[i];
            let found = if key == q {
                Some((kind.exact(), kind.label().to_string()))
            } else if q_len >= 2
                && key.starts_with(q)
                && let Some(score) = kind.prefix()
            {
                Some((score, format!("{} starts with it", kind.label())))
            } else if kind == KeyKind::Pinyin && sound.as_deref() == Some(key) {
                Some((85, "sounds the same (pinyin)".to_string()))
            } else if max_typos > 0 && kind.tolerates_typos() {
                typo(q, q_len, q_mask, key, keys.mask[i], max_typos).map(|d| {
                    let letters = if d == 1 { "letter" } else { "letters" };
                    (
                        65 - 10 * d,
                        format!("{} is {d} {letters} off", kind.label()),
                    )
                })
            } else {
                None
            };
            if let Some((score, reason)) = found {
                keep_best(best, keys.owner[i], score, reason);
            }
        }
    }

    /// Several words (`li platform`): each must match a name key's start or a
    /// department the person is in (or under), and at least one must match the name.
    fn every_word(&self, words: &[String], best: &mut HashMap<u32, Why>) {
        let n = self.people.len();
        let mut all: Option<Vec<bool>> = None;
        let mut by_name = vec![false; n];
        let mut dept_words = Vec::new();
        for w in words {
            let w_joined = joined(w);
            let mut hit = vec![false; n];
            for i in 0..self.keys.len() {
                let kind = self.keys.kind[i];
                if kind != KeyKind::EmployeeNo && self.keys.get(i).starts_with(&w_joined) {
                    let o = self.keys.owner[i] as usize;
                    hit[o] = true;
                    by_name[o] = true;
                }
            }
            let depts = self.depts_matching(w);
            if !depts.is_empty() {
                dept_words.push(w.as_str());
                for (p, person) in self.people.iter().enumerate() {
                    if !hit[p] && person.departments.iter().any(|d| self.under(d, &depts)) {
                        hit[p] = true;
                    }
                }
            }
            all = Some(match all {
                None => hit,
                Some(prev) => prev.iter().zip(&hit).map(|(a, b)| *a && *b).collect(),
            });
        }
        let Some(all) = all else { return };
        let reason = if dept_words.is_empty() {
            "every word starts a name".to_string()
        } else {
            format!("name, and department matching {}", dept_words.join(", "))
        };
        for (p, ok) in all.iter().enumerate() {
            if *ok && by_name[p] {
                keep_best(best, p as u32, 55, reason.clone());
            }
        }
    }

    fn depts_matching(&self, word: &str) -> Vec<bool> {
        let w = fold(word);
        if w.chars().count() < 2 {
            return Vec::new();
        }
        let m: Vec<bool> = self.dept_words.iter().map(|d| d.contains(&w)).collect();
        if m.iter().any(|x| *x) { m } else { Vec::new() }
    }

    /// Whether department `id` is one of `matching` or below one.
    fn under(&self, id: &str, matching: &[bool]) -> bool {
        let mut at = self.dept_at.get(id).copied();
        let mut steps = 0;
        while let Some(i) = at {
            if matching[i as usize] {
                return true;
            }
            steps += 1;
            if steps > 32 {
                return false;
            }
            at = self.depts[i as usize]
                .parent
                .as_ref()
                .and_then(|p| self.dept_at.get(p))
                .copied();
        }
        false
    }

    /// Chats whose name (or description) matches `query`, best first.
    pub fn find_chats(&self, query: &str, limit: usize) -> Vec<(usize, Why)> {
        let q = fold(query.trim());
        let qj = joined(query);
        if qj.is_empty() {
            return Vec::new();
        }
        let q_words = keys::words(query);
        let mut hits: Vec<(usize, Why)> = Vec::new();
        for (i, c) in self.chats.iter().enumerate() {
            if let Some(why) = chat_match(c, &q, &qj, &q_words) {
                hits.push((i, why));
            }
        }
        hits.sort_by(|(a, wa), (b, wb)| {
            wb.score
                .cmp(&wa.score)
                .then(
                    self.chats[*b]
                        .bot_is_member
                        .cmp(&self.chats[*a].bot_is_member),
                )
                .then(self.chats[*a].name.cmp(&self.chats[*b].name))
        });
        hits.truncate(limit);
        hits
    }
}

fn push_both_orders(k: &mut Keys, at: u32, kind: KeyKind, text: &str, joined_text: &str) {
    let mut w = keys::words(text);
    if w.len() >= 2 {
        w.reverse();
        let other = w.concat();
        if other != joined_text {
            k.push(at, kind, &other);
        }
    }
}

fn keep_best(best: &mut HashMap<u32, Why>, owner: u32, score: u8, reason: String) {
    match best.get(&owner) {
        Some(w) if w.score >= score => {}
        _ => {
            best.insert(owner, Why { score, reason });
        }
    }
}

/// The edit distance between `q` and `key` when it is at most `max` (transpositions count
/// one), ruled out cheaply first by length and letters.
fn typo(q: &str, q_len: usize, q_mask: u64, key: &str, key_mask: u64, max: u8) -> Option<u8> {
    let k_len = key.chars().count();
    if k_len.abs_diff(q_len) > max as usize || (q_mask ^ key_mask).count_ones() > 2 * max as u32 {
        return None;
    }
    let d = strsim::damerau_levenshtein(q, key);
    (d >= 1 && d <= max as usize).then_some(d as u8)
}

fn chat_match(c: &ChatRec, q: &str, qj: &str, q_words: &[String]) -> Option<Why> {
    let name = fold(&c.name);
    let name_j = joined(&c.name);
    let why = |score: u8, reason: &str| {
        Some(Why {
            score,
            reason: reason.to_string(),
        })
    };
    if name == q || name_j == qj {
        return why(100, "name");
    }
    if name.starts_with(q) || name_j.starts_with(qj) {
        return why(85, "name starts with it");
    }
    let words = keys::words(&c.name);
    if !q_words.is_empty() && q_words.iter().all(|w| words.iter().any(|n| n == w)) {
        return why(80, "a word of the name");
    }
    if !q_words.is_empty()
        && q_words
            .iter()
            .all(|w| words.iter().any(|n| n.starts_with(w.as_str())))
    {
        return why(70, "a word of the name starts with it");
    }
    if qj.chars().count() >= 2 && name_j.contains(qj) {
        return why(65, "in the name");
    }
    if keys::has_han(&c.name) && !keys::has_han(qj) && qj.len() >= 2 {
        let py = keys::pinyin_joined(&c.name);
        if py.contains(qj) {
            return why(55, "pinyin of the name");
        }
    }
    if let Some(d) = &c.description
        && qj.chars().count() >= 2
        && joined(d).contains(qj)
    {
        return why(40, "description");
    }
    if qj.chars().count() >= 5 {
        let close = words
            .iter()
            .any(|w| strsim::damerau_levenshtein(w, qj) == 1);
        if close {
            return why(45, "a word of the name is close (1 letter off)");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, name: &str, en: Option<&str>, email: &str, dept: &str) -> PersonRec {
        PersonRec {
            open_id: id.into(),
            name: name.into(),
            en_name: en.map(String::from),
            nickname: None,
            email: Some(email.into()),
            job_title: None,
            employee_no: Some(format!("E{id}")),
            status: "active".into(),
            departments: vec![dept.into()],
        }
    }

    fn sample() -> Index {
        let mut ix = Index::default();
        for (id, name, en, parent) in [
            ("d1", "研发中心", Some("R&D"), None),
            ("d2", "平台工程部", Some("Platform Engineering"), Some("d1")),
            ("d3", "销售部", Some("Sales"), None),
        ] {
            ix.add_dept(DeptRec {
                id: id.into(),
                name: name.into(),
                en_name: en.map(String::from),
                parent: parent.map(String::from),
            });
        }
        ix.add_person(person(
            "ou_1",
            "张伟",
            Some("Wei Zhang"),
            "zhang.wei@x.cn",
            "d2",
        ));
        ix.add_person(person("ou_2", "张伟", None, "zhang.wei2@x.cn", "d3"));
        ix.add_person(person("ou_3", "李娜", Some("Na Li"), "li.na@x.cn", "d2"));
        ix.add_person(person("ou_4", "李明", None, "li.ming@x.cn", "d3"));
        ix.add_person(person("ou_5", "张玮", None, "zhang.wei3@x.cn", "d3"));
        let mut gone = person("ou_6", "王芳", None, "wang.fang@x.cn", "d3");
        gone.status = "resigned".into();
        ix.add_person(gone);
        ix
    }

    fn ids(ix: &Index, q: &str) -> Vec<String> {
        ix.find_people(q, 10, false)
            .iter()
            .map(|h| ix.people[h.person].open_id.clone())
            .collect()
    }

    #[test]
    fn every_way_of_writing_zhang_wei_finds_both_and_ranks_them_first() {
        let ix = sample();
        for q in [
            "zhang wei",
            "张伟",
            "Wei Zhang",
            "zw",
            "zhangw",
            "zhang.wei",
            "ZHANG WEI",
            "zhangwie",
            "Zhāng Wěi",
        ] {
            let got = ids(&ix, q);
            assert!(got.len() >= 2, "{q}: {got:?}");
            let top: Vec<&str> = got.iter().take(2).map(String::as_str).collect();
            assert!(
                top.contains(&"ou_1") && top.contains(&"ou_2"),
                "{q}: {got:?}"
            );
        }
    }

    #[test]
    fn homophones_rank_below_the_characters_typed() {
        let ix = sample();
        let got = ids(&ix, "张伟");
        assert_eq!(got.last().map(String::as_str), Some("ou_5"), "{got:?}");
    }

    #[test]
    fn resigned_people_only_when_asked() {
        let ix = sample();
        assert!(ids(&ix, "wang fang").is_empty());
        assert_eq!(ix.find_people("wang fang", 5, true).len(), 1);
    }

    #[test]
    fn a_name_and_a_department_word_narrow_it_down() {
        let ix = sample();
        assert_eq!(ids(&ix, "li platform"), ["ou_3"]);
        assert_eq!(ix.dept_path("d2").as_deref(), Some("研发中心 / 平台工程部"));
    }

    #[test]
    fn chats_by_a_word_of_their_name() {
        let mut ix = Index::default();
        for (id, name) in [
            ("oc_1", "研发周会 R&D Weekly"),
            ("oc_2", "Launch 发布"),
            ("oc_3", "闲聊 Random"),
        ] {
            ix.add_chat(ChatRec {
                chat_id: id.into(),
                name: name.into(),
                description: None,
                bot_is_member: true,
                yours: false,
            });
        }
        let first = |q: &str| {
            ix.find_chats(q, 5)
                .first()
                .map(|(i, _)| ix.chats[*i].chat_id.clone())
        };
        assert_eq!(first("weekly").as_deref(), Some("oc_1"));
        assert_eq!(first("launch").as_deref(), Some("oc_2"));
        assert_eq!(first("周会").as_deref(), Some("oc_1"));
        assert_eq!(first("xianliao").as_deref(), Some("oc_3"));
        assert!(ix.find_chats("nothing like it", 5).is_empty());
    }
}
