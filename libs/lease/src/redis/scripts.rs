//! Lua scripts: each lease operation is one script, so Redis applies the
//! reclaim of expired leases and the change as one step, and two processes
//! racing for the last slot cannot both get it.
//!
//! A key's leases are a sorted set: members are holders, scores their expiry
//! in Unix milliseconds. The caller passes "now" (ARGV[1]) from its clock;
//! scores at or before it are expired. After every write the set's own Redis
//! expiry is moved to its last lease's, so a key nobody touches again
//! vanishes by itself.

macro_rules! reclaim_lua {
    () => {
        r#"
local function reclaim(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end

local function keep_until_last_expiry(key, now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', key, math.max(1, tonumber(last[2]) - tonumber(now)))
  end
end
"#
    };
}

/// KEYS: lease sets. ARGV: now, expires at, holder, then the limit of each
/// key. Checks every key before changing any, so either every lease is
/// taken or renewed, or none is.
/// Returns {1} or {0, index of the first full key, its live leases}.
const TAKE: &str = concat!(
    reclaim_lua!(),
    r#"
local now = ARGV[1]
for i = 1, #KEYS do
  reclaim(KEYS[i], now)
end
for i = 1, #KEYS do
  if not redis.call('ZSCORE', KEYS[i], ARGV[3]) then
    local held = redis.call('ZCARD', KEYS[i])
    if held >= tonumber(ARGV[3 + i]) then
      return {0, i, held}
    end
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  keep_until_last_expiry(KEYS[i], now)
end
return {1}
"#
);

/// KEYS: lease set. ARGV: now, expires at, holder. Returns 1 when renewed, 0
/// when the holder has no live lease.
const RENEW: &str = concat!(
    reclaim_lua!(),
    r#"
reclaim(KEYS[1], ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
keep_until_last_expiry(KEYS[1], ARGV[1])
return 1
"#
);

/// KEYS: lease set. ARGV: now, holder.
const RELEASE: &str = concat!(
    reclaim_lua!(),
    r#"
reclaim(KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[2])
"#
);

/// KEYS: lease set. ARGV: now. Returns the live leases.
const HELD: &str = concat!(
    reclaim_lua!(),
    r#"
reclaim(KEYS[1], ARGV[1])
return redis.call('ZCARD', KEYS[1])
"#
);

/// KEYS: lease set. ARGV: now. Returns {holder, expiry, ...}, soonest expiry
/// first.
const HOLDERS: &str = concat!(
    reclaim_lua!(),
    r#"
reclaim(KEYS[1], ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
"#
);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Script {
    Take,
    Renew,
    Release,
    Held,
    Holders,
}

impl tyboo_redis::Script for Script {
    const ALL: &'static [Script] = &[
        Script::Take,
        Script::Renew,
        Script::Release,
        Script::Held,
        Script::Holders,
    ];

    fn source(self) -> &'static str {
        match self {
            Script::Take => TAKE,
            Script::Renew => RENEW,
            Script::Release => RELEASE,
            Script::Held => HELD,
            Script::Holders => HOLDERS,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The component's scripts, loaded once and run by digest.
pub(crate) type Scripts = tyboo_redis::Scripts<Script>;

#[cfg(test)]
mod tests {
    use tyboo_redis::Script as _;

    use super::*;

    #[test]
    fn digests_are_indexed_by_declaration_order() {
        for (index, script) in Script::ALL.iter().enumerate() {
            assert_eq!(*script as usize, index);
        }
    }
}
