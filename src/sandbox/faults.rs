//! Injected faults. A rule matches requests by method and path prefix, lets `skip` of them
//! through, then fires on `times` of them (all, when absent) with `probability`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/open-apis/im/v1/messages` (any when absent).
    #[serde(default)]
    pub path: Option<String>,
    /// Matching requests let through before the rule starts firing.
    #[serde(default)]
    pub skip: u64,
    /// How many times the rule fires; unlimited when absent.
    #[serde(default)]
    pub times: Option<u64>,
    /// Chance of firing on an eligible request (default 1).
    #[serde(default = "one")]
    pub probability: f64,
    pub action: FaultAction,
    /// Matching requests seen so far (read-only; reported by the control API).
    #[serde(default)]
    pub seen: u64,
    /// Times fired so far (read-only).
    #[serde(default)]
    pub fired: u64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Delay the response.
    Latency { ms: u64 },
    /// Lark's frequency limit: code 99991400 with `x-ogw-ratelimit-*` headers.
    RateLimit {
        #[serde(default = "status_429")]
        status: u16,
        #[serde(default = "one_u64")]
        reset_secs: u64,
        #[serde(default = "fifty")]
        limit: u64,
    },
    /// A gateway failure; `after` means the request was applied first (a write happened).
    ServerError {
        #[serde(default = "status_500")]
        status: u16,
        #[serde(default)]
        phase: Phase,
    },
    /// The connection is cut; `after` means the request was applied first.
    Drop {
        #[serde(default)]
        phase: Phase,
    },
    /// Any Lark error envelope.
    LarkError {
        code: i64,
        msg: String,
        #[serde(default = "status_400")]
        status: u16,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Before,
    After,
}

fn status_429() -> u16 {
    429
}
fn status_500() -> u16 {
    500
}
fn status_400() -> u16 {
    400
}
fn one_u64() -> u64 {
    1
}
fn fifty() -> u64 {
    50
}

impl FaultRule {
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            method: None,
            path: None,
            skip: 0,
            times: None,
            probability: 1.0,
            action,
            seen: 0,
            fired: 0,
        }
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_ascii_uppercase());
        self
    }
    pub fn path(mut self, p: &str) -> Self {
        self.path = Some(p.into());
        self
    }
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path.starts_with(p))
    }

    /// Counts the request and says whether the rule fires on it.
    fn fire(&mut self, method: &str, path: &str) -> bool {
        if !self.matches(method, path) {
            return false;
        }
        self.seen += 1;
        if self.seen <= self.skip || self.times.is_some_and(|t| self.fired >= t) {
            return false;
        }
        if self.probability < 1.0 && fastrand::f64() >= self.probability {
            return false;
        }
        self.fired += 1;
        true
    }
}

/// The actions that fire for one request, in rule order.
pub fn triggered(rules: &mut [FaultRule], method: &str, path: &str) -> Vec<FaultAction> {
    rules
        .iter_mut()
        .filter_map(|r| r.fire(method, path).then(|| r.action.clone()))
        .collect()
}
