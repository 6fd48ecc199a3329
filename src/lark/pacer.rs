//! Holds sends back so no more than N per second reach one user or chat: Lark refuses
//! the excess with 230020, and a burst should be delivered, not refused.
//!
//! Each receiver has a lane: a log of its recent sends and a fair queue of callers waiting
//! for a slot. A slot is taken only when a send may start, so a caller that gives up while
//! queued costs nobody anything. A send counts from its grant until its answer arrives and
//! then for one window after that: Lark counts arrivals, which lie between the two, so the
//! next send can never land inside the window of an earlier one.
//!
//! One receiver can go by several names (an email, an open_id, the p2p chat; a message id
//! for a reply). [`Pacer::learn`] folds a name into the chat it stands for, so they share a
//! lane once Lark has told us which chat that is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Lark's one-second window, with a margin for clock granularity.
pub(super) const WINDOW: Duration = Duration::from_millis(1010);
/// Lanes and names kept; idle ones beyond this are forgotten.
const MAX_KEYS: usize = 4096;

pub struct Pacer {
    per_second: usize,
    state: Mutex<Lanes>,
}

#[derive(Default)]
struct Lanes {
    by_key: HashMap<String, Arc<Lane>>,
    /// Another name → the receiver (chat) it stands for.
    alias: HashMap<String, String>,
}

struct Lane {
    key: String,
    /// Callers take turns in arrival order (tokio's mutex is fair).
    turn: tokio::sync::Mutex<()>,
    log: Mutex<Log>,
    finished: Notify,
}

impl Lane {
    fn new(key: String) -> Arc<Lane> {
        Arc::new(Lane {
            key,
            turn: tokio::sync::Mutex::new(()),
            log: Mutex::new(Log::default()),
            finished: Notify::new(),
        })
    }
}

#[derive(Default)]
struct Log {
    sends: VecDeque<Send>,
    next_id: u64,
}

#[derive(Clone, Copy)]
enum Send {
    InFlight(u64),
    Done(Instant),
}

/// A granted send; dropping it (answer received, failed or cancelled) starts its window.
pub struct Slot {
    lane: Option<(Arc<Lane>, u64)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((lane, id)) = self.lane.take() {
            let now = Instant::now();
            for s in lock(&lane.log).sends.iter_mut() {
                if matches!(s, Send::InFlight(i) if *i == id) {
                    *s = Send::Done(now);
                }
            }
            lane.finished.notify_waiters();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Log {
    fn prune(&mut self, now: Instant) {
        self.sends
            .retain(|s| !matches!(s, Send::Done(t) if *t + WINDOW <= now));
    }

    /// Takes a slot now, or says until when none can free up (`None`: until a send
    /// in flight finishes).
    fn try_take(&mut self, per_second: usize, now: Instant) -> Result<u64, Option<Instant>> {
        self.prune(now);
        if self.sends.len() < per_second {
            let id = self.next_id;
            self.next_id += 1;
            self.sends.push_back(Send::InFlight(id));
            return Ok(id);
        }
        Err(self
            .sends
            .iter()
            .filter_map(|s| match s {
                Send::Done(t) => Some(*t + WINDOW),
                Send::InFlight(_) => None,
            })
            .min())
    }
}

impl Pacer {
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            per_second: per_second as usize,
            state: Mutex::new(Lanes::default()),
        }
    }

    /// Emails are case-insensitive; ids are not.
    pub(super) fn normalize(key: &str) -> String {
        if key.contains('@') {
            key.to_lowercase()
        } else {
            key.to_string()
        }
    }

    fn canonical(lanes: &Lanes, key: &str) -> String {
        let key = Self::normalize(key);
        lanes.alias.get(&key).cloned().unwrap_or(key)
    }

    fn lane(&self, key: &str) -> Arc<Lane> {
        let mut lanes = lock(&self.state);
        let key = Self::canonical(&lanes, key);
        if lanes.by_key.len() >= MAX_KEYS {
            let now = Instant::now();
            lanes.by_key.retain(|_, l| {
                Arc::strong_count(l) > 1 || {
                    let mut log = lock(&l.log);
                    log.prune(now);
                    !log.sends.is_empty()
                }
            });
        }
        lanes
            .by_key
            .entry(key.clone())
            .or_insert_with(|| Lane::new(key))
            .clone()
    }

    fn is_current(&self, key: &str, lane: &Lane) -> bool {
        Self::canonical(&lock(&self.state), key) == lane.key
    }

    /// Waits for a send slot to `key`. Cancel-safe: a caller dropped while waiting holds
    /// no slot; the slot returned is held until the send's answer is in.
    #[cfg(test)]
    pub async fn wait(&self, key: &str) -> Slot {
        self.wait_and(key, |_| async {}).await.0
    }

    /// As [`Pacer::wait`], then `also(lane)` (a slot in a limiter other replicas share)
    /// while this caller still holds its lane's turn: one caller per lane at a time waits
    /// on it, in arrival order.
    pub async fn wait_and<T, Fut>(&self, key: &str, also: impl FnOnce(String) -> Fut) -> (Slot, T)
    where
        T: Default,
        Fut: Future<Output = T>,
    {
        if self.per_second == 0 {
            return (Slot { lane: None }, T::default());
        }
        'lanes: loop {
            let lane = self.lane(key);
            let _turn = lane.turn.lock().await;
            loop {
                // The name may have been folded into a chat while we queued.
                if !self.is_current(key, &lane) {
                    continue 'lanes;
                }
                let finished = lane.finished.notified();
                let next = lock(&lane.log).try_take(self.per_second, Instant::now());
                match next {
                    Ok(id) => {
                        let slot = Slot {
                            lane: Some((lane.clone(), id)),
                        };
                        return (slot, also(lane.key.clone()).await);
                    }
                    Err(Some(at)) => tokio::time::sleep_until(at).await,
                    Err(None) => finished.await,
                }
            }
        }
    }

    /// The chat `name` is known to reach (a message id: the chat it is in).
    pub fn chat_of(&self, name: &str) -> Option<String> {
        let lanes = lock(&self.state);
        let chat = Self::canonical(&lanes, name);
        (chat != Self::normalize(name) && chat.starts_with("oc_")).then_some(chat)
    }

    /// Records that `name` (an email, open_id, message id, …) reaches the chat `chat_id`,
    /// so sends under either name share one lane from now on.
    pub fn learn(&self, name: &str, chat_id: &str) {
        if name.is_empty() || chat_id.is_empty() || name == chat_id {
            return;
        }
        let mut lanes = lock(&self.state);
        let target = Self::canonical(&lanes, chat_id);
        if Self::canonical(&lanes, name) == target {
            return;
        }
        if lanes.alias.len() >= MAX_KEYS {
            lanes.alias.clear();
        }
        let name = Self::normalize(name);
        lanes.alias.insert(name.clone(), target.clone());
        // Sends already made under the other name count against the chat.
        let Some(old) = lanes.by_key.remove(&name) else {
            return;
        };
        let now = Instant::now();
        let moved: Vec<Send> = lock(&old.log)
            .sends
            .iter()
            .map(|s| match s {
                // Its answer will be recorded in the old lane; count it as just finished.
                Send::InFlight(_) => Send::Done(now),
                done => *done,
            })
            .collect();
        let new = lanes
            .by_key
            .entry(target.clone())
            .or_insert_with(|| Lane::new(target))
            .clone();
        drop(lanes);
        lock(&new.log).sends.extend(moved);
        // Waiters on the old lane re-resolve their name when they next wake.
        old.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn take(p: &Arc<Pacer>, key: &str) -> Duration {
        let start = Instant::now();
        drop(p.wait(key).await);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_spread_over_seconds_per_key() {
        let p = Arc::new(Pacer::new(5));
        let start = Instant::now();
        let mut grants = Vec::new();
        for _ in 0..12 {
            drop(p.wait("oc_1").await);
            grants.push(start.elapsed());
        }
        assert!(grants[..5].iter().all(|d| d.is_zero()));
        assert_eq!(grants[5], WINDOW);
        assert_eq!(grants[10], WINDOW * 2);
        assert!(take(&p, "oc_2").await.is_zero(), "other receivers wait not");
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_in_flight_holds_its_slot_until_answered() {
        let p = Arc::new(Pacer::new(1));
        let first = p.wait("oc_1").await;
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { take(&p, "oc_1").await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            !waiter.is_finished(),
            "no slot while the first send is unanswered"
        );
        drop(first);
        let waited = waiter.await.unwrap_or_default();
        assert_eq!(waited, Duration::from_secs(3) + WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiters_release_their_place() {
        let p = Arc::new(Pacer::new(5));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..100 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                drop(p.wait("oc_1").await);
                (i, start.elapsed())
            }));
            tokio::task::yield_now().await;
        }
        // Twenty callers near the front give up while queued.
        tokio::time::sleep(Duration::from_millis(1)).await;
        for t in &tasks[10..30] {
            t.abort();
        }
        let mut last = Duration::ZERO;
        let mut done = 0;
        for t in tasks {
            if let Ok((_, at)) = t.await {
                done += 1;
                last = last.max(at);
            }
        }
        assert_eq!(done, 80);
        // 80 sends at 5 per window: the last starts after 15 windows, not 19.
        assert_eq!(last, WINDOW * 15);
    }

    #[tokio::test(start_paused = true)]
    async fn names_of_one_receiver_share_a_lane_once_learned() {
        let p = Arc::new(Pacer::new(5));
        for _ in 0..5 {
            drop(p.wait("zhang@example.com").await);
        }
        p.learn("zhang@example.com", "oc_p2p");
        p.learn("ou_zhang", "oc_p2p");
        assert_eq!(
            take(&p, "ou_zhang").await,
            WINDOW,
            "the email's sends count"
        );
        assert!(take(&p, "oc_other").await.is_zero());
    }
}
