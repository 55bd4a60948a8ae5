-- One heartbeat of a resource worker: records it as live, renews the leases it holds (only those whose holder
-- and epoch are still its own), and forgets workers silent for longer than the prune age.
--
-- KEYS[1] workers (zset id -> last beat ms)   KEYS[2] worker info (hash id -> JSON)   KEYS[3] draining (set of ids)
-- KEYS[3 + i] lease:<key i>
-- ARGV[1] worker id   ARGV[2] ttl ms   ARGV[3] prune age ms   ARGV[4] this worker's info (JSON: host, pid, startedAt)
-- ARGV[4 + i] the epoch the worker holds key i at
-- Returns {draining (1|0), status of key 1, status of key 2, ...} where status is 0 lost, 1 renewed,
-- 2 renewed but an admin asked for it to be released (unpin, move, drain).
local me = ARGV[1]
local ttl = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZADD', KEYS[1], now, me)
redis.call('HSET', KEYS[2], me, ARGV[4])
local draining = redis.call('SISMEMBER', KEYS[3], me) == 1

local out = {draining and 1 or 0}
for i = 4, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'holder', 'epoch', 'release')
  if h[1] == me and h[2] == ARGV[1 + i] then
    redis.call('PEXPIRE', KEYS[i], ttl)
    out[#out + 1] = (h[3] == '1' or draining) and 2 or 1
  else
    out[#out + 1] = 0
  end
end

-- A pruned worker's pins stay: the next placement of such a key moves it (and counts a failover).
local prune = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - prune)) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('SREM', KEYS[3], id)
end
return out
