package conndir

import "github.com/redis/go-redis/v9"

// The scripts touch only the expiry and pending sets, which share the hash
// tag {conndir}, so each runs on one Redis Cluster shard. Deadlines come
// from the Redis server's clock (TIME), so nodes with skewed clocks agree
// on expiry. Being atomic, a script that moves an id from the expiry set
// to the pending set does so for exactly one caller.

// touchScript registers or refreshes deadlines.
//
// KEYS[1] expiry set, KEYS[2] pending set, KEYS[3] settled set (ids whose
// DELETE was delivered: Ack); ARGV[1] TTL in ms, ARGV[2] "add" (register:
// set unconditionally) or "refresh" (only ids still present), ARGV[3] n,
// ARGV[4..3+n] ids of own records, the remaining ARGV ids of claimed
// records (refresh only). An own id missing from the expiry set was taken
// over by another node if it is pending or settled: it is lost. Missing
// from all three, Redis lost it with its data (a restart without
// persistence): it is registered again and reported restored, so its
// node writes the record back and keeps the socket. Returns {own ids
// lost, claimed ids lost, own ids restored}.
var touchScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local lost, lostClaims, restored = {}, {}, {}
for i = 4, 3 + n do
  local id = ARGV[i]
  if ARGV[2] == 'add' or redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], deadline, id)
  elseif redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id) then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', KEYS[1], deadline, id)
    restored[#restored + 1] = id
  end
end
for i = 4 + n, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[2], deadline, id)
  else
    lostClaims[#lostClaims + 1] = id
  end
end
return {lost, lostClaims, restored}
`)

// sweepScript claims up to a limit of ids: first those whose deadline in
// the expiry set passed (moved to the pending set), then those whose lease
// in the pending set ran out (re-leased).
//
// KEYS[1] expiry set, KEYS[2] pending set; ARGV[1] lease in ms, ARGV[2]
// limit. Returns the claimed ids.
var sweepScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = now + tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local out = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], lease, id)
  out[#out + 1] = id
end
if #out < limit then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit - #out)
  for _, id in ipairs(stale) do
    redis.call('ZADD', KEYS[2], lease, id)
    out[#out + 1] = id
  end
end
return out
`)

// recordScript refreshes a record's data while it exists, so that a
// heartbeat racing an Ack does not leave a stray partial record behind.
// This key lives on any shard.
//
// KEYS[1] record hash; ARGV[1] TTL in ms, ARGV[2] last activity in ms, or
// "" to leave it.
var recordScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'a', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// updateScript sets fields of a record hash if it exists, so that an
// update racing an Ack does not recreate a partial record.
//
// KEYS[1] record hash; ARGV field, value pairs. Returns 1, or 0 for a
// missing record.
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)
