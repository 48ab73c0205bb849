//! Lua scripts: each queue transition that touches more than one key runs as
//! one script, so Redis applies it atomically and a crash between two
//! commands cannot lose or duplicate a job.
//!
//! Keys other than those passed in are computed inside the scripts from the
//! key prefix, so every key must live on one node; on Redis Cluster the
//! prefix needs a hash tag. The key layout is described in `mod.rs`.
//!
//! Ready-list entries are `prior|ready ms|job`. Stream entries carry two
//! fields: `job` (the job as JSON) and `prior`, the deliveries the job had
//! before it was put back (release, delayed retry), so the delivery count
//! survives the new entry id. Delayed-set members are `pool|prior|nonce|job`:
//! the nonce keeps two equal jobs from collapsing into one member, and the
//! job goes last because it is the only part that may contain `|`.

/// Puts one job into its workspace's ready list (due < 0) or into the
/// delayed set. A workspace whose list was empty joins the back of its
/// pool's turns; a pool whose turns were empty rings its bell, which wakes
/// the consumers blocked on it.
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

local function put_ready(prefix, pool, workspace, prior, ready_ms, job)
  local list = prefix .. ':r:' .. pool .. ':' .. workspace
  if redis.call('RPUSH', list, prior .. '|' .. ready_ms .. '|' .. job) == 1 then
    if redis.call('RPUSH', prefix .. ':turns:' .. pool, workspace) == 1 then
      redis.call('XADD', prefix .. ':bell:' .. pool, 'MAXLEN', 1, '*', 'r', 1)
    end
  end
end

local function put_job(prefix, delayed_key, counts_key, pool, workspace, due, prior, nonce, job, now_ms)
  if tonumber(due) < 0 then
    put_ready(prefix, pool, workspace, prior, now_ms, job)
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

/// KEYS: delayed set, delayed counts. ARGV: key prefix, now ms, then per job
/// pool, workspace, due ms (-1 for now), prior deliveries, nonce, job.
const ENQUEUE: &str = concat!(
    put_job_lua!(),
    r#"
for i = 3, #ARGV, 6 do
  put_job(ARGV[1], KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[2])
end
return 1
"#
);

/// KEYS: delayed set, delayed counts. ARGV: key prefix, now ms, batch.
/// Moves due jobs to the back of their workspace's ready list, ready since
/// their due time. Returns {moved, score of the next delayed job or -1}.
const PROMOTE: &str = concat!(
    put_job_lua!(),
    r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  local member = due[i]
  local pool, prior, job = string.match(member, '^([^|]+)|(%d+)|[^|]*|(.*)$')
  if pool then
    -- A job that cannot be read still goes through, so that the consumer
    -- that receives it logs and drops it.
    local ok, decoded = pcall(cjson.decode, job)
    local workspace = '-'
    if ok and type(decoded) == 'table' and type(decoded['workspace_id']) == 'string' then
      workspace = decoded['workspace_id']
    end
    put_ready(ARGV[1], pool, workspace, prior, string.format('%d', tonumber(due[i + 1])), job)
    redis.call('HINCRBY', KEYS[2], pool, -1)
  end
  redis.call('ZREM', KEYS[1], member)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due / 2, head[2] or '-1'}
"#
);

/// KEYS: streams, in the order to serve them. ARGV: group, consumer, max,
/// key prefix, then the pool of each stream.
///
/// Takes one job per pool in turn until `max` or all are empty, which is what
/// makes a receive fair across pools; within a pool, the job comes from the
/// workspace at the front of the pool's turns, which then goes to the back
/// if it has more, which is what makes it fair across workspaces. A taken job
/// is added to the pool's stream and read at once through the consumer
/// group, so from then on it is pending like any delivery (acknowledged,
/// released or reclaimed). An entry already in the stream and never read is
/// read first.
///
/// Returns {{key index, id, job, prior, ...}, {last bell id per pool}}; the
/// bell ids are only filled when nothing was taken, for the blocking wait.
const TAKE: &str = concat!(
    put_job_lua!(),
    r#"
local max = tonumber(ARGV[3])
local prefix = ARGV[4]
local out = {}
local taken = 0
local open = {}
for i = 1, #KEYS do
  open[i] = true
  -- Redis may have lost the group (a restart without persistence).
  redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[1], '0', 'MKSTREAM')
end

local function next_ready(pool)
  local turns = prefix .. ':turns:' .. pool
  while true do
    local workspace = redis.call('LPOP', turns)
    if not workspace then return nil end
    local list = prefix .. ':r:' .. pool .. ':' .. workspace
    local entry = redis.call('LPOP', list)
    if entry then
      if redis.call('LLEN', list) > 0 then
        redis.call('RPUSH', turns, workspace)
      end
      return entry
    end
  end
end

local progress = #KEYS > 0
while taken < max and progress do
  progress = false
  for i = 1, #KEYS do
    if taken < max and open[i] then
      local entry = next_ready(ARGV[4 + i])
      if entry then
        local prior, job = string.match(entry, '^(%d+)|%d+|(.*)$')
        if prior then
          redis.call('XADD', KEYS[i], '*', 'job', job, 'prior', prior)
        end
      end
      local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[i], '>')
      if reply and reply[1] and #reply[1][2] > 0 then
        local read = reply[1][2][1]
        out[#out + 1] = i
        out[#out + 1] = read[1]
        out[#out + 1] = field(read[2], 'job')
        out[#out + 1] = field(read[2], 'prior')
        taken = taken + 1
        progress = true
      elseif entry then
        progress = true
      else
        open[i] = false
      end
    end
  end
end
local bells = {}
if taken == 0 then
  for i = 1, #KEYS do
    local last = redis.call('XREVRANGE', prefix .. ':bell:' .. ARGV[4 + i], '+', '-', 'COUNT', 1)
    bells[i] = last[1] and last[1][1] or '0-0'
  end
end
return {out, bells}
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

/// KEYS: stream, delayed set, delayed counts. ARGV: group, id, key prefix,
/// pool, workspace, due ms (-1 for now), prior deliveries, nonce, job, now ms.
/// Does nothing when the entry is no longer pending (acknowledged or
/// released already), so a late release cannot duplicate a job.
const RELEASE: &str = concat!(
    put_job_lua!(),
    r#"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
put_job(ARGV[3], KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return 1
"#
);

/// KEYS: stream, delayed counts, reclaimed counts, turns. ARGV: group,
/// pool, key prefix.
/// Returns {ready, pending, delayed, reclaimed, oldest ready ms or -1,
/// id of the oldest unread stream entry or ''}. Reads one list head per
/// workspace with ready jobs.
const STATS: &str = r#"
local delayed = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local reclaimed = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local ready = 0
local oldest_ms = -1
for _, workspace in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  local list = ARGV[3] .. ':r:' .. ARGV[2] .. ':' .. workspace
  ready = ready + redis.call('LLEN', list)
  local head = redis.call('LINDEX', list, 0)
  local ready_ms = head and tonumber(string.match(head, '^%d+|(%d+)|'))
  if ready_ms and (oldest_ms < 0 or ready_ms < oldest_ms) then
    oldest_ms = ready_ms
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {ready, 0, delayed, reclaimed, oldest_ms, ''}
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
local unread = length - pending
if unread < 0 then unread = 0 end
return {ready + unread, pending, delayed, reclaimed, oldest_ms, oldest}
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
