-- Creates a batch of jobs whole: every job (fields, TTL, place in the deadline and listing indexes) and the batch record,
-- atomically. Either all of them exist afterwards or none does (a script runs to its end or not at all; every
-- argument is checked before the first write, so a malformed call writes nothing).
-- KEYS[1]      deadline index (sorted set)
-- KEYS[2]      batch record (hash)
-- KEYS[3]      the batch shard's listing index (includes/index-job.lua)
-- KEYS[4..]    one job hash per job, in the order of the job blocks below
-- ARGV[1]      TTL (seconds), of the jobs and of the batch record
-- ARGV[2]      the listing index's trim cutoff (includes/index-job.lua)
-- ARGV[3]      number of batch-record field/value pairs (b)
-- ARGV[4..]    b field/value pairs of the batch record
-- then per job: job id, deadline (epoch ms), listing index member, number of field/value pairs (n), n field/value pairs
-- Returns the number of jobs created.
--- @include "includes/index-job"
local ttl = ARGV[1]
local cutoff = ARGV[2]
local b = tonumber(ARGV[3])
local batchFields = {}
for i = 4, 3 + 2 * b do batchFields[#batchFields + 1] = ARGV[i] end
local jobs = {}
local p = 4 + 2 * b
for j = 4, #KEYS do
  local id, deadline, member, n = ARGV[p], ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 3])
  if id == nil or deadline == nil or member == nil or n == nil then return redis.error_reply('create-batch: malformed job block') end
  local fields = {}
  for i = p + 4, p + 3 + 2 * n do fields[#fields + 1] = ARGV[i] end
  jobs[#jobs + 1] = { key = KEYS[j], id = id, deadline = deadline, member = member, fields = fields }
  p = p + 4 + 2 * n
end
for _, job in ipairs(jobs) do
  redis.call('HSET', job.key, unpack(job.fields))
  redis.call('EXPIRE', job.key, ttl)
  redis.call('ZADD', KEYS[1], job.deadline, job.id)
  redis.call('ZADD', KEYS[3], 0, job.member)
end
trimJobIndex(KEYS[3], cutoff, ttl)
redis.call('HSET', KEYS[2], unpack(batchFields))
redis.call('EXPIRE', KEYS[2], ttl)
return #jobs
