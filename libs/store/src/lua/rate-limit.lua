-- Checks and counts one request against the client's tier bucket and the global bucket atomically: the
-- request is counted in both or, when either is full, in neither (a refused request consumes no quota).
--
-- KEYS[1]        the client's tier bucket; KEYS[2] the global bucket. A bucket is a hash whose fields are
--                segment numbers (floor(now / segmentMs)) and whose values are the requests counted in them.
-- ARGV[1]        now in ms, or '' to use the Redis server clock (one clock for every API replica)
-- ARGV[2]        window length in ms
-- ARGV[1 + 2i]   limit of bucket i (0 = disabled: neither read nor counted)
-- ARGV[2 + 2i]   segments of bucket i: 1 = fixed window, n = sliding window of n segments
-- ARGV[3 + 2k]   (k = #KEYS; optional, default 1) the cost: how many requests this call counts (a batch of N
--                submissions costs N); counted in full or not at all. A cost above a bucket's limit never fits.
--
-- Returns { allowed (1|0), retryAfterMs, limit, remaining, resetMs } where limit, remaining and resetMs describe
-- the most constrained bucket: the refusing one with the longest wait, else the one with the fewest requests
-- left. resetMs: when refused, the wait; when allowed, how long until the oldest request counted in that bucket
-- leaves the window (a fixed window: its end; a sliding one: when its oldest non-empty segment leaves).
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3 + 2 * #KEYS]) or 1

-- Reads one bucket: what it holds inside the window, and how long until one more request would fit.
local function inspect(key, limit, segments)
  local segMs = math.max(1, math.floor(window / segments))
  local current = math.floor(now / segMs)
  local oldest = current - segments + 1
  local flat = redis.call('HGETALL', key)
  local counts, stale, total = {}, {}, 0
  for j = 1, #flat, 2 do
    local seg = tonumber(flat[j])
    if seg == nil or seg < oldest then
      stale[#stale + 1] = flat[j]
    elseif seg <= current then
      local count = tonumber(flat[j + 1]) or 0
      counts[seg] = count
      total = total + count
    end
  end
  local wait = 0
  if total + cost > limit then
    -- The oldest segments leave the window first; wait until enough have left for this call's cost.
    local left = total
    wait = (current + 1) * segMs - now
    if cost > limit then wait = segments * segMs end
    for seg = oldest, current do
      left = left - (counts[seg] or 0)
      if cost <= limit and left + cost <= limit then
        wait = (seg + segments) * segMs - now
        break
      end
    end
  end
  -- After this request is counted (in the current segment), the oldest counted request leaves at:
  local reset = (current + segments) * segMs - now
  for seg = oldest, current do
    if (counts[seg] or 0) > 0 then
      reset = (seg + segments) * segMs - now
      break
    end
  end
  return {
    key = key, limit = limit, total = total, wait = wait, current = current, stale = stale,
    ttl = segments * segMs + segMs, reset = reset,
  }
end

local buckets = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i]) or 0
  if limit > 0 then
    buckets[#buckets + 1] = inspect(KEYS[i], limit, tonumber(ARGV[2 + 2 * i]))
  end
end

local refusing = nil
for _, b in ipairs(buckets) do
  if b.total + cost > b.limit and (refusing == nil or b.wait > refusing.wait) then refusing = b end
end
if refusing then
  return { 0, refusing.wait, refusing.limit, 0, refusing.wait }
end

local reportLimit, reportRemaining, reportReset = 0, 0, 0
for i, b in ipairs(buckets) do
  if #b.stale > 0 then redis.call('HDEL', b.key, unpack(b.stale)) end
  redis.call('HINCRBY', b.key, b.current, cost)
  redis.call('PEXPIRE', b.key, b.ttl)
  local remaining = b.limit - b.total - cost
  if i == 1 or remaining < reportRemaining then
    reportLimit, reportRemaining, reportReset = b.limit, remaining, b.reset
  end
end
return { 1, 0, reportLimit, reportRemaining, reportReset }
