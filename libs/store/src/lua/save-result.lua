-- Stores a worker's result unless its job is finished or gone: the status check and the write in one
-- round trip. The first result stored wins, so a redelivered command never overwrites one.
-- KEYS[1]  job hash
-- KEYS[2]  result key (ResultStore.locate)
-- ARGV[1]  result JSON
-- ARGV[2]  TTL (seconds)
-- Returns { outcome, detail }
--   missing  ''              the job does not exist (expired or never created): nothing stored
--   finished <job status>    the job is Completed or Cancelled: nothing stored
--   exists   <stored JSON>   an earlier delivery stored a result first: announce that one
--   created  ''              stored
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return { 'missing', '' } end
if status == 'Completed' or status == 'Cancelled' then return { 'finished', status } end
-- SET NX GET (Redis >= 7): stores unless a result is there, and returns the one that is.
local previous = redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2], 'NX', 'GET')
if previous then return { 'exists', previous } end
return { 'created', '' }
