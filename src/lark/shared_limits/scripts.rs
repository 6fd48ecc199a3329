//! The Lua scripts that make each check-and-change on shared state one atomic step in
//! Redis. Times come from Redis's own clock (`TIME`), the same for every replica.

/// Takes a send slot when fewer than ARGV[1] sends count in the lane; else answers the
/// milliseconds until the earliest one stops counting. The lane is the receiver's chat when
/// any replica learned which chat the name (ARGV[5]) reaches. Redis's clock for every
/// replica. (Lane keys are built here, so this script is not for Redis Cluster.)
pub(super) const PACE_TAKE: &str = r"
local lane = ARGV[6] .. (redis.call('HGET', KEYS[1], ARGV[5]) or ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', lane, '-inf', now)
if redis.call('ZCARD', lane) < tonumber(ARGV[1]) then
  redis.call('ZADD', lane, now + tonumber(ARGV[3]), ARGV[4])
  redis.call('PEXPIRE', lane, tonumber(ARGV[3]) + tonumber(ARGV[2]))
  return {-1, lane}
end
local first = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
return {math.max(0, tonumber(first[2]) - now), lane}
";

/// Lark refused a send to the lane (230020): it counts as full for one window, on every
/// replica.
pub(super) const PACE_FILL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, tonumber(ARGV[1]) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), 'refused:' .. i)
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// `name` (ARGV[1]) reaches the chat ARGV[2]: recorded for every replica, and the sends
/// already counted under the name count against the chat.
pub(super) const LEARN: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local old = ARGV[3] .. ARGV[1]
local new = ARGV[3] .. ARGV[2]
if redis.call('EXISTS', old) == 1 then
  redis.call('ZUNIONSTORE', new, 2, new, old, 'AGGREGATE', 'MAX')
  redis.call('DEL', old)
  redis.call('PEXPIRE', new, ARGV[5])
end
return 1
";

/// Holds every replica's calls of one kind back until Lark's rate-limit window resets,
/// unless a longer hold is set already.
pub(super) const HOLD: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
";

/// The answer is in: the slot counts one more window from now (Lark counts arrivals, which
/// happened before this).
pub(super) const PACE_DONE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
";

/// The stored outcome, or a claim to produce it, or word that another replica holds one.
pub(super) const OUTCOME_CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, ''} end
return {2, ''}
";

pub(super) const OUTCOME_STORE: &str = r"
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Deletes a key only while it still holds what this replica put there.
pub(super) const DEL_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Deletes the shared token only if it is the one Lark rejected.
pub(super) const TOKEN_FORGET: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, -string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Stores a user login (ARGV[1], `ISSUED:JSON`) unless the one stored was issued later
/// (its ISSUED, unix seconds, is greater than ARGV[2]): the newest login wins. ARGV[3] is
/// the key's lifetime in ms (until the refresh token ends). 1 stored, 0 kept the other.
pub(super) const USER_PUT: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local at = tonumber(string.match(v, '^(%d+):'))
  if at and at > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// Deletes the stored user login unless it was issued after ARGV[1] (a newer login made
/// elsewhere is not the one found gone).
pub(super) const USER_FORGET: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local at = tonumber(string.match(v, '^(%d+):'))
if at and at > tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
";

/// `--send-budget` shared by the replicas: a sorted set of the sends of the last period
/// (ARGV[2] ms), each a unique member (ARGV[3]) scored with Redis's time. Counts the send
/// when fewer than ARGV[1] count (-1), else answers the ms until the oldest stops counting.
pub(super) const BUDGET_TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], period)
  return -1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) + period - now)
";

/// The shared send budget's sends of the last period (ARGV[1] ms), and the ms until the
/// oldest stops counting (0 with none). Reads only.
pub(super) const BUDGET_PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local used = redis.call('ZCOUNT', KEYS[1], '(' .. (now - period), '+inf')
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - period), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local wait = 0
if first[2] then wait = math.max(1, tonumber(first[2]) + period - now) end
return {used, wait}
";
