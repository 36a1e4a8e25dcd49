package conndir

import "github.com/redis/go-redis/v9"

// The liveness scripts touch only keys with the hash tag {conndir} (the
// expiry, pending and settled sorted sets, the registered hash and the
// node sets), so each runs on one Redis Cluster shard. Deadlines come from
// the Redis server's clock (TIME), so nodes with skewed clocks agree on
// expiry. Being atomic, a script that moves an id from a node set to the
// pending set does so for exactly one caller.

// registerScript adds an id to its node's set and counts the
// registration. If the node has no deadline, or one that passed, it gets
// a fresh one: a new record is never born expired. That changes the
// node's deadline behind its back, so its next heartbeat checks its
// records (see beatScript).
//
// KEYS[1] expiry set, KEYS[2] the node's set, KEYS[3] registered hash;
// ARGV[1] TTL in ms, ARGV[2] node, ARGV[3] id.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
end
return 1
`)

// beatScript is a heartbeat: it moves the node's deadline to now + TTL
// and renews the leases of the claims the node holds. It costs a few
// commands whatever the number of the node's records.
//
// It also tells the node whether its records are intact: they are if the
// deadline it found is the one the node wrote last (a sweep that claimed
// some of them changed it; a Redis that lost its data lost it) and if
// Redis has counted at least the registrations the node knows it
// confirmed (fewer: Redis lost recent writes, as in a failover or a
// restart from an older snapshot). Otherwise the node checks every record
// with checkScript; the count is set right at once, and the new deadline
// stops any further claim while it checks.
//
// KEYS[1] expiry set, KEYS[2] pending set, KEYS[3] registered hash;
// ARGV[1] TTL in ms, ARGV[2] node ("": only renew leases), ARGV[3] the
// deadline the node wrote last ("0": unknown), ARGV[4] its confirmed
// registrations, ARGV[5..] ids of the claims it holds. Returns {new
// deadline, 1 if intact else 0, ids of claims lost (re-claimed by another
// node after their lease ran out, or lost with Redis's data)}.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[1])
local node = ARGV[2]
local intact = 1
if node ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], node)
  local count = tonumber(redis.call('HGET', KEYS[3], node) or 0)
  local confirmed = tonumber(ARGV[4])
  if not score or ARGV[3] == '0' or tonumber(score) ~= tonumber(ARGV[3]) or count < confirmed then
    intact = 0
  end
  if count < confirmed then
    redis.call('HSET', KEYS[3], node, confirmed)
  end
  redis.call('ZADD', KEYS[1], deadline, node)
end
local lostClaims = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[2], deadline, id)
  else
    lostClaims[#lostClaims + 1] = id
  end
end
return {deadline, intact, lostClaims}
`)

// checkScript sorts out a batch of a node's own ids after beatScript found
// its records not intact. An id still in the node's set is the node's. One
// missing from it was taken over by another node if it is pending or
// settled: it is lost. Missing from all three, Redis lost it with its data
// (a restart without persistence, a failover): it goes back in the node's
// set and is reported restored, so that its node writes the record back
// and keeps the socket.
//
// KEYS[1] the node's set, KEYS[2] pending set, KEYS[3] settled set (ids
// whose DELETE was delivered: Ack); ARGV the ids. Returns {ids lost, ids
// restored}.
var checkScript = redis.NewScript(`
local lost, restored = {}, {}
for _, id in ipairs(ARGV) do
  if redis.call('SISMEMBER', KEYS[1], id) == 0 then
    if redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id) then
      lost[#lost + 1] = id
    else
      redis.call('SADD', KEYS[1], id)
      restored[#restored + 1] = id
    end
  end
end
return {lost, restored}
`)

// sweepScript claims up to a limit of ids: first those of nodes whose
// deadline passed, popped from their node sets and leased in the pending
// set, then those whose lease in the pending set ran out (re-leased). A
// node whose set is then empty leaves the expiry set; one with ids left
// keeps its place with deadline 0, so that later sweeps go on with it and
// its own heartbeat, should it come back, sees that records were claimed.
//
// KEYS[1] expiry set, KEYS[2] pending set, KEYS[3] registered hash;
// ARGV[1] lease in ms, ARGV[2] limit, ARGV[3] the node sets' key prefix
// (the node name completes it; the prefix carries the {conndir} tag).
// Returns the claimed ids.
var sweepScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = now + tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local out = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, node in ipairs(expired) do
  if #out >= limit then
    break
  end
  local set = ARGV[3] .. node
  local ids = redis.call('SPOP', set, limit - #out)
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[2], lease, id)
    out[#out + 1] = id
  end
  if redis.call('SCARD', set) == 0 then
    redis.call('ZREM', KEYS[1], node)
    redis.call('HDEL', KEYS[3], node)
  elseif #ids > 0 then
    redis.call('ZADD', KEYS[1], 0, node)
  end
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

// recordScript writes a record's last activity while the record exists,
// so that a heartbeat racing an Ack does not leave a stray partial record
// behind, and renews its data TTL. This key lives on any shard.
//
// KEYS[1] record hash; ARGV[1] TTL in ms, ARGV[2] last activity in ms.
var recordScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'a', ARGV[2])
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
