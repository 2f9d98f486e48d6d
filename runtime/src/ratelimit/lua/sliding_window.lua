-- cacheward rate limiter: sliding window (two-window weighted approximation).
--
-- KEYS[1]  the identifier's state, a hash: w = current window index,
--          c = units used in window w, p = units used in window w - 1
-- ARGV     cost, peek (1 = read only), limit, window (ms)
-- returns  {allowed (0/1), remaining, reset_after (ms)}
--
-- The estimate of the last `window` ms is  p * (window - elapsed) / window + c,
-- where elapsed is the time since the current window began. Everything is kept
-- multiplied by `window` so the comparison is exact integer arithmetic. A rejected
-- request changes nothing. The key expires when the current window's count stops
-- mattering: at the end of the next window.
local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = math.floor(now / window)
local elapsed = now - win * window

local state = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(state[1])
local cur, prev = 0, 0
if w == win then
  cur = tonumber(state[2]) or 0
  prev = tonumber(state[3]) or 0
elseif w == win - 1 then
  prev = tonumber(state[2]) or 0
end

local capacity = limit * window
local weighted = prev * (window - elapsed) + cur * window
local allowed = weighted + cost * window <= capacity
if allowed and not peek and cost > 0 then
  cur = cur + cost
  weighted = weighted + cost * window
  redis.call('HSET', KEYS[1], 'w', win, 'c', cur, 'p', prev)
  redis.call('PEXPIRE', KEYS[1], 2 * window - elapsed)
end

local remaining = math.floor((capacity - weighted) / window)
if remaining < 0 then
  remaining = 0
end

-- Time until the estimate is back to zero (the whole limit available again).
local full
if cur > 0 then
  full = 2 * window - elapsed
elseif prev > 0 then
  full = window - elapsed
else
  full = 0
end

if allowed then
  return {1, remaining, full}
end
if cost > limit then
  return {0, remaining, full}
end
if cur + cost <= limit then
  -- Fits in this window once the previous window's weight has dropped enough:
  -- prev * (window - e) <= (limit - cur - cost) * window.
  local e = window - math.floor((limit - cur - cost) * window / prev)
  return {0, remaining, e - elapsed}
end
-- Only in the next window, where this window's count becomes the previous one:
-- cur * (window - g) <= (limit - cost) * window.
local g = window - math.floor((limit - cost) * window / cur)
return {0, remaining, window - elapsed + g}
