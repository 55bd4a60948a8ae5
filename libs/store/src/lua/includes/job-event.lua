-- Appends one event to a job's event stream (record-outcome.lua, finish-job.lua): the stream the API's event
-- route replays and follows (`GET /api/lookup/{jobId}/events`). Called only where the job's state changed, in the
-- same script, so an event exists iff the change does. Bounded (MAXLEN: one entry per service plus the end) and
-- expiring with the job. Field `type` is result | completed | cancelled; `service` (a service number) on results.
-- Returns the entry id (the SSE id).
local function jobEvent(stream, job, maxlen, ...)
  local id = redis.call('XADD', stream, 'MAXLEN', maxlen, '*', ...)
  local ttl = redis.call('PTTL', job)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
  return id
end

-- The line announcing one entry in the wake-up message: `<id> <type>` (+ ` <service>` on results).
local function jobEventLine(id, eventType, service)
  if service then return id .. ' ' .. eventType .. ' ' .. service end
  return id .. ' ' .. eventType
end

-- Wakes whoever follows the job (an API replica subscribes to the channel of the same name while a client
-- streams the job; with no subscriber, PUBLISH costs next to nothing). The message names the entries this script
-- appended (jobEventLine, one per line, oldest first), so a subscriber that has followed the channel since before
-- its last read needs no XRANGE; after a reconnect it re-reads the stream, which stays the truth.
local function jobEventsChanged(stream, lines)
  redis.call('PUBLISH', stream, table.concat(lines, '\n'))
end
