-- Where a resource key lives: the current lease if there is one, else a new grant (epoch + 1) to
--   1. the move target an admin asked for, if it is live and not draining, else
--   2. the key's pinned owner, if it is live and not draining (a pinned key stays with its healthy owner), else
--   3. the live, non-draining worker with the fewest pinned keys (ties: the smallest id).
-- The pin table outlives leases; the lease (PX = ttl) is what the owner renews on each heartbeat.
--
-- KEYS[1] lease:<key>   KEYS[2] pins (key -> owner)   KEYS[3] epochs (key -> counter)   KEYS[4] workers (zset id ->
-- last beat ms)   KEYS[5] target:<key>
-- ARGV[1] the resource key   ARGV[2] ttl ms (lease length, and how recent a live worker's last beat is)
-- ARGV[3] key prefix for per-worker keys (worker:<id>, owned:<id>)
-- Returns {1, owner, epoch, remaining ttl ms, 1 if granted now else 0, 1 if this grant moved the key away from a pinned
-- owner that never released it (a failover) else 0} or {0} when no worker can take it.
local key = ARGV[1]
local ttl = tonumber(ARGV[2])
local prefix = ARGV[3]
local h = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if h[1] then
  return {1, h[1], tonumber(h[2]), redis.call('PTTL', KEYS[1]), 0, 0}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], now - ttl, '+inf')) do
  if redis.call('HGET', prefix .. 'worker:' .. id, 'draining') ~= '1' then live[id] = true end
end

local chosen = nil
local target = redis.call('GET', KEYS[5])
local pinned = redis.call('HGET', KEYS[2], key)
if target and live[target] then
  chosen = target
elseif pinned and live[pinned] then
  chosen = pinned
else
  local best = nil
  for id in pairs(live) do
    local n = redis.call('SCARD', prefix .. 'owned:' .. id)
    if best == nil or n < best or (n == best and id < chosen) then
      best = n
      chosen = id
    end
  end
end
if not chosen then return {0} end

local epoch = redis.call('HINCRBY', KEYS[3], key, 1)
redis.call('HSET', KEYS[1], 'holder', chosen, 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], key, chosen)
if pinned and pinned ~= chosen then redis.call('SREM', prefix .. 'owned:' .. pinned, key) end
redis.call('SADD', prefix .. 'owned:' .. chosen, key)
redis.call('DEL', KEYS[5])
-- A clean release (idle, LRU, drain, move, unpin) removes the pin first: a pin left to another worker means its
-- owner died or lost its lease with the key.
return {1, chosen, epoch, ttl, 1, (pinned and pinned ~= chosen) and 1 or 0}
