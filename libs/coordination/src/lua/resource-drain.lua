-- Admin: drain a worker. It takes no new keys from now on, and releases the ones it has on its next heartbeat.
-- KEYS[1] workers   KEYS[2] draining (set of ids)   KEYS[3] pins (key -> owner)   ARGV[1] worker id
-- Returns the number of keys pinned to it, or -1 for an unknown worker.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
redis.call('SADD', KEYS[2], ARGV[1])
local n = 0
for _, owner in ipairs(redis.call('HVALS', KEYS[3])) do
  if owner == ARGV[1] then n = n + 1 end
end
return n
