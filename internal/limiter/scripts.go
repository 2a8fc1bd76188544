package limiter

import "github.com/redis/go-redis/v9"

// The scripts share one calling convention. KEYS[1] is the hash-tagged key;
// ARGV is limit, window (µs), burst (GCRA). Window indexes are written with
// %d: Lua would otherwise format large numbers with 14 significant digits. Time comes from Redis (TIME, in
// µs). Each returns {allowed (0|1), remaining, reset µs, retry-after µs}.
// The arithmetic mirrors decideGCRA, decideFixed and decideSliding in
// memory.go.

// gcraScript stores the TAT in milliseconds with three decimals, so that
// emission intervals below a millisecond stay exact to the microsecond.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local em = win / limit
local span = em * burst
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local v = tonumber(stored) * 1000
  if v > now then tat = v end
end
local nxt = tat + em
if nxt - now > span + 1e-6 then
  return {0, 0, math.ceil(tat - now), math.max(1, math.ceil(nxt - span - now))}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt / 1000), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
local rem = math.floor((span - (nxt - now)) / em + 1e-9)
if rem < 0 then rem = 0 end
return {1, rem, math.ceil(nxt - now), 0}
`)

var fixedScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local idx = math.floor(now / win)
local left = (idx + 1) * win - now
local v = redis.call('HMGET', KEYS[1], 'w', 'c')
local n = 0
if tonumber(v[1]) == idx then n = tonumber(v[2]) end
if n >= limit then return {0, 0, left, left} end
n = n + 1
redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', n)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(left / 1000)))
return {1, limit - n, left, 0}
`)

var slidingScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local idx = math.floor(now / win)
local elapsed = now - idx * win
local v = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(v[1])
local cur, prev = 0, 0
if w == idx then
  cur = tonumber(v[2]); prev = tonumber(v[3])
elseif w == idx - 1 then
  prev = tonumber(v[2])
end
local weight = (win - elapsed) / win
if prev * weight + cur + 1 > limit then
  local retry
  if cur + 1 <= limit and prev > 0 then
    retry = math.ceil((win - elapsed) - (limit - 1 - cur) * win / prev)
  else
    retry = (win - elapsed) + math.ceil(win - (limit - 1) * win / cur)
  end
  local reset = 2 * win - elapsed
  if cur == 0 then reset = win - elapsed end
  return {0, 0, reset, math.max(1, retry)}
end
cur = cur + 1
redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', cur, 'p', prev)
redis.call('PEXPIRE', KEYS[1], math.ceil((2 * win - elapsed) / 1000))
local rem = math.floor(limit - (prev * weight + cur) + 1e-9)
if rem < 0 then rem = 0 end
return {1, rem, 2 * win - elapsed, 0}
`)
