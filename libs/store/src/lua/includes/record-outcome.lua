-- Records one service's outcome on a job, atomically and idempotently (record-outcome.lua: the saga, for a
-- task.completed; save-result.lua: the worker, in the same step that stores the result).
-- job       the job hash
-- deadlines the deadline index (sorted set): the job leaves it when it completes
-- events    the job's event stream (includes/job-event.lua): a `result` entry, and `completed` when this outcome
--           completes the job
-- service   service number
-- outcome   the outcome (JSON of job-store.ts's OutcomeRecord: @lookup/contracts' outcome.ts plus location),
--           stored as it is: never read here
-- at        completion time (ISO 8601) to stamp if this outcome completes the job
-- jobId     the job id (the deadline index's member)
-- Returns { disposition, jobStatus, notified, createdAt, callback, tenant }
--   disposition: recorded | duplicate | late | missing | unrequested
--   createdAt, tenant: when the job is Completed and not yet announced (notified), the job's creation time (for its
--   duration; '' for a job the deadline sweep finished, which counted it) and its tenant (TENANTS: its in-flight
--   slot is released), whether this call completed it or an earlier one did (a worker's save-result.lua, or a
--   delivery that died before announcing); else ''
--   callback: '1' when the job has a completion callback (field `callback`), else '': who announces the job's end
--   then also sends its callback command, with no extra round trip
-- The first outcome for a service wins (HSETNX): a redelivered or duplicate event never double-counts,
-- and a finished (Completed/Cancelled) job is never reopened or regressed.
--- @include "job-event"
local function recordOutcome(job, deadlines, events, service, outcome, at, jobId)
  local status = redis.call('HGET', job, 'status')
  if not status then return { 'missing', '', '', '', '' } end
  local notified = redis.call('HGET', job, 'notified') or ''
  local callback = redis.call('HEXISTS', job, 'callback') == 1 and '1' or ''
  local services = ',' .. (redis.call('HGET', job, 'services') or '') .. ','
  if not string.find(services, ',' .. service .. ',', 1, true) then return { 'unrequested', status, notified, '', callback } end
  local function unannounced(disposition)
    if status == 'Completed' and notified == '' then
      -- A job the deadline sweep finished (timedOut) was counted there: no createdAt, so it is not counted again.
      local createdAt = redis.call('HGET', job, 'timedOut') == '1' and '' or (redis.call('HGET', job, 'createdAt') or '')
      return { disposition, status, notified, createdAt, callback, redis.call('HGET', job, 'tenant') or '' }
    end
    return { disposition, status, notified, '', callback }
  end
  if status == 'Completed' or status == 'Cancelled' then
    if redis.call('HEXISTS', job, 'o:' .. service) == 1 then return unannounced('duplicate') end
    return unannounced('late')
  end
  if redis.call('HSETNX', job, 'o:' .. service, outcome) == 0 then return { 'duplicate', status, notified, '', callback } end
  local done = redis.call('HINCRBY', job, 'done', 1)
  local total = tonumber(redis.call('HGET', job, 'total'))
  local lines = { jobEventLine(jobEvent(events, job, total + 2, 'type', 'result', 'service', service), 'result', service) }
  if done >= total then
    redis.call('HSET', job, 'status', 'Completed', 'completedAt', at)
    redis.call('ZREM', deadlines, jobId)
    lines[2] = jobEventLine(jobEvent(events, job, total + 2, 'type', 'completed'), 'completed')
    jobEventsChanged(events, lines)
    status = 'Completed'
    return unannounced('recorded')
  end
  jobEventsChanged(events, lines)
  if status == 'Pending' then
    redis.call('HSET', job, 'status', 'Processing')
    status = 'Processing'
  end
  return { 'recorded', status, notified, '', callback }
end
