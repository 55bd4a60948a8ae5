-- Finishes a job whose deadline has passed: every requested service still without an outcome is recorded
-- TimedOut and the job completes with what it has. Idempotent; never touches a finished job.
-- KEYS[1] job hash; KEYS[2] deadline index (sorted set); KEYS[3] the job's event stream (includes/job-event.lua)
-- ARGV[1] job id; ARGV[2] now (ISO 8601); ARGV[3] now (epoch ms); ARGV[4] the TimedOut outcome (JSON, built by
-- job-store.ts); ARGV[5] ms after which a job this script completed comes back to the sweep, until it is announced
-- A job this script completes stays in the deadline index (due again after ARGV[5] ms) until a later call finds it
-- announced (field `notified`): a sweeper that dies between expiring a job and announcing it (job.completed, the
-- job's callback) leaves it for the next sweep, which announces it. So does a job the API cancelled
-- (cancel-job.lua) until the API has announced it. Jobs completed by their last outcome leave the index (whoever
-- recorded it announces it, again on redelivery).
-- Returns { disposition, status, notified, createdAt, callback, tenant }: disposition expired | not-due | finished | missing;
-- createdAt (the job's creation time, for its duration) only when this call expired it, else ''; callback '1' when the
-- job has a completion callback (field `callback`), else ''; tenant (TENANTS) only when this call expired it
--- @include "includes/finish-job"
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return { 'missing', '', '', '', '' }
end
local notified = redis.call('HGET', job, 'notified') or ''
local callback = redis.call('HEXISTS', job, 'callback') == 1 and '1' or ''
if status == 'Completed' or status == 'Cancelled' then
  if notified == '' and (status == 'Cancelled' or redis.call('HGET', job, 'timedOut') == '1') then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[5]), ARGV[1])
  else
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
  return { 'finished', status, notified, '', callback }
end
local deadline = tonumber(redis.call('HGET', job, 'deadlineAt') or '0')
if deadline > tonumber(ARGV[3]) then return { 'not-due', status, notified, '', callback } end
finishJob(job, KEYS[2], KEYS[3], ARGV[1], ARGV[4], 'Completed', ARGV[2], 'timedOut', '1')
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[5]), ARGV[1])
return { 'expired', 'Completed', notified, redis.call('HGET', job, 'createdAt') or '', callback, redis.call('HGET', job, 'tenant') or '' }
