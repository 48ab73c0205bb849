//! Lua scripts: each breaker operation is one script, so Redis applies it
//! atomically and concurrent workers cannot both take the last probe slot.
//!
//! Every script takes the time and the configuration as its first arguments
//! (see [`common_args`](super::common_args)), so tests drive time exactly and
//! every process applies its own configuration. A breaker is one hash:
//! `mode`, `until_at`, `opened_at` (-1 for never), `trips`, `probes`,
//! `successes`, `round_at`, and per window bucket `c{index}` (calls) and
//! `f{index}` (failures), with `index` = time / bucket length. The same
//! transitions are made in memory by `crate::machine`.

/// ARGV 1-11: now, bucket ms, buckets, minimum calls, threshold percent,
/// cool-down base, cool-down max, probes, successes to close, probe timeout,
/// idle expiry. KEYS[2] (where used): the set of known breakers, whose
/// members are `node_type|host`; ARGV[12] the member of KEYS[1].
macro_rules! prelude_lua {
    () => {
        r#"
local NOW = tonumber(ARGV[1])
local BUCKET = tonumber(ARGV[2])
local BUCKETS = tonumber(ARGV[3])
local MIN_CALLS = tonumber(ARGV[4])
local THRESHOLD = tonumber(ARGV[5])
local BASE = tonumber(ARGV[6])
local MAX = tonumber(ARGV[7])
local PROBES = tonumber(ARGV[8])
local TO_CLOSE = tonumber(ARGV[9])
local PROBE_TIMEOUT = tonumber(ARGV[10])
local IDLE = tonumber(ARGV[11])

local function load(key)
  local raw = redis.call('HGETALL', key)
  local b = {exists = #raw > 0, mode = 'closed', until_at = 0, opened_at = -1, trips = 0,
    probes = 0, successes = 0, round_at = 0, calls = 0, failures = 0, buckets = {}}
  local oldest = math.floor(NOW / BUCKET) - BUCKETS + 1
  local stale = {}
  for i = 1, #raw, 2 do
    local name, value = raw[i], raw[i + 1]
    local kind, index = string.match(name, '^([cf])(%-?%d+)$')
    if kind then
      if tonumber(index) < oldest then
        stale[#stale + 1] = name
      else
        b.buckets[#b.buckets + 1] = name
        if kind == 'c' then
          b.calls = b.calls + tonumber(value)
        else
          b.failures = b.failures + tonumber(value)
        end
      end
    elseif name == 'mode' then
      b.mode = value
    else
      b[name] = tonumber(value)
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return b
end

local function save(key, member, b)
  redis.call('HSET', key, 'mode', b.mode, 'until_at', b.until_at, 'opened_at', b.opened_at,
    'trips', b.trips, 'probes', b.probes, 'successes', b.successes, 'round_at', b.round_at)
  if b.mode == 'forced_open' or b.mode == 'forced_closed' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, IDLE)
  end
  redis.call('SADD', KEYS[2], member)
end

local function start_round(b)
  b.probes = 0
  b.successes = 0
  b.round_at = NOW
end

-- Every change of mode starts a fresh window and probe round. Returns the
-- mode left.
local function enter(key, b, mode)
  local from = b.mode
  b.mode = mode
  if #b.buckets > 0 then redis.call('HDEL', key, unpack(b.buckets)) end
  b.buckets = {}
  b.calls = 0
  b.failures = 0
  start_round(b)
  return from
end

local function cool_down(trips)
  local length = BASE
  for _ = 2, trips do
    if length >= MAX then break end
    length = length * 2
  end
  if length > MAX then return MAX end
  return length
end

local function trip(key, b)
  b.trips = b.trips + 1
  b.opened_at = NOW
  b.until_at = NOW + cool_down(b.trips)
  return enter(key, b, 'open')
end

local function transition(from, to)
  if from ~= to then return {from, to} end
  return {'', ''}
end
"#
    };
}

/// KEYS: breaker, known set. ARGV[12]: member.
/// Returns {0 allowed | 1 probe | 2 rejected, retry at ms, from, to}.
const ADMIT: &str = concat!(
    prelude_lua!(),
    r#"
local b = load(KEYS[1])
if not b.exists then return {0, 0, '', ''} end
local from, to = '', ''
local changed = false
if b.mode == 'open' and NOW >= b.until_at then
  from = enter(KEYS[1], b, 'half_open')
  to = 'half_open'
  changed = true
end
if b.mode == 'half_open' and b.probes >= PROBES and NOW >= b.round_at + PROBE_TIMEOUT then
  start_round(b)
  changed = true
end
local kind, retry = 0, 0
if b.mode == 'open' then
  kind, retry = 2, b.until_at
elseif b.mode == 'forced_open' then
  kind, retry = 2, NOW + BASE
elseif b.mode == 'half_open' then
  if b.probes < PROBES then
    b.probes = b.probes + 1
    kind = 1
    changed = true
  else
    kind, retry = 2, NOW + BASE
  end
end
if changed then save(KEYS[1], ARGV[12], b) end
return {kind, retry, from, to}
"#
);

/// KEYS: breaker, known set. ARGV[12]: member, ARGV[13]: success | failure.
/// Returns {from, to}, empty strings when the mode stayed.
const RECORD: &str = concat!(
    prelude_lua!(),
    r#"
local b = load(KEYS[1])
local failed = ARGV[13] == 'failure'
local from = b.mode
if b.mode == 'closed' then
  local index = math.floor(NOW / BUCKET)
  redis.call('HINCRBY', KEYS[1], 'c' .. index, 1)
  b.buckets[#b.buckets + 1] = 'c' .. index
  b.calls = b.calls + 1
  if failed then
    redis.call('HINCRBY', KEYS[1], 'f' .. index, 1)
    b.buckets[#b.buckets + 1] = 'f' .. index
    b.failures = b.failures + 1
    if b.calls >= MIN_CALLS and b.failures * 100 >= THRESHOLD * b.calls then
      trip(KEYS[1], b)
    end
  end
elseif b.mode == 'half_open' then
  if failed then
    trip(KEYS[1], b)
  else
    b.successes = b.successes + 1
    if b.successes >= TO_CLOSE then
      b.trips = 0
      enter(KEYS[1], b, 'closed')
    end
  end
else
  return {'', ''}
end
save(KEYS[1], ARGV[12], b)
return transition(from, b.mode)
"#
);

/// KEYS: breaker. Returns {mode, until at, opened at, trips, calls, failures}.
const GET: &str = concat!(
    prelude_lua!(),
    r#"
local b = load(KEYS[1])
return {b.mode, b.until_at, b.opened_at, b.trips, b.calls, b.failures}
"#
);

/// KEYS: known set. ARGV[12]: prefix of breaker keys. Forgets members whose
/// breaker expired. Returns {member, mode, until at, opened at, trips,
/// calls, failures, ...}.
const LIST: &str = concat!(
    prelude_lua!(),
    r#"
local out = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[12] .. member
  if redis.call('EXISTS', key) == 0 then
    redis.call('SREM', KEYS[1], member)
  else
    local b = load(key)
    for _, value in ipairs({member, b.mode, b.until_at, b.opened_at, b.trips, b.calls, b.failures}) do
      out[#out + 1] = value
    end
  end
end
return out
"#
);

/// KEYS: breaker, known set. ARGV[12]: member. Returns {from, to}.
const RESET: &str = concat!(
    prelude_lua!(),
    r#"
local b = load(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[12])
if not b.exists then return {'', ''} end
return transition(b.mode, 'closed')
"#
);

/// KEYS: breaker, known set. ARGV[12]: member, ARGV[13]: forced mode.
/// Returns {from, to}.
const FORCE: &str = concat!(
    prelude_lua!(),
    r#"
local b = load(KEYS[1])
local from = enter(KEYS[1], b, ARGV[13])
save(KEYS[1], ARGV[12], b)
return transition(from, b.mode)
"#
);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Script {
    Admit,
    Record,
    Get,
    List,
    Reset,
    Force,
}

impl tyboo_redis::Script for Script {
    const ALL: &'static [Script] = &[
        Script::Admit,
        Script::Record,
        Script::Get,
        Script::List,
        Script::Reset,
        Script::Force,
    ];

    fn source(self) -> &'static str {
        match self {
            Script::Admit => ADMIT,
            Script::Record => RECORD,
            Script::Get => GET,
            Script::List => LIST,
            Script::Reset => RESET,
            Script::Force => FORCE,
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
