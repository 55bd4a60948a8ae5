-- Records one service's outcome on a job, atomically and idempotently.
-- KEYS[1]  job hash
-- KEYS[2]  deadline index (sorted set): the job leaves it when it completes
-- KEYS[3]  the job's event stream (includes/job-event.lua): a `result` entry, and `completed` when this outcome
--          completes the job
-- ARGV[1]  service number
-- ARGV[2]  the outcome (JSON of job-store.ts's OutcomeRecord: @lookup/contracts' outcome.ts plus location),
--          stored as it is: this script never reads its fields
-- ARGV[3]  completion time (ISO 8601) to stamp if this outcome completes the job
-- ARGV[4]  job id
-- Returns { disposition, jobStatus, notified, createdAt, callback, tenant }
--   disposition: recorded | duplicate | late | missing | unrequested
--   createdAt: only when this outcome completed the job (the job's creation time, for its duration); else ''
--   callback: '1' when the job has a completion callback (field `callback`), else '': who announces the job's end
--   then also sends its callback command, with no extra round trip
--   tenant: the job's tenant (TENANTS) when this call completed it, else '': its in-flight slot is released
-- The first outcome for a service wins (HSETNX): a redelivered or duplicate event never double-counts,
-- and a finished (Completed/Cancelled) job is never reopened or regressed.
--- @include "includes/job-event"
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then return { 'missing', '', '', '', '' } end
local notified = redis.call('HGET', job, 'notified') or ''
local callback = redis.call('HEXISTS', job, 'callback') == 1 and '1' or ''
local services = ',' .. (redis.call('HGET', job, 'services') or '') .. ','
if not string.find(services, ',' .. ARGV[1] .. ',', 1, true) then return { 'unrequested', status, notified, '', callback } end
if status == 'Completed' or status == 'Cancelled' then
  if redis.call('HEXISTS', job, 'o:' .. ARGV[1]) == 1 then return { 'duplicate', status, notified, '', callback } end
  return { 'late', status, notified, '', callback }
end
if redis.call('HSETNX', job, 'o:' .. ARGV[1], ARGV[2]) == 0 then return { 'duplicate', status, notified, '', callback } end
local done = redis.call('HINCRBY', job, 'done', 1)
local total = tonumber(redis.call('HGET', job, 'total'))
local lines = { jobEventLine(jobEvent(KEYS[3], job, total + 2, 'type', 'result', 'service', ARGV[1]), 'result', ARGV[1]) }
if done >= total then
  redis.call('HSET', job, 'status', 'Completed', 'completedAt', ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[4])
  lines[2] = jobEventLine(jobEvent(KEYS[3], job, total + 2, 'type', 'completed'), 'completed')
  jobEventsChanged(KEYS[3], lines)
  return { 'recorded', 'Completed', notified, redis.call('HGET', job, 'createdAt') or '', callback, redis.call('HGET', job, 'tenant') or '' }
end
jobEventsChanged(KEYS[3], lines)
if status == 'Pending' then
  redis.call('HSET', job, 'status', 'Processing')
  status = 'Processing'
end
return { 'recorded', status, notified, '', callback }
