-- cacheward rate limiter: fixed window.
--
-- KEYS[1]  the identifier's state, a hash: w = window index, c = units used in it
-- ARGV     cost, peek (1 = read only), limit, window (ms)
-- returns  {allowed (0/1), remaining, reset_after (ms)}
--
-- Windows are aligned to the Unix epoch on the server clock (TIME). A rejected
-- request changes nothing. The key expires when its window ends, which is exactly
-- when its state stops mattering.
local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = math.floor(now / window)
local reset = (win + 1) * window - now

local state = redis.call('HMGET', KEYS[1], 'w', 'c')
local used = 0
if tonumber(state[1]) == win then
  used = tonumber(state[2]) or 0
end

if used + cost > limit then
  return {0, math.max(limit - used, 0), reset}
end
if not peek and cost > 0 then
  used = used + cost
  redis.call('HSET', KEYS[1], 'w', win, 'c', used)
  redis.call('PEXPIRE', KEYS[1], reset)
end
-- Allowed: reset_after is when the whole limit is back (now, if nothing is used).
if used == 0 then
  reset = 0
end
return {1, limit - used, reset}
