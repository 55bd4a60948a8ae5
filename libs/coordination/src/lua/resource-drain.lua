-- Admin: drain a worker. It takes no new keys from now on, and releases the ones it has on its next heartbeat.
-- KEYS[1] workers   KEYS[2] worker:<id>   KEYS[3] owned:<id>   ARGV[1] worker id
-- Returns the number of keys pinned to it, or -1 for an unknown worker.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
redis.call('HSET', KEYS[2], 'draining', '1')
return redis.call('SCARD', KEYS[3])
