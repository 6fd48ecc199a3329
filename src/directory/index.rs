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

/// One person, as Lark describes them and the cache file keeps them.
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

const STATUSES: [&str; 6] = [
    "active", "resigned", "frozen", "unjoined", "exited", "inactive",
];
/// Between the packed text fields of a person; never in Lark's names or ids.
const SEP: char = '\u{1f}';

/// A person as the index keeps them: seven text fields in one allocation, the status as
/// a number and the departments as indexes (10,000 people: under 2 MB).
#[derive(Debug, Clone)]
struct Person {
    packed: Box<str>,
    status: u8,
    depts: Box<[u32]>,
}

impl Person {
    fn field(&self, i: usize) -> Option<&str> {
        self.packed.split(SEP).nth(i).filter(|f| !f.is_empty())
    }

    fn open_id(&self) -> &str {
        self.packed.split(SEP).next().unwrap_or_default()
    }

    fn active(&self) -> bool {
        self.status == 0
    }
}

fn pack(p: &PersonRec) -> Box<str> {
    let clean = |s: &str| s.replace(SEP, " ");
    let opt = |s: &Option<String>| s.as_deref().map(clean).unwrap_or_default();
    [
        clean(&p.open_id),
        clean(&p.name),
        opt(&p.en_name),
        opt(&p.nickname),
        opt(&p.email),
        opt(&p.job_title),
        opt(&p.employee_no),
    ]
    .join(&SEP.to_string())
    .into_boxed_str()
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
    mask: Vec<u32>,
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

/// How a key matched; the words are written only for the people shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Exact(KeyKind),
    Prefix(KeyKind),
    Sound,
    Typos(KeyKind, u8),
    Words,
}

/// The best match so far per person, without a map: a score of 0 is none.
struct Best {
    score: Vec<u8>,
    how: Vec<How>,
    touched: Vec<u32>,
    /// What `How::Words` means for this query.
    words: String,
}

impl Best {
    fn new(n: usize) -> Best {
        Best {
            score: vec![0; n],
            how: vec![How::Words; n],
            touched: Vec::new(),
            words: String::new(),
        }
    }

    fn keep(&mut self, owner: u32, score: u8, how: How) {
        let o = owner as usize;
        if self.score[o] >= score {
            return;
        }
        if self.score[o] == 0 {
            self.touched.push(owner);
        }
        self.score[o] = score;
        self.how[o] = how;
    }

    fn reason(&self, o: usize) -> String {
        match self.how[o] {
            How::Exact(k) => k.label().to_string(),
            How::Prefix(k) => format!("{} starts with it", k.label()),
            How::Sound => "sounds the same (pinyin)".to_string(),
            How::Typos(k, 1) => format!("{} is 1 letter off", k.label()),
            How::Typos(k, d) => format!("{} is {d} letters off", k.label()),
            How::Words => self.words.clone(),
        }
    }

    /// How many people have a match at least this good.
    fn at_least(&self, score: u8) -> usize {
        self.touched
            .iter()
            .filter(|&&o| self.score[o as usize] >= score)
            .count()
    }
}

#[derive(Debug, Default, Clone)]
pub struct Index {
    people: Vec<Person>,
    pub depts: Vec<DeptRec>,
    pub chats: Vec<ChatRec>,
    dept_at: HashMap<String, u32>,
    dept_parent: Vec<Option<u32>>,
    /// open_id → person while building; emptied by [`Self::shrink`] for `sorted`.
    person_at: HashMap<Box<str>, u32>,
    /// People by open_id, once built.
    sorted: Vec<u32>,
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
        self.link_parents();
    }

    /// Parents may arrive after their children: links are redone as departments come.
    fn link_parents(&mut self) {
        self.dept_parent = self
            .depts
            .iter()
            .map(|d| d.parent.as_ref().and_then(|p| self.dept_at.get(p)).copied())
            .collect();
    }

    fn lookup(&mut self) -> &mut HashMap<Box<str>, u32> {
        if self.person_at.is_empty() && !self.sorted.is_empty() {
            let people = &self.people;
            self.person_at = self
                .sorted
                .iter()
                .map(|&i| (people[i as usize].open_id().into(), i))
                .collect();
            self.sorted = Vec::new();
        }
        &mut self.person_at
    }

    /// Adds a person (once; a second sighting adds departments it did not know).
    /// Departments not indexed (yet) are not kept.
    pub fn add_person(&mut self, p: PersonRec) {
        let depts: Vec<u32> = p
            .departments
            .iter()
            .filter_map(|d| self.dept_at.get(d).copied())
            .collect();
        if let Some(&at) = self.lookup().get(p.open_id.as_str()) {
            let known = &mut self.people[at as usize].depts;
            let mut all = known.to_vec();
            for d in depts {
                if !all.contains(&d) {
                    all.push(d);
                }
            }
            *known = all.into_boxed_slice();
            return;
        }
        let at = self.people.len() as u32;
        self.index_person(at, &p);
        let status = STATUSES.iter().position(|s| *s == p.status).unwrap_or(5) as u8;
        self.lookup().insert(p.open_id.as_str().into(), at);
        self.people.push(Person {
            packed: pack(&p),
            status,
            depts: depts.into_boxed_slice(),
        });
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

    /// Done adding: trims spare capacity and trades the open_id map for a sorted list.
    pub fn shrink(&mut self) {
        let mut sorted: Vec<u32> = (0..self.people.len() as u32).collect();
        let people = &self.people;
        sorted.sort_by(|a, b| {
            people[*a as usize]
                .open_id()
                .cmp(people[*b as usize].open_id())
        });
        self.sorted = sorted;
        self.person_at = HashMap::new();
        self.people.shrink_to_fit();
        self.depts.shrink_to_fit();
        self.chats.shrink_to_fit();
        self.dept_words.shrink_to_fit();
        self.dept_parent.shrink_to_fit();
        self.keys.shrink();
    }

    fn position(&self, open_id: &str) -> Option<usize> {
        if let Some(&i) = self.person_at.get(open_id) {
            return Some(i as usize);
        }
        self.sorted
            .binary_search_by(|&i| self.people[i as usize].open_id().cmp(open_id))
            .ok()
            .map(|at| self.sorted[at] as usize)
    }

    /// The person at `i` (as found by [`Self::find_people`]).
    pub fn person_rec(&self, i: usize) -> PersonRec {
        let p = &self.people[i];
        let text = |f: usize| p.field(f).map(String::from);
        PersonRec {
            open_id: p.open_id().to_string(),
            name: text(1).unwrap_or_default(),
            en_name: text(2),
            nickname: text(3),
            email: text(4),
            job_title: text(5),
            employee_no: text(6),
            status: STATUSES
                .get(p.status as usize)
                .copied()
                .unwrap_or("inactive")
                .to_string(),
            departments: p
                .depts
                .iter()
                .filter_map(|&d| self.depts.get(d as usize).map(|d| d.id.clone()))
                .collect(),
        }
    }

    pub fn person(&self, open_id: &str) -> Option<PersonRec> {
        self.position(open_id).map(|i| self.person_rec(i))
    }

    pub fn open_ids(&self) -> impl Iterator<Item = &str> {
        self.people.iter().map(Person::open_id)
    }

    pub fn people_recs(&self) -> Vec<PersonRec> {
        (0..self.people.len()).map(|i| self.person_rec(i)).collect()
    }

    /// `Company / R&D / Platform` for a department id.
    pub fn dept_path(&self, id: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut at = self.dept_at.get(id).copied();
        while let Some(i) = at {
            names.push(self.depts[i as usize].name.as_str());
            if names.len() > 32 {
                break; // a cycle in bad data
            }
            at = self.dept_parent.get(i as usize).copied().flatten();
        }
        (!names.is_empty()).then(|| {
            names.reverse();
            names.join(" / ")
        })
    }

    /// People matching `query`, best first, at most `limit`.
    ///
    /// One pass over the keys finds exact, prefix and same-sound matches, and notes the
    /// keys that could be a typo away and the people whose keys start with each word;
    /// those weaker matches are settled only while the page is not full of strong ones.
    pub fn find_people(&self, query: &str, limit: usize, include_resigned: bool) -> Vec<PersonHit> {
        let q = joined(query);
        let qb = q.as_bytes();
        let Some(&q0) = qb.first() else {
            return Vec::new();
        };
        if limit == 0 {
            return Vec::new();
        }
        let n = self.people.len();
        let han = keys::has_han(&q);
        let sound = han.then(|| keys::pinyin_joined(&q));
        let sb = sound.as_deref().map(str::as_bytes).unwrap_or_default();
        let s0 = sb.first().copied();
        let q_len = q.chars().count();
        let max_typos: u8 = if han || !q.is_ascii() || q_len < 4 {
            0
        } else if q_len < 12 {
            1
        } else {
            2
        };
        let q_mask = letter_mask(&q);
        let mut words: Vec<String> = keys::words(query);
        words.truncate(MAX_WORDS);
        if words.len() < 2 {
            words.clear();
        }
        let word_bytes: Vec<Vec<u8>> = words.iter().map(|w| joined(w).into_bytes()).collect();
        let mut word_hits: Vec<Vec<bool>> = vec![vec![false; n]; word_bytes.len()];
        let mut near: Vec<(u32, u32, KeyKind)> = Vec::new();
        let mut best = Best::new(n);
        for (i, (key, kind, owner, mask)) in self.each_key().enumerate() {
            let k0 = key[0];
            if k0 == q0 {
                if key == qb {
                    best.keep(owner, kind.exact(), How::Exact(kind));
                } else if q_len >= 2
                    && let Some(score) = kind.prefix()
                    && key.starts_with(qb)
                {
                    best.keep(owner, score, How::Prefix(kind));
                }
            } else if Some(k0) == s0 && kind == KeyKind::Pinyin && key == sb {
                best.keep(owner, 85, How::Sound);
            }
            if max_typos > 0
                && key.len().abs_diff(qb.len()) <= max_typos as usize
                && (q_mask ^ mask).count_ones() <= 2 * max_typos as u32
                && kind.tolerates_typos()
                && shares_a_piece(qb, key, max_typos)
            {
                near.push((i as u32, owner, kind));
            }
            if kind != KeyKind::EmployeeNo {
                for (w, hits) in word_bytes.iter().zip(word_hits.iter_mut()) {
                    if w.first() == Some(&k0) && key.starts_with(w) {
                        hits[owner as usize] = true;
                    }
                }
            }
        }
        if best.at_least(STRONG) < limit {
            for (i, owner, kind) in near {
                if let Some(d) = bounded_distance(qb, self.key_at(i as usize), max_typos) {
                    best.keep(owner, 65 - 10 * d, How::Typos(kind, d));
                }
            }
            if !words.is_empty() {
                self.every_word(&words, word_hits, &mut best);
            }
        }
        self.ranked(&best, limit, include_resigned)
    }

    fn key_at(&self, i: usize) -> &[u8] {
        let k = &self.keys;
        &k.text.as_bytes()[k.starts[i] as usize..k.starts[i + 1] as usize]
    }

    /// Each key with its kind and owner, as bytes (a query and a key are folded the same
    /// way, so bytes compare as well as characters).
    fn each_key(&self) -> impl Iterator<Item = (&[u8], KeyKind, u32, u32)> {
        let k = &self.keys;
        let bytes = k.text.as_bytes();
        k.starts
            .windows(2)
            .zip(k.kind.iter().zip(k.owner.iter().zip(&k.mask)))
            .map(move |(w, (&kind, (&owner, &mask)))| {
                (&bytes[w[0] as usize..w[1] as usize], kind, owner, mask)
            })
    }

    /// The page: best score first, then active people, then by open_id (stable).
    fn ranked(&self, best: &Best, limit: usize, include_resigned: bool) -> Vec<PersonHit> {
        let mut found: Vec<usize> = best
            .touched
            .iter()
            .map(|&o| o as usize)
            .filter(|&o| include_resigned || self.people[o].active())
            .collect();
        let order = |a: &usize, b: &usize| {
            let (pa, pb) = (&self.people[*a], &self.people[*b]);
            best.score[*b]
                .cmp(&best.score[*a])
                .then(pb.active().cmp(&pa.active()))
                .then(pa.open_id().cmp(pb.open_id()))
        };
        // Only the page is put in order: a short query can touch thousands.
        if found.len() > limit {
            found.select_nth_unstable_by(limit, order);
            found.truncate(limit);
        }
        found.sort_by(order);
        found
            .into_iter()
            .map(|o| PersonHit {
                person: o,
                why: Why {
                    score: best.score[o],
                    reason: best.reason(o),
                },
            })
            .collect()
    }

    /// Several words (`li platform`): each must start one of the person's name keys
    /// (`word_hits`) or name a department they are in or under, and at least one must be
    /// a name.
    fn every_word(&self, words: &[String], word_hits: Vec<Vec<bool>>, best: &mut Best) {
        let n = self.people.len();
        let mut by_name = vec![false; n];
        for hits in &word_hits {
            by_name.iter_mut().zip(hits).for_each(|(b, h)| *b |= *h);
        }
        let mut all = vec![true; n];
        let mut dept_words = Vec::new();
        for (w, mut hit) in words.iter().zip(word_hits) {
            let depts = self.depts_matching(w);
            if depts.iter().any(|d| *d) {
                dept_words.push(w.as_str());
                for (p, person) in self.people.iter().enumerate() {
                    if !hit[p] && person.depts.iter().any(|&d| depts[d as usize]) {
                        hit[p] = true;
                    }
                }
            }
            all.iter_mut().zip(&hit).for_each(|(a, h)| *a &= *h);
        }
        best.words = if dept_words.is_empty() {
            "every word starts a name".to_string()
        } else {
            format!("name, and department matching {}", dept_words.join(", "))
        };
        for (p, ok) in all.iter().enumerate() {
            if *ok && by_name[p] {
                best.keep(p as u32, 55, How::Words);
            }
        }
    }

    /// Departments whose name contains `word`, or that are under one that does.
    fn depts_matching(&self, word: &str) -> Vec<bool> {
        let w = fold(word);
        if w.chars().count() < 2 {
            return Vec::new();
        }
        let direct: Vec<bool> = self.dept_words.iter().map(|d| d.contains(&w)).collect();
        (0..self.depts.len())
            .map(|i| {
                let mut at = Some(i as u32);
                for _ in 0..32 {
                    let Some(d) = at else { break };
                    if direct[d as usize] {
                        return true;
                    }
                    at = self.dept_parent.get(d as usize).copied().flatten();
                }
                false
            })
            .collect()
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

/// Words of a query looked at for word-by-word matches (`li platform`).
const MAX_WORDS: usize = 4;

/// The lowest score of an exact or prefix match: a page full of those needs no fuzzier
/// search.
const STRONG: u8 = 70;

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

/// Whether `key` could be within `k` edits of `q`: cut `q` into 2k + 1 pieces; an edit
/// (a swap of neighbours included) breaks at most two, so one piece is intact in `key`,
/// shifted by at most `k`. Rules out nearly every key before an edit distance.
fn shares_a_piece(q: &[u8], key: &[u8], k: u8) -> bool {
    let k = k as usize;
    let pieces = 2 * k + 1;
    let n = q.len();
    (0..pieces).any(|p| {
        let (a, b) = (p * n / pieces, (p + 1) * n / pieces);
        if a == b {
            return true;
        }
        let piece = &q[a..b];
        (a.saturating_sub(k)..=a + k).any(|s| key.get(s..s + piece.len()) == Some(piece))
    })
}

/// The optimal-string-alignment distance between `a` and `b` (a swap of neighbours is one
/// edit) if it is 1..=`max`, computed in a band without allocating; None otherwise.
fn bounded_distance(a: &[u8], b: &[u8], max: u8) -> Option<u8> {
    const CAP: usize = 64;
    let (n, m) = (a.len(), b.len());
    if n >= CAP || m >= CAP || a == b {
        return None;
    }
    let max = max as usize;
    let big = CAP as u8;
    let mut prev2 = [big; CAP];
    let mut prev = [big; CAP];
    let mut cur = [big; CAP];
    for (j, c) in prev.iter_mut().enumerate().take(m + 1) {
        *c = j as u8;
    }
    for i in 1..=n {
        cur.fill(big);
        cur[0] = i as u8;
        let lo = i.saturating_sub(max).max(1);
        let hi = (i + max).min(m);
        let mut row_min = cur[0];
        for j in lo..=hi {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min as usize > max {
            return None;
        }
        prev2 = prev;
        prev = cur;
    }
    let d = prev[m] as usize;
    (d >= 1 && d <= max).then_some(d as u8)
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
    if qj.len() >= 5 && qj.is_ascii() {
        let close = words
            .iter()
            .any(|w| bounded_distance(w.as_bytes(), qj.as_bytes(), 1).is_some());
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
            .map(|h| ix.person_rec(h.person).open_id)
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
    fn the_piece_filter_never_rules_out_a_real_typo() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let len = rng.usize(4..16);
            let q: Vec<u8> = (0..len).map(|_| rng.u8(b'a'..=b'z')).collect();
            let mut key = q.clone();
            for _ in 0..rng.usize(1..=2) {
                let i = rng.usize(..key.len() - 1);
                match rng.u8(..4) {
                    0 => key[i] = rng.u8(b'a'..=b'z'),
                    1 => key.insert(i, rng.u8(b'a'..=b'z')),
                    2 => {
                        key.remove(i);
                    }
                    _ => key.swap(i, i + 1),
                }
            }
            if let Some(d) = bounded_distance(&q, &key, 2) {
                assert!(shares_a_piece(&q, &key, d), "{:?} {:?}", q, key);
            }
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
