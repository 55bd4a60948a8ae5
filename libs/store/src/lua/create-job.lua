-- Creates a job whole: its fields, its TTL, its place in the deadline index and in the listing's index, atomically.
-- A script rather than MULTI: ioredis sends MULTI blocks on their own, while script calls join the
-- automatic pipeline with every other command of the same tick (one write for many requests).
-- KEYS[1]  job hash
-- KEYS[2]  deadline index (sorted set)
-- KEYS[3]  the job shard's listing index (includes/index-job.lua)
-- ARGV[1]  TTL (seconds)
-- ARGV[2]  deadline (epoch ms)
-- ARGV[3]  job id
-- ARGV[4]  the job's listing index member; ARGV[5] the index's trim cutoff (includes/index-job.lua)
-- ARGV[6..] field, value, field, value, ...
-- Returns 1.
--- @include "includes/index-job"
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
indexJob(KEYS[3], ARGV[4], ARGV[5], ARGV[1])
return 1
