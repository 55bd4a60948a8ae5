-- Stores a worker's result unless its job is finished or gone, and records its outcome on the job: the status
-- check, the write and the record in one round trip. The first result stored wins, so a redelivered command never
-- overwrites one. The outcome is recorded exactly as the saga records a task.completed
-- (includes/record-outcome.lua), so the worker announces only the outcome that completes the job.
-- KEYS[1]  job hash
-- KEYS[2]  result key (ResultStore.locate)
-- KEYS[3]  deadline index of the job (the job leaves it when it completes)
-- KEYS[4]  the job's event stream
-- ARGV[1]  result JSON
-- ARGV[2]  TTL (seconds)
-- ARGV[3]  service number
-- ARGV[4]  the outcome (JSON of job-store.ts's OutcomeRecord)
-- ARGV[5]  completion time (ISO 8601) to stamp if this outcome completes the job
-- ARGV[6]  job id
-- Returns { outcome, detail, ... }
--   missing     ''              the job does not exist (expired or never created): nothing stored
--   finished    <job status>    the job is Completed or Cancelled: nothing stored
--   unrequested <job status>    the job did not request this service: nothing stored
--   exists      <stored JSON>   an earlier delivery stored a result first: nothing recorded (announce that one)
--   created     ''              stored, and recorded: followed by recordOutcome's answer (disposition, jobStatus,
--                               notified, createdAt, callback, tenant)
--- @include "includes/record-outcome"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return { 'missing', '' } end
if status == 'Completed' or status == 'Cancelled' then return { 'finished', status } end
local services = ',' .. (redis.call('HGET', KEYS[1], 'services') or '') .. ','
if not string.find(services, ',' .. ARGV[3] .. ',', 1, true) then return { 'unrequested', status } end
-- SET NX GET (Redis >= 7): stores unless a result is there, and returns the one that is.
local previous = redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2], 'NX', 'GET')
if previous then return { 'exists', previous } end
local recorded = recordOutcome(KEYS[1], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return { 'created', '', unpack(recorded) }
