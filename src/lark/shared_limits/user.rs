//! The user login (`login`) shared by replicas: its tokens under `…user:{account}` (the
//! profile's keychain account, `NAME.user`), beside the tenant token of the same app, and a
//! lock so that one replica at a time spends the single-use refresh token. The logic (which
//! login wins, when to refresh) is in `user_auth`; here are only the Redis steps, each
//! bounded by `OP_TIMEOUT` like every other, their errors free of any token.

use std::time::Duration;

use redis::Script;

use super::scripts::{USER_FORGET, USER_PUT};
use super::{POLL, RedisLimits, SharedLimits};

/// How long a replica may hold the user refresh: two attempts at the token endpoint (30 s
/// each) and the writes after them. A lock outliving its holder frees after this.
pub(crate) const USER_LOCK_LEASE: Duration = Duration::from_secs(70);

impl SharedLimits {
    /// Redis, when replicas share through it.
    pub(crate) fn redis_limits(&self) -> Option<&RedisLimits> {
        match self {
            SharedLimits::InProcess => None,
            SharedLimits::Redis(r) => Some(r),
        }
    }
}

/// Whether a Redis step failed quietly (Redis paused after an earlier failure) or with a
/// line worth logging.
pub(crate) fn warn_user(e: &str) {
    super::warn(e);
}

impl RedisLimits {
    fn user_key(&self, account: &str) -> String {
        format!("{}user:{account}", self.prefix)
    }

    /// The stored login, as `(issued_at, json)`; `None` when there is none.
    pub(crate) async fn user_get(&self, account: &str) -> Result<Option<(u64, String)>, String> {
        let mut c = self.conn.clone();
        let mut get = redis::cmd("GET");
        get.arg(self.user_key(account));
        let value: Option<String> = self
            .run("read the user login", get.query_async(&mut c))
            .await?;
        Ok(value.and_then(|v| {
            let (at, json) = v.split_once(':')?;
            Some((at.parse().ok()?, json.to_string()))
        }))
    }

    /// Stores `json` (issued at `issued_at`) unless a newer login is stored; kept for `ttl`.
    /// Says whether it was stored.
    pub(crate) async fn user_put(
        &self,
        account: &str,
        issued_at: u64,
        json: &str,
        ttl: Duration,
    ) -> Result<bool, String> {
        let script = Script::new(USER_PUT);
        let mut inv = script.key(self.user_key(account));
        inv.arg(format!("{issued_at}:{json}"))
            .arg(issued_at)
            .arg(ttl.as_millis().max(1) as u64);
        let mut c = self.conn.clone();
        let stored: i64 = self
            .run("store the user login", inv.invoke_async(&mut c))
            .await?;
        Ok(stored == 1)
    }

    /// Deletes the stored login: any (`None`, a logout), or only one issued at or before
    /// `not_after` (the login a refresh found gone, not a newer one made meanwhile). Says
    /// whether one was deleted.
    pub(crate) async fn user_forget(
        &self,
        account: &str,
        not_after: Option<u64>,
    ) -> Result<bool, String> {
        let mut c = self.conn.clone();
        let key = self.user_key(account);
        let deleted = match not_after {
            None => {
                let mut del = redis::cmd("DEL");
                del.arg(key);
                self.run("delete the user login", del.query_async::<i64>(&mut c))
                    .await?
            }
            Some(at) => {
                let script = Script::new(USER_FORGET);
                let mut inv = script.key(key);
                inv.arg(at);
                self.run("delete the user login", inv.invoke_async::<i64>(&mut c))
                    .await?
            }
        };
        Ok(deleted > 0)
    }

    /// Takes the refresh lock of `account` (SET NX PX, owned by this process): `true` when
    /// this replica now holds it.
    pub(crate) async fn user_lock(&self, account: &str) -> Result<bool, String> {
        let mut c = self.conn.clone();
        let mut set = redis::cmd("SET");
        set.arg(format!("{}:lock", self.user_key(account)))
            .arg(self.owner())
            .arg("NX")
            .arg("PX")
            .arg(USER_LOCK_LEASE.as_millis() as u64);
        let locked: Option<String> = self
            .run("lock the user refresh", set.query_async(&mut c))
            .await?;
        Ok(locked.is_some())
    }

    /// Releases the refresh lock, only if this process still holds it.
    pub(crate) async fn user_unlock(&self, account: &str) {
        let lock = format!("{}:lock", self.user_key(account));
        self.del_if_owned(lock, "unlock the user refresh").await;
    }

    /// How long to wait before looking again while another replica refreshes.
    pub(crate) fn poll(&self) -> Duration {
        POLL + Duration::from_millis(fastrand::u64(0..10))
    }

    /// The Redis as it may be shown (no password).
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}
