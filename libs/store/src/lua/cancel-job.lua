-- Cancels a job that has not finished: every service still without an outcome is recorded Cancelled.
-- KEYS[1] job hash; KEYS[2] deadline index; KEYS[3] the job's event stream (includes/job-event.lua). ARGV[1] job id; ARGV[2] now (ISO 8601); ARGV[3] the Cancelled
-- outcome (JSON, built by job-store.ts); ARGV[4] now (epoch ms); ARGV[5] ms after which the job comes back to the
-- deadline sweep: it stays due until its cancellation is announced (field `notified`, set by the API once
-- job.completed and the callback are published), so a cancellation the API could not announce (broker down, API
-- killed) is announced by the sweep (expire-job.lua)
-- Returns { disposition, status, callback, tenant }: disposition cancelled | finished (already Completed/Cancelled) | missing;
-- callback '1' when the job has a completion callback (field `callback`), else ''; tenant (TENANTS) when cancelled here
--- @include "includes/finish-job"
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then return { 'missing', '', '' } end
if status == 'Completed' or status == 'Cancelled' then return { 'finished', status, '' } end
finishJob(job, KEYS[2], KEYS[3], ARGV[1], ARGV[3], 'Cancelled', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[1])
return { 'cancelled', 'Cancelled', redis.call('HEXISTS', job, 'callback') == 1 and '1' or '', redis.call('HGET', job, 'tenant') or '' }
