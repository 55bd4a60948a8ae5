-- Gives a lease up early, only if the caller still holds it at that epoch.
-- KEYS[1] the lease   ARGV[1] holder id   ARGV[2] epoch
-- Returns 1 released, 0 not held.
local h = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if h[1] == ARGV[1] and h[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
