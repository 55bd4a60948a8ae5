-- Admits a tenant's job to its dispatch window (TENANT_DISPATCH_WINDOW, tenant-dispatch.ts), or queues it: a job is
-- dispatched only while fewer than `size` of the tenant's jobs are dispatched and unfinished.
-- KEYS[1] the tenant's window (sorted set: job id scored by when its slot lapses by itself, for a job whose end never
--         released it); KEYS[2] its waiting jobs (sorted set: job id scored by priority, then arrival, so the lowest
--         score is taken first); KEYS[3] what each waiting job dispatches (hash: job id -> JSON)
-- ARGV[1] now (epoch ms)  ARGV[2] window size  ARGV[3] when a slot taken now lapses (epoch ms)  ARGV[4] job id
-- ARGV[5] the job's waiting score  ARGV[6] its dispatch JSON  ARGV[7] the keys' TTL (ms)
-- Returns { answer, waiting }: answer dispatch (a slot was taken now: publish its commands) | dispatched (it already
-- holds a slot: a duplicate or redelivered job.submitted) | wait (queued now) | waiting (already queued); waiting:
-- how many of the tenant's jobs wait after the call.
local window, waiting, specs = KEYS[1], KEYS[2], KEYS[3]
local jobId = ARGV[4]
redis.call('ZREMRANGEBYSCORE', window, '-inf', ARGV[1])
if redis.call('ZSCORE', window, jobId) then return { 'dispatched', redis.call('ZCARD', waiting) } end
if redis.call('ZSCORE', waiting, jobId) then return { 'waiting', redis.call('ZCARD', waiting) } end
if redis.call('ZCARD', window) < tonumber(ARGV[2]) then
  redis.call('ZADD', window, ARGV[3], jobId)
  redis.call('PEXPIRE', window, ARGV[7])
  return { 'dispatch', redis.call('ZCARD', waiting) }
end
redis.call('ZADD', waiting, ARGV[5], jobId)
redis.call('HSET', specs, jobId, ARGV[6])
redis.call('PEXPIRE', waiting, ARGV[7])
redis.call('PEXPIRE', specs, ARGV[7])
return { 'wait', redis.call('ZCARD', waiting) }
