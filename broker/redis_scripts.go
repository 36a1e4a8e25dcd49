package broker

import "github.com/redis/go-redis/v9"

// Every script touches only keys of one topic, which share a hash tag, so
// each runs on one Redis Cluster shard. Times come from the Redis server's
// clock (TIME), so nodes with skewed clocks agree on presence expiry.

// publishScript appends a message to its topic's stream and publishes it
// with the assigned id in one atomic step.
//
// KEYS[1] stream; ARGV[1] pub/sub channel, ARGV[2] data, ARGV[3] except,
// ARGV[4] MAXLEN, ARGV[5] TTL in ms, ARGV[6] "publish" or "spublish".
// Returns {id, receivers}.
var publishScript = redis.NewScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local n = redis.call(ARGV[6], ARGV[1], id .. '\n' .. ARGV[3] .. '\n' .. ARGV[2])
return {id, n}
`)

// historyScript reads a page of a stream, with its oldest retained id so
// the caller can tell whether a resume point is still covered.
//
// KEYS[1] stream; ARGV[1] "fwd" or "rev", ARGV[2] start, ARGV[3] end,
// ARGV[4] count (0: all). Returns {firstID, entries} where firstID is ""
// for a missing stream and entries are {id, data} pairs in the order read.
var historyScript = redis.NewScript(`
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #head == 0 then
  return {'', {}}
end
local rows
local count = tonumber(ARGV[4])
if ARGV[1] == 'fwd' then
  if count > 0 then rows = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', count)
  else rows = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3]) end
else
  if count > 0 then rows = redis.call('XREVRANGE', KEYS[1], ARGV[3], ARGV[2], 'COUNT', count)
  else rows = redis.call('XREVRANGE', KEYS[1], ARGV[3], ARGV[2]) end
end
local out = {}
for _, row in ipairs(rows) do
  local data = ''
  for j = 1, #row[2], 2 do
    if row[2][j] == 'd' then data = row[2][j+1] end
  end
  out[#out+1] = {row[1], data}
end
return {head[1][1], out}
`)

// presenceAddScript records a connection of a user on a topic, or
// refreshes it (the heartbeat runs it too).
//
// KEYS[1] users zset (user → expiry ms), KEYS[2] the user's connections
// zset (conn → expiry ms); ARGV[1] user, ARGV[2] conn, ARGV[3] TTL ms.
// Returns 1 when the user had no other live connection there.
var presenceAddScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = redis.call('ZCARD', KEYS[2]) - (redis.call('ZSCORE', KEYS[2], ARGV[2]) and 1 or 0)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], 'GT', now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
if others == 0 then return 1 end
return 0
`)

// presenceRemoveScript forgets a connection. KEYS and ARGV[1..2] as for
// presenceAddScript. Returns 1 when the user has no live connection left.
var presenceRemoveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// membersScript lists the users with a live connection on a topic.
// Expired users are left for presenceSweepScript, which reports them.
// KEYS[1] users zset.
var membersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`)

// presenceSweepScript removes and returns the users whose entries expired.
// KEYS[1] users zset.
var presenceSweepScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
return gone
`)
