-- Checks and spends a tenant's quotas for a submission of #jobIds jobs, all or none (a refusal spends nothing).
--
-- KEYS[1]  the tenant's counter for the current UTC day; KEYS[2] the tenant's unfinished jobs (sorted set: job id,
--          scored by when its hold lapses by itself, for a job whose end never released it)
-- ARGV[1]  now (epoch ms)        ARGV[2] jobs per day (0 = unlimited)   ARGV[3] jobs in flight (0 = unlimited)
-- ARGV[4]  seconds the day counter lives (until the day's end, plus a margin)
-- ARGV[5]  when the holds lapse (epoch ms)                              ARGV[6..] the job ids
--
-- Returns { allowed (1|0), reason ('' | 'day' | 'in-flight'), jobsToday, jobsInFlight } after the call.
local now = tonumber(ARGV[1])
local perDay = tonumber(ARGV[2])
local inFlightLimit = tonumber(ARGV[3])
local count = #ARGV - 5
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local today = tonumber(redis.call('GET', KEYS[1]) or '0')
local inFlight = redis.call('ZCARD', KEYS[2])
if perDay > 0 and today + count > perDay then return { 0, 'day', today, inFlight } end
if inFlightLimit > 0 and inFlight + count > inFlightLimit then return { 0, 'in-flight', today, inFlight } end
if count == 0 then return { 1, '', today, inFlight } end
today = redis.call('INCRBY', KEYS[1], count)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
for i = 6, #ARGV do redis.call('ZADD', KEYS[2], ARGV[5], ARGV[i]) end
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return { 1, '', today, redis.call('ZCARD', KEYS[2]) }
