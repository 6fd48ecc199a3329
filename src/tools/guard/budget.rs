//! `--send-budget N/PERIOD`: at most N messages sent (send, reply, forward) in any
//! sliding PERIOD, per server and, over HTTP, per session too. A refused send says when
//! the next one is possible.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSpec {
    pub sends: usize,
    pub period: Duration,
    text: String,
}

impl BudgetSpec {
    /// `30/h`, `100/d`, `5/m`, `2/s`, or with a count before the unit: `10/15m`.
    pub fn parse(s: &str) -> Result<BudgetSpec, String> {
        let bad = || {
            format!(
                "--send-budget: `{s}` is not N/PERIOD, e.g. 30/h, 200/d, 10/15m (units s, m, h, d)"
            )
        };
        let (n, period) = s.trim().split_once('/').ok_or_else(bad)?;
        let sends: usize = n.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let unit_at = period
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(bad)?;
        let (count, unit) = period.split_at(unit_at);
        let count: u64 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| bad())?
        };
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        if sends == 0 || count == 0 || count > 366 * 86_400 / secs {
            return Err(format!(
                "--send-budget: `{s}` must allow at least one send in a period of at most a year"
            ));
        }
        Ok(BudgetSpec {
            sends,
            period: Duration::from_secs(count * secs),
            text: s.trim().to_string(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The sends of the last period, oldest first.
#[derive(Debug)]
pub struct Window {
    spec: BudgetSpec,
    /// Whose budget: "server" or "session", for the refusal.
    pub owner: &'static str,
    sends: Mutex<VecDeque<Instant>>,
}

impl Window {
    pub fn new(spec: BudgetSpec, owner: &'static str) -> Window {
        Window {
            spec,
            owner,
            sends: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.sends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sends that still count at `now` (older ones dropped), locked.
    fn current(&self, now: Instant) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        let mut sends = self.lock();
        while sends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.spec.period)
        {
            sends.pop_front();
        }
        sends
    }

    /// Counts one send, or says how long until one is possible.
    pub fn take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut sends = self.current(now);
        if sends.len() < self.spec.sends {
            sends.push_back(now);
            return Ok(());
        }
        let oldest = sends.front().copied().unwrap_or(now);
        Err(self.spec.period.saturating_sub(now.duration_since(oldest)))
    }

    /// How long until a send is possible, when none is now (without counting one).
    pub fn full_for(&self) -> Option<Duration> {
        let now = Instant::now();
        let sends = self.lock();
        let counting = sends
            .iter()
            .filter(|t| now.duration_since(**t) < self.spec.period);
        let oldest = counting.clone().next().copied()?;
        (counting.count() >= self.spec.sends)
            .then(|| self.spec.period.saturating_sub(now.duration_since(oldest)))
    }

    /// Records a send counted elsewhere (the budget the replicas share), so that this
    /// replica alone still knows its own sends when the shared count cannot be reached.
    pub fn note(&self) {
        let now = Instant::now();
        self.current(now).push_back(now);
    }

    /// Takes back the newest send: it never reached Lark.
    pub fn give_back(&self) {
        self.lock().pop_back();
    }

    /// Sends left in the current window.
    pub fn left(&self) -> usize {
        let now = Instant::now();
        let sends = self.lock();
        let used = sends
            .iter()
            .filter(|t| now.duration_since(**t) < self.spec.period)
            .count();
        self.spec.sends.saturating_sub(used)
    }

    pub fn spec(&self) -> &BudgetSpec {
        &self.spec
    }
}

/// "in 3 min 20 s" for a wait.
pub fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() > 0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why() {
        let b = BudgetSpec::parse("30/h").expect("30/h");
        assert_eq!((b.sends, b.period), (30, Duration::from_secs(3600)));
        let b = BudgetSpec::parse("10/15m").expect("10/15m");
        assert_eq!(b.period, Duration::from_secs(900));
        for bad in ["", "30", "x/h", "30/", "30/w", "0/h", "5/0m", "5/h/2"] {
            assert!(BudgetSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let w = Window::new(BudgetSpec::parse("2/m").expect("spec"), "server");
        assert!(w.take().is_ok());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(w.take().is_ok());
        let wait = w.take().expect_err("over budget");
        assert_eq!(wait, Duration::from_secs(40));
        assert_eq!(w.left(), 0);
        tokio::time::advance(wait).await;
        assert!(w.take().is_ok());
        assert_eq!(w.full_for(), Some(Duration::from_secs(20)));
        w.give_back();
        assert_eq!(w.left(), 1);
        assert_eq!(w.full_for(), None);
        w.note();
        w.note();
        assert_eq!((w.left(), w.take().is_err()), (0, true));
        assert_eq!(human(Duration::from_millis(200_500)), "3 min 21 s");
    }
}
