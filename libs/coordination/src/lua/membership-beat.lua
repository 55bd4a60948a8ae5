-- One heartbeat of a group member: records its expiry (Redis clock + ttl), drops members whose expiry has
-- passed, and returns the live members sorted by id (so every member computes the same index for each).
-- KEYS[1] the group (sorted set: member -> expiry ms)   ARGV[1] member id   ARGV[2] ttl ms   ARGV[3] '1' to leave
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
return members
