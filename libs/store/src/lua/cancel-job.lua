-- Cancels a job that has not finished: every service still without an outcome is recorded Cancelled.
-- KEYS[1] job hash; KEYS[2] deadline index. ARGV[1] job id; ARGV[2] now (ISO 8601)
-- Returns { disposition, status }: cancelled | finished (already Completed/Cancelled) | missing
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then return { 'missing', '' } end
if status == 'Completed' or status == 'Cancelled' then return { 'finished', status } end
local outcome = cjson.encode({
  status = 'Cancelled', success = false, errorMessage = 'the job was cancelled',
  completedAt = ARGV[2], durationMs = cjson.null, attempts = 0, location = cjson.null,
})
for service in string.gmatch(redis.call('HGET', job, 'services') or '', '[^,]+') do
  if redis.call('HSETNX', job, 'o:' .. service, outcome) == 1 then redis.call('HINCRBY', job, 'done', 1) end
end
redis.call('HSET', job, 'status', 'Cancelled', 'completedAt', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return { 'cancelled', 'Cancelled' }
