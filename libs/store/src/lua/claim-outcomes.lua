-- Hands a finished job's per-service outcomes to the first caller only (the API replicas' view of finished jobs,
-- lookup_api_service_outcomes_total: every replica hears every job.completed, and exactly one counts each job, so a
-- Prometheus sum over replicas counts each job once).
-- KEYS[1] job hash
-- Returns {} when the job is missing, not finished, or already claimed; else a flat list
--   service, status, durationMs ('' when the outcome has none), ... for every requested service with an outcome.
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if status ~= 'Completed' and status ~= 'Cancelled' then return {} end
if redis.call('HSETNX', job, 'outcomesClaimed', '1') == 0 then return {} end
local out = {}
for service in string.gmatch(redis.call('HGET', job, 'services') or '', '[^,]+') do
  local raw = redis.call('HGET', job, 'o:' .. service)
  if raw then
    local ok, o = pcall(cjson.decode, raw)
    if ok and type(o) == 'table' and type(o.status) == 'string' then
      out[#out + 1] = service
      out[#out + 1] = o.status
      out[#out + 1] = type(o.durationMs) == 'number' and tostring(o.durationMs) or ''
    end
  end
end
return out
