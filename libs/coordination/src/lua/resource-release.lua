-- The owner gives a key up (after closing it): deletes its lease and its pin, so the next request places the
-- key afresh. Only if the caller still holds the lease at that epoch.
-- KEYS[1] lease:<key>   KEYS[2] pins
-- ARGV[1] worker id   ARGV[2] epoch   ARGV[3] the resource key
-- Returns 1 released, 0 not held (nothing changed).
local h = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[3]) end
return 1
