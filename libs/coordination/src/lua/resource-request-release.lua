-- Admin: unpin or move a key. With a live lease, flags it: the owner closes the key and releases it on its next
-- heartbeat. Without one, drops the pin at once. A move also records the target, which the next placement uses.
-- KEYS[1] lease:<key>   KEYS[2] pins   KEYS[3] target:<key>   KEYS[4] workers   KEYS[5] draining (set of ids)
-- ARGV[1] the resource key   ARGV[2] target worker id or ''   ARGV[3] ttl ms
-- ARGV[4] how long the move target is remembered (ms)
-- Returns {status, owner or ''}: status 'pending' (owner asked to release), 'released' (pin dropped),
-- 'not-pinned', 'bad-target' (target not live, or draining).
local key, target, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if target ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local beat = redis.call('ZSCORE', KEYS[4], target)
  if not beat or tonumber(beat) < now - ttl or redis.call('SISMEMBER', KEYS[5], target) == 1 then
    return {'bad-target', ''}
  end
  redis.call('SET', KEYS[3], target, 'PX', tonumber(ARGV[4]))
end
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then
  if holder == target then
    redis.call('DEL', KEYS[3])
    return {'already-there', holder}
  end
  redis.call('HSET', KEYS[1], 'release', '1')
  return {'pending', holder}
end
local pinned = redis.call('HGET', KEYS[2], key)
if pinned then
  redis.call('HDEL', KEYS[2], key)
  return {'released', pinned}
end
return {'not-pinned', ''}
