//! Every tool fuzzed through the real binary over stdio: each gets [`CALLS_PER_TOOL`]
//! argument objects generated from the `inputSchema` that `tools/list` returns, most of
//! them hostile — wrong types, missing and unknown fields, 1 MB strings, NUL / RTL /
//! emoji / lone combining marks, pathological markdown, path-like ids, 64 KB ids, huge,
//! negative and fractional numbers, impossible time spans, 10,000-element arrays, deep
//! nesting (within serde_json's limit of 128 and past it), paths outside the allowed
//! directories, and `arguments` that are not an object. Requests are pipelined, 32 in
//! flight, with the tools interleaved.
//!
//! Pass: no panic (neither a contained one, answered as "internal error", nor one printed
//! on the server's stderr, nor one in the in-process sandbox), every request answered
//! within the call budget, stdout only JSON-RPC, nothing read or written outside the
//! directories the operator allowed, a server that still answers `ping` afterwards and
//! exits 0 on stdin EOF — and, probed separately, markdown that cannot make the server's
//! memory grow far beyond its size (see [`amplifiers`]).
//!
//! The generator is seeded, and every case's arguments can be rebuilt alone from the seed,
//! its tool and its index: `FUZZ_SEED=<n>` explores another seed, `FUZZ_CALLS_PER_TOOL=<n>`
//! runs longer, `FUZZ_ONLY=<tool>` or `FUZZ_ONLY=<tool>#<index>` replays a subset (against
//! a fresh sandbox, so state left by earlier calls may differ). A failure names all three,
//! and the full request lines of failed cases are written to
//! `target/tmp/fuzz_tools-failures.jsonl`. The summary line goes to stderr even when the
//! harness captures output; the per-tool table shows with `--nocapture`.

mod common;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::im::TempDir;
use common::mcp::{Stderr, serve_command};
use common::{Sbx, seed};
use fastrand::Rng;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

/// The issue asks for at least 200 adversarial objects per tool.
const CALLS_PER_TOOL: usize = 200;
/// Requests kept in flight: enough to keep both cores busy and to exercise the server's
/// concurrency, few enough that each answer's latency still means something.
const IN_FLIGHT: usize = 32;
/// The server's per-call budget (`LARK_CALL_TIMEOUT`), short so a hang shows quickly…
const CALL_BUDGET_SECS: u64 = 10;
/// …and how long an answer may take before the request counts as unanswered: the budget
/// plus slack for a loaded 2-core CI machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(CALL_BUDGET_SECS + 2);
const DEFAULT_SEED: u64 = 0x5eed_1a4c_f022_0001;

const MB: usize = 1024 * 1024;
const KB64: usize = 64 * 1024;
const BIG_ARRAY: usize = 10_000;
/// serde_json refuses nesting past 128 levels and the envelope takes three (message,
/// params, arguments), so this still parses and reaches the tool…
const DEEP_OK: usize = 120;
/// …and this does not: the line must be answered with a parse error (id `null`).
const TOO_DEEP: usize = 200;

/// Ids of the requests outside the fuzzed ones (which are numbers or `fz-<n>`).
const SETUP: &str = "setup-";

// ---- what each case does ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Every required field and some optional ones, all plausible.
    Valid,
    /// Only the required fields.
    Minimal,
    WrongType,
    MissingRequired,
    UnknownField,
    /// NUL, bidi overrides, emoji, lone combining marks, quotes, mention syntax.
    OddText,
    /// Pathological markdown and mention markup, a few KB each.
    Markup,
    PathLike,
    /// 64 KB, or just past / exactly at the 256-byte id limit.
    LongId,
    Megabyte,
    Numbers,
    Spans,
    BigArray,
    Deep,
    TooDeep,
    OutsidePath,
    NotAnObject,
    NoArguments,
    /// Every field hostile at once.
    AllHostile,
}

/// Each tool's first `2 × KINDS.len()` cases go through every kind twice, so every kind
/// reaches every tool whatever the seed; the rest are drawn by [`weight`].
const KINDS: [Kind; 19] = [
    Kind::Valid,
    Kind::Minimal,
    Kind::WrongType,
    Kind::MissingRequired,
    Kind::UnknownField,
    Kind::OddText,
    Kind::Markup,
    Kind::PathLike,
    Kind::LongId,
    Kind::Megabyte,
    Kind::Numbers,
    Kind::Spans,
    Kind::BigArray,
    Kind::Deep,
    Kind::TooDeep,
    Kind::OutsidePath,
    Kind::NotAnObject,
    Kind::NoArguments,
    Kind::AllHostile,
];

/// How often a kind is drawn after the first rounds. The heavy ones (1 MB, 10,000 items,
/// nesting) stay rare: in a debug build each costs tens of milliseconds of parsing on both
/// sides, most of the run's time, and a few per tool reach what many would. A valid share
/// keeps the deeper code paths (Lark calls, rendering, name resolution) under the same
/// concurrent load.
fn weight(kind: Kind) -> u32 {
    match kind {
        Kind::Valid => 16,
        Kind::Minimal => 6,
        Kind::WrongType => 10,
        Kind::MissingRequired => 5,
        Kind::UnknownField => 6,
        Kind::OddText => 12,
        Kind::Markup => 4,
        Kind::PathLike => 8,
        Kind::LongId => 3,
        Kind::Megabyte => 1,
        Kind::Numbers => 7,
        Kind::Spans => 5,
        Kind::BigArray => 1,
        Kind::Deep => 1,
        Kind::TooDeep => 0,
        Kind::OutsidePath => 5,
        Kind::NotAnObject => 3,
        Kind::NoArguments => 2,
        Kind::AllHostile => 9,
    }
}

fn kind_for(index: usize, rng: &mut Rng) -> Kind {
    if index < 2 * KINDS.len() {
        return KINDS[index % KINDS.len()];
    }
    let total: u32 = KINDS.iter().map(|k| weight(*k)).sum();
    let mut n = rng.u32(..total);
    for k in KINDS {
        if n < weight(k) {
            return k;
        }
        n -= weight(k);
    }
    Kind::Valid
}

/// FNV-1a: a stable hash of the tool name, so a case's seed does not depend on which
/// other tools are listed (and `FUZZ_ONLY` replays exactly the case that failed).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn case_rng(seed: u64, tool: &str, index: usize) -> Rng {
    Rng::with_seed(seed ^ fnv(tool) ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

// ---- the data the generator draws on -----------------------------------------------------------

/// Real ids from the default org, so that plausible cases reach Lark (the sandbox) and the
/// code behind it, and the directory layout the file tools are fenced into.
struct Pools {
    user_ids: Vec<String>,
    open_ids: Vec<String>,
    emails: Vec<String>,
    mobiles: Vec<String>,
    departments: Vec<String>,
    groups: Vec<String>,
    chats: Vec<String>,
    messages: Vec<String>,
    bot_messages: Vec<String>,
    threads: Vec<String>,
    /// (message_id, image_key or file_key) of the seeded image and file messages.
    resources: Vec<(String, String)>,
    /// Files an upload may read.
    good_paths: Vec<String>,
    /// Paths outside the allowed directory, resolving outside it, or not uploadable.
    bad_paths: Vec<String>,
    /// `save_as` names that would land outside the download directory if taken literally.
    bad_names: Vec<String>,
}

impl Pools {
    fn new(files: &Files) -> Pools {
        let s = seed();
        let mut p = Pools {
            user_ids: Vec::new(),
            open_ids: Vec::new(),
            emails: Vec::new(),
            mobiles: Vec::new(),
            departments: vec!["0".into()],
            groups: s.groups.iter().map(|g| g.id.clone()).collect(),
            chats: s.chats.iter().map(|c| c.chat_id.clone()).collect(),
            messages: Vec::new(),
            bot_messages: Vec::new(),
            threads: Vec::new(),
            resources: Vec::new(),
            good_paths: files.good_paths(),
            bad_paths: files.bad_paths(),
            bad_names: files.bad_names(),
        };
        for u in &s.users {
            p.open_ids.push(u.open_id.clone());
            p.user_ids
                .extend([u.open_id.clone(), u.union_id.clone(), u.user_id.clone()]);
            p.emails.extend(u.email.clone());
            p.mobiles.extend(u.mobile.clone());
        }
        for d in &s.departments {
            p.departments
                .extend([d.open_department_id.clone(), d.department_id.clone()]);
        }
        for m in &s.messages {
            p.messages.push(m.message_id.clone());
            if m.sender == "bot" {
                p.bot_messages.push(m.message_id.clone());
            }
            if let Some(t) = &m.thread_id
                && !p.threads.contains(t)
            {
                p.threads.push(t.clone());
            }
            for key in ["image_key", "file_key"] {
                if let Some(k) = m.content.get(key).and_then(Value::as_str) {
                    p.resources.push((m.message_id.clone(), k.to_string()));
                }
            }
        }
        p
    }
}

/// The directories the server is started with, plus traps around them:
///
/// ```text
/// base/
///   read/        --allow-read-dir: good files, links out, a FIFO, a directory, 0 B, 31 MB
///   read2/       a sibling whose name starts like the allowed one
///   dl/          --download-dir, holding a link named like a download, pointing out
///   cwd/         the server's working directory: relative names must not land here
///   outside.txt  a real file outside every allowed directory
/// ```
struct Files {
    dir: TempDir,
    /// A name in the system temp dir an absolute `save_as` would create.
    temp_escape: PathBuf,
}

const BASE_ENTRIES: [&str; 5] = ["cwd", "dl", "outside.txt", "read", "read2"];

impl Files {
    fn create() -> Files {
        let dir = TempDir::new("fuzz");
        let base = dir.path().to_path_buf();
        for d in ["read", "read/sub", "read2", "dl", "cwd"] {
            std::fs::create_dir_all(base.join(d)).expect("create a fuzz dir");
        }
        let write = |rel: &str, bytes: &[u8]| std::fs::write(base.join(rel), bytes).unwrap();
        write("outside.txt", b"OUTSIDE - never to be uploaded");
        write("read2/secret.txt", b"SIBLING - never to be uploaded");
        // Enough of a PNG header for anything that sniffs; the server goes by extension.
        write(
            "read/photo.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89",
        );
        write("read/doc.txt", b"fuzz upload\n");
        write("read/sub/nested.pdf", b"%PDF-1.4\n%fuzz\n");
        write("read/empty.bin", b"");
        // Sparse, so 31 MB costs nothing here; the server must refuse it by its size.
        std::fs::File::create(base.join("read/big.bin"))
            .and_then(|f| f.set_len(31 * MB as u64))
            .expect("a sparse file");
        let link = |target: &Path, rel: &str| {
            std::os::unix::fs::symlink(target, base.join(rel)).expect("symlink")
        };
        link(Path::new("/etc/passwd"), "read/link-passwd");
        link(Path::new("/dev/zero"), "read/link-zero.png");
        link(Path::new("/etc"), "read/link-etc");
        link(&base.join("outside.txt"), "read/link-out.txt");
        link(Path::new("../../outside.txt"), "read/sub/link-up.txt");
        // A download named like this must not write through the link.
        link(&base.join("escaped.bin"), "dl/trap.bin");
        // A FIFO must be refused, not waited on; `mkfifo` is everywhere this runs, and
        // without it the case is only a missing file.
        let _ = std::process::Command::new("mkfifo")
            .arg(base.join("read/fifo.txt"))
            .status();
        let temp_escape =
            std::env::temp_dir().join(format!("lark-fuzz-escape-{}.bin", std::process::id()));
        Files { dir, temp_escape }
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    fn at(&self, rel: &str) -> String {
        self.base().join(rel).to_string_lossy().into_owned()
    }

    fn read_dir(&self) -> String {
        self.at("read")
    }

    fn good_paths(&self) -> Vec<String> {
        let read = self.read_dir();
        vec![
            format!("{read}/photo.png"),
            format!("{read}/doc.txt"),
            format!("{read}/sub/nested.pdf"),
            format!("{read}/./doc.txt"),
            format!("{read}//photo.png"),
        ]
    }

    fn bad_paths(&self) -> Vec<String> {
        let read = self.read_dir();
        let mut v: Vec<String> = [
            "/etc/passwd",
            "/etc/shadow",
            "/proc/self/environ",
            "/proc/self/mem",
            "/proc/self/cmdline",
            "/proc/self/fd/0",
            "/proc/self/cwd/../outside.txt",
            "/proc/self/root/etc/passwd",
            "/dev/zero",
            "/dev/urandom",
            "/dev/stdin",
            "../../etc/shadow",
            "etc/passwd",
            "outside.txt",
            "./photo.png",
            "~/.ssh/id_rsa",
            "file:///etc/passwd",
            "",
            "/",
            ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for rel in [
            "/../outside.txt",
            "/sub/../../outside.txt",
            "/%2e%2e/outside.txt",
            "/..%2foutside.txt",
            "/link-passwd",
            "/link-zero.png",
            "/link-etc/passwd",
            "/link-out.txt",
            "/sub/link-up.txt",
            "/fifo.txt",
            "/sub",
            "",
            "/",
            "/empty.bin",
            "/big.bin",
            "/missing.png",
            "/photo.png/..",
            "/photo.png\0.txt",
            "/photo.png\u{202e}gnp.exe",
            "2/secret.txt",
        ] {
            v.push(format!("{read}{rel}"));
        }
        v.push(self.at("outside.txt"));
        v.push(self.at("read2/secret.txt"));
        v
    }

    fn bad_names(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "../escaped.bin",
            "../../escaped.bin",
            "a/b/../../../escaped.bin",
            "..\\escaped.bin",
            "trap.bin",
            "..",
            ".",
            "",
            " ",
            "/",
            "\0",
            "escaped\0.bin",
            "CON",
            "nul.txt",
            "x\u{202e}txt.exe",
            "~/.bashrc",
            "/proc/self/mem",
            "/dev/null",
            ".hidden",
            "...",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(self.at("escaped.bin"));
        v.push(self.temp_escape.to_string_lossy().into_owned());
        v.push("n".repeat(300) + ".bin");
        v.push("🦀".repeat(80) + ".png");
        v
    }

    /// What was written or changed outside the download directory, and what in it is not a
    /// plain new file.
    fn escapes(&self, read_before: &[String]) -> Vec<String> {
        let mut bad = Vec::new();
        let base_now = names(self.base());
        if base_now != BASE_ENTRIES {
            bad.push(format!(
                "{} holds {base_now:?}, expected {BASE_ENTRIES:?}",
                self.base().display()
            ));
        }
        let cwd = names(&self.base().join("cwd"));
        if !cwd.is_empty() {
            bad.push(format!("the server's working directory gained {cwd:?}"));
        }
        let read_now = tree(&self.base().join("read"));
        if read_now != read_before {
            bad.push(format!(
                "the allowed read directory changed: {read_before:?} → {read_now:?}"
            ));
        }
        if self.temp_escape.exists() {
            bad.push(format!("{} was created", self.temp_escape.display()));
        }
        for name in names(&self.base().join("dl")) {
            let p = self.base().join("dl").join(&name);
            let meta = std::fs::symlink_metadata(&p).expect("stat a download");
            let is_trap = name == "trap.bin";
            if is_trap != meta.file_type().is_symlink() || (!is_trap && !meta.is_file()) {
                bad.push(format!(
                    "{} is not a plain downloaded file ({:?})",
                    p.display(),
                    meta.file_type()
                ));
            }
        }
        bad
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Relative paths under `dir`, not following links.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for name in names(&dir.join(&rel)) {
            let r = rel.join(&name);
            if std::fs::symlink_metadata(dir.join(&r)).is_ok_and(|m| m.is_dir()) {
                todo.push(r.clone());
            }
            out.push(r.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

// ---- hostile values ----------------------------------------------------------------------------

const ODD_PIECES: &[&str] = &[
    "\0",
    "a\0b",
    "\u{202e}",
    "\u{202d}",
    "\u{200f}",
    "\u{2066}",
    "\u{061c}",
    "🦀",
    "👩‍👩‍👧‍👦",
    "🏳️‍🌈",
    "\u{1f1fa}",
    "\u{0301}",
    "\u{0336}\u{0336}\u{0336}",
    "\u{fe0f}",
    "\u{feff}",
    "\u{200b}",
    "\u{fffd}",
    "\u{fffe}",
    "\u{10ffff}",
    "\u{e000}",
    "\r\n",
    "\t",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\\",
    "\"",
    "'",
    "`",
    "<at id=\"all\"></at>",
    "<at id=\"ou_",
    "<at id=\"../x\">",
    "</at>",
    "@all",
    "@",
    "@@x@y@",
    "@nobody@northwind.example",
    "%00",
    "%",
    "%zz",
    "{",
    "}}",
    "${jndi:x}",
    "İ",
    "ß",
    "ﬃ",
    "Ω",
    "ℌ",
    "０",
    "٣",
    "<script>",
    "**[",
    "```",
    "# ",
    "| a | b |\n|---|",
    "![x](file:///etc/passwd)",
];

const PATH_LIKE: &[&str] = &[
    "../x",
    "..",
    ".",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e",
    "a/b",
    "/",
    "//",
    "../../../../open-apis/auth/v3/tenant_access_token/internal",
    "..%2f..%2f",
    "..\\..\\x",
    "..;/",
    "?page_size=1",
    "#frag",
    "a?b=c&d=e",
    "a#b",
    "a b",
    " ",
    "",
    "/open-apis/im/v1/chats",
    "http://evil.example/",
    "//evil.example/x",
    "~",
    "$HOME",
    " ../x ",
    "..\0",
    "．．／",
    "\u{2024}\u{2024}/",
    "%c0%ae%c0%ae/",
    "x\r\nHost: evil",
];

const SPANS: &[&str] = &[
    "100000000d",
    "-5d",
    "9223372036854775807s",
    "-9223372036854775808s",
    "9223372036854775808s",
    "99999999999w",
    "153722867280912930m",
    "3651d",
    "3650d",
    "0s",
    "-0s",
    "1e3d",
    "1.5h",
    "+5d",
    " 7d ",
    "7 d",
    "7D",
    "d",
    "s",
    "5x",
    "٣d",
    "７d",
    "1_000d",
    "today",
    "TODAY",
    "yesterday",
    "now",
    "tomorrow",
    "9999-12-31T23:59:59Z",
    "0000-01-01",
    "-0001-01-01",
    "+275760-09-13T00:00:00Z",
    "262143-12-31T23:59:59Z",
    "2026-02-30",
    "2026-13-01",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-11-21T09:00:00+25:00",
    "2026-11-21T09:00:00+08:00",
    "2026-11-21 09:00",
    "2026-11-21T24:00:00",
    "",
];

/// Address forms that are almost right: what lookups normalise, or should refuse.
const EDGE_EMAILS: &[&str] = &[
    "@",
    "a@",
    "@northwind.example",
    "a@b@northwind.example",
    "ZHANG.WEI@NORTHWIND.EXAMPLE",
    " zhang.wei@northwind.example ",
    "zhang.wei@northwind.example.",
    "zhang.wei+tag@northwind.example",
    "\"zhang wei\"@northwind.example",
    "zhang.wei@[127.0.0.1]",
    "zhang.wei@northwind.example\0",
    "张伟@northwind.example",
    "zhang.wei@xn--northwind-.example",
];

const EDGE_MOBILES: &[&str] = &[
    "+",
    "++86",
    "+86",
    "86",
    "0086",
    "+8617762117949",
    "+86 177 6211 7949",
    "+86-177-6211-7949",
    "(+86)17762117949",
    "17762117949",
    "１７７６２１１７９４９",
    "+1",
    "+999999999999999999999999999999",
    "-17762117949",
    "1.7762117949e10",
];

const EXTRA_KEYS: &[&str] = &[
    "zzz",
    "",
    " ",
    "USER_ID",
    "user_id ",
    "user_id\0",
    "__proto__",
    "constructor",
    "$ref",
    "_meta",
    "arguments",
    "id",
    "🦀",
    "\u{202e}di_resu",
    "page_size",
    "all_pages",
    "to",
    "path",
];

fn numbers() -> Vec<Value> {
    let raw = [
        "1e308",
        "-1e308",
        "-1",
        "0",
        "1",
        "-0.0",
        "0.5",
        "1.5",
        "1e-300",
        "50",
        "51",
        "100",
        "101",
        "5000",
        "5001",
        "2147483648",
        "-2147483649",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551615",
        "1e20",
    ];
    raw.iter()
        .map(|s| serde_json::from_str(s).expect("a JSON number"))
        .collect()
}

/// A value of nesting depth `levels`, objects and arrays mixed at random.
fn nested(levels: usize, rng: &mut Rng) -> Value {
    let mut v = json!("bottom");
    for _ in 0..levels {
        v = if rng.bool() {
            json!({ "a": v })
        } else {
            json!([v])
        };
    }
    v
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap())
        .collect()
}

/// 1 MB (bytes of UTF-8) of one of a few shapes, each with a NUL, an RTL override and an
/// emoji in it. Escapes stay few so the line stays well under the server's 4 MB limit.
fn megabyte(rng: &mut Rng) -> String {
    let unit = *pick(
        rng,
        &[
            "x",
            "🦀",
            "../",
            "<at id=\"",
            "@a",
            "**[",
            "a\u{0301}",
            "\u{202e}a",
        ],
    );
    let mut s = String::with_capacity(MB);
    s.push('\0');
    s.push('\u{202e}');
    s.push_str(&unit.repeat((MB - s.len() - 4) / unit.len()));
    s.push('👩');
    s
}

fn long_id(rng: &mut Rng, pools: &Pools) -> String {
    let base = pick(rng, &pools.chats);
    match rng.u8(..4) {
        0 => "a".repeat(257),
        1 => "o".repeat(256),
        2 => format!("{base}{}", "../".repeat(KB64 / 3)),
        _ => "9".repeat(KB64),
    }
}

fn odd_text(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::new();
    if rng.bool() {
        s.push_str(prefix);
    }
    for _ in 0..rng.usize(1..5) {
        let piece = *pick(rng, ODD_PIECES);
        // Pieces go first, last and in the middle, where trimming and prefix checks differ.
        if rng.bool() {
            s.insert_str(0, piece);
        } else {
            s.push_str(piece);
        }
    }
    s
}

/// Markdown and mention markup that parsers and converters handle badly: deep nesting in
/// one line, unclosed constructs, huge tables, many mentions. Kept to a few KB each, so
/// that what amplifies its input (see [`markdown_amplification`]) stays affordable here.
fn markup(rng: &mut Rng) -> String {
    let n = rng.usize(200..1000);
    match rng.u8(..20) {
        0 => format!("{}x", "- ".repeat(n)),
        1 => format!("{} a\nb\nc", ">".repeat(n)),
        2 => format!("{}x{}", "[".repeat(n), "](".repeat(n / 2)),
        3 => format!("{}a{}", "*".repeat(n), "_".repeat(n)),
        4 => "_a *b ".repeat(n),
        5 => "`".repeat(n),
        6 => format!("```\n{}", "<at id=\"ou_x\"></at>\n".repeat(20)),
        7 => format!("{}|\n{}|\n", "| a ".repeat(n), "|---".repeat(n)),
        8 => format!("{}{}", "[a]: http://x\n".repeat(50), "[a]".repeat(n)),
        9 => "<at id=\"all\"></at>".repeat(n / 4),
        10 => (0..60)
            .map(|i| format!("@u{i}.{}@northwind.example ", hex(rng, 4)))
            .collect(),
        11 => (0..60)
            .map(|_| format!("<at id=\"ou_{}\"></at>", hex(rng, 32)))
            .collect(),
        12 => "# ".repeat(n),
        13 => "1. ".repeat(n),
        14 => "![".repeat(n),
        15 => format!("<div>\n{}\n</div>", "<at id=\"ou_x\">".repeat(n / 8)),
        16 => "\\".repeat(n),
        17 => "&#x0;&#xD800;&#x110000;&amp;&bogus;".repeat(n / 20),
        18 => "[x](javascript:alert(1)) [y](file:///etc/passwd) ![z](http://169.254.169.254/)\n"
            .repeat(20),
        _ => format!("{}x{}", "~~".repeat(n), "<at id=\"".repeat(n / 4)),
    }
}

// ---- the generator -------------------------------------------------------------------------

/// One tool's input schema, as `tools/list` gave it.
struct Spec {
    name: String,
    props: Vec<(String, Value)>,
    required: Vec<String>,
}

impl Spec {
    fn from_tool(t: &Value) -> Spec {
        let schema = &t["inputSchema"];
        let props = schema["properties"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let required = schema["required"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Spec {
            name: t["name"].as_str().expect("a tool name").to_string(),
            props,
            required,
        }
    }

    fn schema(&self, prop: &str) -> Option<&Value> {
        self.props.iter().find(|(k, _)| k == prop).map(|(_, v)| v)
    }
}

fn type_of(schema: &Value) -> &str {
    schema["type"].as_str().unwrap_or("any")
}

/// The content forms of send/reply/edit, of which a valid call gives exactly one.
const CONTENT_FORMS: [&str; 7] = [
    "text",
    "markdown",
    "card",
    "image_key",
    "file_key",
    "share_chat",
    "share_user",
];

struct Gen<'a> {
    pools: &'a Pools,
    rng: Rng,
}

impl Gen<'_> {
    fn pick(&mut self, items: &[String]) -> String {
        pick(&mut self.rng, items).clone()
    }

    /// A made-up id of the right shape: most plausible receivers then fail fast at Lark
    /// instead of queuing behind the server's 5 sends/s per receiver.
    fn fake(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", hex(&mut self.rng, len))
    }

    fn real_or_fake(&mut self, real: &[String], prefix: &str, len: usize) -> String {
        if self.rng.u8(..10) < 6 {
            self.pick(real)
        } else {
            self.fake(prefix, len)
        }
    }

    fn person(&mut self) -> String {
        let p = self.pools;
        match self.rng.u8(..3) {
            0 => self.pick(&p.emails),
            1 => self.fake("ou_", 32),
            _ => self.pick(&p.open_ids),
        }
    }

    fn words(&mut self) -> String {
        let w = [
            "fuzz",
            "robot",
            "部门",
            "周报",
            "Ünïcødé",
            "release",
            "chat",
            "ok",
            "🦀",
        ];
        (0..self.rng.usize(1..5))
            .map(|_| *pick(&mut self.rng, &w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn valid_string(&mut self, tool: &str, prop: &str) -> String {
        let p = self.pools;
        match prop {
            "user_id" => self.real_or_fake(&p.user_ids, "ou_", 32),
            "user_ids" => self.real_or_fake(&p.user_ids, "on_", 32),
            "department_id" | "parent_id" => self.real_or_fake(&p.departments, "od-", 32),
            "group_id" => self.real_or_fake(&p.groups, "g_", 12),
            "chat_id" | "share_chat" => self.real_or_fake(&p.chats, "oc_", 32),
            "thread_id" => self.real_or_fake(&p.threads, "omt_", 16),
            "message_id" if matches!(tool, "edit_message" | "recall_message") => {
                self.real_or_fake(&p.bot_messages, "om_", 32)
            }
            "message_id" => self.real_or_fake(&p.messages, "om_", 32),
            "to" => match self.rng.u8(..6) {
                0 => self.pick(&p.user_ids),
                1 => self.pick(&p.emails),
                2 => self.pick(&p.chats),
                3 if tool == "forward_message" => self.pick(&p.threads),
                4 => format!("nobody.{}@northwind.example", hex(&mut self.rng, 6)),
                _ => self.fake("oc_", 32),
            },
            "owner" | "share_user" | "members" => self.person(),
            "emails" => match self.rng.u8(..4) {
                0 => format!("nobody.{}@northwind.example", hex(&mut self.rng, 6)),
                1 => pick(&mut self.rng, EDGE_EMAILS).to_string(),
                _ => self.pick(&p.emails),
            },
            "mobiles" => match self.rng.u8(..3) {
                0 => pick(&mut self.rng, EDGE_MOBILES).to_string(),
                _ => self.pick(&p.mobiles),
            },
            "emoji" => ["THUMBSUP", "OK", "DONE", "SMILE", "HEART", "CLAP", "Nope"]
                [self.rng.usize(..7)]
            .to_string(),
            "reaction_id" => hex(&mut self.rng, 24),
            "file_key" | "image_key" => match self.rng.u8(..3) {
                0 => self.fake("file_v3_", 26),
                1 => self.fake("img_v3_", 26),
                _ => pick(&mut self.rng, &p.resources).1.clone(),
            },
            "path" => self.pick(&p.good_paths),
            "save_as" => format!("fuzz-{}.bin", hex(&mut self.rng, 6)),
            "since" | "until" => {
                let spans = ["30m", "24h", "7d", "2w", "today", "yesterday", "now"];
                if self.rng.bool() {
                    pick(&mut self.rng, &spans).to_string()
                } else {
                    "2026-01-01T00:00:00+08:00".into()
                }
            }
            "text" => match self.rng.u8(..4) {
                0 => format!("hi <at id=\"{}\"></at>", self.pick(&p.open_ids)),
                1 => format!("hello @{}", self.pick(&p.emails)),
                _ => self.words(),
            },
            "markdown" => format!(
                "# {}\n**bold** _it_ ~~s~~ [link](https://example.com)\n- a\n- b\n\n`code`",
                self.words()
            ),
            "idempotency_key" | "page_token" => hex(&mut self.rng, 16),
            _ => self.words(),
        }
    }

    fn card(&mut self) -> Value {
        json!({
            "config": {"wide_screen_mode": true, "update_multi": true},
            "header": {"title": {"tag": "plain_text", "content": self.words()}},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": self.words()}}]
        })
    }

    fn valid_value(&mut self, tool: &str, prop: &str, schema: &Value) -> Value {
        if let Some(options) = schema["enum"].as_array() {
            return pick(&mut self.rng, options).clone();
        }
        match type_of(schema) {
            "string" => Value::String(self.valid_string(tool, prop)),
            "integer" => json!(match prop {
                "max_items" => self.rng.u32(1..700),
                _ => self.rng.u32(1..=60),
            }),
            "boolean" => json!(self.rng.bool()),
            "array" => {
                let n = self.rng.usize(..5);
                let item = schema["items"].clone();
                (0..n)
                    .map(|_| self.valid_value(tool, prop, &item))
                    .collect()
            }
            _ => self.card(),
        }
    }

    /// Required fields always, optional ones with probability `optional`; then the
    /// cross-field rules the schema cannot say, so that "valid" cases mostly are.
    fn valid_args(&mut self, spec: &Spec, optional: f32) -> Map<String, Value> {
        let mut args = Map::new();
        for (prop, schema) in &spec.props {
            if spec.required.contains(prop) || self.rng.f32() < optional {
                let v = self.valid_value(&spec.name, prop, schema);
                args.insert(prop.clone(), v);
            }
        }
        let forms: Vec<&str> = CONTENT_FORMS
            .iter()
            .copied()
            .filter(|f| spec.schema(f).is_some())
            .collect();
        if !forms.is_empty() {
            let keep = *pick(&mut self.rng, &forms);
            for f in &forms {
                args.remove(*f);
            }
            let schema = spec.schema(keep).cloned().unwrap_or(Value::Null);
            let v = self.valid_value(&spec.name, keep, &schema);
            args.insert(keep.into(), v);
        }
        // Lark refuses a made-up page token, which would keep most plausible list calls
        // from their success path.
        if self.rng.u8(..8) != 0 {
            args.remove("page_token");
        }
        if spec.name == "list_messages" {
            let (keep, drop) = if self.rng.u8(..4) == 0 {
                ("thread_id", "chat_id")
            } else {
                ("chat_id", "thread_id")
            };
            args.remove(drop);
            let v = Value::String(self.valid_string(&spec.name, keep));
            args.insert(keep.into(), v);
        }
        if spec.name == "download_resource" && self.rng.u8(..10) < 7 {
            let (m, k) = pick(&mut self.rng, &self.pools.resources).clone();
            args.insert("message_id".into(), json!(m));
            args.insert("file_key".into(), json!(k));
        }
        if spec.name == "lookup_user_by_email" && !args.contains_key("emails") {
            let e = self.valid_string(&spec.name, "emails");
            args.insert("emails".into(), json!([e]));
        }
        args
    }

    /// A value of another JSON type than `schema` asks for.
    fn wrong_type(&mut self, schema: &Value) -> Value {
        let candidates: Vec<Value> = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!("1"),
            json!("true"),
            json!(""),
            json!([]),
            json!(["x"]),
            json!({}),
            json!({"value": "x"}),
        ]
        .into_iter()
        .filter(|v| {
            !matches!(
                (type_of(schema), v),
                ("string", Value::String(_))
                    | ("boolean", Value::Bool(_))
                    | ("array", Value::Array(_))
                    | ("integer", Value::Number(_))
            )
        })
        .collect();
        pick(&mut self.rng, &candidates).clone()
    }

    fn outside_path(&mut self, prop: &str) -> String {
        let p = self.pools;
        if prop == "save_as" {
            self.pick(&p.bad_names)
        } else if prop == "path" || self.rng.bool() {
            self.pick(&p.bad_paths)
        } else {
            self.pick(&p.bad_names)
        }
    }

    /// One light hostile value for `prop` (the heavy ones have kinds of their own).
    fn hostile(&mut self, tool: &str, prop: &str, schema: &Value) -> Value {
        match self.rng.u8(..9) {
            0 | 1 => self.wrong_type(schema),
            2 => {
                let prefix = self.valid_string(tool, prop);
                json!(odd_text(&mut self.rng, &prefix))
            }
            3 => json!(*pick(&mut self.rng, PATH_LIKE)),
            4 => pick(&mut self.rng, &numbers()).clone(),
            5 => json!(*pick(&mut self.rng, SPANS)),
            6 => json!(self.outside_path(prop)),
            7 if type_of(schema) == "array" => {
                let n = self.rng.usize(51..200);
                let v = self.valid_value(tool, prop, &schema["items"]);
                json!(vec![v; n])
            }
            _ => json!(long_id(&mut self.rng, self.pools)),
        }
    }

    /// A property to mutate, preferring those `prefer` accepts; `None` if the tool takes
    /// no arguments at all.
    fn target(&mut self, spec: &Spec, prefer: impl Fn(&str, &Value) -> bool) -> Option<String> {
        let preferred: Vec<&String> = spec
            .props
            .iter()
            .filter(|(k, s)| prefer(k, s))
            .map(|(k, _)| k)
            .collect();
        if !preferred.is_empty() {
            return Some((*pick(&mut self.rng, &preferred)).clone());
        }
        if spec.props.is_empty() {
            return None;
        }
        Some(pick(&mut self.rng, &spec.props).0.clone())
    }

    /// Plausible arguments with one property — one `prefer` accepts, where there is one —
    /// set to what `make` builds; a tool without arguments gets it under an unknown name.
    fn set(
        &mut self,
        spec: &Spec,
        prefer: impl Fn(&str, &Value) -> bool,
        make: impl FnOnce(&mut Self, &str, &Value) -> Value,
    ) -> Value {
        let mut args = self.valid_args(spec, 0.3);
        let prop = self.target(spec, prefer);
        let key = prop.clone().unwrap_or_else(|| "x".into());
        let schema = prop
            .and_then(|p| spec.schema(&p).cloned())
            .unwrap_or(json!({"type": "string"}));
        let v = make(self, &key, &schema);
        args.insert(key, v);
        Value::Object(args)
    }

    /// The `arguments` of one case (`None`: the key is left out).
    fn arguments(&mut self, spec: &Spec, kind: Kind) -> Option<Value> {
        let is_string = |_: &str, s: &Value| type_of(s) == "string";
        let tool = spec.name.clone();
        Some(match kind {
            Kind::Valid => Value::Object(self.valid_args(spec, 0.5)),
            Kind::Minimal => Value::Object(self.valid_args(spec, 0.0)),
            Kind::WrongType => {
                let mut args = self.valid_args(spec, 0.3);
                for _ in 0..self.rng.usize(1..3) {
                    if let Some(p) = self.target(spec, |_, _| true) {
                        let s = spec.schema(&p).cloned().unwrap_or_default();
                        let v = self.wrong_type(&s);
                        args.insert(p, v);
                    } else {
                        args.insert("x".into(), json!(1));
                    }
                }
                Value::Object(args)
            }
            Kind::MissingRequired => {
                let mut args = self.valid_args(spec, 0.5);
                if spec.required.is_empty() || self.rng.u8(..4) == 0 {
                    args.clear();
                    // Optional fields without the required ones.
                    for (p, s) in &spec.props {
                        if !spec.required.contains(p) && self.rng.bool() {
                            let v = self.valid_value(&tool, p, s);
                            args.insert(p.clone(), v);
                        }
                    }
                } else {
                    let drop = self.pick(&spec.required);
                    args.remove(&drop);
                }
                Value::Object(args)
            }
            Kind::UnknownField => {
                let mut args = self.valid_args(spec, 0.5);
                for _ in 0..self.rng.usize(1..4) {
                    let key = if self.rng.u8(..4) == 0 {
                        odd_text(&mut self.rng, "k")
                    } else {
                        pick(&mut self.rng, EXTRA_KEYS).to_string()
                    };
                    let v = self.hostile(&tool, &key, &json!({"type": "string"}));
                    args.insert(key, v);
                }
                if self.rng.u8(..8) == 0 {
                    for i in 0..1000 {
                        args.insert(format!("extra_{i}"), json!(i));
                    }
                }
                Value::Object(args)
            }
            Kind::OddText => self.set(spec, is_string, |g, p, _| {
                let prefix = g.valid_string(&tool, p);
                json!(odd_text(&mut g.rng, &prefix))
            }),
            Kind::Markup => self.set(
                spec,
                |p, _| p == "text" || p == "markdown",
                |g, _, _| json!(markup(&mut g.rng)),
            ),
            Kind::PathLike => self.set(spec, is_string, |g, p, _| {
                let piece = *pick(&mut g.rng, PATH_LIKE);
                if g.rng.bool() {
                    json!(piece)
                } else {
                    let real = g.valid_string(&tool, p);
                    json!(format!("{real}/{piece}"))
                }
            }),
            Kind::LongId => self.set(
                spec,
                |p, s| is_string(p, s) && p != "text" && p != "markdown",
                |g, _, _| json!(long_id(&mut g.rng, g.pools)),
            ),
            Kind::Megabyte => self.set(spec, is_string, |g, _, _| json!(megabyte(&mut g.rng))),
            Kind::Numbers => self.set(
                spec,
                |_, s| type_of(s) == "integer",
                |g, _, _| pick(&mut g.rng, &numbers()).clone(),
            ),
            Kind::Spans => self.set(
                spec,
                |p, _| p == "since" || p == "until",
                |g, _, _| json!(*pick(&mut g.rng, SPANS)),
            ),
            Kind::BigArray => self.set(
                spec,
                |_, s| type_of(s) == "array",
                |g, p, s| {
                    // Items are what an array property holds (strings), or short scalars
                    // in a property that is no array at all.
                    let item = match g.rng.u8(..3) {
                        0 => Value::Null,
                        1 => json!(format!("{p}-{}", "x".repeat(40))),
                        _ if type_of(s) == "array" => g.valid_value(&tool, p, &s["items"]),
                        _ => json!(g.valid_string(&tool, p)),
                    };
                    let mut items = vec![item; BIG_ARRAY];
                    if g.rng.bool() {
                        // Mixed types, so a refusal of the first item is not the only path.
                        for (i, v) in items.iter_mut().enumerate().step_by(7) {
                            *v = json!(i);
                        }
                    }
                    Value::Array(items)
                },
            ),
            Kind::Deep => self.set(
                spec,
                |p, _| p == "card",
                |g, _, _| nested(DEEP_OK, &mut g.rng),
            ),
            Kind::TooDeep => self.set(spec, |_, _| true, |g, _, _| nested(TOO_DEEP, &mut g.rng)),
            Kind::OutsidePath => self.set(
                spec,
                |p, _| p == "path" || p == "save_as",
                |g, p, _| json!(g.outside_path(p)),
            ),
            Kind::NotAnObject => {
                let options = [
                    json!("arguments"),
                    json!(""),
                    json!(42),
                    json!(-1.5),
                    json!(true),
                    json!(null),
                    json!([]),
                    json!([{}]),
                    json!([["x"]]),
                    json!("{\"user_id\":\"ou_x\"}"),
                ];
                pick(&mut self.rng, &options).clone()
            }
            Kind::NoArguments => {
                if self.rng.bool() {
                    return None;
                }
                json!({})
            }
            Kind::AllHostile => {
                let mut args = Map::new();
                for (p, s) in &spec.props {
                    let v = self.hostile(&tool, p, s);
                    args.insert(p.clone(), v);
                }
                if args.is_empty() {
                    let v = self.hostile(&tool, "x", &json!({"type": "string"}));
                    args.insert("x".into(), v);
                }
                Value::Object(args)
            }
        })
    }

    /// `_meta` for some calls: a progress token (paged tools then send progress
    /// notifications, which must be JSON-RPC too), now and then a malformed one.
    fn meta(&mut self, id: u64) -> Option<Value> {
        match self.rng.u8(..40) {
            0..=3 => Some(json!({"progressToken": format!("p-{id}")})),
            4 => Some(json!({"progressToken": id})),
            5 => Some(json!({"progressToken": {"x": 1}})),
            6 => Some(json!({"progressToken": null, "x": "\u{202e}"})),
            7 => Some(json!("not an object")),
            _ => None,
        }
    }
}

// ---- the run -----------------------------------------------------------------------------------

/// A request waiting for its answer.
struct Pending {
    tool: String,
    index: usize,
    kind: Kind,
    sent: Instant,
    /// The whole line, kept only while in flight, for the failure report.
    line: String,
    /// The upload path asked for, to check that an upload that succeeded read an allowed file.
    path: Option<String>,
}

impl Pending {
    fn label(&self) -> String {
        format!("{}#{} ({:?})", self.tool, self.index, self.kind)
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: usize,
    is_error: usize,
    rpc_error: usize,
    max_latency: Duration,
}

struct Failure {
    what: String,
    line: Option<String>,
}

struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::UnboundedReceiver<(Vec<u8>, Instant)>,
    stderr: Stderr,
    seed: u64,
    read_root: PathBuf,
    pending: HashMap<String, Pending>,
    /// Lines serde_json cannot parse (nesting past 128) are answered with id `null`, in
    /// the order they were read.
    pending_null: VecDeque<Pending>,
    /// Requests given up on, by id, so a late answer is reported as such.
    gave_up: HashMap<String, String>,
    /// Answers to the requests outside the fuzz (initialize, tools/list, the amplification
    /// probes, ping).
    setup: HashMap<String, Value>,
    tally: HashMap<String, Tally>,
    unanswered: usize,
    panics: usize,
    notifications: usize,
    max_latency: (Duration, String),
    failures: Vec<Failure>,
}

/// Reads stdout as raw lines, so that anything that is not UTF-8 JSON is seen and
/// reported rather than ending the reader.
fn read_stdout(out: ChildStdout) -> mpsc::UnboundedReceiver<(Vec<u8>, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = BufReader::with_capacity(1 << 16, out);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((line, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// A request's id as a map key (ids are numbers or strings here).
fn id_key(id: &Value) -> String {
    id.to_string()
}

/// `v` shortened for a report: long strings, long arrays, big objects and deep nesting cut.
fn abbrev(v: &Value, depth: usize) -> Value {
    if depth > 6 {
        return json!("…(deeper)");
    }
    match v {
        Value::String(s) if s.len() > 80 => {
            let head: String = s.chars().take(30).collect();
            json!(format!("{head}…({} bytes)", s.len()))
        }
        Value::Array(a) if a.len() > 6 => {
            let mut out: Vec<Value> = a.iter().take(3).map(|x| abbrev(x, depth + 1)).collect();
            out.push(json!(format!("…({} items)", a.len())));
            Value::Array(out)
        }
        Value::Array(a) => a.iter().map(|x| abbrev(x, depth + 1)).collect(),
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, x) in o.iter().take(12) {
                out.insert(k.chars().take(40).collect(), abbrev(x, depth + 1));
            }
            if o.len() > 12 {
                out.insert("…".into(), json!(format!("{} keys", o.len())));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn with_commas(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a stdout line is, if it is JSON-RPC at all.
#[derive(Debug)]
enum Line {
    Response(Value),
    /// A notification (progress, list changed) or a request of the server's.
    Other,
}

/// Checks that one stdout line is a single JSON-RPC 2.0 message: UTF-8 JSON, an object,
/// `"jsonrpc": "2.0"`, and either a response (an `id` and exactly one of `result` and
/// `error`) or a message with a `method`. Anything else — a log line, a stray print, a
/// half-written message — is the error returned.
fn jsonrpc_line(raw: &[u8]) -> Result<Line, String> {
    let shown = || {
        String::from_utf8_lossy(&raw[..raw.len().min(300)])
            .trim_end()
            .to_string()
    };
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("stdout line is not UTF-8 ({e}): {}", shown()))?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("stdout line is not JSON ({e}): {}", shown()))?;
    let not_rpc = || format!("stdout line is not a JSON-RPC message: {}", shown());
    let obj = v.as_object().ok_or_else(not_rpc)?;
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(not_rpc());
    }
    match obj.get("method") {
        None if obj.contains_key("id")
            && (obj.contains_key("result") ^ obj.contains_key("error")) =>
        {
            Ok(Line::Response(v))
        }
        Some(Value::String(_)) if !obj.contains_key("result") && !obj.contains_key("error") => {
            Ok(Line::Other)
        }
        _ => Err(not_rpc()),
    }
}

impl Run {
    fn fail(&mut self, what: String, line: Option<String>) {
        self.failures.push(Failure { what, line });
    }

    /// Fails the test with every failure so far: the first 40 in the message, the request
    /// lines of all of them in [`failures_file`].
    fn give_up(&self, headline: &str, stderr: &str) -> ! {
        const SHOWN: usize = 40;
        let mut report = String::new();
        let mut lines = String::new();
        for (i, f) in self.failures.iter().enumerate() {
            let v = f.line.as_deref().map(|line| {
                lines.push_str(line);
                lines.push('\n');
                serde_json::from_str::<Value>(line).unwrap_or(Value::Null)
            });
            if i < SHOWN {
                report.push_str(&f.what);
                if let Some(v) = v {
                    report.push_str(&format!("\n    {}", abbrev(&v["params"], 0)));
                }
                report.push('\n');
            }
        }
        if self.failures.len() > SHOWN {
            report.push_str(&format!("… and {} more\n", self.failures.len() - SHOWN));
        }
        let _ = std::fs::write(failures_file(), lines);
        panic!(
            "{headline}: {} failures (seed {:#x}; replay one with FUZZ_SEED={:#x} FUZZ_ONLY=<tool>#<index>; request lines in {}):\n{report}\nserver stderr tail:\n{}",
            self.failures.len(),
            self.seed,
            self.seed,
            failures_file().display(),
            tail(stderr)
        );
    }

    async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        // The server reads ahead by at most 32 messages, so a write can wait for it; one
        // that waits for the whole answer window means it stopped reading.
        let written = tokio::time::timeout(ANSWER_WITHIN, async {
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            let headline = format!("the server stopped reading stdin ({written:?})");
            self.give_up(&headline, &self.stderr.text());
        }
    }

    /// Checks one stdout line and accounts for it.
    fn handle(&mut self, raw: &[u8], at: Instant) {
        let v = match jsonrpc_line(raw) {
            Ok(Line::Response(v)) => v,
            Ok(Line::Other) => {
                self.notifications += 1;
                return;
            }
            Err(e) => {
                self.fail(e, None);
                return;
            }
        };
        let obj = v.as_object().expect("a response is an object");
        let shown = || obj.get("error").map(Value::to_string).unwrap_or_default();
        let key = id_key(&obj["id"]);
        if obj["id"].as_str().is_some_and(|id| id.starts_with(SETUP)) {
            self.setup.insert(key, v);
            return;
        }
        let entry = if obj["id"].is_null() {
            self.pending_null.pop_front()
        } else {
            self.pending.remove(&key)
        };
        let Some(p) = entry else {
            let what = match self.gave_up.get(&key) {
                Some(label) => format!("{label}: answered only after it was given up on"),
                None => format!("a response nobody asked for, id {key}"),
            };
            self.fail(what, None);
            return;
        };
        let latency = at.saturating_duration_since(p.sent);
        if latency > self.max_latency.0 {
            self.max_latency = (latency, p.label());
        }
        let t = self.tally.entry(p.tool.clone()).or_default();
        t.max_latency = t.max_latency.max(latency);
        if let Some(err) = obj.get("error") {
            t.rpc_error += 1;
            if !err["code"].is_i64() || !err["message"].is_string() {
                let what = format!("{}: malformed error object: {}", p.label(), shown());
                self.fail(what, Some(p.line));
            } else if err["code"] == json!(-32603) {
                // Arguments are the client's fault (-32602), never the server's.
                let what = format!("{}: JSON-RPC internal error: {}", p.label(), shown());
                self.fail(what, Some(p.line));
            }
            return;
        }
        let result = &obj["result"];
        let is_error = result["isError"] == json!(true);
        if is_error {
            t.is_error += 1;
        } else {
            t.ok += 1;
        }
        let texts: Vec<&str> = result["content"]
            .as_array()
            .map(|c| c.iter().filter_map(|b| b["text"].as_str()).collect())
            .unwrap_or_default();
        // The server turns a tool's panic into this answer; it is still a bug.
        // (A tool's own error text may quote the arguments, so only the server's wording
        // counts: "internal error" at the start of the text or in its fixed sentence.)
        if let Some(t) = texts.iter().find(|t| {
            t.contains("failed with an internal error") || t.starts_with("internal error")
        }) {
            self.panics += 1;
            let what = format!(
                "{}: contained panic / internal error: {}",
                p.label(),
                t.chars().take(300).collect::<String>()
            );
            self.fail(what, Some(p.line));
            return;
        }
        if !is_error
            && let Some(path) = &p.path
            && !std::fs::canonicalize(path).is_ok_and(|real| real.starts_with(&self.read_root))
        {
            let what = format!(
                "{}: uploaded {path:?}, which is not inside the allowed directory",
                p.label()
            );
            self.fail(what, Some(p.line));
        }
    }

    /// Gives up on requests that have waited longer than the answer window.
    fn expire(&mut self, now: Instant) {
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= ANSWER_WITHIN)
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            let p = self.pending.remove(&key).expect("pending");
            self.unanswered += 1;
            self.gave_up.insert(key, p.label());
            let what = format!("{}: no answer within {ANSWER_WITHIN:?}", p.label());
            self.fail(what, Some(p.line));
        }
        while self
            .pending_null
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.sent) >= ANSWER_WITHIN)
        {
            let p = self.pending_null.pop_front().expect("pending");
            self.unanswered += 1;
            let what = format!(
                "{}: no parse-error answer within {ANSWER_WITHIN:?}",
                p.label()
            );
            self.fail(what, Some(p.line));
        }
    }

    fn oldest(&self) -> Option<Instant> {
        self.pending
            .values()
            .chain(self.pending_null.iter())
            .map(|p| p.sent)
            .min()
    }

    /// Waits for the next stdout line until `until`; false when stdout has closed.
    async fn pump(&mut self, until: Instant) -> bool {
        match tokio::time::timeout_at(until.into(), self.stdout.recv()).await {
            Ok(Some((raw, at))) => {
                self.handle(&raw, at);
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// A request outside the fuzz, answered in time or the test fails.
    async fn request(&mut self, name: &str, method: &str, params: Value) -> Value {
        let id = format!("{SETUP}{name}");
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&line.to_string()).await;
        let key = id_key(&json!(id));
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            if let Some(v) = self.setup.remove(&key) {
                return v;
            }
            self.expire(Instant::now());
            if Instant::now() >= deadline || !self.pump(deadline).await {
                self.give_up(&format!("no answer to {method}"), &self.stderr.text());
            }
        }
    }
}

/// Markdown that once blew up memory: turning it into a post repeated every open block
/// quote's "┃ " and every open list's indentation on each line, so the post grew with
/// nesting depth × lines before its 30 KB limit was checked (12 KB of `- - - … x` built a
/// ~70 MB post). The prefix is now bounded; these probes keep it so.
///
/// They run alone, after the fuzz, so that the growth of the server's peak RSS (VmHWM) is
/// theirs.
fn amplifiers() -> [(&'static str, String); 2] {
    [
        (
            "6,000 nested list items on one line",
            format!("{}x", "- ".repeat(6000)),
        ),
        (
            "4,000 nested block quotes over 4,000 lines",
            format!("{} a\n{}", ">".repeat(4000), "b\n".repeat(4000)),
        ),
    ]
}

/// What a 12 KB markdown may add to the server's peak memory: a post is at most 30 KB,
/// and the work to get there is a small multiple of that.
const AMPLIFY_BUDGET_MB: u64 = 64;

/// Sends each of the [`amplifiers`] once and returns (what it cost, over budget?).
async fn markdown_amplification(run: &mut Run, pid: u32) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (i, (what, markdown)) in amplifiers().into_iter().enumerate() {
        let bytes = with_commas(markdown.len());
        let args = json!({"to": common::ALL_HANDS_CHAT, "markdown": markdown});
        // Resets the peak to the current size (Linux), so this probe's peak is its own
        // even when an earlier one freed less than it took; harmless where unsupported.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let before = peak_rss_mb(pid);
        let t0 = Instant::now();
        let answer = run
            .request(
                &format!("amplify-{i}"),
                "tools/call",
                json!({"name": "send_message", "arguments": args}),
            )
            .await;
        let ms = t0.elapsed().as_millis();
        let text: String = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(120)
            .collect();
        let (Some(before), Some(after)) = (before, peak_rss_mb(pid)) else {
            continue;
        };
        let grew = after.saturating_sub(before);
        out.push((
            format!(
                "send_message markdown of {bytes} bytes, {what}: peak RSS {before} → {after} MB (+{grew} MB, budget {AMPLIFY_BUDGET_MB}), {ms} ms; answer: {text}"
            ),
            grew > AMPLIFY_BUDGET_MB,
        ));
    }
    out
}

/// Where the request lines of failed cases go, for replay by hand.
fn failures_file() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_tools-failures.jsonl")
}

/// The child's peak resident set (VmHWM), in MB; None where /proc does not say.
fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok()?.to_string().parse().ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// Panics in this process: the sandbox runs here, and a handler that panics only drops
/// its connection, which the server would report as a network error and nobody would see.
static HERE_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics_here() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        HERE_PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_survives_hostile_arguments_over_stdio() {
    count_panics_here();
    let started = Instant::now();
    let seed: u64 = env_or("FUZZ_SEED", DEFAULT_SEED);
    let per_tool: usize = env_or("FUZZ_CALLS_PER_TOOL", CALLS_PER_TOOL);
    let only = std::env::var("FUZZ_ONLY").ok();

    let _ = std::fs::remove_file(failures_file());
    let files = Files::create();
    let read_before = tree(&files.base().join("read"));
    let pools = Pools::new(&files);
    let sbx = Sbx::start().await;
    let read_dir = files.read_dir();
    let dl_dir = files.at("dl");
    let mut cmd = serve_command(
        &sbx.base,
        &["--allow-read-dir", &read_dir, "--download-dir", &dl_dir],
        &[
            ("LARK_CALL_TIMEOUT", &CALL_BUDGET_SECS.to_string()),
            // Panics print regardless; warnings and errors are what is worth reading.
            ("RUST_LOG", "warn"),
        ],
    );
    cmd.current_dir(files.base().join("cwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the server binary starts");
    let stderr = Stderr::default();
    stderr.collect(child.stderr.take().expect("stderr"));
    let mut run = Run {
        stdin: child.stdin.take(),
        stdout: read_stdout(child.stdout.take().expect("stdout")),
        child,
        stderr,
        seed,
        read_root: std::fs::canonicalize(&read_dir).expect("the read dir"),
        pending: HashMap::new(),
        pending_null: VecDeque::new(),
        gave_up: HashMap::new(),
        setup: HashMap::new(),
        tally: HashMap::new(),
        unanswered: 0,
        panics: 0,
        notifications: 0,
        max_latency: (Duration::ZERO, String::new()),
        failures: Vec::new(),
    };

    let init = run
        .request(
            "init",
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "fuzz", "version": "0"}}),
        )
        .await;
    assert!(init.get("result").is_some(), "initialize: {init}");
    run.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .await;
    let list = run.request("list", "tools/list", json!({})).await;
    let tools: Vec<Value> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {list}"))
        .clone();
    // Tools acting as the user stay hidden: nobody is signed in here.
    let bot_tools = lark_mcp_server::tools::catalog()
        .iter()
        .filter(|d| d.meta.identity.bot_capable() && d.meta.toolset.is_default())
        .count();
    assert_eq!(
        tools.len(),
        bot_tools,
        "all toolsets, a read dir and a download dir expose every bot tool: {:?}",
        tools.iter().map(|t| &t["name"]).collect::<Vec<_>>()
    );
    let mut specs: Vec<Spec> = tools.iter().map(Spec::from_tool).collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name));

    // The schedule: every (tool, index), shuffled so that tools run side by side the way
    // an agent's calls would, and writes to one receiver spread over the run.
    let mut schedule: Vec<(usize, usize)> = Vec::new();
    for (t, spec) in specs.iter().enumerate() {
        for i in 0..per_tool {
            let wanted = match only
                .as_deref()
                .map(|o| o.split_once('#').unwrap_or((o, "")))
            {
                None => true,
                Some((tool, "")) => tool == spec.name,
                Some((tool, index)) => tool == spec.name && index == i.to_string(),
            };
            if wanted {
                schedule.push((t, i));
            }
        }
    }
    assert!(!schedule.is_empty(), "FUZZ_ONLY={only:?} selects nothing");
    Rng::with_seed(seed).shuffle(&mut schedule);
    let total = schedule.len();

    let mut queue: VecDeque<(usize, usize)> = schedule.into();
    let mut next_id: u64 = 1;
    loop {
        while run.pending.len() + run.pending_null.len() < IN_FLIGHT
            && let Some((t, index)) = queue.pop_front()
        {
            let spec = &specs[t];
            let mut rng = case_rng(seed, &spec.name, index);
            let kind = kind_for(index, &mut rng);
            let mut g = Gen { pools: &pools, rng };
            let arguments = g.arguments(spec, kind);
            let id = next_id;
            next_id += 1;
            // String ids now and then: both forms must come back as sent.
            let id_value = if id.is_multiple_of(5) {
                json!(format!("fz-{id}"))
            } else {
                json!(id)
            };
            let mut params = Map::new();
            params.insert("name".into(), json!(spec.name));
            if let Some(a) = &arguments {
                params.insert("arguments".into(), a.clone());
            }
            if let Some(m) = g.meta(id) {
                params.insert("_meta".into(), m);
            }
            let line = json!({"jsonrpc": "2.0", "id": id_value, "method": "tools/call",
                              "params": params})
            .to_string();
            let path = spec
                .name
                .starts_with("upload_")
                .then(|| arguments.as_ref()?.get("path")?.as_str().map(String::from))
                .flatten();
            run.send(&line).await;
            let p = Pending {
                tool: spec.name.clone(),
                index,
                kind,
                sent: Instant::now(),
                line,
                path,
            };
            if kind == Kind::TooDeep {
                run.pending_null.push_back(p);
            } else {
                run.pending.insert(id_key(&id_value), p);
            }
        }
        let Some(oldest) = run.oldest() else {
            break;
        };
        if !run.pump(oldest + ANSWER_WITHIN).await {
            let what = format!(
                "stdout closed with {} requests unanswered",
                run.pending.len() + run.pending_null.len()
            );
            run.fail(what, None);
            run.expire(Instant::now() + ANSWER_WITHIN);
            break;
        }
        run.expire(Instant::now());
    }
    let fuzz_time = started.elapsed();

    // Still alive, still answering.
    if let Some(status) = run.child.try_wait().expect("try_wait") {
        let headline = format!("the server exited during the run ({status})");
        run.give_up(
            &headline,
            &run.stderr.complete(Duration::from_secs(5)).await,
        );
    }
    let pid = run.child.id().expect("a running child");
    let peak_rss_mb = peak_rss_mb(pid);
    let amplification = markdown_amplification(&mut run, pid).await;
    let pong = run.request("ping", "ping", json!({})).await;
    if pong.get("result").is_none() {
        run.fail(format!("ping after the run: {pong}"), None);
    }
    drop(run.stdin.take());
    match tokio::time::timeout(Duration::from_secs(10), run.child.wait()).await {
        Ok(Ok(status)) if status.code() == Some(0) => {}
        Ok(Ok(status)) => run.fail(format!("exit status {status} after stdin EOF"), None),
        Ok(Err(e)) => run.fail(format!("cannot wait for the server: {e}"), None),
        Err(_) => {
            run.fail("still running 10 s after stdin EOF".into(), None);
            let _ = run.child.start_kill();
        }
    }
    // Whatever it still wrote before exiting is checked too.
    while let Ok(Some((raw, at))) =
        tokio::time::timeout(Duration::from_secs(2), run.stdout.recv()).await
    {
        run.handle(&raw, at);
    }
    let stderr = run.stderr.complete(Duration::from_secs(5)).await;
    // The panic hook prints one "panicked at" line per panic, contained or not; the
    // server adds "tool call panicked" for each it contained.
    let hook_panics = stderr.lines().filter(|l| l.contains("panicked at")).count();
    run.panics = run.panics.max(hook_panics);
    let panicked: Vec<&str> = stderr.lines().filter(|l| l.contains("panicked")).collect();
    if !panicked.is_empty() {
        let shown = panicked[..panicked.len().min(20)].join("\n");
        run.fail(format!("panics on stderr:\n{shown}"), None);
    }
    let sandbox_panics = HERE_PANICS.load(Ordering::SeqCst);
    if sandbox_panics > 0 {
        run.fail(
            format!("the in-process sandbox panicked {sandbox_panics} times (see above)"),
            None,
        );
    }
    for what in files.escapes(&read_before) {
        run.fail(what, None);
    }

    // The summary the closing note quotes, then the per-tool figures.
    let sum = |f: fn(&Tally) -> usize| run.tally.values().map(f).sum::<usize>();
    let (ok, is_error, rpc_error) = (sum(|t| t.ok), sum(|t| t.is_error), sum(|t| t.rpc_error));
    let what = match &only {
        None => format!(
            "{} tools × {per_tool} = {}",
            specs.len(),
            with_commas(total)
        ),
        Some(o) => format!("FUZZ_ONLY={o}: {}", with_commas(total)),
    };
    // Straight to stderr, past the test harness's capture: the closing note quotes this
    // line from an ordinary `cargo test` run. The per-tool figures below show with
    // `--nocapture` or on failure.
    let summary = format!(
        "fuzz: {what} calls; {} isError, {} ok, {} JSON-RPC errors, {} unanswered, {} panics, max latency {} ms ({}); {} notifications; server peak RSS {} MB; fuzzed in {:.1} s (seed {:#x})",
        with_commas(is_error),
        with_commas(ok),
        with_commas(rpc_error),
        run.unanswered,
        run.panics,
        run.max_latency.0.as_millis(),
        run.max_latency.1,
        with_commas(run.notifications),
        peak_rss_mb.map_or("?".into(), |m| m.to_string()),
        fuzz_time.as_secs_f64(),
        run.seed,
    );
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{summary}");
    }
    for (what, over) in &amplification {
        eprintln!("amplification: {what}");
        if *over {
            run.fail(
                format!("markdown amplification (see `amplifiers`): {what}"),
                None,
            );
        }
    }
    for spec in &specs {
        let Some(t) = run.tally.get(&spec.name) else {
            continue;
        };
        eprintln!(
            "  {:<24} {:>4} ok {:>4} isError {:>4} JSON-RPC errors, max {} ms",
            spec.name,
            t.ok,
            t.is_error,
            t.rpc_error,
            t.max_latency.as_millis()
        );
    }
    if !run.failures.is_empty() {
        run.give_up("the fuzz found problems", &stderr);
    }
}

/// The stdout check must not be vacuous: what it lets through and what it catches.
#[test]
fn the_stdout_check_accepts_json_rpc_only() {
    let ok = [
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
    ];
    for line in ok {
        assert!(jsonrpc_line(line.as_bytes()).is_ok(), "{line}");
    }
    let bad: [&[u8]; 10] = [
        b"2026-11-29T04:00:00Z  INFO lark_mcp_server: serving",
        b"thread 'main' panicked at src/main.rs:1:1",
        b"\xff\xfe{}",
        b"42",
        b"[]",
        br#"{"jsonrpc":"2.0","id":1"#,
        br#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
        br#"{"jsonrpc":"2.0","result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#,
        br#"{"jsonrpc":"2.0","method":7}"#,
    ];
    for line in bad {
        assert!(
            jsonrpc_line(line).is_err(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
