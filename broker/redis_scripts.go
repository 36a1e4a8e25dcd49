package broker

import "github.com/redis/go-redis/v9"

// Every script touches only keys of one topic, which share a hash tag, so
// each runs on one Redis Cluster shard. Times come from the Redis server's
// clock (TIME), so nodes with skewed clocks agree on presence expiry.

// luaEntrySize defines entrySize(row), the data bytes of a stream entry
// as XRANGE returns it ({id, {field, value, ...}}): what the byte bounds
// count.
const luaEntrySize = `local function entrySize(row)
  for j = 1, #row[2], 2 do
    if row[2][j] == 'd' then return #row[2][j+1] end
  end
  return 0
end
`

// publishScript appends a message to its topic's stream and publishes it
// with the assigned id in one atomic step. It keeps the stream within
// MAXLEN entries and, with a byte bound, within that many data bytes,
// evicting the oldest entries first (the new one is always kept). The
// stream's data bytes are counted in a companion key, updated in the same
// step; a stream found without one (stored before byte bounds, or the key
// lost) is counted once in full.
//
// KEYS[1] stream, KEYS[2] its byte count; ARGV[1] pub/sub channel, ARGV[2]
// data, ARGV[3] except, ARGV[4] MAXLEN, ARGV[5] TTL in ms, ARGV[6]
// "publish" or "spublish", ARGV[7] byte bound (0: none). Returns {id,
// receivers}.
var publishScript = redis.NewScript(luaPayload + luaEntrySize + `
local function scan(from)
  return redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
end
local bytes = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  bytes = tonumber(redis.call('GET', KEYS[2]) or '')
  if not bytes then
    bytes = 0
    local from = '-'
    while true do
      local rows = scan(from)
      for _, row in ipairs(rows) do bytes = bytes + entrySize(row) end
      if #rows < 100 then break end
      from = '(' .. rows[#rows][1]
    end
  end
end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
bytes = bytes + #ARGV[2]
local len = redis.call('XLEN', KEYS[1])
local maxlen, cap = tonumber(ARGV[4]), tonumber(ARGV[7])
local function over()
  return len > 1 and (len > maxlen or (cap > 0 and bytes > cap))
end
if over() then
  local keep, from = nil, '-'
  while not keep do
    local rows = scan(from)
    for _, row in ipairs(rows) do
      if not over() then keep = row[1] break end
      bytes, len = bytes - entrySize(row), len - 1
    end
    from = '(' .. rows[#rows][1]
  end
  redis.call('XTRIM', KEYS[1], 'MINID', keep)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], bytes, 'PX', ARGV[5])
local n = redis.call(ARGV[6], ARGV[1], payload(id, ARGV[3], ARGV[2]))
return {id, n}
`)

// historyScript reads a page of a stream, with its oldest retained id so
// the caller can tell whether a resume point is still covered. It reads
// in small batches and stops once the page's data passes a byte budget, so
// that a request cannot make Redis build a huge reply.
//
// KEYS[1] stream; ARGV[1] "fwd" or "rev", ARGV[2] start, ARGV[3] end,
// ARGV[4] count (0: all), ARGV[5] byte budget (0: none), ARGV[6] "ids" to
// leave the data out. Returns {firstID, entries, full} where firstID is ""
// for a missing stream, entries are {id, data, size} in the order read
// (data "" with "ids"), and full is 1 when the budget cut the page.
var historyScript = redis.NewScript(luaEntrySize + `
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #head == 0 then
  return {'', {}, 0}
end
local dir, lo, hi = ARGV[1], ARGV[2], ARGV[3]
local count, budget, idsOnly = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == 'ids'
local out, bytes, full = {}, 0, 0
while true do
  local n = 100
  if count > 0 then n = math.min(n, count - #out) end
  if n <= 0 then break end
  local rows
  if dir == 'fwd' then rows = redis.call('XRANGE', KEYS[1], lo, hi, 'COUNT', n)
  else rows = redis.call('XREVRANGE', KEYS[1], hi, lo, 'COUNT', n) end
  for _, row in ipairs(rows) do
    local data = ''
    for j = 1, #row[2], 2 do
      if row[2][j] == 'd' then data = row[2][j+1] end
    end
    if budget > 0 and #out > 0 and bytes + #data > budget then
      full = 1
      break
    end
    bytes = bytes + #data
    if idsOnly then out[#out+1] = {row[1], '', #data}
    else out[#out+1] = {row[1], data, #data} end
  end
  if full == 1 or #rows < n then break end
  local last = rows[#rows][1]
  if dir == 'fwd' then lo = '(' .. last else hi = '(' .. last end
end
return {head[1][1], out, full}
`)

// Presence keeps two sorted sets per topic: users (user → expiry) and, per
// user, conns (connection → expiry). A user is announced present
// (JoinedRoom) exactly when it enters the users set, and absent (LeftRoom)
// exactly when it leaves it; the scripts publish those announcements
// themselves, so their order on the topic's channel is the order of the
// presence changes. An empty frame publishes nothing.
//
// Announcements go out on the topic's channel as payloads (payload.go)
// without an id.

// presenceAddScript records a connection of a user on a topic ("join"),
// or refreshes it ("refresh", the heartbeat). A join announces a user that
// was not present. A refresh announces one only if a sweep had announced
// it gone (a partition outlasted the TTL): a user Redis merely forgot (a
// restart) was never announced gone, so it is not announced back. Nothing
// is announced in a large topic (ARGV[9] users or more, before the join;
// 0: no limit).
//
// KEYS[1] users, KEYS[2] the user's conns, KEYS[3] swept (user → time),
// KEYS[4] names (users by name, for paging); ARGV[1] user, ARGV[2] conn,
// ARGV[3] TTL ms, ARGV[4] channel, ARGV[5] JoinedRoom frame, ARGV[6]
// except, ARGV[7] "publish" or "spublish", ARGV[8] "join" or "refresh",
// ARGV[9] large-topic threshold; KEYS[5], only with a single Redis, the
// index of active topics (rooms.go), which the topic (ARGV[10]) enters.
// Returns 1 when the user was not present.
var presenceAddScript = redis.NewScript(luaPayload + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
local present = redis.call('ZSCORE', KEYS[1], ARGV[1])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], 'GT', now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[4], 0, ARGV[1])
redis.call('PEXPIRE', KEYS[4], ttl)
if KEYS[5] then redis.call('ZADD', KEYS[5], 0, ARGV[10]) end
if present then return 0 end
local swept = redis.call('ZREM', KEYS[3], ARGV[1]) == 1
local large = tonumber(ARGV[9]) > 0 and before >= tonumber(ARGV[9])
if ARGV[5] ~= '' and not large and (ARGV[8] == 'join' or swept) then
  redis.call(ARGV[7], ARGV[4], payload('', ARGV[6], ARGV[5]))
end
return 1
`)

// presenceRemoveScript forgets a connection; when the user has no live
// connection left, the user leaves the users set, the LeftRoom frame is
// published (unless the topic is large: ARGV[7] users or more before the
// leave), and the user is remembered in swept for ARGV[6] ms (a connection
// of it on a node cut off meanwhile is announced again when that node's
// heartbeat returns). KEYS as for presenceAddScript; ARGV[1] user, ARGV[2]
// conn, ARGV[3] channel, ARGV[4] LeftRoom frame, ARGV[5] "publish" or
// "spublish"; KEYS[5], only with a single Redis, the index of active
// topics, which the topic (ARGV[8]) leaves with its last user. Returns 1
// when the user left.
var presenceRemoveScript = redis.NewScript(luaPayload + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
local before = redis.call('ZCARD', KEYS[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
if KEYS[5] and redis.call('ZCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[5], ARGV[8]) end
local large = tonumber(ARGV[7]) > 0 and before >= tonumber(ARGV[7])
if ARGV[4] ~= '' and not large then
  redis.call(ARGV[5], ARGV[3], payload('', '', ARGV[4]))
end
return 1
`)

// membersScript lists a page of the users with a live connection on a
// topic, in name order, after ARGV[1] ("" for the first page), at most
// ARGV[2] of them (0: all), with the count of live users. Expired users
// are skipped and left for presenceSweepScript, which announces them.
// KEYS[1] users, KEYS[2] names. Returns {count, users}.
var membersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local limit = tonumber(ARGV[2])
local lo = '-'
if ARGV[1] ~= '' then lo = '(' .. ARGV[1] end
local out = {}
while limit == 0 or #out < limit do
  local n = 200
  if limit > 0 then n = math.min(n, limit - #out) end
  local names = redis.call('ZRANGE', KEYS[2], lo, '+', 'BYLEX', 'LIMIT', 0, n)
  for _, user in ipairs(names) do
    local expires = redis.call('ZSCORE', KEYS[1], user)
    if expires and tonumber(expires) > now then out[#out+1] = user end
  end
  if #names < n then break end
  lo = '(' .. names[#names]
end
return {count, out}
`)

// presenceRefreshScript is the heartbeat of one node in one topic: it
// refreshes many users' entries, each with its connections, in one call.
// For each user it does what presenceAddScript does with "refresh": a
// user missing from the users set is announced again only if a sweep had
// announced it gone (and the topic is not large), with the user's first
// connection as except.
//
// KEYS[1] users, KEYS[2] swept, KEYS[3] names, KEYS[3+i] the conns of
// the i-th user; KEYS[4+n], only with a single Redis, the index of active
// topics, which the topic (ARGV[5]) enters. ARGV[1] TTL ms, ARGV[2]
// channel, ARGV[3] "publish" or "spublish", ARGV[4] large-topic
// threshold, ARGV[6] n, the number of users; then for each user: the
// user, the number of its connections c, c connections, its JoinedRoom
// frame. Returns {how many users were announced again, the earliest
// deadline in the users set (ms, Redis's clock; 0: empty)}: before it no
// user of the topic can expire, so no sweep is needed (see
// presenceTracker.expiry).
var presenceRefreshScript = redis.NewScript(luaPayload + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[4])
local n = tonumber(ARGV[6])
local a, back = 7, 0
for i = 1, n do
  local user, c = ARGV[a], tonumber(ARGV[a + 1])
  local conns = KEYS[3 + i]
  local first = ARGV[a + 2]
  local zadd = {}
  for j = 1, c do
    zadd[#zadd + 1] = now + ttl
    zadd[#zadd + 1] = ARGV[a + 1 + j]
  end
  local frame = ARGV[a + 2 + c]
  a = a + 3 + c
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  redis.call('ZADD', conns, unpack(zadd))
  redis.call('PEXPIRE', conns, ttl)
  local present = redis.call('ZSCORE', KEYS[1], user)
  redis.call('ZADD', KEYS[1], 'GT', now + ttl, user)
  redis.call('ZADD', KEYS[3], 0, user)
  if not present and redis.call('ZREM', KEYS[2], user) == 1 then
    local large = limit > 0 and redis.call('ZCARD', KEYS[1]) - 1 >= limit
    if frame ~= '' and not large then
      redis.call(ARGV[3], ARGV[2], payload('', first, frame))
      back = back + 1
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
if KEYS[4 + n] then redis.call('ZADD', KEYS[4 + n], 0, ARGV[5]) end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {back, tonumber(first[2] or 0)}
`)

// presenceSweepScript removes the users whose entries expired (their node
// stopped refreshing them), publishes a LeftRoom for each (unless the
// topic is large: ARGV[7] users or more), built from a UserTemplate as
// ARGV[2] + the user + ARGV[6] + the user as a JSON string + ARGV[3], and
// remembers them in swept for ARGV[5] ms (see presenceAddScript). It first
// takes the topic's sweep lock (KEYS[4]) for ARGV[9] ms with SET NX PX:
// while another sweep holds it, it does nothing, so that one node does
// the work of an interval. KEYS[1] users, KEYS[2] swept, KEYS[3] names;
// ARGV[1] channel, ARGV[4] "publish" or "spublish"; KEYS[5], only with a
// single Redis, the index of active topics, which the topic (ARGV[8])
// leaves when no user remains. Returns the users removed.
var presenceSweepScript = redis.NewScript(luaPayload + `
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[9]) then
  return {}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local large = tonumber(ARGV[7]) > 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[7])
for _, user in ipairs(gone) do
  redis.call('ZREM', KEYS[1], user)
  redis.call('ZREM', KEYS[3], user)
  redis.call('ZADD', KEYS[2], now, user)
  if ARGV[2] ~= '' and not large then
    redis.call(ARGV[4], ARGV[1], payload('', '', ARGV[2] .. user .. ARGV[6] .. cjson.encode(user) .. ARGV[3]))
  end
end
if #gone > 0 then
  if KEYS[5] and redis.call('ZCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[5], ARGV[8]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return gone
`)
