-- Renews leases the caller holds: each KEYS[i] is extended to the full ttl only if its holder and epoch are still
-- the caller's (a lease that expired, or was granted again, is never revived).
--
-- KEYS[i] lease hashes   ARGV[1] holder id   ARGV[2] ttl in ms   ARGV[2 + i] the epoch the caller holds KEYS[i] at
-- Returns one status per key: 1 renewed, 0 not held.
local out = {}
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'holder', 'epoch')
  if h[1] == ARGV[1] and h[2] == ARGV[2 + i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
