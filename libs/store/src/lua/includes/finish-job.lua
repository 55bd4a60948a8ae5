-- Finishes an open job in one step (cancel-job.lua, expire-job.lua): every requested service still without an
-- outcome gets `outcome` (one JSON document, built by job-store.ts's unreportedOutcome from the outcome record
-- defined in @lookup/contracts' outcome.ts; never assembled here) and is counted done, the job takes `status`
-- and `completedAt` (and any further field, value pairs), and it leaves the deadline index. Its event stream
-- (`events`, includes/job-event.lua) gets a `result` per outcome recorded here, then `cancelled` (status
-- Cancelled) or `completed`.
--- @include "job-event"
local function finishJob(job, deadlines, events, jobId, outcome, status, completedAt, ...)
  local maxlen = tonumber(redis.call('HGET', job, 'total') or '0') + 2
  local lines = {}
  for service in string.gmatch(redis.call('HGET', job, 'services') or '', '[^,]+') do
    if redis.call('HSETNX', job, 'o:' .. service, outcome) == 1 then
      redis.call('HINCRBY', job, 'done', 1)
      lines[#lines + 1] = jobEventLine(jobEvent(events, job, maxlen, 'type', 'result', 'service', service), 'result', service)
    end
  end
  redis.call('HSET', job, 'status', status, 'completedAt', completedAt, ...)
  redis.call('ZREM', deadlines, jobId)
  local final = status == 'Cancelled' and 'cancelled' or 'completed'
  lines[#lines + 1] = jobEventLine(jobEvent(events, job, maxlen, 'type', final), final)
  jobEventsChanged(events, lines)
end
