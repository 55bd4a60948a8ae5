-- Records that a finished job's end was announced (job.completed and its callback, confirmed by the broker): the
-- first call answers 1 (its caller counts the job's end), later ones 0. A script rather than a plain HSETNX so that,
-- with REDIS_WAIT_REPLICAS, the flag waits for a replica like every other change of a job: a flag lost in a failover
-- would let a later redelivery announce the job again and count its end twice, and would keep a cancelled or expired
-- job due in the deadline index (the sweep announces it again until it is flagged).
-- The first call also queues the job's per-service outcomes for the API's metrics (lookup_api_service_outcomes_total):
-- one entry on its shard's outcome list, which the API replicas drain (JobStore.drainOutcomes), so each finished job
-- is counted once whatever the number of replicas, with no message to any of them. The list keeps its newest
-- ARGV[1] entries: jobs that end while no API drains it for that long are not all counted.
-- KEYS[1]  job hash
-- KEYS[2]  the outcome list of the job's shard
-- ARGV[1]  the list's cap
-- An entry: 'service status durationMs' per requested service with an outcome, comma-separated (durationMs empty
-- for an outcome recorded without one).
if redis.call('HSETNX', KEYS[1], 'notified', '1') == 0 then return 0 end
if KEYS[2] then
  local out = {}
  for service in string.gmatch(redis.call('HGET', KEYS[1], 'services') or '', '[^,]+') do
    local raw = redis.call('HGET', KEYS[1], 'o:' .. service)
    if raw then
      local ok, o = pcall(cjson.decode, raw)
      if ok and type(o) == 'table' and type(o.status) == 'string' and not string.find(o.status, '[ ,]') then
        out[#out + 1] = service .. ' ' .. o.status .. ' ' .. (type(o.durationMs) == 'number' and tostring(o.durationMs) or '')
      end
    end
  end
  if #out > 0 then
    redis.call('RPUSH', KEYS[2], table.concat(out, ','))
    redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
  end
end
return 1
