-- The job listing's index of a job shard (keys.ts jobIndex, in the shard's slot): a sorted set whose members, all of score 0, are
-- `<createdAt epoch ms, 16 digits>:<jobId>`, so that lexicographic order is creation order and a member is a stable
-- cursor (job-index.ts). Adding jobs also trims the entries created before `cutoff` (a member prefix: those jobs'
-- hashes have expired, JOB_TTL_SECONDS) and gives the index the jobs' TTL, so it never outgrows the jobs it indexes.
local function trimJobIndex(index, cutoff, ttl)
  redis.call('ZREMRANGEBYLEX', index, '-', '(' .. cutoff)
  redis.call('EXPIRE', index, ttl)
end

local function indexJob(index, member, cutoff, ttl)
  redis.call('ZADD', index, 0, member)
  trimJobIndex(index, cutoff, ttl)
end
