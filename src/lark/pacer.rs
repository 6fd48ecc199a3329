//! Holds sends back so no more than N per second go to one user or chat: Lark refuses
//! the excess with 230020, and a burst should be delivered, not refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A small margin over Lark's one-second window, for clock and network jitter.
const WINDOW: Duration = Duration::from_millis(1050);
const MAX_KEYS: usize = 4096;

pub struct Pacer {
    per_second: usize,
    slots: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Pacer {
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            per_second: per_second as usize,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next free slot for `key` and returns when it starts.
    fn reserve(&self, key: &str) -> Instant {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() > MAX_KEYS {
            slots.retain(|_, q| q.back().is_some_and(|t| *t + WINDOW > now));
        }
        let q = slots.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| *t + WINDOW <= now) {
            q.pop_front();
        }
        let at = if q.len() >= self.per_second {
            let limiting = q[q.len() - self.per_second];
            (limiting + WINDOW).max(now)
        } else {
            now
        };
        q.push_back(at);
        at
    }

    /// Waits for a send slot to `key`. Cancel-safe: dropping the future only leaves
    /// an unused slot that expires within a second.
    pub async fn wait(&self, key: &str) {
        if self.per_second == 0 {
            return;
        }
        let at = self.reserve(key);
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_spread_over_seconds_per_key() {
        let p = Pacer::new(5);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..12).map(|_| p.reserve("oc_1") - start).collect();
        assert!(slots[..5].iter().all(|d| d.is_zero()));
        assert_eq!(slots[5], WINDOW);
        assert_eq!(slots[10], WINDOW * 2);
        assert!(
            p.reserve("oc_2") == start,
            "other receivers are not held back"
        );
    }
}
