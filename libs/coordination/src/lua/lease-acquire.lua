-- Grants a free lease. The epoch (fencing token) is a per-lease counter INCR'd on every grant, kept in its own
-- key without a TTL, so it only ever grows, even across expiries.
--
-- KEYS[1] the lease (hash: holder, epoch; PX = ttl)   KEYS[2] the epoch counter
-- ARGV[1] holder id   ARGV[2] ttl in ms
-- Returns {1, epoch} when granted, {0, epoch, holder, pttl} when another grant is still live. A holder never
-- re-acquires its own live lease here (it renews with its epoch instead): after it has given the lease up
-- locally it waits, like everyone else, until Redis expires it.
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'epoch')), holder, redis.call('PTTL', KEYS[1])}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, epoch}
