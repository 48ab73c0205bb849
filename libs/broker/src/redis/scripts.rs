//! Lua scripts: each queue transition that touches more than one key runs as
//! one script, so Redis applies it atomically and a crash between two
//! commands cannot lose or duplicate a job.
//!
//! Stream keys are computed inside the scripts from the key prefix, so every
//! key must live on one node; on Redis Cluster the prefix needs a hash tag.
//!
//! Stream entries carry two fields: `job` (the job as JSON) and `prior`, the
//! deliveries the job had before it was put back (release, delayed retry), so
//! the delivery count survives the new entry id. Delayed-set members are
//! `pool|prior|nonce|job`: the nonce keeps two equal jobs from collapsing into
//! one member, and the job goes last because it is the only part that may
//! contain `|`.

/// Puts one job into its stream (due < 0) or into the delayed set.
macro_rules! put_job_lua {
    () => {
        r#"
local function field(fields, name)
  if not fields then return '' end
  for j = 1, #fields, 2 do
    if fields[j] == name then return fields[j + 1] end
  end
  return ''
end

local function put_job(stream_prefix, delayed_key, counts_key, pool, due, prior, nonce, job)
  if tonumber(due) < 0 then
    redis.call('XADD', stream_prefix .. pool, '*', 'job', job, 'prior', prior)
  else
    local member = pool .. '|' .. prior .. '|' .. nonce .. '|' .. job
    if redis.call('ZADD', delayed_key, due, member) == 1 then
      redis.call('HINCRBY', counts_key, pool, 1)
    end
  end
end
"#
    };
}

/// KEYS: delayed set, delayed counts. ARGV: stream prefix, then per job
/// pool, due ms (-1 for now), prior deliveries, nonce, job.
const ENQUEUE: &str = concat!(
    put_job_lua!(),
    r#"
for i = 2, #ARGV, 5 do
  put_job(ARGV[1], KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
end
return 1
"#
);

/// KEYS: delayed set, delayed counts. ARGV: stream prefix, now ms, batch.
/// Returns {moved, score of the next delayed job or -1}.
const PROMOTE: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local pool, prior, job = string.match(member, '^([^|]+)|(%d+)|[^|]*|(.*)$')
  if pool then
    redis.call('XADD', ARGV[1] .. pool, '*', 'job', job, 'prior', prior)
    redis.call('HINCRBY', KEYS[2], pool, -1)
  end
  redis.call('ZREM', KEYS[1], member)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, head[2] or '-1'}
"#;

/// KEYS: streams, in the order to serve them. ARGV: group, consumer, max.
/// Reads one entry per stream in turn until `max` or all are empty, which is
/// what makes a receive fair across pools.
/// Returns {key index, id, job, prior, ...}.
const TAKE: &str = concat!(
    put_job_lua!(),
    r#"
local max = tonumber(ARGV[3])
local out = {}
local taken = 0
local open = {}
for i = 1, #KEYS do open[i] = true end
local progress = #KEYS > 0
while taken < max and progress do
  progress = false
  for i = 1, #KEYS do
    if taken < max and open[i] then
      local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[i], '>')
      if reply and reply[1] and #reply[1][2] > 0 then
        local entry = reply[1][2][1]
        out[#out + 1] = i
        out[#out + 1] = entry[1]
        out[#out + 1] = field(entry[2], 'job')
        out[#out + 1] = field(entry[2], 'prior')
        taken = taken + 1
        progress = true
      else
        open[i] = false
      end
    end
  end
end
return out
"#
);

/// KEYS: stream, reclaimed counts. ARGV: group, consumer, min idle ms,
/// cursor, count, pool, consumer idle expiry ms.
/// Returns {next cursor, id, deliveries, job, prior, ...}.
///
/// Also forgets consumers that hold nothing and have been idle for long:
/// every worker process has its own consumer name, so restarts would
/// otherwise pile them up in the group.
const RECLAIM: &str = concat!(
    put_job_lua!(),
    r#"
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {reply[1]}
local claimed = 0
for _, entry in ipairs(reply[2]) do
  if entry and entry[2] then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    out[#out + 1] = entry[1]
    out[#out + 1] = pending[1] and pending[1][4] or 1
    out[#out + 1] = field(entry[2], 'job')
    out[#out + 1] = field(entry[2], 'prior')
    claimed = claimed + 1
  end
end
if claimed > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[6], claimed)
end
if reply[1] == '0-0' then
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for j = 1, #consumer, 2 do info[consumer[j]] = consumer[j + 1] end
    if info['pending'] == 0 and info['idle'] > tonumber(ARGV[7]) and info['name'] ~= ARGV[2] then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    end
  end
end
return out
"#
);

/// KEYS: stream. ARGV: group, id. Deleting the entry with its
/// acknowledgement keeps the stream as long as the work outstanding.
const ACK: &str = r#"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: stream, delayed set, delayed counts. ARGV: group, id, stream
/// prefix, pool, due ms (-1 for now), prior deliveries, nonce, job.
/// Does nothing when the entry is no longer pending (acknowledged or
/// released already), so a late release cannot duplicate a job.
const RELEASE: &str = concat!(
    put_job_lua!(),
    r#"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
put_job(ARGV[3], KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return 1
"#
);

/// KEYS: stream, delayed counts, reclaimed counts. ARGV: group, pool.
/// Returns {length, pending, delayed, reclaimed, id of oldest ready or ''}.
const STATS: &str = r#"
local delayed = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local reclaimed = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0, delayed, reclaimed, ''}
end
local length = redis.call('XLEN', KEYS[1])
local pending = 0
local last_delivered = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for j = 1, #group, 2 do info[group[j]] = group[j + 1] end
  if info['name'] == ARGV[1] then
    pending = info['pending']
    last_delivered = info['last-delivered-id']
  end
end
local first
if last_delivered then
  first = redis.call('XRANGE', KEYS[1], '(' .. last_delivered, '+', 'COUNT', 1)
else
  first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
end
local oldest = ''
if first[1] then oldest = first[1][1] end
return {length, pending, delayed, reclaimed, oldest}
"#;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Script {
    Enqueue,
    Promote,
    Take,
    Reclaim,
    Ack,
    Release,
    Stats,
}

impl tyboo_redis::Script for Script {
    const ALL: &'static [Script] = &[
        Script::Enqueue,
        Script::Promote,
        Script::Take,
        Script::Reclaim,
        Script::Ack,
        Script::Release,
        Script::Stats,
    ];

    fn source(self) -> &'static str {
        match self {
            Script::Enqueue => ENQUEUE,
            Script::Promote => PROMOTE,
            Script::Take => TAKE,
            Script::Reclaim => RECLAIM,
            Script::Ack => ACK,
            Script::Release => RELEASE,
            Script::Stats => STATS,
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
