-- Fills a tenant's dispatch window (tenant-admit.lua) from its waiting jobs, lowest score (highest priority, then
-- oldest) first. A job taken here holds a slot at once and is recorded as not yet published (KEYS[4]) until the saga
-- confirms its commands were published (TenantDispatch.published), so a saga that dies in between leaves it for the
-- sweeper to publish again; its dispatch JSON stays in KEYS[3] until then.
-- KEYS[1] window  KEYS[2] waiting  KEYS[3] dispatch JSON by job id  KEYS[4] not yet published (sorted set: when taken)
-- ARGV[1] now (epoch ms)  ARGV[2] window size  ARGV[3] when a slot taken now lapses (epoch ms)  ARGV[4] the keys' TTL (ms)
-- Returns { waitingAfter, jobId1, json1, jobId2, json2, ... } (json '' when none was stored).
local window, waiting, specs, unpublished = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
redis.call('ZREMRANGEBYSCORE', window, '-inf', ARGV[1])
local room = tonumber(ARGV[2]) - redis.call('ZCARD', window)
local out = { 0 }
while room > 0 do
  local popped = redis.call('ZPOPMIN', waiting)
  if #popped == 0 then break end
  local jobId = popped[1]
  redis.call('ZADD', window, ARGV[3], jobId)
  redis.call('ZADD', unpublished, ARGV[1], jobId)
  out[#out + 1] = jobId
  out[#out + 1] = redis.call('HGET', specs, jobId) or ''
  room = room - 1
end
if #out > 1 then
  redis.call('PEXPIRE', window, ARGV[4])
  redis.call('PEXPIRE', unpublished, ARGV[4])
end
out[1] = redis.call('ZCARD', waiting)
return out
