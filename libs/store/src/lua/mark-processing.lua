-- Moves a job from Pending to Processing; never regresses a job that is already further along.
-- KEYS[1] job hash; ARGV[1] time (ISO 8601) the commands were dispatched.
-- Returns the job's status after the call, or '' when the job does not exist.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
if status == 'Pending' then
  redis.call('HSET', KEYS[1], 'status', 'Processing', 'dispatchedAt', ARGV[1])
  return 'Processing'
end
return status
