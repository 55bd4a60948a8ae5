-- Where a resource key lives: the current lease if there is one, else a new grant (epoch + 1) to
--   1. the move target an admin asked for, if it is live and not draining, else
--   2. the key's pinned owner, if it is live and not draining (a pinned key stays with its healthy owner), else
--   3. the live, non-draining worker with the fewest pinned keys (ties: the smallest id).
-- The pin table outlives leases; the lease (PX = ttl) is what the owner renews on each heartbeat. A worker's keys are
-- the pins naming it (no per-worker key: every key this script touches is in KEYS, one hash slot).
--
-- KEYS[1] lease:<key>   KEYS[2] pins (key -> owner)   KEYS[3] epochs (key -> counter)   KEYS[4] workers (zset id ->
-- last beat ms)   KEYS[5] target:<key>   KEYS[6] draining (set of worker ids)
-- ARGV[1] the resource key   ARGV[2] ttl ms (lease length, and how recent a live worker's last beat is)
-- Returns {1, owner, epoch, remaining ttl ms, 1 if granted now else 0, 1 if this grant moved the key away from a pinned
-- owner that never released it (a failover) else 0} or {0} when no worker can take it.
local key = ARGV[1]
local ttl = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if h[1] then
  return {1, h[1], tonumber(h[2]), redis.call('PTTL', KEYS[1]), 0, 0}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = {}
local any = false
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], now - ttl, '+inf')) do
  if redis.call('SISMEMBER', KEYS[6], id) == 0 then
    live[id] = 0
    any = true
  end
end
if not any then return {0} end

local chosen = nil
local target = redis.call('GET', KEYS[5])
local pinned = redis.call('HGET', KEYS[2], key)
if target and live[target] then
  chosen = target
elseif pinned and live[pinned] then
  chosen = pinned
else
  -- Pinned keys per live worker, counted from the pin table (grants only: a live lease returned above).
  for _, owner in ipairs(redis.call('HVALS', KEYS[2])) do
    if live[owner] then live[owner] = live[owner] + 1 end
  end
  local best = nil
  for id, n in pairs(live) do
    if best == nil or n < best or (n == best and id < chosen) then
      best = n
      chosen = id
    end
  end
end

local epoch = redis.call('HINCRBY', KEYS[3], key, 1)
redis.call('HSET', KEYS[1], 'holder', chosen, 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], key, chosen)
redis.call('DEL', KEYS[5])
-- A clean release (idle, LRU, drain, move, unpin) removes the pin first: a pin left to another worker means its
-- owner died or lost its lease with the key.
return {1, chosen, epoch, ttl, 1, (pinned and pinned ~= chosen) and 1 or 0}
