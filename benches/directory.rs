//! The directory index behind find_people on a generated org of 10,000 people in 300
//! departments (`sandbox-seed`): build time and Lark calls against the sandbox, without a
//! rate limit and with Lark's 50 calls/s per endpoint (compared with the floor that limit
//! allows), the index's memory, and query latency.
//!
//! `cargo bench --bench directory` (release build; about a minute).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lark_mcp_server::directory::{Directory, DirectoryConfig, Index};
use lark_mcp_server::lark::{LarkClient, LarkConfig};
use lark_mcp_server::sandbox::{Options, Sandbox, seed_gen};
use tokio_util::sync::CancellationToken;

/// Counts live heap bytes, so the index's size is what it allocates.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PEOPLE: usize = 10_000;
const DEPARTMENTS: usize = 300;
/// Lark's usual per-endpoint limit (reference: 50 calls/s on most contact APIs).
const LIMIT_PER_SEC: u32 = 50;
const QUERIES: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("org: {PEOPLE} people in {DEPARTMENTS} departments (sandbox-seed, rng seed 1)");
    let walked = rt.block_on(async {
        let (index, _) = build(0).await;
        build(LIMIT_PER_SEC).await;
        (
            index.people_recs(),
            index.depts.clone(),
            index.chats.clone(),
        )
    });
    // Measured with nothing else running, so the live-byte count is the index's own.
    drop(rt);
    let index = memory(walked);
    queries(&index);
}

/// One first build against a sandbox with `limit` calls/s per endpoint (0: none).
async fn build(limit: u32) -> (Arc<Index>, Duration) {
    let seed = seed_gen::generate(PEOPLE, DEPARTMENTS, 1);
    let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
    let options = Options {
        record_limit: 100_000,
        qps_limit_per_endpoint: limit,
        ..Options::default()
    };
    let sb = Sandbox::start(seed, options, 0).await.expect("sandbox");
    let client = LarkClient::new(
        LarkConfig::new(Some(&app_id), Some(&secret), Some(&sb.base_url())).expect("config"),
    )
    .expect("client");
    let dir = Arc::new(Directory::new(DirectoryConfig::default()));
    let started = Instant::now();
    dir.ensure_started(&client);
    let snap = dir
        .wait_ready(
            Duration::from_secs(300),
            &CancellationToken::new(),
            |_| async {},
        )
        .await;
    let took = started.elapsed();
    assert!(
        snap.progress.complete && snap.error.is_none(),
        "{:?}",
        snap.error
    );
    let requests = sb.state().requests();
    let refused = requests.iter().filter(|r| r.status == 429).count();
    let mut per: std::collections::BTreeMap<String, usize> = Default::default();
    for r in requests.iter().filter(|r| r.status != 429) {
        *per.entry(r.endpoint.clone()).or_default() += 1;
    }
    let answered: usize = per.values().sum();
    let label = if limit == 0 {
        "no rate limit".to_string()
    } else {
        format!("{limit} calls/s per endpoint")
    };
    println!(
        "build ({label}): {:.2} s, {} people, {} chats; {answered} Lark calls answered, {refused} refused with 429",
        took.as_secs_f64(),
        snap.index.people_len(),
        snap.index.chats.len()
    );
    for (endpoint, n) in &per {
        println!("  {endpoint}: {n}");
    }
    if limit > 0 {
        // Endpoints are limited separately and walked at once: the busiest one sets it.
        let floor = per.values().max().copied().unwrap_or(0) as f64 / f64::from(limit);
        println!(
            "  floor at {limit}/s: {floor:.2} s; this build took {:.2}x the floor",
            took.as_secs_f64() / floor
        );
    }
    (snap.index, took)
}

/// Builds the index from what the walk found (as a warm start from the cache does) and
/// reports what it keeps allocated.
fn memory(
    (people, depts, chats): (
        Vec<lark_mcp_server::directory::PersonRec>,
        Vec<lark_mcp_server::directory::DeptRec>,
        Vec<lark_mcp_server::directory::ChatRec>,
    ),
) -> Index {
    let before = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut index = Index::default();
    depts.iter().cloned().for_each(|d| index.add_dept(d));
    people.iter().cloned().for_each(|p| index.add_person(p));
    chats.iter().cloned().for_each(|c| index.add_chat(c));
    index.shrink();
    let took = started.elapsed();
    let bytes = LIVE.load(Ordering::SeqCst).saturating_sub(before);
    println!(
        "index from records: {:.0} ms; memory {:.2} MB for {} people, {} departments, {} chats ({} B a person)",
        took.as_secs_f64() * 1e3,
        bytes as f64 / 1e6,
        index.people_len(),
        index.depts.len(),
        index.chats.len(),
        bytes / index.people_len().max(1)
    );
    index
}

/// What people type: the name, its pinyin (both orders, spaced or not), initials, an
/// English name, an email's local part, a prefix, a one-letter slip, and misses.
fn query_mix(index: &Index) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::with_capacity(QUERIES);
    let n = index.people_len();
    while out.len() < QUERIES {
        let p = index.person_rec(rng.usize(..n));
        let pinyin = lark_mcp_server::directory::keys::syllables(&p.name)
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect::<Vec<_>>();
        let q = match rng.u8(..8) {
            0 => p.name.clone(),
            1 => pinyin.join(" "),
            2 => pinyin.iter().rev().cloned().collect::<Vec<_>>().join(" "),
            3 => pinyin.iter().filter_map(|s| s.chars().next()).collect(),
            4 => p.en_name.clone().unwrap_or_else(|| p.name.clone()),
            5 => p
                .email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .unwrap_or("x")
                .to_string(),
            6 => {
                let mut s: Vec<char> = pinyin.concat().chars().collect();
                if s.len() > 4 {
                    let i = rng.usize(1..s.len() - 1);
                    s.swap(i, i + 1);
                }
                s.into_iter().collect()
            }
            _ => format!("nobody{}", rng.u32(..100_000)),
        };
        out.push(q);
    }
    out
}

fn queries(index: &Index) {
    let mix = query_mix(index);
    let mut times = Vec::with_capacity(mix.len());
    let mut found = 0usize;
    for q in &mix {
        let t = Instant::now();
        let hits = index.find_people(q, 10, false);
        times.push(t.elapsed());
        found += usize::from(!hits.is_empty());
    }
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    println!(
        "find_people on {} people, {} queries ({found} with hits): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        index.people_len(),
        mix.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}
