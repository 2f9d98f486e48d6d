-- cacheward rate limiter: token bucket with discrete refills.
--
-- KEYS[1]  the identifier's state, a hash: t = tokens, r = time of the last refill (ms)
-- ARGV     cost, peek (1 = read only), capacity, refill tokens, refill period (ms)
-- returns  {allowed (0/1), remaining, reset_after (ms)}
--
-- A new (or expired) bucket is full. `refill` tokens are added every `period` ms,
-- counted from the moment the bucket was last full, up to `capacity`. A rejected
-- request changes nothing: no token is taken and the refill clock is not touched
-- (so a client hammering an empty bucket is not locked out). The key expires when
-- the bucket would be full again, which is the state a missing key stands for.
local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'
local capacity = tonumber(ARGV[3])
local refill = tonumber(ARGV[4])
local period = tonumber(ARGV[5])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 't', 'r')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
  last = now
elseif now < last then
  -- The server clock went back (a failover): restart the refill clock, keep the tokens.
  last = now
else
  local n = math.floor((now - last) / period)
  if n > 0 then
    tokens = tokens + n * refill
    last = last + n * period
  end
end
if tokens >= capacity then
  tokens = capacity
  last = now
end

-- ms until the bucket holds `target` tokens
local function time_to(target)
  if tokens >= target then
    return 0
  end
  return last + math.ceil((target - tokens) / refill) * period - now
end

if tokens >= cost then
  if not peek and cost > 0 then
    tokens = tokens - cost
    redis.call('HSET', KEYS[1], 't', tokens, 'r', last)
    redis.call('PEXPIRE', KEYS[1], math.max(time_to(capacity), 1))
  end
  return {1, tokens, time_to(capacity)}
end
if cost > capacity then
  return {0, tokens, time_to(capacity)}
end
return {0, tokens, time_to(cost)}
